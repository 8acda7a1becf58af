//! Channel settings of an email channel (`type = "email"` in `[[channels]]`): the channel's
//! address, its IMAP account (inbound sync) and SMTP server (outbound), and how mail is
//! written and read.
//!
//! [`validate`] reports every problem at once with its full path (unknown keys in the
//! nested `imap` / `smtp` tables too, a bad cron schedule, missing credentials);
//! [`EmailSettings::parse`] turns a valid table into settings.

use crate::imap::ImapConfig;
use crate::smtp::SmtpConfig;
use serde::Deserialize;
use switchboard_core::infra::config::ConfigError;
use switchboard_core::infra::config::settings::{
    check_fields, deserialize_settings, key_path as join, secs,
};
use toml::{Table, Value};

/// The settings of one email channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The channel's mailbox address: the From of replies, the base of reply tokens
    /// (`local+TOKEN@domain`).
    pub address: String,
    /// Display name in the From of replies.
    #[serde(default)]
    pub name: Option<String>,
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    /// Domain of the Message-IDs of our mail; the address's domain by default.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// APPEND every sent reply to this IMAP folder (e.g. `Sent`); off when absent.
    #[serde(default)]
    pub sent_folder: Option<String>,
    /// Keep remote images in sanitized HTML (off: they track the reader).
    #[serde(default)]
    pub allow_remote_images: bool,
    /// How long a replica's claim on syncing this mailbox lasts without renewal (seconds);
    /// another replica takes over after it when the holder died.
    #[serde(default = "default_lease_secs", deserialize_with = "secs")]
    pub lease_secs: u64,
    /// The largest attachment kept (bytes). A larger one is not stored: the mail is, with
    /// the attachment marked `too_large` and its size.
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
}

fn default_lease_secs() -> u64 {
    120
}

/// 25 MiB: what the large mail services accept as a whole message.
fn default_max_attachment_bytes() -> u64 {
    25 * 1024 * 1024
}

impl EmailSettings {
    /// Validates and parses a channel table; every error carries its full path.
    pub fn parse(settings: &Table, path: &str) -> Result<Self, Vec<ConfigError>> {
        let errors = validate(settings, path);
        if !errors.is_empty() {
            return Err(errors);
        }
        deserialize_settings(settings, path)
    }

    /// The domain of our Message-IDs.
    pub fn message_id_domain(&self) -> String {
        self.message_id_domain.clone().unwrap_or_else(|| {
            self.address
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default()
        })
    }
}

/// Checks an email channel table and returns every problem found (empty when valid).
pub fn validate(settings: &Table, path: &str) -> Vec<ConfigError> {
    let mut errors = check_fields::<EmailSettings>(settings, path, "email");
    match settings.get("address").and_then(Value::as_str) {
        None if !settings.contains_key("address") => {
            errors.push(ConfigError::new(join(path, "address"), "missing"));
        }
        Some(a) if !is_address(a) => errors.push(ConfigError::new(
            join(path, "address"),
            "must be a mailbox address (local@domain)",
        )),
        _ => {}
    }
    match settings.get("imap") {
        None => errors.push(ConfigError::new(join(path, "imap"), "missing")),
        Some(Value::Table(t)) => {
            let at = join(path, "imap");
            match deserialize_settings::<ImapConfig>(t, &at) {
                Ok(imap) => {
                    if let Err(e) = imap.validate() {
                        errors.push(ConfigError::new(at.clone(), e.to_string()));
                    }
                    if let Some(s) = &imap.schedule
                        && let Err(e) = crate::sync::schedule::check(s)
                    {
                        errors.push(ConfigError::new(join(&at, "schedule"), e));
                    }
                }
                Err(e) => errors.extend(e),
            }
        }
        Some(_) => {}
    }
    match settings.get("smtp") {
        None => errors.push(ConfigError::new(join(path, "smtp"), "missing")),
        Some(Value::Table(t)) => {
            let at = join(path, "smtp");
            if let Err(e) = deserialize_settings::<SmtpConfig>(t, &at) {
                errors.extend(e);
            }
        }
        Some(_) => {}
    }
    errors
}

fn is_address(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !a.chars().any(|c| c.is_whitespace() || "<>,;\"".contains(c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> Table {
        s.parse().unwrap()
    }

    #[test]
    fn a_full_channel_parses() {
        let t = table(
            r#"address = "support@acme.example"
imap = { host = "imap.acme.example", username = "support", password = "pw", folders = ["INBOX"], spam_folders = ["Junk"], schedule = "0 */5 * * * *" }
smtp = { host = "smtp.acme.example", security = "starttls", username = "support", password = "pw" }
sent_folder = "Sent""#,
        );
        let s = EmailSettings::parse(&t, "channels[0]").unwrap();
        assert_eq!(s.message_id_domain(), "acme.example");
        assert_eq!(s.imap.spam_folders, vec!["Junk"]);
        assert_eq!(s.lease_secs, 120);
        assert!(!format!("{s:?}").contains("\"pw\""));
    }

    #[test]
    fn every_key_is_type_checked() {
        let t = table(
            r#"address = 1
name = 2
imap = "imap.example"
smtp = 3
message_id_domain = 4
sent_folder = 5
allow_remote_images = "yes"
lease_secs = 0"#,
        );
        let errors = validate(&t, "c");
        let typed: Vec<(&str, &str)> = errors
            .iter()
            .filter(|e| e.message.starts_with("must be"))
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            typed,
            vec![
                ("c.address", "must be a string"),
                ("c.name", "must be a string"),
                ("c.imap", "must be a table"),
                ("c.smtp", "must be a table"),
                ("c.message_id_domain", "must be a string"),
                ("c.sent_folder", "must be a string"),
                ("c.allow_remote_images", "must be a boolean"),
                (
                    "c.lease_secs",
                    "must be an integer number of seconds between 1 and 3600"
                ),
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let t = table(
            r#"address = "not an address"
colour = "blue"
imap = { host = "h", username = "u", schedule = "every five minutes", bogus = 1 }
smtp = { host = "s", security = "sometimes" }"#,
        );
        let errors = validate(&t, "channels[3]");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"channels[3].colour"), "{paths:?}");
        assert!(paths.contains(&"channels[3].address"), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.starts_with("channels[3].imap")),
            "{paths:?}"
        );
        assert!(
            paths.iter().any(|p| p.starts_with("channels[3].smtp")),
            "{paths:?}"
        );

        let t = table(
            r#"address = "a@b.example"
imap = { host = "h", username = "u", password = "p", schedule = "every five minutes" }
smtp = { host = "s" }"#,
        );
        let errors = validate(&t, "c");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "c.imap.schedule");

        let errors = validate(&table("address = \"a@b.example\""), "c");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["c.imap", "c.smtp"]);
    }
}
