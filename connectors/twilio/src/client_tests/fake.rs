//! A tiny local fake of Twilio's REST API for the client tests: it records what it is sent
//! and answers like Twilio (201 with the Message JSON, 400 with Twilio's error JSON, 401,
//! 429, 500), and serves media behind basic auth, with same-host and cross-host redirects.

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

pub(super) const SID: &str = "ACtest0000";
pub(super) const TOKEN: &str = "tok3n";

#[derive(Default)]
pub(super) struct Fake {
    /// Form bodies of Messages API requests, decoded.
    pub(super) sent: Mutex<Vec<Vec<(String, String)>>>,
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

pub(super) async fn spawn_fake() -> (Arc<Fake>, String) {
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

pub(super) fn settings(api_base: &str) -> TwilioSettings {
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

pub(super) fn client_with(s: TwilioSettings, callback: Option<&str>) -> TwilioClient {
    let http = reqwest::Client::builder().build().expect("client");
    TwilioClient::new(
        http,
        Arc::new(s),
        callback.map(str::to_string),
        "test".into(),
    )
}

pub(super) fn outbound(kind: IdentityKind, to: &str) -> OutboundMessage {
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
        template: None,
        thread: Default::default(),
    }
}

pub(super) fn limits(max_bytes: u64) -> MediaLimits {
    MediaLimits {
        max_bytes,
        allowed_types: vec!["image/*".into()],
    }
}
