//! IMAP account configuration: the `imap = { ... }` table of an email channel.
//!
//! Plain TCP is never a default: `security = "plain"` must be written out. Secrets (the
//! password, a bearer token) are redacted from `Debug` output.

use super::error::ImapError;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Implicit TLS from the first byte (port 993).
    #[default]
    Tls,
    /// Plain TCP upgraded with `STARTTLS` before any credential is sent (port 143).
    Starttls,
    /// Unencrypted TCP. Only when the configuration says so explicitly.
    Plain,
}

impl Security {
    /// The conventional port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Tls => 993,
            Security::Starttls | Security::Plain => 143,
        }
    }
}

/// How we prove who we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// `LOGIN user password`.
    #[default]
    Login,
    /// `AUTHENTICATE PLAIN` with the password.
    Plain,
    /// `AUTHENTICATE XOAUTH2` with a bearer token (`oauth_token` or `oauth_token_command`).
    Xoauth2,
}

fn default_folders() -> Vec<String> {
    vec!["INBOX".to_owned()]
}
fn default_true() -> bool {
    true
}
fn default_batch_size() -> u32 {
    200
}
fn default_max_batch_bytes() -> u64 {
    32 * 1024 * 1024
}
fn default_timeout_secs() -> u64 {
    60
}
fn default_idle_refresh_secs() -> u64 {
    25 * 60
}

/// One IMAP account.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    /// Defaults to 993 for `tls`, 143 otherwise.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: String,
    #[serde(default)]
    pub auth: AuthMethod,
    /// For `login` and `plain`.
    #[serde(default)]
    pub password: Option<String>,
    /// A bearer token for `xoauth2`.
    #[serde(default)]
    pub oauth_token: Option<String>,
    /// A shell command whose standard output (trimmed) is the bearer token for `xoauth2`;
    /// run at every connection, so it may refresh the token.
    #[serde(default)]
    pub oauth_token_command: Option<String>,
    /// Folders to sync, `INBOX` by default.
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    /// Folders whose messages are spam by placement (e.g. `Junk`); also synced.
    #[serde(default)]
    pub spam_folders: Vec<String>,
    /// Keep an IDLE connection per watched folder.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Cron schedule of the safety-net sync (6 fields with seconds, UTC).
    #[serde(default)]
    pub schedule: Option<String>,
    /// Messages per UID FETCH round trip.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Upper bound of the bytes one fetch batch may hold (by RFC822.SIZE); a single larger
    /// message is still fetched, alone.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: u64,
    /// First sync only: fetch the last N days instead of the whole folder.
    #[serde(default)]
    pub since_days: Option<u32>,
    /// Extra trusted CA certificates (PEM), beside the web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name to verify in the server certificate when it differs from `host`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Connect and per-response timeout.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// IDLE is re-issued after this long (servers may drop IDLE after 30 minutes).
    #[serde(default = "default_idle_refresh_secs")]
    pub idle_refresh_secs: u64,
}

impl fmt::Debug for ImapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ImapConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("security", &self.security)
            .field("username", &self.username)
            .field("auth", &self.auth)
            .field("password", &redact(&self.password))
            .field("oauth_token", &redact(&self.oauth_token))
            .field("oauth_token_command", &self.oauth_token_command)
            .field("folders", &self.folders)
            .field("spam_folders", &self.spam_folders)
            .field("idle", &self.idle)
            .field("schedule", &self.schedule)
            .field("batch_size", &self.batch_size)
            .field("since_days", &self.since_days)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ImapConfig {
    /// A configuration with the defaults for everything but the essentials.
    pub fn new(host: impl Into<String>, security: Security, username: impl Into<String>) -> Self {
        ImapConfig {
            host: host.into(),
            port: None,
            security,
            username: username.into(),
            auth: AuthMethod::Login,
            password: None,
            oauth_token: None,
            oauth_token_command: None,
            folders: default_folders(),
            spam_folders: Vec::new(),
            idle: true,
            schedule: None,
            batch_size: default_batch_size(),
            max_batch_bytes: default_max_batch_bytes(),
            since_days: None,
            ca_file: None,
            tls_server_name: None,
            timeout_secs: default_timeout_secs(),
            idle_refresh_secs: default_idle_refresh_secs(),
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    /// The timeout for connecting and for each server response.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Every folder to sync: the normal ones, then the spam ones (no duplicates).
    pub fn all_folders(&self) -> Vec<String> {
        let mut all = self.folders.clone();
        for f in &self.spam_folders {
            if !all.contains(f) {
                all.push(f.clone());
            }
        }
        all
    }

    /// Whether messages found in `folder` are spam by placement.
    pub fn is_spam_folder(&self, folder: &str) -> bool {
        self.spam_folders.iter().any(|f| f == folder)
    }

    /// Checks what can be checked without a network: a permanent error if wrong.
    pub fn validate(&self) -> Result<(), ImapError> {
        let bad = |m: &str| Err(ImapError::Config(m.to_owned()));
        if self.host.trim().is_empty() {
            return bad("imap.host is empty");
        }
        if self.username.is_empty() {
            return bad("imap.username is empty");
        }
        if self.port == Some(0) {
            return bad("imap.port must not be 0");
        }
        match self.auth {
            AuthMethod::Login | AuthMethod::Plain if self.password.is_none() => {
                return bad("imap.password is required for auth = \"login\" or \"plain\"");
            }
            AuthMethod::Xoauth2
                if self.oauth_token.is_none() && self.oauth_token_command.is_none() =>
            {
                return bad("imap.auth = \"xoauth2\" needs oauth_token or oauth_token_command");
            }
            _ => {}
        }
        if self.folders.is_empty() && self.spam_folders.is_empty() {
            return bad("imap.folders is empty");
        }
        if self.batch_size == 0 {
            return bad("imap.batch_size must be at least 1");
        }
        if self.max_batch_bytes == 0 {
            return bad("imap.max_batch_bytes must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_redaction() {
        let c: ImapConfig = serde_json::from_value(serde_json::json!({
            "host": "imap.example", "username": "u", "password": "hunter2"
        }))
        .unwrap();
        assert_eq!(c.security, Security::Tls);
        assert_eq!(c.port(), 993);
        assert_eq!(c.folders, vec!["INBOX"]);
        assert_eq!(c.batch_size, 200);
        assert!(c.idle);
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn plain_is_explicit_and_validation_catches_gaps() {
        let c: ImapConfig = serde_json::from_value(serde_json::json!({
            "host": "h", "username": "u", "security": "plain", "auth": "xoauth2",
            "spam_folders": ["Junk", "INBOX"]
        }))
        .unwrap();
        assert_eq!(c.port(), 143);
        assert!(c.validate().unwrap_err().is_permanent());
        assert_eq!(c.all_folders(), vec!["INBOX", "Junk"]);
        assert!(c.is_spam_folder("Junk"));
        let bad = serde_json::from_value::<ImapConfig>(serde_json::json!({
            "host": "h", "username": "u", "securty": "plain"
        }));
        assert!(bad.is_err());
    }
}
