//! Channel settings of a Twilio channel (`type = "twilio"` in `[[channels]]`).
//!
//! Core hands the connector the channel's table (without `id`, `tenant` and `type`) and the
//! path of the entry (`channels[0]`); [`validate`] reports every problem at once, each with
//! its full path, and [`TwilioSettings::parse`] turns a valid table into settings.

use serde::Deserialize;
use switchboard_core::infra::config::settings::{
    check_fields, deserialize_settings, key_path as join, secs,
};
use switchboard_core::infra::config::{ConfigError, Secret};
use switchboard_core::infra::host_list::{HostList, InvalidHostEntry};
use toml::{Table, Value};

/// Default Twilio REST API base URL.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// Default per-request timeout for Messages API calls and the health check, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 15;
/// Default per-request timeout for media downloads, in seconds.
pub const DEFAULT_MEDIA_TIMEOUT_SECS: u64 = 60;
/// Where Twilio serves inbound media (besides `api_base`'s host): media URLs name
/// `api.twilio.com`, which redirects to `mms.twiliocdn.com` (accounts that enforce HTTP auth
/// on media) or to `s3-external-1.amazonaws.com` (older, unauthenticated media).
pub const DEFAULT_MEDIA_HOSTS: &[&str] = &[
    "api.twilio.com",
    "*.twiliocdn.com",
    "s3-external-1.amazonaws.com",
];

/// The settings of one Twilio channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// The account SID (`AC...`); the basic-auth user of every API call.
    pub account_sid: String,
    /// The auth token: basic-auth password and the key of `X-Twilio-Signature`.
    pub auth_token: Secret,
    /// Our sender: an E.164 number, a short code, or `whatsapp:+...`.
    #[serde(default)]
    pub from: Option<String>,
    /// A Messaging Service (`MG...`) that picks the sender; exclusive with `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// The REST API base URL (a local fake in tests), without a trailing slash.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Per-request timeout for the Messages API and the health check, in seconds.
    #[serde(default = "default_timeout_secs", deserialize_with = "secs")]
    pub timeout_secs: u64,
    /// Per-request timeout for media downloads, in seconds.
    #[serde(default = "default_media_timeout_secs", deserialize_with = "secs")]
    pub media_timeout_secs: u64,
    /// The only hosts inbound media is fetched from, besides `api_base`'s host: the URL
    /// Twilio gives and every redirect hop (entries as [`HostList`] reads them).
    #[serde(default = "default_media_hosts")]
    pub media_hosts: Vec<String>,
    /// Ask Twilio for delivery status callbacks on `/webhooks/{channel_id}/status`.
    #[serde(default = "default_true")]
    pub status_callback: bool,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_string()
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_media_timeout_secs() -> u64 {
    DEFAULT_MEDIA_TIMEOUT_SECS
}

fn default_media_hosts() -> Vec<String> {
    DEFAULT_MEDIA_HOSTS.iter().map(|h| h.to_string()).collect()
}

fn default_true() -> bool {
    true
}

impl TwilioSettings {
    /// Validates and parses a channel table; every error carries its full path.
    pub fn parse(settings: &Table, path: &str) -> Result<Self, Vec<ConfigError>> {
        let errors = validate(settings, path);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut parsed: Self = deserialize_settings(settings, path)?;
        parsed.api_base = parsed.api_base.trim_end_matches('/').to_string();
        Ok(parsed)
    }

    /// The hosts inbound media may come from: `media_hosts` and `api_base`'s host.
    pub fn media_host_list(&self) -> Result<HostList, InvalidHostEntry> {
        let list = HostList::parse(&self.media_hosts)?;
        Ok(match url::Url::parse(&self.api_base) {
            Ok(base) => list.with_host_of(&base),
            Err(_) => list,
        })
    }

    /// Our own address on the channel: the sender number, else the Messaging Service SID.
    pub fn address(&self) -> Option<String> {
        self.from
            .clone()
            .or_else(|| self.messaging_service_sid.clone())
    }
}

/// Checks a Twilio channel table and returns every problem found (empty when valid).
pub fn validate(settings: &Table, path: &str) -> Vec<ConfigError> {
    let mut errors = check_fields::<TwilioSettings>(settings, path, "twilio");
    let text = |key: &str| settings.get(key).and_then(Value::as_str);

    match text("account_sid") {
        None if !settings.contains_key("account_sid") => {
            errors.push(ConfigError::new(join(path, "account_sid"), "missing"));
        }
        Some(sid) if !is_sid(sid, "AC") => errors.push(ConfigError::new(
            join(path, "account_sid"),
            "must be a Twilio account SID (AC followed by letters and digits)",
        )),
        _ => {}
    }
    match text("auth_token") {
        None if !settings.contains_key("auth_token") => {
            errors.push(ConfigError::new(join(path, "auth_token"), "missing"));
        }
        Some(t) if t.trim().is_empty() => {
            errors.push(ConfigError::new(
                join(path, "auth_token"),
                "must not be empty",
            ));
        }
        _ => {}
    }
    let from = text("from");
    let service = text("messaging_service_sid");
    if let Some(f) = from
        && !is_sender(f)
    {
        errors.push(ConfigError::new(
            join(path, "from"),
            "must be an E.164 number (+14155550100), a short code, or whatsapp:+14155550100",
        ));
    }
    if let Some(s) = service
        && !is_sid(s, "MG")
    {
        errors.push(ConfigError::new(
            join(path, "messaging_service_sid"),
            "must be a Messaging Service SID (MG followed by letters and digits)",
        ));
    }
    match (
        settings.contains_key("from"),
        settings.contains_key("messaging_service_sid"),
    ) {
        (false, false) => errors.push(ConfigError::new(
            join(path, "from"),
            "set exactly one of from or messaging_service_sid",
        )),
        (true, true) => errors.push(ConfigError::new(
            join(path, "messaging_service_sid"),
            "set exactly one of from or messaging_service_sid, not both",
        )),
        _ => {}
    }
    if let Some(base) = text("api_base") {
        match url::Url::parse(base) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none() => {}
            Ok(_) => errors.push(ConfigError::new(
                join(path, "api_base"),
                "must be an http(s) URL without query or fragment",
            )),
            Err(e) => errors.push(ConfigError::new(join(path, "api_base"), e.to_string())),
        }
    }
    if let Some(hosts) = settings.get("media_hosts") {
        errors.extend(check_media_hosts(hosts, &join(path, "media_hosts")));
    }
    errors
}

/// `media_hosts`: an array of host entries, each checked at its own index.
fn check_media_hosts(hosts: &Value, path: &str) -> Vec<ConfigError> {
    let Some(entries) = hosts.as_array() else {
        return vec![ConfigError::new(path, "must be an array of host names")];
    };
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let at = format!("{path}[{i}]");
            match entry.as_str() {
                None => Some(ConfigError::new(at, "must be a string")),
                Some(host) => HostList::parse(&[host])
                    .err()
                    .map(|e| ConfigError::new(at, e.to_string())),
            }
        })
        .collect()
}

/// `AC...`/`MG...`: the prefix, then at least one ASCII letter or digit and nothing else.
fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `+` and 2 to 15 digits, the first not 0.
pub(crate) fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// A sender Twilio accepts for two-way messaging: E.164, a short code, or WhatsApp E.164.
fn is_sender(s: &str) -> bool {
    match s.strip_prefix("whatsapp:") {
        Some(number) => is_e164(number),
        None => is_e164(s) || ((3..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        text.parse().expect("test TOML parses")
    }

    fn paths(errors: &[ConfigError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn minimal_settings_parse_with_defaults() {
        let t = table(
            r#"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "secret"
from = "+14155550100"
"#,
        );
        let s = TwilioSettings::parse(&t, "channels[0]").expect("valid");
        assert_eq!(s.api_base, DEFAULT_API_BASE);
        assert_eq!(s.timeout_secs, 15);
        assert_eq!(s.media_timeout_secs, 60);
        assert_eq!(s.media_hosts, DEFAULT_MEDIA_HOSTS);
        let hosts = s.media_host_list().expect("hosts");
        let url = |u: &str| url::Url::parse(u).expect("url");
        assert!(hosts.allows(&url(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1"
        )));
        assert!(hosts.allows(&url("https://mms.twiliocdn.com/AC1/abc")));
        assert!(!hosts.allows(&url("http://169.254.169.254/latest/meta-data/")));
        assert!(s.status_callback);
        assert_eq!(s.address().as_deref(), Some("+14155550100"));
        assert_eq!(s.auth_token.expose(), "secret");
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn messaging_service_and_whatsapp_senders_are_accepted() {
        let t = table(
            r#"
account_sid = "AC123"
auth_token = "x"
messaging_service_sid = "MG0123456789abcdef0123456789abcdef"
api_base = "http://127.0.0.1:9999/"
status_callback = false
timeout_secs = 5
"#,
        );
        let s = TwilioSettings::parse(&t, "channels[1]").expect("valid");
        assert_eq!(s.api_base, "http://127.0.0.1:9999");
        // The API origin's own host serves media too (a local fake here).
        let hosts = s.media_host_list().expect("hosts");
        assert!(hosts.allows(&url::Url::parse("http://127.0.0.1:9999/m").expect("url")));
        assert_eq!(
            s.address().as_deref(),
            Some("MG0123456789abcdef0123456789abcdef")
        );
        assert!(!s.status_callback);

        for from in ["whatsapp:+14155238886", "+447700900123", "12345"] {
            let mut t = table("account_sid = \"AC1\"\nauth_token = \"x\"");
            t.insert("from".into(), Value::String(from.into()));
            assert!(validate(&t, "c").is_empty(), "{from}");
        }
    }

    #[test]
    fn every_error_is_reported_with_its_full_path() {
        let t = table(
            r#"
account_sid = "XX123"
auth_token = 5
from = "4155550100"
messaging_service_sid = "XY"
api_base = "ftp://example.com"
timeout_secs = 0
status_callback = "yes"
media_hosts = ["api.twilio.com", "https://evil.example/x", 3]
colour = "blue"
"#,
        );
        let errors = validate(&t, "channels[0]");
        let p = paths(&errors);
        for want in [
            "channels[0].colour",
            "channels[0].account_sid",
            "channels[0].auth_token",
            "channels[0].from",
            "channels[0].messaging_service_sid",
            "channels[0].api_base",
            "channels[0].timeout_secs",
            "channels[0].status_callback",
            "channels[0].media_hosts[1]",
            "channels[0].media_hosts[2]",
        ] {
            assert!(p.contains(&want), "missing {want} in {errors:?}");
        }
        assert!(TwilioSettings::parse(&t, "channels[0]").is_err());
    }

    #[test]
    fn required_keys_and_sender_exclusivity() {
        let errors = validate(&Table::new(), "channels[2]");
        let p = paths(&errors);
        assert!(p.contains(&"channels[2].account_sid"), "{errors:?}");
        assert!(p.contains(&"channels[2].auth_token"), "{errors:?}");
        assert!(p.contains(&"channels[2].from"), "{errors:?}");

        let both = table(
            r#"
account_sid = "AC1"
auth_token = "x"
from = "+14155550100"
messaging_service_sid = "MG1"
"#,
        );
        let errors = validate(&both, "channels[0]");
        assert_eq!(paths(&errors), vec!["channels[0].messaging_service_sid"]);

        let empty_token =
            table("account_sid = \"AC1\"\nauth_token = \" \"\nfrom = \"+14155550100\"");
        assert_eq!(paths(&validate(&empty_token, "c")), vec!["c.auth_token"]);
    }

    #[test]
    fn e164_rules() {
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+1415-555"));
    }
}
