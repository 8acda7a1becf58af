//! Channel settings of a WhatsApp Cloud API channel (`type = "whatsapp"` in `[[channels]]`).
//!
//! Core hands the connector the channel's table (without `id`, `tenant` and `type`) and the
//! path of the entry (`channels[0]`); [`validate`] reports every problem at once, each with
//! its full path, and [`WhatsappSettings::parse`] turns a valid table into settings.

use serde::Deserialize;
use switchboard_core::infra::config::settings::{
    check_fields, deserialize_settings, key_path as join, secs,
};
use switchboard_core::infra::config::{ConfigError, Secret};
use toml::{Table, Value};

/// Default Graph API base URL.
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.facebook.com";
/// Default Graph API version.
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";
/// Default per-request timeout for Graph API calls and the health check, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 15;
/// Default timeout for one media transfer (download or upload), in seconds.
pub const DEFAULT_MEDIA_TIMEOUT_SECS: u64 = 60;

/// The settings of one WhatsApp Cloud API channel: one business phone number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappSettings {
    /// The business phone number's id (digits), the sender of every message.
    pub phone_number_id: String,
    /// A system-user access token with `whatsapp_business_messaging`.
    pub access_token: Secret,
    /// The Meta app's secret: the key of `X-Hub-Signature-256`.
    pub app_secret: Secret,
    /// The token Meta echoes in the webhook verification handshake.
    pub verify_token: Secret,
    /// The Graph API base URL (a local fake in tests), without a trailing slash.
    #[serde(default = "default_graph_base")]
    pub graph_base: String,
    /// The Graph API version, e.g. `v21.0`.
    #[serde(default = "default_graph_version")]
    pub graph_version: String,
    /// Per-request timeout for Graph API calls and the health check, in seconds.
    #[serde(default = "default_timeout_secs", deserialize_with = "secs")]
    pub timeout_secs: u64,
    /// Timeout for one media transfer (inbound download, outbound download or upload).
    #[serde(default = "default_media_timeout_secs", deserialize_with = "secs")]
    pub media_timeout_secs: u64,
    /// Send read receipts (blue ticks) when staff read a conversation.
    #[serde(default = "default_true")]
    pub read_receipts: bool,
    /// The WhatsApp Business Account id (digits); informational.
    #[serde(default)]
    pub business_account_id: Option<String>,
}

fn default_graph_base() -> String {
    DEFAULT_GRAPH_BASE.to_string()
}

fn default_graph_version() -> String {
    DEFAULT_GRAPH_VERSION.to_string()
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_media_timeout_secs() -> u64 {
    DEFAULT_MEDIA_TIMEOUT_SECS
}

fn default_true() -> bool {
    true
}

impl WhatsappSettings {
    /// Validates and parses a channel table; every error carries its full path.
    pub fn parse(settings: &Table, path: &str) -> Result<Self, Vec<ConfigError>> {
        let errors = validate(settings, path);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut parsed: Self = deserialize_settings(settings, path)?;
        parsed.graph_base = parsed.graph_base.trim_end_matches('/').to_string();
        Ok(parsed)
    }

    /// `{graph_base}/{graph_version}`: the prefix of every Graph API URL.
    pub fn api_root(&self) -> String {
        format!("{}/{}", self.graph_base, self.graph_version)
    }
}

/// Checks a WhatsApp channel table and returns every problem found (empty when valid).
pub fn validate(settings: &Table, path: &str) -> Vec<ConfigError> {
    let mut errors = check_fields::<WhatsappSettings>(settings, path, "whatsapp");
    let text = |key: &str| settings.get(key).and_then(Value::as_str);

    for key in [
        "phone_number_id",
        "access_token",
        "app_secret",
        "verify_token",
    ] {
        if !settings.contains_key(key) {
            errors.push(ConfigError::new(join(path, key), "missing"));
        } else if text(key).is_some_and(|t| t.trim().is_empty()) {
            errors.push(ConfigError::new(join(path, key), "must not be empty"));
        }
    }
    for key in ["phone_number_id", "business_account_id"] {
        if let Some(id) = text(key)
            && !id.trim().is_empty()
            && !is_graph_id(id)
        {
            errors.push(ConfigError::new(
                join(path, key),
                "must be a Graph API id (digits only)",
            ));
        }
    }
    if let Some(base) = text("graph_base") {
        match url::Url::parse(base) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none() => {}
            Ok(_) => errors.push(ConfigError::new(
                join(path, "graph_base"),
                "must be an http(s) URL without query or fragment",
            )),
            Err(e) => errors.push(ConfigError::new(join(path, "graph_base"), e.to_string())),
        }
    }
    if let Some(version) = text("graph_version")
        && !is_version(version)
    {
        errors.push(ConfigError::new(
            join(path, "graph_version"),
            "must be a Graph API version such as v21.0",
        ));
    }
    errors
}

/// Digits only, 1 to 32 of them: phone-number, account and media ids.
pub(crate) fn is_graph_id(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `v` then `major.minor`, e.g. `v21.0`.
fn is_version(s: &str) -> bool {
    s.strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            [major, minor]
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
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

    const MINIMAL: &str = r#"
phone_number_id = "106540352242922"
access_token = "EAAG-token"
app_secret = "app-secret"
verify_token = "verify-me"
"#;

    #[test]
    fn minimal_settings_parse_with_defaults() {
        let s = WhatsappSettings::parse(&table(MINIMAL), "channels[0]").expect("valid");
        assert_eq!(s.graph_base, DEFAULT_GRAPH_BASE);
        assert_eq!(s.graph_version, "v21.0");
        assert_eq!(s.api_root(), "https://graph.facebook.com/v21.0");
        assert_eq!(s.timeout_secs, 15);
        assert_eq!(s.media_timeout_secs, 60);
        assert!(s.read_receipts);
        assert_eq!(s.business_account_id, None);
        assert_eq!(s.access_token.expose(), "EAAG-token");
        let debug = format!("{s:?}");
        for secret in ["EAAG-token", "app-secret", "verify-me"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }

    #[test]
    fn optional_settings_are_honoured() {
        let mut t = table(MINIMAL);
        let extra = table(
            r#"
graph_base = "http://127.0.0.1:9999/"
graph_version = "v19.0"
timeout_secs = 5
media_timeout_secs = 120
read_receipts = false
business_account_id = "102290129340398"
"#,
        );
        t.extend(extra);
        let s = WhatsappSettings::parse(&t, "channels[1]").expect("valid");
        assert_eq!(s.api_root(), "http://127.0.0.1:9999/v19.0");
        assert_eq!(s.timeout_secs, 5);
        assert_eq!(s.media_timeout_secs, 120);
        assert!(!s.read_receipts);
        assert_eq!(s.business_account_id.as_deref(), Some("102290129340398"));
    }

    #[test]
    fn every_error_is_reported_with_its_full_path() {
        let t = table(
            r#"
phone_number_id = "+1 650 555"
access_token = 5
app_secret = ""
graph_base = "ftp://example.com"
graph_version = "21"
timeout_secs = 0
media_timeout_secs = 99999
read_receipts = "yes"
business_account_id = "WABA"
colour = "blue"
"#,
        );
        let errors = validate(&t, "channels[0]");
        let p = paths(&errors);
        for want in [
            "channels[0].colour",
            "channels[0].phone_number_id",
            "channels[0].access_token",
            "channels[0].app_secret",
            "channels[0].verify_token",
            "channels[0].graph_base",
            "channels[0].graph_version",
            "channels[0].timeout_secs",
            "channels[0].media_timeout_secs",
            "channels[0].read_receipts",
            "channels[0].business_account_id",
        ] {
            assert!(p.contains(&want), "missing {want} in {errors:?}");
        }
        assert!(WhatsappSettings::parse(&t, "channels[0]").is_err());
    }

    #[test]
    fn required_keys_are_reported_missing() {
        let errors = validate(&Table::new(), "channels[2]");
        let missing: Vec<&str> = errors
            .iter()
            .filter(|e| e.message == "missing")
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            missing,
            vec![
                "channels[2].phone_number_id",
                "channels[2].access_token",
                "channels[2].app_secret",
                "channels[2].verify_token",
            ]
        );
    }

    #[test]
    fn versions_and_ids() {
        for ok in ["v21.0", "v9.1", "v100.12"] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in ["21.0", "v21", "v.0", "v21.", "v21.0.1", "vx.0", ""] {
            assert!(!is_version(bad), "{bad}");
        }
        assert!(is_graph_id("106540352242922"));
        assert!(!is_graph_id(""));
        assert!(!is_graph_id("12a"));
        assert!(!is_graph_id("../x"));
    }
}
