//! Outgoing webhooks: a tenant's events, POSTed to the endpoints its configuration lists,
//! signed, in order, at least once.
//!
//! The durable event log (`events`, written in the transaction of each change) is the
//! source; each endpoint keeps a cursor into it (the last event delivered). The [`Relay`]
//! claims an endpoint that owes events (a lease, `SKIP LOCKED` on PostgreSQL, so one replica
//! delivers to an endpoint at a time), POSTs the events after its cursor one by one, and moves
//! the cursor only after a 2xx. A failure keeps the event at the head (order is preserved; it
//! is never skipped) and schedules a retry with exponential backoff and jitter (never sooner
//! than the endpoint's `Retry-After`); after
//! `webhooks.disable_after` consecutive failures the endpoint is disabled until an admin
//! re-enables it. The relay wakes when the event hub signals new events, not only on a timer.
//!
//! - [`sign`]: the `Switchboard-Signature` scheme, and a reference verifier;
//! - [`filter`]: which event types an endpoint receives;
//! - [`deliver`]: one signed HTTP attempt;
//! - [`relay`]: the delivery loop.

pub mod deliver;
pub mod filter;
pub mod relay;
pub mod sign;

pub use deliver::Outcome;
pub use filter::EventFilter;
pub use relay::Relay;

use crate::domain::model::now_millis;
use crate::infra::config::{ConfigError, Secret, WebhookEndpointConfig, WebhooksConfig};
use crate::store::{EventRow, Store, StoreError, WebhookAttempt, WebhookEndpointRecord};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The event type of a test send.
pub const TEST_EVENT: &str = "webhook.test";

/// One configured endpoint, with what delivery needs (the secret never leaves this process).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub tenant: String,
    pub id: String,
    pub url: String,
    pub secret: Secret,
    pub filter: EventFilter,
    /// The configured patterns, as stored and shown.
    pub events: Vec<String>,
}

/// The configured endpoints and delivery settings, shared by the relay and the API.
pub struct Webhooks {
    pub settings: WebhooksConfig,
    endpoints: HashMap<(String, String), Endpoint>,
    /// Built on first use: a process without endpoints never needs one.
    http: OnceLock<Result<reqwest::Client, String>>,
    /// Wakes the relay (an endpoint was re-enabled, a worker finished with work left).
    wake: Notify,
}

impl Webhooks {
    /// From validated configuration (see [`check_endpoints`]). An endpoint whose filter does
    /// not parse (impossible after validation) receives every event.
    pub fn new(
        tenants: &[crate::infra::config::TenantConfig],
        settings: &WebhooksConfig,
    ) -> Arc<Self> {
        let mut endpoints = HashMap::new();
        for t in tenants {
            for w in &t.webhooks {
                let filter =
                    EventFilter::parse(w.events.as_deref()).unwrap_or_else(|_| EventFilter::all());
                endpoints.insert(
                    (t.id.clone(), w.id.clone()),
                    Endpoint {
                        tenant: t.id.clone(),
                        id: w.id.clone(),
                        url: w.url.clone(),
                        secret: w.secret.clone(),
                        filter,
                        events: w.events.clone().unwrap_or_default(),
                    },
                );
            }
        }
        Arc::new(Self {
            settings: settings.clone(),
            endpoints,
            http: OnceLock::new(),
            wake: Notify::new(),
        })
    }

    /// No endpoints (tests, tools).
    pub fn none() -> Arc<Self> {
        Self::new(&[], &WebhooksConfig::default())
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn endpoint(&self, tenant: &str, id: &str) -> Option<&Endpoint> {
        self.endpoints.get(&(tenant.to_string(), id.to_string()))
    }

    /// What the store records (no secrets), sorted for a stable order.
    pub fn records(&self) -> Vec<WebhookEndpointRecord> {
        let mut out: Vec<WebhookEndpointRecord> = self
            .endpoints
            .values()
            .map(|e| WebhookEndpointRecord {
                tenant_id: e.tenant.clone(),
                id: e.id.clone(),
                url: e.url.clone(),
                events: e.events.clone(),
            })
            .collect();
        out.sort_by(|a, b| (&a.tenant_id, &a.id).cmp(&(&b.tenant_id, &b.id)));
        out
    }

    /// Tells the relay to look for work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs.max(1))
    }

    /// The HTTP client: no redirects (a 3xx is a failure: a POST must not turn into a GET
    /// elsewhere), a connect timeout, and our user agent.
    pub fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(Duration::from_secs(self.settings.timeout_secs.clamp(1, 10)))
                    .build()
                    .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Sends a signed `webhook.test` event to an endpoint of the tenant now, logs the attempt
    /// (kind `test`; failures do not count towards disabling) and returns the outcome.
    /// NotFound when the tenant has no such configured endpoint.
    pub async fn send_test(
        &self,
        store: &dyn Store,
        tenant: &str,
        id: &str,
    ) -> Result<Outcome, StoreError> {
        let view = store.get_webhook_endpoint(tenant, id).await?;
        let endpoint = self.endpoint(tenant, id).ok_or(StoreError::NotFound)?;
        let now = now_millis();
        let event = EventRow {
            seq: 0,
            kind: TEST_EVENT.to_string(),
            payload: sqlx::types::Json(serde_json::json!({
                "webhook_id": id,
                "message": "a test event sent from the Switchboard API",
                "cursor": view.cursor,
            })),
            created_at: now,
        };
        let outcome = match self.http() {
            Ok(http) => {
                deliver::post(
                    http,
                    &endpoint.url,
                    &endpoint.secret,
                    &event,
                    self.timeout(),
                )
                .await
            }
            Err(e) => Outcome {
                status: None,
                retry_after_ms: None,
                duration_ms: 0,
                error: Some(e),
            },
        };
        store
            .record_webhook_delivery(&WebhookAttempt {
                tenant_id: tenant.to_string(),
                endpoint_id: id.to_string(),
                kind: "test",
                event_seq: 0,
                event_type: TEST_EVENT.to_string(),
                attempt: 1,
                status_code: outcome.status.map(i64::from),
                error: outcome.error.clone(),
                duration_ms: outcome.duration_ms,
                at: now_millis(),
            })
            .await?;
        Ok(outcome)
    }
}

/// Checks the `[webhooks]` section.
pub fn check_settings(w: &WebhooksConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, key: &str, message: &str| {
        if !ok {
            errors.push(ConfigError::new(format!("webhooks.{key}"), message));
        }
    };
    check(w.disable_after >= 1, "disable_after", "must be at least 1");
    check(
        (1..=300).contains(&w.timeout_secs),
        "timeout_secs",
        "must be from 1 to 300",
    );
    check(w.base_delay_ms >= 1, "base_delay_ms", "must be at least 1");
    check(
        w.max_delay_ms >= w.base_delay_ms,
        "max_delay_ms",
        "must be at least base_delay_ms",
    );
    check(
        w.log_retention_hours >= 1,
        "log_retention_hours",
        "must be at least 1",
    );
    check(
        w.lease_secs > w.timeout_secs,
        "lease_secs",
        "must be more than timeout_secs (a delivery must end within its lease)",
    );
    check(
        (1..=64).contains(&w.concurrency),
        "concurrency",
        "must be from 1 to 64",
    );
    errors
}

/// Checks a tenant's `[[tenants.webhooks]]` entries; `path` is the tenant's (`tenants[0]`).
/// Messages never include a secret.
pub fn check_endpoints(endpoints: &[WebhookEndpointConfig], path: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, w) in endpoints.iter().enumerate() {
        let at = |key: &str| format!("{path}.webhooks[{i}].{key}");
        let id_ok = !w.id.is_empty()
            && w.id.len() <= 64
            && w.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            errors.push(ConfigError::new(
                at("id"),
                "must be 1-64 characters of A-Z, a-z, 0-9, - and _",
            ));
        } else if !seen.insert(w.id.as_str()) {
            errors.push(ConfigError::new(
                at("id"),
                format!("duplicate webhook id {:?} in this tenant", w.id),
            ));
        }
        match url::Url::parse(&w.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => errors.push(ConfigError::new(at("url"), "must be an http(s) URL")),
            Err(e) => errors.push(ConfigError::new(at("url"), format!("not a URL: {e}"))),
        }
        if w.secret.expose().is_empty() {
            errors.push(ConfigError::new(
                at("secret"),
                "must not be empty (use ${ENV_VAR})",
            ));
        }
        if let Err((index, message)) = EventFilter::parse(w.events.as_deref()) {
            let key = match index {
                Some(n) => format!("events[{n}]"),
                None => "events".to_string(),
            };
            errors.push(ConfigError::new(at(&key), message));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use crate::contract::registry::Registry;
    use crate::infra::config::{Validators, load_str};

    /// No channel kinds; this module's own checks, as the binary wires them.
    fn no_channels() -> Validators<'static> {
        static NONE: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        Validators {
            webhooks: super::check_settings,
            endpoints: super::check_endpoints,
            ..Validators::channels_only(NONE.get_or_init(Registry::default))
        }
    }

    fn env() -> Vec<(String, String)> {
        vec![("HOOK_SECRET".to_string(), "s3cret-value".to_string())]
    }

    #[test]
    fn webhooks_load_with_defaults_and_env_secrets() {
        let text = r#"
[[tenants]]
id = "acme"
[[tenants.webhooks]]
id = "crm"
url = "https://crm.example/hooks"
secret = "${HOOK_SECRET}"
[[tenants.webhooks]]
id = "bi"
url = "http://127.0.0.1:9000/in"
secret = "x"
events = ["message.*", "conversation.created"]
[[tenants]]
id = "other"
"#;
        let c = load_str(text, &env(), no_channels()).expect("loads");
        assert_eq!(c.webhooks.disable_after, 50);
        assert_eq!(c.webhooks.timeout_secs, 10);
        let hooks = &c.tenants[0].webhooks;
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].secret.expose(), "s3cret-value");
        assert_eq!(hooks[0].events, None);
        assert_eq!(
            hooks[1].events.as_deref(),
            Some(&["message.*".to_string(), "conversation.created".to_string()][..])
        );
        assert!(c.tenants[1].webhooks.is_empty());
        // Secrets never print.
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret-value"), "{debug}");
        let w = super::Webhooks::new(&c.tenants, &c.webhooks);
        let records = w.records();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].id.as_str(), records[1].id.as_str()),
            ("bi", "crm")
        );
        assert!(w.endpoint("acme", "crm").is_some());
        assert!(w.endpoint("other", "crm").is_none());
    }

    #[test]
    fn webhook_errors_are_reported_together_with_paths() {
        let text = r#"
[webhooks]
disable_after = 0
timeout_secs = 30
lease_secs = 20
colour = "red"
[[tenants]]
id = "acme"
[[tenants.webhooks]]
id = "bad id"
url = "ftp://example.com/x"
secret = ""
events = ["message.*", "Nope"]
[[tenants.webhooks]]
id = "dup"
url = "https://a.example"
secret = "${HOOK_SECRET}"
[[tenants.webhooks]]
id = "dup"
url = "not a url"
secret = "${HOOK_SECRET}"
events = []
[[tenants.webhooks]]
id = "extra"
url = "https://a.example"
secret = "${HOOK_SECRET}"
verify_tls = false
"#;
        let errs = load_str(text, &env(), no_channels()).expect_err("invalid");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        // An unknown key in [webhooks] fails the section; unknown keys of an endpoint fail
        // its tenant. Everything else is reported as well.
        for want in ["webhooks.colour", "tenants[0].webhooks[3].verify_tls"] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        let text = text
            .replace("colour = \"red\"\n", "")
            .replace("verify_tls = false\n", "");
        let errs = load_str(&text, &env(), no_channels()).expect_err("invalid");
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "webhooks.disable_after",
            "webhooks.lease_secs",
            "tenants[0].webhooks[0].id",
            "tenants[0].webhooks[0].url",
            "tenants[0].webhooks[0].secret",
            "tenants[0].webhooks[0].events[1]",
            "tenants[0].webhooks[2].id",
            "tenants[0].webhooks[2].url",
            "tenants[0].webhooks[2].events",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        assert!(!errs.to_string().contains("s3cret-value"));
    }
}
