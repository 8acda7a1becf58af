//! Tests of the REST client against a tiny local fake of Twilio's API: it records what it
//! is sent and answers like Twilio (201 with the Message JSON, 400 with Twilio's error JSON,
//! 401, 429, 500), and serves media behind basic auth with redirects.

use super::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use std::net::SocketAddr;
use std::sync::Mutex;
use switchboard_core::config::Secret;
use switchboard_core::model::Identity;

const SID: &str = "ACtest0000";
const TOKEN: &str = "tok3n";

#[derive(Default)]
struct Fake {
    /// Form bodies of Messages API requests, decoded.
    sent: Mutex<Vec<Vec<(String, String)>>>,
    addr: Mutex<Option<SocketAddr>>,
}

/// Basic auth with any account SID and the right token.
fn authorized(headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .unwrap_or_default();
    decoded
        .split_once(':')
        .is_some_and(|(user, pass)| user.starts_with("AC") && pass == TOKEN)
}

fn twilio_error(status: AxStatus, code: u32, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

async fn create_message(
    State(fake): State<Arc<Fake>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    if !authorized(&headers) {
        return twilio_error(AxStatus::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form = crate::form::parse_form(&body);
    fake.sent.lock().expect("lock").push(form.clone());
    let to = crate::form::first(&form, "To")
        .unwrap_or_default()
        .to_string();
    match to.as_str() {
        "+15005550001" => twilio_error(
            AxStatus::BAD_REQUEST,
            21211,
            "The 'To' number +15005550001 is not a valid phone number.",
        ),
        "+15005550429" => twilio_error(AxStatus::TOO_MANY_REQUESTS, 20429, "Too Many Requests"),
        "+15005550500" => (AxStatus::INTERNAL_SERVER_ERROR, "oops").into_response(),
        "+15005550404" => (AxStatus::NOT_FOUND, "").into_response(),
        "+15005550009" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            AxStatus::CREATED.into_response()
        }
        "+15005550002" => (AxStatus::CREATED, "not json").into_response(),
        _ => {
            let body = serde_json::json!({
                "account_sid": account,
                "sid": "SM00000000000000000000000000000001",
                "status": "queued",
                "to": to,
                "error_code": null,
                "error_message": null,
                "num_media": "0",
                "api_version": "2010-04-01",
            });
            (AxStatus::CREATED, axum::Json(body)).into_response()
        }
    }
}

async fn account(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return twilio_error(AxStatus::UNAUTHORIZED, 20003, "Authenticate");
    }
    let status = if file.starts_with("ACsuspended") {
        "suspended"
    } else {
        "active"
    };
    axum::Json(serde_json::json!({ "sid": SID, "status": status })).into_response()
}

fn jpeg(len: usize) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], vec![0xFFu8; len]).into_response()
}

async fn media(
    State(fake): State<Arc<Fake>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if name == "cdn" {
        // The CDN must never see our credentials.
        return if headers.contains_key(header::AUTHORIZATION) {
            (AxStatus::BAD_REQUEST, "credentials leaked").into_response()
        } else {
            jpeg(10)
        };
    }
    if !authorized(&headers) {
        return AxStatus::UNAUTHORIZED.into_response();
    }
    let port = fake
        .addr
        .lock()
        .expect("lock")
        .map(|a| a.port())
        .unwrap_or_default();
    match name.as_str() {
        "ok" => jpeg(100),
        "redirect" => (AxStatus::FOUND, [(header::LOCATION, "/media/ok")]).into_response(),
        "cross-host" => (
            AxStatus::FOUND,
            [(
                header::LOCATION,
                format!("http://localhost:{port}/media/cdn"),
            )],
        )
            .into_response(),
        "big-declared" => jpeg(5000),
        "big-streamed" => {
            let chunks =
                (0..50).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 100])));
            let body = Body::from_stream(futures::stream::iter(chunks.collect::<Vec<_>>()));
            ([(header::CONTENT_TYPE, "image/png")], body).into_response()
        }
        "exe" => (
            [(header::CONTENT_TYPE, "application/x-msdownload")],
            vec![0u8; 10],
        )
            .into_response(),
        "busy" => AxStatus::SERVICE_UNAVAILABLE.into_response(),
        _ => AxStatus::NOT_FOUND.into_response(),
    }
}

async fn spawn_fake() -> (Arc<Fake>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(create_message),
        )
        .route("/2010-04-01/Accounts/{file}", get(account))
        .route("/media/{name}", get(media))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    *fake.addr.lock().expect("lock") = Some(addr);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, format!("http://{addr}"))
}

fn settings(api_base: &str) -> TwilioSettings {
    TwilioSettings {
        account_sid: SID.into(),
        auth_token: Secret::new(TOKEN),
        from: Some("+14155550100".into()),
        messaging_service_sid: None,
        api_base: api_base.into(),
        timeout_secs: 1,
        media_timeout_secs: 2,
        status_callback: true,
    }
}

fn client_with(s: TwilioSettings, callback: Option<&str>) -> TwilioClient {
    let http = reqwest::Client::builder().build().expect("client");
    TwilioClient::new(
        http,
        Arc::new(s),
        callback.map(str::to_string),
        "test".into(),
    )
}

fn outbound(kind: IdentityKind, to: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: "m1".into(),
        tenant_id: "t".into(),
        channel_id: "test".into(),
        conversation_id: "c1".into(),
        to: Identity {
            kind,
            value: to.into(),
        },
        subject: Some("ignored".into()),
        text: Some("Your order shipped".into()),
        media_urls: Vec::new(),
        in_reply_to: None,
    }
}

fn limits(max_bytes: u64) -> MediaLimits {
    MediaLimits {
        max_bytes,
        allowed_types: vec!["image/*".into()],
    }
}

#[tokio::test]
async fn send_posts_the_form_and_parses_the_receipt() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(
        settings(&base),
        Some("https://sb.example/webhooks/test/status"),
    );
    let mut msg = outbound(IdentityKind::Phone, "+14155550111");
    msg.media_urls = vec![
        "https://cdn.example/a.png".into(),
        "https://cdn.example/b.png".into(),
    ];
    let receipt = client.send(&msg).await.expect("sent");
    assert_eq!(
        receipt.provider_message_id,
        "SM00000000000000000000000000000001"
    );
    assert_eq!(receipt.status, DeliveryStatus::Queued);
    assert_eq!(receipt.external["account_sid"], SID);

    let sent = fake.sent.lock().expect("lock").clone();
    let pairs: Vec<(&str, &str)> = sent[0]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("To", "+14155550111"),
            ("From", "+14155550100"),
            ("Body", "Your order shipped"),
            ("MediaUrl", "https://cdn.example/a.png"),
            ("MediaUrl", "https://cdn.example/b.png"),
            ("StatusCallback", "https://sb.example/webhooks/test/status"),
        ]
    );
}

#[tokio::test]
async fn whatsapp_and_messaging_service_fields() {
    let (fake, base) = spawn_fake().await;
    let mut s = settings(&base);
    s.from = None;
    s.messaging_service_sid = Some("MG123".into());
    let client = client_with(s, None);
    client
        .send(&outbound(IdentityKind::Whatsapp, "5511987654321"))
        .await
        .expect("sent");
    let sent = fake.sent.lock().expect("lock").clone();
    assert_eq!(
        crate::form::first(&sent[0], "To"),
        Some("whatsapp:+5511987654321")
    );
    assert_eq!(
        crate::form::first(&sent[0], "MessagingServiceSid"),
        Some("MG123")
    );
    assert_eq!(crate::form::first(&sent[0], "From"), None);
    assert_eq!(crate::form::first(&sent[0], "StatusCallback"), None);
}

#[tokio::test]
async fn twilio_refusals_are_permanent_with_their_code() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::Phone, "+15005550001"))
        .await
        .expect_err("refused");
    match err {
        SendError::Permanent { code, message } => {
            assert_eq!(code, "21211");
            assert!(message.contains("not a valid phone number"), "{message}");
            assert!(
                message.contains("https://www.twilio.com/docs/errors/21211"),
                "{message}"
            );
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    let err = client
        .send(&outbound(IdentityKind::Phone, "+15005550404"))
        .await
        .expect_err("404");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "http_404"),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_are_transient() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::Phone, "+15005550429"))
        .await
        .expect_err("429");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "20429"),
        "{err:?}"
    );
    let err = client
        .send(&outbound(IdentityKind::Phone, "+15005550500"))
        .await
        .expect_err("500");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "http_500"),
        "{err:?}"
    );
    let err = client
        .send(&outbound(IdentityKind::Phone, "+15005550009"))
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "timeout"),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_failures_are_transient() {
    // A port nothing listens on: bind, read the port, drop the listener.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client_with(settings(&format!("http://127.0.0.1:{port}")), None);
    let err = client
        .send(&outbound(IdentityKind::Phone, "+14155550111"))
        .await
        .expect_err("no server");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "connect"),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_credentials_and_bad_answers_are_permanent() {
    let (_fake, base) = spawn_fake().await;
    let mut s = settings(&base);
    s.auth_token = Secret::new("wrong");
    let err = client_with(s, None)
        .send(&outbound(IdentityKind::Phone, "+14155550111"))
        .await
        .expect_err("401");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );

    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::Phone, "+15005550002"))
        .await
        .expect_err("not json");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "invalid_response"),
        "{err:?}"
    );
}

#[tokio::test]
async fn unsendable_messages_fail_before_calling_twilio() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::Email, "a@example.com"))
        .await
        .expect_err("email");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "unsupported_recipient")
    );
    let mut empty = outbound(IdentityKind::Phone, "+14155550111");
    empty.text = Some("  ".into());
    let err = client.send(&empty).await.expect_err("empty");
    assert!(matches!(err, SendError::Permanent { ref code, .. } if code == "empty_message"));
    assert!(fake.sent.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn media_is_fetched_with_credentials_and_same_host_redirects() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let m = client
        .fetch_media(&format!("{base}/media/ok"), &limits(1000))
        .await
        .expect("fetched");
    assert_eq!(m.content_type, "image/jpeg");
    assert_eq!(m.bytes.len(), 100);
    assert_eq!(m.expected_sha256, None);
    // The redirect target also demands auth: the header survived the same-host hop.
    let m = client
        .fetch_media(&format!("{base}/media/redirect"), &limits(1000))
        .await
        .expect("followed");
    assert_eq!(m.bytes.len(), 100);
}

#[tokio::test]
async fn credentials_never_follow_a_cross_host_redirect() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let m = client
        .fetch_media(&format!("{base}/media/cross-host"), &limits(1000))
        .await
        .expect("fetched from the CDN without credentials");
    assert_eq!(m.bytes.len(), 10);
}

#[tokio::test]
async fn credentials_go_only_to_twilio() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let foreign = base.replace("127.0.0.1", "localhost");
    let err = client
        .fetch_media(&format!("{foreign}/media/ok"), &limits(1000))
        .await
        .expect_err("no credentials for another host");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );
    assert!(client.may_authenticate(&url::Url::parse("https://api.twilio.com/x").expect("url")));
    assert!(!client.may_authenticate(&url::Url::parse("http://api.twilio.com/x").expect("url")));
    assert!(
        !client
            .may_authenticate(&url::Url::parse("https://twilio.com.evil.example/x").expect("url"))
    );
}

#[tokio::test]
async fn media_limits_are_enforced() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    for name in ["big-declared", "big-streamed"] {
        let err = client
            .fetch_media(&format!("{base}/media/{name}"), &limits(1000))
            .await
            .expect_err("too large");
        assert!(
            matches!(err, SendError::Permanent { ref code, .. } if code == "media_too_large"),
            "{name}: {err:?}"
        );
    }
    let ok = client
        .fetch_media(&format!("{base}/media/big-streamed"), &limits(5000))
        .await
        .expect("exactly at the limit");
    assert_eq!(ok.bytes.len(), 5000);
    let err = client
        .fetch_media(&format!("{base}/media/exe"), &limits(1000))
        .await
        .expect_err("type");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "media_type_not_allowed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn media_http_errors_are_classified() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .fetch_media(&format!("{base}/media/gone"), &limits(1000))
        .await
        .expect_err("404");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "not_found"),
        "{err:?}"
    );
    let err = client
        .fetch_media(&format!("{base}/media/busy"), &limits(1000))
        .await
        .expect_err("503");
    assert!(matches!(err, SendError::Transient { .. }), "{err:?}");
    let mut wrong = settings(&base);
    wrong.auth_token = Secret::new("nope");
    let err = client_with(wrong, None)
        .fetch_media(&format!("{base}/media/ok"), &limits(1000))
        .await
        .expect_err("401");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );
    let err = client
        .fetch_media("file:///etc/passwd", &limits(1000))
        .await
        .expect_err("scheme");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "invalid_media_url"),
        "{err:?}"
    );
}

#[tokio::test]
async fn healthcheck_reports_credentials_and_account_state() {
    let (_fake, base) = spawn_fake().await;
    client_with(settings(&base), None)
        .healthcheck()
        .await
        .expect("healthy");
    let mut wrong = settings(&base);
    wrong.auth_token = Secret::new("nope");
    let err = client_with(wrong, None)
        .healthcheck()
        .await
        .expect_err("401");
    assert!(err.contains("401"), "{err}");
    let mut suspended = settings(&base);
    suspended.account_sid = "ACsuspended".into();
    let err = client_with(suspended, None)
        .healthcheck()
        .await
        .expect_err("suspended");
    assert!(err.contains("suspended"), "{err}");
}
