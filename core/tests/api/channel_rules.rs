//! Channel rules the API asks connectors about before queueing: the WhatsApp-style
//! customer-service window, templates, and read receipts on mark-read.

use crate::support::{TestApp, sms};
use axum::http::StatusCode;
use serde_json::json;
use switchboard_core::domain::model::{Identity, IdentityKind, now_millis};
use switchboard_core::store::JobKind;

fn wa(text: &str) -> switchboard_core::domain::model::InboundMessage {
    let mut m = sms("ignored", text);
    m.from = Identity {
        kind: IdentityKind::WHATSAPP,
        value: "4915112345678".into(),
    };
    m
}

fn template() -> serde_json::Value {
    json!({"name": "order_update", "language": "en_US",
           "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]})
}

#[tokio::test]
async fn window_refuses_free_form_but_accepts_templates() {
    let app = TestApp::spawn().await;
    let start = |body: serde_json::Value| {
        let mut b =
            json!({"channel_id": "acme-wa", "to": {"kind": "whatsapp", "value": "4915100000001"}});
        if let (Some(o), Some(extra)) = (b.as_object_mut(), body.as_object()) {
            o.extend(extra.clone());
        }
        b
    };
    // No inbound message ever: the window is closed.
    let r = app
        .post(
            "/api/v1/conversations",
            &app.agent,
            start(json!({"text": "hello"})),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "whatsapp_window_closed");
    assert_eq!(app.outbox_pending("acme").await, 0, "nothing queued");
    let r = app
        .post(
            "/api/v1/conversations",
            &app.agent,
            start(json!({"template": template()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // Inside the window (the contact just wrote), free-form replies are fine.
    let (_, conv) = app.ingest("acme", "acme-wa", wa("hi")).await;
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.agent,
            json!({"text": "hello back"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

#[tokio::test]
async fn templates_are_validated_and_refused_where_unsupported() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+14155550111", "hi").await;
    let url = format!("/api/v1/conversations/{conv}/messages");
    let r = app
        .post(&url, &app.agent, json!({"template": template()}))
        .await;
    r.assert_error(StatusCode::CONFLICT, "template_not_supported");
    let bad = json!({"template": {"name": "Bad Name!", "language": "en_US"}});
    app.post(&url, &app.agent, bad)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let both = json!({"text": "x", "template": template()});
    app.post(&url, &app.agent, both)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn reading_a_conversation_queues_a_read_receipt_where_the_channel_sends_them() {
    let app = TestApp::spawn().await;
    let (_, wa_conv) = app.ingest("acme", "acme-wa", wa("hi")).await;
    let sms_conv = app.acme_sms("+14155550112", "hi").await;
    for conv in [&wa_conv, &sms_conv] {
        let r = app
            .post(
                &format!("/api/v1/conversations/{conv}/read"),
                &app.agent,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let mut kinds = Vec::new();
    while let Some(job) = app
        .store
        .claim_job(now_millis(), 60_000)
        .await
        .expect("claim")
    {
        kinds.push((job.kind, job.channel_id));
    }
    assert_eq!(kinds, vec![(JobKind::ReadReceipt, "acme-wa".to_string())]);
}
