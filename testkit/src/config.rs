//! The daemon's configuration for end-to-end tests, generated into the test's directory.
//! Two shapes: the messaging one (tenants `acme` and `other`; a Twilio channel `acme-sms`
//! and a WhatsApp channel `acme-wa` pointed at fake providers) and the email one (tenant
//! `acme` and the test's own `[[channels]]`). Both have a fast outbox so retries happen
//! within a test's patience. More TOML can be added to a tenant (its webhooks) or at the
//! end (sections, more channels).

use crate::graph::{ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN};
use crate::twilio::{ACCOUNT_SID, OUR_NUMBER};
use std::path::{Path, PathBuf};

/// The environment variable the config reads the Twilio token from (so tests can check that
/// secrets come from the environment and never reach logs).
pub const TOKEN_ENV: &str = "E2E_TWILIO_TOKEN";

/// The unreachable address used for providers a test does not talk to.
pub const NOWHERE: &str = "http://127.0.0.1:9";

#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    database_url: Option<String>,
    twilio_base: String,
    graph_base: String,
    email_channels: Option<String>,
    private_media: bool,
    tenant_toml: Vec<(String, String)>,
    extra_toml: Vec<String>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self {
            database_url: None,
            twilio_base: NOWHERE.into(),
            graph_base: NOWHERE.into(),
            email_channels: None,
            private_media: false,
            tenant_toml: Vec::new(),
            extra_toml: Vec::new(),
        }
    }
}

/// The SQLite database URL of a test directory (the default database).
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/switchboard.db", dir.display())
}

impl ConfigBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The database (default: SQLite in the test directory).
    pub fn database(mut self, url: &str) -> Self {
        self.database_url = Some(url.into());
        self
    }

    pub fn twilio(mut self, base: &str) -> Self {
        self.twilio_base = base.into();
        self
    }

    pub fn graph(mut self, base: &str) -> Self {
        self.graph_base = base.into();
        self
    }

    /// `[media] allow_private_networks = true` (messaging shape): inbound media from the fake
    /// providers on loopback is fetched. Off by default, as in production.
    pub fn private_media(mut self) -> Self {
        self.private_media = true;
        self
    }

    /// The email shape: tenant `acme` with these `[[channels]]`, no messaging channels.
    pub fn email(mut self, channels: &str) -> Self {
        self.email_channels = Some(channels.into());
        self
    }

    /// TOML for one tenant (e.g. `[[tenants.webhooks]]`), placed right after its `id` line
    /// so the tables it opens belong to that tenant.
    pub fn tenant_toml(mut self, tenant: &str, toml: &str) -> Self {
        self.tenant_toml.push((tenant.into(), toml.into()));
        self
    }

    /// Top-level TOML appended at the end (sections, more channels).
    pub fn toml(mut self, toml: &str) -> Self {
        self.extra_toml.push(toml.into());
        self
    }

    /// The configured database, or SQLite in `dir`.
    pub fn database_url(&self, dir: &Path) -> String {
        self.database_url.clone().unwrap_or_else(|| sqlite_url(dir))
    }

    /// Writes `switchboard.toml` into `dir` and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let db_url = self.database_url(dir);
        let mut text = match &self.email_channels {
            Some(channels) => email_config(dir, &db_url, channels),
            None => messaging_config(dir, &db_url, self),
        };
        for (tenant, toml) in &self.tenant_toml {
            let line = format!("[[tenants]]\nid = \"{tenant}\"\n");
            let at = text.find(&line).expect("tenant in config") + line.len();
            text.insert_str(at, &format!("{}\n", toml.trim_start_matches('\n')));
        }
        for toml in &self.extra_toml {
            text.push('\n');
            text.push_str(toml);
        }
        let path = dir.join("switchboard.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }
}

/// What both shapes share: the listener (with `server_extra` lines), the database, blobs in
/// the test directory and a fast outbox.
fn common_config(dir: &Path, db_url: &str, server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}
[database]
url = "{db_url}"

[blobs]
path = "{dir}/blobs"

[outbox]
base_delay_ms = 50
max_delay_ms = 200
poll_interval_ms = 50
max_attempts = 3
"#,
        dir = dir.display()
    )
}

fn messaging_config(dir: &Path, db_url: &str, b: &ConfigBuilder) -> String {
    let limits = "max_body_bytes = 65536\nmax_webhook_body_bytes = 65536\n";
    let (twilio_base, graph_base, private) = (&b.twilio_base, &b.graph_base, b.private_media);
    common_config(dir, db_url, limits)
        + &format!(
            r#"
[media]
max_bytes = 1048576
allow_private_networks = {private}

[[tenants]]
id = "acme"

[[tenants]]
id = "other"

[[channels]]
id = "acme-sms"
tenant = "acme"
type = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "${{{TOKEN_ENV}}}"
from = "{OUR_NUMBER}"
api_base = "{twilio_base}"

[[channels]]
id = "acme-wa"
tenant = "acme"
type = "whatsapp"
phone_number_id = "{PHONE_NUMBER_ID}"
access_token = "{ACCESS_TOKEN}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
graph_base = "{graph_base}"
"#
        )
}

fn email_config(dir: &Path, db_url: &str, channels: &str) -> String {
    common_config(dir, db_url, "") + &format!("\n[[tenants]]\nid = \"acme\"\n\n{channels}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &Path) -> toml::Table {
        std::fs::read_to_string(path)
            .expect("written")
            .parse()
            .expect("valid TOML")
    }

    #[test]
    fn the_messaging_shape_has_both_tenants_and_channels_and_the_added_toml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = ConfigBuilder::new()
            .twilio("http://twilio.test")
            .tenant_toml(
                "acme",
                "[[tenants.webhooks]]\nid = \"all\"\nurl = \"http://r\"",
            )
            .toml("[webhooks]\ndisable_after = 4")
            .write(dir.path());
        let t = parse(&path);
        assert_eq!(t["server"]["max_body_bytes"].as_integer(), Some(65536));
        assert_eq!(
            t["database"]["url"].as_str(),
            Some(sqlite_url(dir.path()).as_str())
        );
        let tenants = t["tenants"].as_array().expect("tenants");
        assert_eq!(tenants[0]["webhooks"][0]["id"].as_str(), Some("all"));
        assert!(tenants[1].get("webhooks").is_none());
        let channels = t["channels"].as_array().expect("channels");
        assert_eq!(channels[0]["api_base"].as_str(), Some("http://twilio.test"));
        assert_eq!(channels[1]["graph_base"].as_str(), Some(NOWHERE));
        assert_eq!(t["webhooks"]["disable_after"].as_integer(), Some(4));
    }

    #[test]
    fn the_email_shape_has_only_the_given_channels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = ConfigBuilder::new()
            .database("postgres://x/y")
            .email("[[channels]]\nid = \"m\"\ntenant = \"acme\"\ntype = \"email\"")
            .write(dir.path());
        let t = parse(&path);
        assert!(t["server"].get("max_body_bytes").is_none());
        assert_eq!(t["database"]["url"].as_str(), Some("postgres://x/y"));
        assert_eq!(t["tenants"].as_array().map(Vec::len), Some(1));
        assert_eq!(t["channels"][0]["id"].as_str(), Some("m"));
        assert_eq!(t["outbox"]["max_attempts"].as_integer(), Some(3));
    }
}
