//! The connector's webhook routes end to end (signature → normalize → journal → ingest →
//! answer), against the real SQLite store behind core's real `Ingest`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use switchboard_core::contract::connector::Connector;
use switchboard_core::domain::model::*;
use switchboard_core::store::Store;
use switchboard_testkit::TestStore;
use switchboard_testkit::connector::{context, ingest};
use switchboard_twilio::{EMPTY_TWIML, TwilioConnector, body_sha256, sign};

const TENANT: &str = "acme";
const CHANNEL: &str = "acme-sms";
const TOKEN: &str = "webhook-test-token";
const PUBLIC: &str = "https://sb.example";

fn settings() -> toml::Table {
    format!(
        "account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"{TOKEN}\"\nfrom = \"+14155550100\"\napi_base = \"http://127.0.0.1:9\"\n"
    )
    .parse()
    .expect("settings TOML")
}

/// The connector on a fresh real store.
async fn connector() -> (TwilioConnector, TestStore) {
    let store = test_store().await;
    (connector_on(store.store.clone()), store)
}

/// A fresh SQLite store with the tenant and the channel the tests post to.
async fn test_store() -> TestStore {
    TestStore::single_channel(TENANT, CHANNEL, "twilio", "+14155550100").await
}

fn connector_on(store: Arc<dyn Store>) -> TwilioConnector {
    let ctx = context(
        ingest(store, TENANT, CHANNEL, switchboard_twilio::TYPE.threading),
        PUBLIC,
    );
    TwilioConnector::new(CHANNEL.into(), &settings(), ctx).expect("valid settings")
}

fn fixture(name: &str) -> Vec<u8> {
    switchboard_testkit::golden::fixture("twilio", &format!("{name}.form"))
}

fn signed_form(route_and_query: &str, body: &[u8]) -> Request<Body> {
    let url = format!("{PUBLIC}/webhooks/{CHANNEL}{route_and_query}");
    let params = switchboard_twilio::form::parse_form(body);
    request(
        route_and_query,
        "application/x-www-form-urlencoded",
        Some(sign(TOKEN, &url, &params)),
        body,
    )
}

fn request(uri: &str, content_type: &str, signature: Option<String>, body: &[u8]) -> Request<Body> {
    let mut b = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", content_type);
    if let Some(sig) = signature {
        b = b.header("x-twilio-signature", sig);
    }
    b.body(Body::from(body.to_vec())).expect("request")
}

async fn call(c: &TwilioConnector, req: Request<Body>) -> (StatusCode, String, String) {
    switchboard_testkit::connector::call(c.routes().expect("routes"), req).await
}

#[tokio::test]
async fn a_signed_message_is_stored_once_and_answered_with_twiml() {
    let (c, store) = connector().await;
    let body = fixture("sms");
    let (status, ct, text) = call(&c, signed_form("/messages", &body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(ct, "text/xml");
    assert_eq!(text, EMPTY_TWIML);
    let journal = store.journal().await;
    assert_eq!(journal.len(), 1);
    assert_eq!(
        journal[0].idempotency_key,
        "msg:SMd36c0364e3842955b2c8f86da3bd8ad6"
    );
    assert_eq!(journal[0].kind, "message");
    assert_eq!(journal[0].content_type, "application/x-www-form-urlencoded");
    assert_eq!(journal[0].payload, body);
    let messages = store.conversation_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].direction, "inbound");
    assert_eq!(messages[0].sender, "+14155550111");
    assert_eq!(
        messages[0].provider_message_id.as_deref(),
        Some("SMd36c0364e3842955b2c8f86da3bd8ad6")
    );
    assert_eq!(
        messages[0].text.as_deref(),
        Some("Hi, is my order #1042 shipped yet?")
    );
    // Twilio retries: acknowledged the same way, stored nothing new.
    let (status, _, text) = call(&c, signed_form("/messages", &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, EMPTY_TWIML);
    assert_eq!(store.journal().await.len(), 1);
    assert_eq!(store.conversation_messages().await.len(), 1);
    assert_eq!(store.conversations().await[0].message_count, 1);
}

#[tokio::test]
async fn the_query_string_is_part_of_the_signed_url() {
    let (c, store) = connector().await;
    let body = fixture("mms-two-images");
    let (status, _, text) = call(&c, signed_form("/messages?tenant=acme&x=%20y", &body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let messages = store.conversation_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].attachments.len(), 2);
}

#[tokio::test]
async fn unsigned_or_missigned_deliveries_are_forbidden_and_not_stored() {
    let (c, store) = connector().await;
    let body = fixture("sms");
    let ct = "application/x-www-form-urlencoded";
    let (status, _, _) = call(&c, request("/messages", ct, None, &body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        &c,
        request(
            "/messages",
            ct,
            Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=".into()),
            &body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Signed for another URL (the status route, or another host).
    let params = switchboard_twilio::form::parse_form(&body);
    let other = sign(
        TOKEN,
        &format!("{PUBLIC}/webhooks/{CHANNEL}/status"),
        &params,
    );
    let (status, _, _) = call(&c, request("/messages", ct, Some(other), &body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let local = sign(
        TOKEN,
        &format!("http://localhost:8080/webhooks/{CHANNEL}/messages"),
        &params,
    );
    let (status, _, _) = call(&c, request("/messages", ct, Some(local), &body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A tampered body.
    let sig = sign(
        TOKEN,
        &format!("{PUBLIC}/webhooks/{CHANNEL}/messages"),
        &params,
    );
    let tampered = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("shipped", "lost");
    let (status, _, _) = call(&c, request("/messages", ct, Some(sig), tampered.as_bytes())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(store.journal().await.is_empty());
    assert!(store.conversations().await.is_empty());
}

#[tokio::test]
async fn signed_but_malformed_payloads_are_bad_requests() {
    let (c, store) = connector().await;
    for name in [
        "invalid-missing-from",
        "invalid-missing-sid",
        "invalid-nummedia-abc",
        "invalid-nummedia-too-large",
    ] {
        let (status, _, text) = call(&c, signed_form("/messages", &fixture(name))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {text}");
    }
    assert!(store.journal().await.is_empty());
    assert!(store.conversations().await.is_empty());
}

#[tokio::test]
async fn status_callbacks_are_applied_once() {
    let (c, store) = connector().await;
    // Our outbound message, sent as the SID the fixture reports on.
    let to = Identity {
        kind: IdentityKind::PHONE,
        value: "+14155550111".into(),
    };
    let sid = "SMfbd95872b4af61a535c28e003e39344e";
    let queued = store.sent_message_as(to, sid, DeliveryStatus::Queued).await;
    let sent = store
        .store
        .get_message(TENANT, &queued)
        .await
        .expect("message");
    assert_eq!(sent.delivery_status, DeliveryStatus::Sent.as_str());

    let body = fixture("status-failed-30003");
    let (status, _, text) = call(&c, signed_form("/status", &body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = call(&c, signed_form("/status", &body)).await;
    assert_eq!(status, StatusCode::OK);
    let failed = store
        .store
        .get_message(TENANT, &queued)
        .await
        .expect("message");
    assert_eq!(failed.delivery_status, DeliveryStatus::Failed.as_str());
    assert_eq!(failed.error_code.as_deref(), Some("30003"));
    let journal = store.journal().await;
    assert_eq!(journal.len(), 1, "the retry is a duplicate");
    assert_eq!(
        journal[0].idempotency_key,
        "status:SMfbd95872b4af61a535c28e003e39344e:failed:30003"
    );
    assert_eq!(journal[0].kind, "status");
    assert_eq!(journal[0].payload, body);
    assert_eq!(store.parked_statuses().await, 0);
}

#[tokio::test]
async fn unknown_statuses_are_journaled_and_acknowledged() {
    let (c, store) = connector().await;
    let (status, _, _) = call(&c, signed_form("/status", &fixture("status-unknown-value"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        store.parked_statuses().await,
        0,
        "nothing applied or parked"
    );
    let journal = store.journal().await;
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].kind, "status");
}

#[tokio::test]
async fn json_bodies_are_verified_by_their_hash() {
    let (c, store) = connector().await;
    let body =
        br#"{"MessageSid":"SMjson0001","From":"+14155550111","To":"+14155550100","Body":"hi"}"#;
    let query = format!("?bodySHA256={}", body_sha256(body));
    let url = format!("{PUBLIC}/webhooks/{CHANNEL}/messages{query}");
    let sig = sign(TOKEN, &url, &[] as &[(&str, &str)]);
    let (status, _, text) = call(
        &c,
        request(
            &format!("/messages{query}"),
            "application/json",
            Some(sig.clone()),
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        store.conversation_messages().await[0]
            .provider_message_id
            .as_deref(),
        Some("SMjson0001")
    );
    assert_eq!(store.journal().await[0].content_type, "application/json");
    let other = br#"{"MessageSid":"SMjson0002","From":"+14155550111"}"#;
    let (status, _, _) = call(
        &c,
        request(
            &format!("/messages{query}"),
            "application/json",
            Some(sig),
            other,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(store.journal().await.len(), 1);
    assert_eq!(store.conversation_messages().await.len(), 1);
}

#[tokio::test]
async fn other_content_types_are_unsupported() {
    let (c, store) = connector().await;
    let (status, _, _) = call(
        &c,
        request("/messages", "text/plain", Some("x".into()), b"hello"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(store.journal().await.is_empty());
}

#[tokio::test]
async fn storage_failures_ask_twilio_to_retry() {
    let store = test_store().await;
    let c = connector_on(store.store.clone());
    store.fail_journal_inserts("").await;
    for (route, name) in [("/messages", "sms"), ("/status", "status-failed-30003")] {
        let (status, _, text) = call(&c, signed_form(route, &fixture(name))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{route}: {text}");
        assert!(
            !text.contains("simulated") && !text.contains("database"),
            "internals leaked: {text}"
        );
    }
    assert!(store.journal().await.is_empty());
    assert!(store.conversations().await.is_empty());
}

#[tokio::test]
async fn connector_identity_and_settings_errors() {
    let (c, store) = connector().await;
    assert_eq!(c.channel_id(), CHANNEL);
    assert_eq!(c.kind(), ChannelKind::new("twilio"));
    assert_eq!(c.address().as_deref(), Some("+14155550100"));

    let bad: toml::Table = "account_sid = \"nope\"\nauth_token = \"x\""
        .parse()
        .expect("toml");
    let ctx = context(
        ingest(
            store.store.clone(),
            TENANT,
            "bad",
            switchboard_twilio::TYPE.threading,
        ),
        PUBLIC,
    );
    let errors = match TwilioConnector::new("bad".into(), &bad, ctx) {
        Ok(_) => panic!("invalid settings accepted"),
        Err(e) => e,
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"channels[bad].account_sid"), "{paths:?}");
    assert!(paths.contains(&"channels[bad].from"), "{paths:?}");
}
