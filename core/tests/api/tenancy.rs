//! Tenant isolation: another tenant's conversations, messages and attachments are 404
//! on every route, and the owner's data is left unchanged.

use crate::support::{TestApp, sms};
use axum::http::StatusCode;
use serde_json::{Value, json};
use switchboard_core::domain::model::InboundAttachment;

#[tokio::test]
async fn another_tenants_objects_are_404_everywhere() {
    let app = TestApp::spawn().await;
    let mut msg = sms("+15550001111", "hello");
    msg.attachments.push(InboundAttachment {
        filename: Some("a.jpg".into()),
        content_type: Some("image/jpeg".into()),
        source: Some("https://api.twilio.example/media/ME1".into()),
        content_id: None,
        ..Default::default()
    });
    let (message, conv) = app.ingest("acme", "acme-sms", msg).await;
    let detail = app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin,
        )
        .await;
    let attachment = detail.body["items"][0]["attachments"][0]["id"]
        .as_str()
        .expect("attachment")
        .to_string();
    assert!(!message.is_empty());

    let c = format!("/api/v1/conversations/{conv}");
    let reply = json!({"text": "hi"});
    for (method, uri, body) in [
        ("GET", c.clone(), None),
        ("GET", format!("{c}/messages"), None),
        ("POST", format!("{c}/messages"), Some(reply)),
        ("POST", format!("{c}/read"), None),
        ("POST", format!("{c}/close"), None),
        ("POST", format!("{c}/reopen"), None),
        (
            "POST",
            format!("{c}/assign"),
            Some(json!({"assignee": "gina"})),
        ),
        ("POST", format!("{c}/spam"), None),
        ("POST", format!("{c}/not-spam"), None),
        ("GET", format!("/api/v1/attachments/{attachment}"), None),
    ] {
        let r = app.call(method, &uri, &app.other, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            r.body
        );
        assert_eq!(r.code(), "not_found");
    }
    let list = app.get("/api/v1/conversations", &app.other).await;
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(app.outbox_pending("acme").await, 0);
    let acme = app.get(&c, &app.admin).await;
    assert_eq!(acme.body["conversation"]["status"], "open");
    assert_eq!(acme.body["conversation"]["assignee"], Value::Null);
}
