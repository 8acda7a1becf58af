//! Outbound messages: replies and new conversations, their idempotency keys, the outbox
//! and the dispatcher wake-up, and refusals for opted-out contacts.

use crate::support::{TestApp, sms};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_core::domain::model::Consent;

#[tokio::test]
async fn reply_is_accepted_once_and_replayed_idempotently() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001111", "hello").await;
    let other = app.acme_sms("+15550002222", "hello too").await;
    let uri = format!("/api/v1/conversations/{conv}/messages");
    let reply = || {
        Request::post(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", app.agent))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "reply-1")
            .body(Body::from(json!({"text": "On it!"}).to_string()))
            .expect("req")
    };
    let first = app.send(reply()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["direction"], "outbound");
    assert_eq!(first.body["sender"], "bob");
    assert_eq!(first.body["delivery_status"], "queued");
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.outbox_pending("acme").await, 1);
    let woke = tokio::time::timeout(Duration::from_millis(50), app.jobs.notified()).await;
    assert!(woke.is_ok(), "the dispatcher is woken for a new job");

    let again = app.send(reply()).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        app.outbox_pending("acme").await,
        1,
        "a replay queues no second job"
    );
    let woke = tokio::time::timeout(Duration::from_millis(50), app.jobs.notified()).await;
    assert!(woke.is_err(), "a replay wakes nobody");

    let misuse = Request::post(format!("/api/v1/conversations/{other}/messages"))
        .header(header::AUTHORIZATION, format!("Bearer {}", app.agent))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", "reply-1")
        .body(Body::from(json!({"text": "On it!"}).to_string()))
        .expect("req");
    app.send(misuse)
        .await
        .assert_error(StatusCode::CONFLICT, "idempotency_key_reused");

    let plain = app
        .post(
            &uri,
            &app.admin,
            json!({"media_urls": ["https://cdn.example/a.png"]}),
        )
        .await;
    assert_eq!(plain.status, StatusCode::ACCEPTED, "{}", plain.body);
    assert_ne!(plain.body["id"], first.body["id"]);
    assert_eq!(app.outbox_pending("acme").await, 2);
    let messages = app.get(&uri, &app.agent).await;
    assert_eq!(messages.body["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn replying_to_an_opted_out_contact_is_409() {
    let app = TestApp::spawn().await;
    let mut stop = sms("+15550001111", "STOP");
    stop.consent = Some(Consent::OptOut);
    let (_, conv) = app.ingest("acme", "acme-sms", stop).await;
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.agent,
            json!({"text": "hi"}),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "contact_opted_out");
    let start = json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+15550001111"}, "text": "hi"});
    app.post("/api/v1/conversations", &app.agent, start)
        .await
        .assert_error(StatusCode::CONFLICT, "contact_opted_out");
    assert_eq!(app.outbox_pending("acme").await, 0);
}

#[tokio::test]
async fn start_an_outbound_conversation() {
    let app = TestApp::spawn().await;
    let body = json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+15550003333"},
                      "contact_name": "Ann", "text": "Your order shipped"});
    let request = |body: &Value| {
        Request::post("/api/v1/conversations")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.agent))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "start-1")
            .body(Body::from(body.to_string()))
            .expect("req")
    };
    let r = app.send(request(&body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let conv = r.body["message"]["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let replay = app.send(request(&body)).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.body["message"]["id"], r.body["message"]["id"]);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(app.outbox_pending("acme").await, 1);
    let detail = app
        .get(&format!("/api/v1/conversations/{conv}"), &app.agent)
        .await;
    assert_eq!(detail.body["conversation"]["contact"]["name"], "Ann");

    for bad in [
        json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "5550003333"}, "text": "hi"}),
        json!({"channel_id": "acme-sms", "to": {"kind": "fax", "value": "+15550003333"}, "text": "hi"}),
        json!({"channel_id": "acme-sms", "to": {"kind": "email", "value": "ann@example.com"}, "text": "hi"}),
        json!({"channel_id": "globex-sms", "to": {"kind": "phone", "value": "+15550003333"}, "text": "hi"}),
        json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+15550003333"}}),
        json!({"to": {"kind": "phone", "value": "+15550003333"}, "text": "hi"}),
    ] {
        app.post("/api/v1/conversations", &app.agent, bad)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let channels = app.get("/api/v1/channels", &app.agent).await;
    assert_eq!(channels.body["items"][0]["id"], "acme-sms");
    assert_eq!(channels.body["items"][1]["id"], "acme-wa");
    assert_eq!(
        channels.body["items"].as_array().map(Vec::len),
        Some(2),
        "only acme's channels"
    );
}
