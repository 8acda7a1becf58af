//! Shared setup for the API tests: a fresh store with two tenants, tokens, the real router
//! driven by `oneshot`, and builders for seeded messages.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_core::api::{AppState, router};
use switchboard_core::contract::connector::{Connector, Connectors};
use switchboard_core::contract::ingest_types::{ChannelRef, IngestOutcome};
use switchboard_core::contract::journal::JournalEntry;
use switchboard_core::contract::registry::{ConnectorType, RefusalCode, Registry, Threading};
use switchboard_core::domain::model::{
    ChannelKind, FetchedMedia, Identity, IdentityKind, InboundMessage, MediaLimits,
    OutboundMessage, Refusal, ReplyCheck, SendError, SendReceipt, new_id,
};
use switchboard_core::infra::auth::tokens;
use switchboard_core::infra::blob::BlobStore;
use switchboard_core::store::{self, ChannelRecord, NewToken, Role, Store, TenantRecord};
use tokio::sync::Notify;
use tower::ServiceExt;

pub const MAX_BODY: usize = 16 * 1024;
/// The key of the signed media URLs the test router checks.
pub const SIGNING_KEY: &[u8] = b"the test key of signed media URLs, 32+ bytes";

fn no_settings(_: &toml::Table, _: &str) -> Vec<switchboard_core::infra::config::ConfigError> {
    Vec::new()
}

fn not_built(
    id: String,
    _: &toml::Table,
    _: switchboard_core::contract::connector::ConnectorContext,
) -> Result<Arc<dyn Connector>, Vec<switchboard_core::infra::config::ConfigError>> {
    Err(vec![switchboard_core::infra::config::ConfigError::new(
        id,
        "API tests use TestConnector",
    )])
}

/// Connector types as the real connectors declare them (kind, reach, threading, refusal
/// codes), so the API's rules are tested without depending on the connector crates.
pub fn test_registry() -> Registry {
    const TYPES: &[ConnectorType] = &[
        ConnectorType {
            kind: ChannelKind::new("email"),
            reaches: &[IdentityKind::EMAIL],
            threading: Threading::MailHeaders,
            refusal_codes: &[],
            validate: no_settings,
            build: not_built,
        },
        ConnectorType {
            kind: ChannelKind::new("twilio"),
            reaches: &[IdentityKind::PHONE, IdentityKind::WHATSAPP],
            threading: Threading::ByContact,
            refusal_codes: &[],
            validate: no_settings,
            build: not_built,
        },
        ConnectorType {
            kind: ChannelKind::new("whatsapp"),
            reaches: &[IdentityKind::WHATSAPP, IdentityKind::PHONE],
            threading: Threading::ByContact,
            refusal_codes: &[RefusalCode {
                code: "whatsapp_window_closed",
                meaning: "the 24-hour window is closed",
            }],
            validate: no_settings,
            build: not_built,
        },
    ];
    Registry::new(TYPES)
}

/// A connector standing in for a provider in API tests: it never sends (the API only
/// queues), and, when `window_ms` is set, enforces a customer-service window the way the
/// WhatsApp connector does, so the API's mapping of refusals can be tested.
pub struct TestConnector {
    pub id: String,
    pub kind: ChannelKind,
    pub window_ms: Option<i64>,
}

#[async_trait::async_trait]
impl Connector for TestConnector {
    fn channel_id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> ChannelKind {
        self.kind
    }
    fn address(&self) -> Option<String> {
        None
    }
    fn check_reply(&self, check: &ReplyCheck) -> Result<(), Refusal> {
        let Some(window) = self.window_ms else {
            return if check.has_template {
                Err(Refusal {
                    code: "template_not_supported",
                    message: "no templates".into(),
                })
            } else {
                Ok(())
            };
        };
        let open = check
            .last_inbound_at
            .is_some_and(|t| check.now - t < window);
        if open || check.has_template {
            Ok(())
        } else {
            Err(Refusal {
                code: "whatsapp_window_closed",
                message: "window closed".into(),
            })
        }
    }
    fn sends_read_receipts(&self) -> bool {
        self.window_ms.is_some()
    }
    async fn send(&self, _: &OutboundMessage) -> Result<SendReceipt, SendError> {
        Err(SendError::Permanent {
            code: "test".into(),
            message: "API tests do not send".into(),
        })
    }
    async fn fetch_media(&self, _: &str, _: &MediaLimits) -> Result<FetchedMedia, SendError> {
        Err(SendError::Permanent {
            code: "test".into(),
            message: "API tests do not fetch".into(),
        })
    }
}

fn test_connectors() -> Arc<Connectors> {
    let mut map: Connectors = Connectors::new();
    for (id, kind, window_ms) in [
        ("acme-sms", ChannelKind::new("twilio"), None),
        ("globex-sms", ChannelKind::new("twilio"), None),
        (
            "acme-wa",
            ChannelKind::new("whatsapp"),
            Some(24 * 3600 * 1000),
        ),
    ] {
        map.insert(
            id.to_string(),
            Arc::new(TestConnector {
                id: id.into(),
                kind,
                window_ms,
            }),
        );
    }
    Arc::new(map)
}

pub struct TestApp {
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    pub jobs: Arc<Notify>,
    /// JWT verification, when a test turns it on.
    pub jwt: Option<Arc<switchboard_core::infra::auth::jwt::JwtVerifier>>,
    /// acme, subject "alice", admin.
    pub admin: String,
    /// acme, subject "bob", agent.
    pub agent: String,
    /// globex, subject "gina", admin.
    pub other: String,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub body: Value,
}

impl TestResponse {
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    /// Asserts the status and our error shape with the given code.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"].is_string(),
            "body: {}",
            self.body
        );
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/db.sqlite", dir.path().display());
        let store = store::open(&url, 4).await.expect("open store");
        store.migrate().await.expect("migrate");
        let tenants = ["acme", "globex"].map(|id| TenantRecord {
            id: id.into(),
            name: None,
        });
        let channels = [
            ("acme-sms", "acme", "twilio", "+14155550100"),
            ("globex-sms", "globex", "twilio", "+14155550200"),
            ("acme-wa", "acme", "whatsapp", "15550100"),
        ]
        .map(|(id, tenant, kind, address)| ChannelRecord {
            id: id.into(),
            tenant_id: tenant.into(),
            kind: kind.into(),
            address: Some(address.into()),
        });
        store
            .sync_tenants_and_channels(&tenants, &channels)
            .await
            .expect("sync");
        let blobs = BlobStore::open(dir.path().join("blobs"))
            .await
            .expect("blobs");
        let mut app = Self {
            _dir: dir,
            store,
            blobs,
            jobs: Arc::new(Notify::new()),
            jwt: None,
            admin: String::new(),
            agent: String::new(),
            other: String::new(),
        };
        app.admin = app.token("acme", "alice", Role::Admin).await;
        app.agent = app.token("acme", "bob", Role::Agent).await;
        app.other = app.token("globex", "gina", Role::Admin).await;
        app
    }

    pub async fn token(&self, tenant: &str, name: &str, role: Role) -> String {
        let (token, hash) = tokens::generate();
        let new = NewToken {
            id: new_id(),
            tenant_id: tenant.into(),
            name: name.into(),
            role,
            hash,
        };
        self.store.create_token(&new).await.expect("create token");
        token
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let state = AppState {
            store: self.store.clone(),
            blobs: self.blobs.clone(),
            jobs: self.jobs.clone(),
            connectors: test_connectors(),
            events: switchboard_core::infra::event_hub::EventHub::new(
                self.store.clone(),
                &switchboard_core::infra::config::EventsConfig {
                    retention_hours: 1,
                    heartbeat_secs: 15,
                },
            ),
            jwt: self.jwt.clone(),
            tenants: Arc::new(["acme", "globex"].map(String::from).into_iter().collect()),
            webhooks: switchboard_core::workers::outgoing_webhooks::Webhooks::none(),
            registry: Arc::new(test_registry()),
            access: Default::default(),
            urls: Arc::new(switchboard_core::infra::signed_url::UrlSigner::new(
                SIGNING_KEY,
                3600,
            )),
        };
        let response = router(state, MAX_BODY)
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            bytes,
            body,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> TestResponse {
        self.call("GET", uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> TestResponse {
        self.call("POST", uri, token, Some(body)).await
    }

    /// Ingests a message on `channel` (of `tenant`); returns (message id, conversation id).
    pub async fn ingest(
        &self,
        tenant: &str,
        channel: &str,
        msg: InboundMessage,
    ) -> (String, String) {
        let journal = JournalEntry::new(
            msg.provider_message_id.clone(),
            "message",
            "application/json",
            serde_json::to_vec(&msg).expect("json"),
        );
        let ch = ChannelRef {
            tenant_id: tenant.into(),
            channel_id: channel.into(),
            threading: switchboard_core::contract::registry::Threading::ByContact,
        };
        match self
            .store
            .ingest_message(&ch, &journal, &msg)
            .await
            .expect("ingest")
        {
            IngestOutcome::Stored {
                message_id,
                conversation_id,
                ..
            } => (message_id, conversation_id),
            other => panic!("not stored: {other:?}"),
        }
    }

    /// An SMS to acme from `from`; returns the conversation id.
    pub async fn acme_sms(&self, from: &str, text: &str) -> String {
        self.ingest("acme", "acme-sms", sms(from, text)).await.1
    }

    pub async fn outbox_pending(&self, tenant: &str) -> i64 {
        let channels = self.store.list_channels(tenant).await.expect("channels");
        channels.iter().map(|c| c.outbox_pending).sum()
    }
}

pub fn sms(from: &str, text: &str) -> InboundMessage {
    InboundMessage {
        provider_message_id: format!("SM{}", new_id()),
        from: Identity {
            kind: IdentityKind::PHONE,
            value: from.into(),
        },
        from_name: None,
        to: vec!["+14155550100".into()],
        cc: vec![],
        subject: None,
        text: Some(text.into()),
        html: None,
        attachments: vec![],
        reply_to: vec![],
        thread_token: None,
        consent: None,
        flags: vec![],
        sent_at: None,
        external: json!({}),
    }
}

pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}
