//! Request validation and error shapes: health and fallback routes, invalid or oversized
//! bodies, wrong content types and bad idempotency keys.

use crate::support::{MAX_BODY, TestApp};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

#[tokio::test]
async fn health_and_fallbacks_use_our_shapes() {
    let app = TestApp::spawn().await;
    let ok = app
        .send(Request::get("/healthz").body(Body::empty()).expect("req"))
        .await;
    assert_eq!(
        (ok.status, ok.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = app
        .send(Request::get("/readyz").body(Body::empty()).expect("req"))
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    app.get("/api/v1/nope", &app.admin)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call("DELETE", "/api/v1/channels", &app.admin, None)
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(r.headers.get(header::ALLOW).is_some());
}

#[tokio::test]
async fn validation_errors_name_the_field_as_a_json_pointer() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001112", "hello").await;
    let uri = format!("/api/v1/conversations/{conv}/messages");
    let cases = [
        (json!({"text": "   "}), Some("/text")),
        (json!({"text": 5}), Some("/text")),
        (
            json!({"text": "hi", "subject": "a\r\nBcc: x"}),
            Some("/subject"),
        ),
        (
            json!({"media_urls": ["https://example.com/a.png", "not a url"]}),
            Some("/media_urls/1"),
        ),
        (json!({"media_urls": [7]}), Some("/media_urls/0")),
        (
            json!({"template": {"name": "Bad Name", "language": "en"}}),
            Some("/template/name"),
        ),
        // No single member is to blame.
        (json!({}), None),
    ];
    for (body, field) in cases {
        let r = app.post(&uri, &app.agent, body.clone()).await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            r.body["error"]["field"].as_str(),
            field,
            "{body}: {}",
            r.body
        );
        let message = r.body["error"]["message"].as_str().expect("message");
        assert!(!message.contains(" at line "), "{message}");
    }
}

#[tokio::test]
async fn bad_requests_get_our_error_shape() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001111", "hello").await;
    let uri = format!("/api/v1/conversations/{conv}/messages");
    let unprocessable = [
        json!({}),
        json!({"text": "   "}),
        json!({"text": "x".repeat(10_001)}),
        json!({"text": "hi", "subject": "a\r\nBcc: evil@example.com"}),
        json!({"text": "hi", "subject": "s".repeat(999)}),
        json!({"media_urls": ["ftp://example.com/a.png"]}),
        json!({"media_urls": ["not a url"]}),
        json!({"media_urls": [format!("https://example.com/{}", "a".repeat(2048))]}),
        json!({"media_urls": vec!["https://example.com/a.png"; 11]}),
        json!({"text": 5}),
        json!({"text": "hi", "unknown": true}),
    ];
    for body in unprocessable {
        let r = app.post(&uri, &app.agent, body).await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(app.outbox_pending("acme").await, 0);

    let raw = |body: &str, content_type: Option<&str>, extra: Option<(&str, &str)>| {
        let mut r =
            Request::post(&uri).header(header::AUTHORIZATION, format!("Bearer {}", app.agent));
        if let Some(ct) = content_type {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.body(Body::from(body.to_string())).expect("req")
    };
    let json_ct = Some("application/json");
    app.send(raw("{\"text\": ", json_ct, None))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    app.send(raw("{\"text\": \"hi\"}", None, None))
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.send(raw("{\"text\": \"hi\"}", Some("text/plain"), None))
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.send(raw(
        "{\"text\": \"hi\"}",
        json_ct,
        Some(("Idempotency-Key", "two words")),
    ))
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let long_key = "k".repeat(256);
    app.send(raw(
        "{\"text\": \"hi\"}",
        json_ct,
        Some(("Idempotency-Key", &long_key)),
    ))
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");

    let big = json!({"text": "x".repeat(MAX_BODY)}).to_string();
    // Read up to the limit (no Content-Length) and refused up front (declared length).
    app.send(raw(&big, json_ct, None))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let declared = big.len().to_string();
    app.send(raw(&big, json_ct, Some(("content-length", &declared))))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(app.outbox_pending("acme").await, 0);
}
