//! The connector's webhook end to end — handshake, signature, parsing, limits, storing a
//! message — against core's real `Ingest` on a real SQLite store.

#[allow(dead_code)]
mod common;

use axum::http::StatusCode;
use common::harness::*;
use common::{CHANNEL, PNID};
use switchboard_core::contract::connector::Connector;
use switchboard_core::domain::model::*;
use switchboard_whatsapp::{MAX_BODY_BYTES, WINDOW_CLOSED, WhatsappConnector, sign};

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge() {
    let (c, _store) = connector().await;
    let (status, ct, body) = call(
        &c,
        handshake(&format!(
            "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(body, "1158201444");
    // Echoed exactly as sent (decoded), whatever it holds.
    let (status, _, body) = call(
        &c,
        handshake(&format!(
            "?hub.verify_token={VERIFY_TOKEN}&hub.challenge=a%20b%2Bc&hub.mode=subscribe"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "a b+c");
}

#[tokio::test]
async fn a_wrong_handshake_is_forbidden() {
    let (c, _store) = connector().await;
    for query in [
        "?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong".to_string(),
        format!("?hub.mode=subscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}x"),
        format!("?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}"),
        format!("?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
        "?hub.mode=subscribe&hub.challenge=1".to_string(),
        String::new(),
    ] {
        let (status, _, body) = call(&c, handshake(&query)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query}");
        assert_ne!(body, "1", "{query}: the challenge is not echoed");
    }
}

#[tokio::test]
async fn a_signed_message_is_stored_once() {
    let (c, store) = connector().await;
    let body = fixture("text");
    let (status, _, text) = call(&c, signed(&body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let journal = store.journal().await;
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].idempotency_key, format!("msg:{TEXT_WAMID}"));
    assert_eq!(journal[0].kind, "message");
    assert_eq!(journal[0].content_type, "application/json");
    assert_eq!(journal[0].payload, body, "the raw delivery, byte for byte");
    let messages = store.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].direction, "inbound");
    assert_eq!(messages[0].sender, USER);
    assert_eq!(messages[0].provider_message_id.as_deref(), Some(TEXT_WAMID));
    assert_eq!(
        messages[0].text.as_deref(),
        Some("Hi, is my order #1042 shipped yet?")
    );
    assert_eq!(messages[0].external["metadata"]["phone_number_id"], PNID);
    let conversations = store.conversations().await;
    assert_eq!(
        conversations[0].contact.name.as_deref(),
        Some("Sheena Nelson")
    );

    // Meta retries: acknowledged the same way, nothing new stored.
    let (status, _, _) = call(&c, signed(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store.journal().await.len(), 1);
    assert_eq!(store.messages().await.len(), 1);
    assert_eq!(store.conversations().await[0].message_count, 1);
}

#[tokio::test]
async fn unsigned_or_missigned_deliveries_are_forbidden_and_not_stored() {
    let (c, store) = connector().await;
    let body = fixture("text");
    let good = sign(APP_SECRET, &body);
    let reserialized =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).expect("json"))
            .expect("serialize");
    let tampered = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("shipped", "lost");
    for (what, signature, payload) in [
        ("no header", None, body.clone()),
        (
            "wrong secret",
            Some(sign("another-secret", &body)),
            body.clone(),
        ),
        (
            "no prefix",
            Some(good.trim_start_matches("sha256=").to_string()),
            body.clone(),
        ),
        ("tampered", Some(good.clone()), tampered.into_bytes()),
        ("re-serialized", Some(good.clone()), reserialized),
    ] {
        let (status, _, text) = call(&c, post(signature, &payload)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {text}");
    }
    assert!(store.journal().await.is_empty());
    assert!(store.conversations().await.is_empty());
}

#[tokio::test]
async fn metas_escaped_non_ascii_body_verifies_and_is_decoded() {
    let (c, store) = connector().await;
    let body = fixture("non-ascii");
    assert!(body.is_ascii() && String::from_utf8_lossy(&body).contains(r"\u00e1"));
    assert_eq!(deliver(&c, "non-ascii").await, StatusCode::OK);
    let messages = store.messages().await;
    assert_eq!(
        messages[0].text.as_deref(),
        Some("Olá! ¿Dónde está mi pedido? 包裹 📦 مرحبا")
    );
    assert_eq!(
        store.conversations().await[0].contact.name.as_deref(),
        Some("José Müller 🌟")
    );
}

#[tokio::test]
async fn signed_but_unparseable_bodies_are_bad_requests() {
    let (c, store) = connector().await;
    for body in [b"{\"object\":".to_vec(), fixture("invalid-no-entry")] {
        let (status, _, text) = call(&c, signed(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    }
    assert!(store.journal().await.is_empty());
}

#[tokio::test]
async fn bodies_over_three_mib_are_refused_unread() {
    let (c, store) = connector().await;
    let mut body = fixture("text");
    body.resize(MAX_BODY_BYTES + 1, b' ');
    let (status, _, _) = call(&c, signed(&body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(store.journal().await.is_empty());
}

#[tokio::test]
async fn media_messages_wait_for_the_media_job() {
    let (c, store) = connector().await;
    assert_eq!(deliver(&c, "document").await, StatusCode::OK);
    let m = &store.messages().await[0];
    assert_eq!(m.text.as_deref(), Some("My invoice"));
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.state, "pending");
    assert_eq!(a.filename.as_deref(), Some("invoice-1042.pdf"));
    assert_eq!(a.content_type.as_deref(), Some("application/pdf"));
}

#[tokio::test]
async fn connector_identity_window_and_settings_errors() {
    let (c, store) = connector().await;
    assert_eq!(c.channel_id(), CHANNEL);
    assert_eq!(c.kind(), ChannelKind::new("whatsapp"));
    assert_eq!(c.address().as_deref(), Some(PNID));
    assert!(c.sends_read_receipts());
    let now = now_millis();
    let reply = |last: Option<Millis>, template: bool| ReplyCheck {
        last_inbound_at: last,
        now,
        has_template: template,
        has_text: true,
        has_media: false,
    };
    assert_eq!(c.check_reply(&reply(Some(now - 60_000), false)), Ok(()));
    let refusal = c
        .check_reply(&reply(Some(now - 25 * 3_600_000), false))
        .expect_err("window closed");
    assert_eq!(refusal.code, WINDOW_CLOSED);
    assert_eq!(
        c.check_reply(&reply(None, false)).map_err(|r| r.code),
        Err(WINDOW_CLOSED)
    );
    assert_eq!(c.check_reply(&reply(None, true)), Ok(()));

    let mut quiet = settings();
    quiet.insert("read_receipts".into(), toml::Value::Boolean(false));
    let q = WhatsappConnector::new("q".into(), &quiet, context(store.store.clone(), "q"))
        .expect("valid");
    assert!(!q.sends_read_receipts());

    let bad: toml::Table = "phone_number_id = \"abc\"\naccess_token = \"x\""
        .parse()
        .expect("toml");
    let errors =
        match WhatsappConnector::new("bad".into(), &bad, context(store.store.clone(), "bad")) {
            Ok(_) => panic!("invalid settings accepted"),
            Err(e) => e,
        };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for want in [
        "channels[bad].phone_number_id",
        "channels[bad].app_secret",
        "channels[bad].verify_token",
    ] {
        assert!(paths.contains(&want), "{want} missing in {paths:?}");
    }
}
