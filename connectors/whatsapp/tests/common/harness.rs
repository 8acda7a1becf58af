//! The connector under test and how to talk to it: settings, a context bound to the real
//! store, fixtures, signed requests and the router's answers.

use super::{CHANNEL, PNID, TENANT, TestStore};
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use std::path::Path;
use std::sync::Arc;
use switchboard_core::connector::{Connector, ConnectorContext};
use switchboard_core::ingest::Ingest;
use switchboard_core::store::{ChannelRef, Store};
use switchboard_whatsapp::{WhatsappConnector, sign};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const APP_SECRET: &str = "webhook-test-app-secret";
pub const VERIFY_TOKEN: &str = "verify-me-please";
pub const USER: &str = "16505551234";
/// The wamid of our outbound message that the fixtures' statuses and reactions refer to.
pub const OUTBOUND: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRPVVRCT1VORDEwMDAwMDAwMDAwMAA=";
pub const TEXT_WAMID: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBRURVhUMTAwMDAwMDAwMDAwMDAwMAA=";

pub fn settings() -> toml::Table {
    format!(
        "phone_number_id = \"{PNID}\"\naccess_token = \"EAAG-token\"\napp_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\ngraph_base = \"http://127.0.0.1:9\"\n"
    )
    .parse()
    .expect("settings TOML")
}

pub fn context(store: Arc<dyn Store>, channel: &str) -> ConnectorContext {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ConnectorContext {
        ingest: Ingest::new(
            store,
            ChannelRef {
                tenant_id: TENANT.into(),
                channel_id: channel.into(),
            },
            Arc::new(Notify::new()),
        ),
        http: reqwest::Client::builder().build().expect("http client"),
        // Fake servers listen on loopback.
        public_http: switchboard_core::public_http::PublicHttp::new(true).expect("client"),
        public_url: "https://sb.example".into(),
        shutdown: CancellationToken::new(),
    }
}

pub async fn connector() -> (WhatsappConnector, TestStore) {
    let store = TestStore::open().await;
    let c = WhatsappConnector::new(
        CHANNEL.into(),
        &settings(),
        context(store.store.clone(), CHANNEL),
    )
    .expect("valid settings");
    (c, store)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/whatsapp/{name}.json"));
    std::fs::read(path).expect("fixture")
}

pub fn post(signature: Option<String>, body: &[u8]) -> Request<Body> {
    let mut b = Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        b = b.header("x-hub-signature-256", sig);
    }
    b.body(Body::from(body.to_vec())).expect("request")
}

pub fn signed(body: &[u8]) -> Request<Body> {
    post(Some(sign(APP_SECRET, body)), body)
}

pub async fn call(c: &WhatsappConnector, req: Request<Body>) -> (StatusCode, String, String) {
    let router = c.routes().expect("routes");
    let resp = router.oneshot(req).await.expect("infallible");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

pub async fn deliver(c: &WhatsappConnector, name: &str) -> StatusCode {
    let (status, _, text) = call(c, signed(&fixture(name))).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
        "{name}: {status} {text}"
    );
    status
}

pub fn handshake(query: &str) -> Request<Body> {
    Request::builder()
        .method("GET")
        .uri(format!("/{query}"))
        .body(Body::empty())
        .expect("request")
}
