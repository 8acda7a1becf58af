//! The channel's `smtp = { ... }` table: server, security (implicit TLS, STARTTLS or plain,
//! explicit only), authentication (password or XOAUTH2), timeouts and pool size.

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Implicit TLS (port 465).
    Tls,
    /// STARTTLS required before anything else (port 587).
    #[default]
    Starttls,
    /// Unencrypted, only when configured explicitly (port 25).
    Plain,
}

/// SMTP authentication mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpAuth {
    /// PLAIN, or LOGIN if that is all the server offers.
    #[default]
    Password,
    /// XOAUTH2 with `oauth_token` (or the output of `oauth_token_command`, run when the
    /// sender is built).
    Xoauth2,
}

fn default_timeout_secs() -> u64 {
    60
}
fn default_pool_size() -> u32 {
    4
}

/// The channel's `smtp = { ... }` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// No username: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub auth: SmtpAuth,
    #[serde(default)]
    pub oauth_token: Option<String>,
    #[serde(default)]
    pub oauth_token_command: Option<String>,
    /// Extra trusted CA certificates (PEM), beside the web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name to verify in the certificate when it differs from `host`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// EHLO name; the machine's host name by default.
    #[serde(default)]
    pub hello_name: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Pooled connections at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("auth", &self.auth)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    pub fn new(host: impl Into<String>, security: SmtpSecurity) -> Self {
        SmtpConfig {
            host: host.into(),
            port: None,
            security,
            username: None,
            password: None,
            auth: SmtpAuth::Password,
            oauth_token: None,
            oauth_token_command: None,
            ca_file: None,
            tls_server_name: None,
            hello_name: None,
            timeout_secs: default_timeout_secs(),
            pool_size: default_pool_size(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Plain => 25,
        })
    }
}
