//! The connector under test and how to talk to it: settings, a context bound to the real
//! store, fixtures, signed requests and the router's answers.

use super::{CHANNEL, PNID, TENANT, TestStore, test_store};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use switchboard_core::contract::connector::{Connector, ConnectorContext};
use switchboard_core::store::Store;
use switchboard_whatsapp::{WhatsappConnector, sign};

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
    switchboard_testkit::connector::context(
        switchboard_testkit::connector::ingest(
            store,
            TENANT,
            channel,
            switchboard_whatsapp::TYPE.threading,
        ),
        "https://sb.example",
    )
}

pub async fn connector() -> (WhatsappConnector, TestStore) {
    let store = test_store().await;
    let c = WhatsappConnector::new(
        CHANNEL.into(),
        &settings(),
        context(store.store.clone(), CHANNEL),
    )
    .expect("valid settings");
    (c, store)
}

pub fn fixture(name: &str) -> Vec<u8> {
    switchboard_testkit::golden::fixture("whatsapp", &format!("{name}.json"))
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
    switchboard_testkit::connector::call(c.routes().expect("routes"), req).await
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
