//! Configuration: one TOML file over embedded defaults, `${ENV}` placeholders for secrets,
//! `SWITCHBOARD_SECTION__KEY` environment overrides, unknown keys rejected, and every error
//! reported at once with the path of the key it concerns.
//!
//! Channel settings are provider-specific, so core keeps them as a TOML table and the
//! connector that owns the channel type parses them (with `deny_unknown_fields`); the loader
//! takes a validator callback so those errors join the same report.

mod checks;
mod load;
mod secret;
pub mod settings;

pub use load::{
    ChannelScope, ChannelTypes, ConfigError, ConfigErrors, EnvSource, Validators, load, load_str,
};
pub use secret::Secret;

use crate::domain::model::ChannelKind;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The embedded defaults; every key is documented there.
pub const DEFAULT_TOML: &str = include_str!("../../../../config/default.toml");

/// The whole configuration, after defaults, overrides and placeholders.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub blobs: BlobsConfig,
    pub media: MediaConfig,
    pub outbox: OutboxConfig,
    pub events: EventsConfig,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub webhooks: WebhooksConfig,
    pub threading: ThreadingConfig,
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
    /// Body cap of provider webhooks (each connector may cap lower).
    pub max_webhook_body_bytes: usize,
    pub log_format: LogFormat,
    pub shutdown_grace_secs: u64,
    /// Seconds between provider health checks of every channel (0: only at start-up).
    pub health_check_secs: u64,
    /// Bearer token `/metrics` requires; empty: `/metrics` is open.
    pub metrics_token: Secret,
    /// Seconds a client has to send a request's headers.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may go without a byte read or written before it is closed.
    pub idle_timeout_secs: u64,
    /// Open connections at most; more get one quick request each (a small reserve) or are
    /// closed at once.
    pub max_connections: usize,
    /// Seconds a request body may take to arrive completely, counted from its headers.
    pub request_body_timeout_secs: u64,
    /// Browser origins (`https://app.example`) allowed to call the API cross-origin, or
    /// `["*"]` for any; empty: no CORS headers at all.
    pub cors_allowed_origins: Vec<String>,
    /// The HMAC key of signed media URLs (at least 32 bytes); empty: a random key per
    /// start (see [`crate::infra::signed_url`]).
    pub url_signing_key: Secret,
    /// Seconds a signed media URL stays valid.
    pub signed_url_ttl_secs: u64,
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
    /// Reply media URLs may name loopback, private and link-local addresses
    /// (see [`crate::infra::public_http`]).
    pub allow_private_networks: bool,
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

/// The REST API's limits (`[api]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub rate_limits: RateLimitsConfig,
}

/// Requests per minute per token (API token id, or JWT tenant and subject), by role;
/// 0 is unlimited.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    pub agent_per_minute: u32,
    pub admin_per_minute: u32,
}

/// Which conversations a tenant's agents see (admins see all).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AgentVisibility {
    /// Every conversation of the tenant.
    #[default]
    All,
    /// Conversations assigned to the agent, and unassigned ones.
    Assigned,
}

impl AgentVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Assigned => "assigned",
        }
    }
}

/// How inbound messages are matched to conversations (see [`crate::domain::thread`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadingConfig {
    /// Email: same contact + normalized subject joins a recent conversation.
    pub subject_matching: bool,
    pub subject_window_days: u64,
    /// A reply to a closed conversation: "reopen" it or start a "new" one.
    pub closed: ClosedPolicy,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClosedPolicy {
    Reopen,
    New,
}

impl ThreadingConfig {
    pub fn policy(&self) -> crate::domain::thread::ThreadingPolicy {
        crate::domain::thread::ThreadingPolicy {
            subject_matching: self.subject_matching,
            subject_window_ms: i64::try_from(self.subject_window_days.saturating_mul(86_400_000))
                .unwrap_or(i64::MAX),
            reopen_closed: self.closed == ClosedPolicy::Reopen,
        }
    }
}

/// JWT bearer tokens, accepted beside API tokens when `jwt_algorithm` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// "" (JWTs off), "HS256", "RS256" or "ES256".
    pub jwt_algorithm: String,
    /// HS256 shared secret.
    pub jwt_secret: Secret,
    /// RS256/ES256 public key (PEM file).
    pub jwt_public_key_file: String,
    /// RS256/ES256 keys as a JWKS file (matched by `kid`).
    pub jwt_jwks_file: String,
    /// Required `iss`, if not empty.
    pub jwt_issuer: String,
    /// Required `aud`, if not empty.
    pub jwt_audience: String,
    /// Claim naming the tenant.
    pub jwt_tenant_claim: String,
    /// Claim naming the role (`admin` or `agent`).
    pub jwt_role_claim: String,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub jwt_leeway_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Outgoing webhooks of the tenant (`[[tenants.webhooks]]`).
    #[serde(default)]
    pub webhooks: Vec<WebhookEndpointConfig>,
    /// Senders whose messages are stored flagged `blocked` (status `spam`, nothing
    /// automatic): exact addresses or numbers, or `@domain` for a domain and its subdomains.
    #[serde(default)]
    pub blocklist: Vec<String>,
    /// Which conversations the tenant's agents see: `all` (default) or `assigned` (theirs
    /// and unassigned ones).
    #[serde(default)]
    pub agent_visibility: AgentVisibility,
}

/// One outgoing webhook endpoint of a tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointConfig {
    /// 1-64 of A-Z a-z 0-9 - _, unique within the tenant; names the endpoint in the API.
    pub id: String,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The HMAC-SHA256 key of `Switchboard-Signature`.
    pub secret: Secret,
    /// Event types and prefixes (`message.*`) to deliver; absent means every event.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// Delivery of outgoing webhooks (`[webhooks]`). `Default` is only a placeholder for a
/// section that failed to parse (the load then fails); the defaults are in `default.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Consecutive failed deliveries after which an endpoint is disabled.
    pub disable_after: u32,
    /// Seconds one delivery may take.
    pub timeout_secs: u64,
    /// First retry delay in milliseconds; doubles each failure, with jitter.
    pub base_delay_ms: u64,
    /// Longest retry delay in milliseconds.
    pub max_delay_ms: u64,
    /// Hours the delivery log keeps its entries.
    pub log_retention_hours: u64,
    /// Seconds a claimed endpoint stays reserved to its worker (renewed on every delivery).
    pub lease_secs: u64,
    /// Endpoints delivered to at the same time by this process.
    pub concurrency: usize,
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
