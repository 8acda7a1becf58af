//! Configuration: one TOML file over embedded defaults, `${ENV}` placeholders for secrets,
//! `SWITCHBOARD_SECTION__KEY` environment overrides, unknown keys rejected, and every error
//! reported at once with the path of the key it concerns.
//!
//! Channel settings are provider-specific, so core keeps them as a TOML table and the
//! connector that owns the channel type parses them (with `deny_unknown_fields`); the loader
//! takes a validator callback so those errors join the same report.

mod load;
mod secret;

pub use load::{ConfigError, ConfigErrors, EnvSource, load, load_str};
pub use secret::Secret;

use crate::model::ChannelKind;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The embedded defaults; every key is documented there.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The whole configuration, after defaults, overrides and placeholders.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub blobs: BlobsConfig,
    pub media: MediaConfig,
    pub outbox: OutboxConfig,
    pub events: EventsConfig,
    pub tenants: Vec<TenantConfig>,
    pub channels: Vec<ChannelConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL providers call; webhook signatures are checked against it. Empty means
    /// `http://{listen}`.
    pub public_url: String,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    pub shutdown_grace_secs: u64,
}

impl ServerConfig {
    /// The public base URL without a trailing slash.
    pub fn public_base(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://...`. May hold a password, hence a secret.
    pub url: Secret,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub max_bytes: u64,
    pub allowed_types: Vec<String>,
    pub timeout_secs: u64,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Hours the event log keeps events for resuming clients.
    pub retention_hours: u64,
    /// Seconds between heartbeats on idle live connections.
    pub heartbeat_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A channel: the common part core understands, and the provider settings its connector parses.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub id: String,
    pub tenant: String,
    pub kind: ChannelKind,
    /// Everything else in the `[[channels]]` entry, for the connector.
    pub settings: toml::Table,
}
