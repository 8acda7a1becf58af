//! A tiny local fake of the Graph API for the client tests, following Meta's documented
//! shapes: bearer token required everywhere (Graph error 190 otherwise), the messages
//! endpoint (`{"messaging_product","contacts","messages":[{"id"}]}`, read receipts answered
//! `{"success":true}`), multipart media upload (`{"id"}`), `GET /{media-id}` (`{url,
//! mime_type, sha256, file_size, id, messaging_product}`) whose URLs expire after one use or
//! after their time to live, the phone-number lookup, errors on demand by recipient number,
//! and public media for outbound sends (which must never see our token).

use super::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_core::config::Secret;
use switchboard_core::model::{Identity, IdentityKind, MediaLimits, OutboundMessage};

pub(super) const TOKEN: &str = "EAAG-test-token";
pub(super) const PNID: &str = "106540352242922";
pub(super) const VERSION: &str = "v21.0";

/// Recipients that make the messages endpoint fail in documented ways.
pub(super) mod to {
    pub const REENGAGEMENT: &str = "15550131047";
    pub const RATE_LIMITED: &str = "15550130429";
    pub const WABA_RATE_LIMIT: &str = "15550080007";
    pub const SERVER_ERROR: &str = "15550000500";
    pub const EXPIRED_TOKEN: &str = "15550000190";
    pub const SLOW: &str = "15550000009";
    pub const NOT_JSON: &str = "15550000002";
    /// Accepts the first message, refuses every later one.
    pub const FIRST_ONLY: &str = "15550000003";
}

struct Grant {
    media_id: String,
    expires: Instant,
    used: bool,
}

#[derive(Default)]
pub(super) struct Fake {
    pub(super) sent: Mutex<Vec<Value>>,
    pub(super) uploads: Mutex<Vec<super::fake_upload::Upload>>,
    pub(super) downloads: Mutex<Vec<String>>,
    pub(super) public_fetches: Mutex<Vec<String>>,
    resolves: Mutex<HashMap<String, u32>>,
    grants: Mutex<HashMap<String, Grant>>,
    counter: Mutex<u64>,
    addr: Mutex<Option<SocketAddr>>,
}

impl Fake {
    pub(super) fn next(&self) -> u64 {
        let mut c = self.counter.lock().expect("lock");
        *c += 1;
        *c
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr.lock().expect("lock").expect("bound"))
    }

    pub(super) fn sent(&self) -> Vec<Value> {
        self.sent.lock().expect("lock").clone()
    }

    pub(super) fn uploads(&self) -> Vec<super::fake_upload::Upload> {
        self.uploads.lock().expect("lock").clone()
    }

    pub(super) fn downloads(&self) -> usize {
        self.downloads.lock().expect("lock").len()
    }
}

/// The bytes behind each media id.
pub(super) fn media_bytes(media_id: &str) -> Vec<u8> {
    match media_id {
        "2001" => vec![7u8; 5000],
        _ => (0..1000u32).map(|i| (i % 251) as u8).collect(),
    }
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(super) fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"))
}

/// Meta's error body.
pub(super) fn graph_error(status: AxStatus, code: u32, message: &str, details: &str) -> Response {
    let body = json!({"error": {
        "message": format!("(#{code}) {message}"),
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "AbCdEfGhIjKlMnOp"
    }});
    (status, axum::Json(body)).into_response()
}

pub(super) fn unauthorized() -> Response {
    graph_error(
        AxStatus::UNAUTHORIZED,
        190,
        "Error validating access token: Session has expired",
        "Error validating access token",
    )
}

async fn messages(
    State(fake): State<Arc<Fake>>,
    Path((version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if version != VERSION || pnid != PNID {
        return graph_error(
            AxStatus::BAD_REQUEST,
            100,
            "Invalid parameter",
            "unknown phone number id",
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(
            AxStatus::BAD_REQUEST,
            100,
            "Invalid parameter",
            "body is not JSON",
        );
    };
    fake.sent.lock().expect("lock").push(req.clone());
    if req["messaging_product"] != "whatsapp" {
        return graph_error(
            AxStatus::BAD_REQUEST,
            100,
            "Invalid parameter",
            "messaging_product",
        );
    }
    if req["status"] == "read" {
        return if req["message_id"] == "wamid.unknown" {
            graph_error(
                AxStatus::BAD_REQUEST,
                100,
                "Invalid parameter",
                "unknown message id",
            )
        } else {
            axum::Json(json!({"success": true})).into_response()
        };
    }
    let to = req["to"].as_str().unwrap_or_default().to_string();
    match to.as_str() {
        to::REENGAGEMENT => {
            return graph_error(
                AxStatus::BAD_REQUEST,
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            );
        }
        to::RATE_LIMITED => {
            return graph_error(
                AxStatus::TOO_MANY_REQUESTS,
                130429,
                "Rate limit hit",
                "Cloud API message throughput has been reached.",
            );
        }
        to::WABA_RATE_LIMIT => {
            return graph_error(
                AxStatus::BAD_REQUEST,
                80007,
                "Rate limit issues",
                "The WhatsApp Business Account has reached its rate limit.",
            );
        }
        to::SERVER_ERROR => {
            return (AxStatus::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response();
        }
        to::EXPIRED_TOKEN => return unauthorized(),
        to::SLOW => tokio::time::sleep(Duration::from_secs(3)).await,
        to::NOT_JSON => return (AxStatus::OK, "accepted!").into_response(),
        to::FIRST_ONLY => {
            let earlier = fake
                .sent()
                .iter()
                .filter(|r| r["to"] == to::FIRST_ONLY)
                .count();
            if earlier > 1 {
                return graph_error(
                    AxStatus::BAD_REQUEST,
                    131026,
                    "Message undeliverable",
                    "Unable to deliver message.",
                );
            }
        }
        _ => {}
    }
    let n = fake.next();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.FAKE{n}"), "message_status": "accepted"}],
    }))
    .into_response()
}

/// `GET /{version}/{id}`: the phone number, or a media item.
async fn node(
    State(fake): State<Arc<Fake>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if id == PNID {
        return axum::Json(json!({
            "verified_name": "Lucky Shrub",
            "code_verification_status": "VERIFIED",
            "display_phone_number": "+1 555-078-3881",
            "quality_rating": "GREEN",
            "id": PNID
        }))
        .into_response();
    }
    let resolves = {
        let mut r = fake.resolves.lock().expect("lock");
        let n = r.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let ttl = match (id.as_str(), resolves) {
        ("1002", _) | ("1003", 1) => Duration::ZERO,
        ("1004", _) => Duration::from_millis(50),
        _ => Duration::from_secs(300),
    };
    let (mime, size_lie) = match id.as_str() {
        "1000" | "1002" | "1003" | "1004" | "2003" => ("image/jpeg", None),
        "2000" => ("video/mp4", Some(50_000_000u64)),
        "2001" => ("image/png", Some(10)),
        "2002" => ("application/x-msdownload", None),
        "3000" => ("image/jpeg", None),
        _ => {
            return graph_error(
                AxStatus::BAD_REQUEST,
                100,
                "Invalid parameter",
                &format!("Unsupported get request. Object with ID '{id}' does not exist"),
            );
        }
    };
    let bytes = media_bytes(&id);
    let sha = if id == "2003" {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes))
    } else {
        sha256_hex(&bytes)
    };
    let token = format!("t{}", fake.next());
    fake.grants.lock().expect("lock").insert(
        token.clone(),
        Grant {
            media_id: id.clone(),
            expires: Instant::now() + ttl,
            used: false,
        },
    );
    let base = if id == "3000" {
        fake.base().replace("127.0.0.1", "localhost")
    } else {
        fake.base()
    };
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{base}/whatsapp_business/attachments/?mid={id}&token={token}"),
        "mime_type": mime,
        "sha256": sha,
        "file_size": size_lie.unwrap_or(bytes.len() as u64),
        "id": id,
    }))
    .into_response()
}

/// The media CDN: bearer required, each URL valid once and until its expiry.
async fn attachment(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return AxStatus::UNAUTHORIZED.into_response();
    }
    let token = q.get("token").cloned().unwrap_or_default();
    let media_id = {
        let mut grants = fake.grants.lock().expect("lock");
        match grants.get_mut(&token) {
            Some(g) if !g.used && Instant::now() < g.expires => {
                g.used = true;
                g.media_id.clone()
            }
            _ => return AxStatus::NOT_FOUND.into_response(),
        }
    };
    fake.downloads.lock().expect("lock").push(media_id.clone());
    let mime = if media_id == "2001" {
        "image/png"
    } else {
        "image/jpeg"
    };
    let bytes = media_bytes(&media_id);
    if media_id == "2001" {
        // Streamed without a length, larger than the lookup said.
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(500)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        return ([(header::CONTENT_TYPE, mime)], body).into_response();
    }
    ([(header::CONTENT_TYPE, mime)], bytes).into_response()
}

/// Public media for outbound sends: no credentials expected, none accepted.
async fn public(
    State(fake): State<Arc<Fake>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return (AxStatus::BAD_REQUEST, "credentials leaked to a third party").into_response();
    }
    fake.public_fetches.lock().expect("lock").push(name.clone());
    let file = |ct: &str, len: usize| {
        ([(header::CONTENT_TYPE, ct.to_string())], vec![0x5Au8; len]).into_response()
    };
    match name.as_str() {
        "photo.jpg" => file("image/jpeg", 1200),
        "clip.mp4" => file("video/mp4", 2000),
        "note.ogg" => file("audio/ogg", 800),
        "invoice.pdf" => file("application/pdf; charset=binary", 3000),
        "huge.jpg" => file("image/jpeg", 5 * 1024 * 1024 + 1),
        "busy" => AxStatus::SERVICE_UNAVAILABLE.into_response(),
        _ => AxStatus::NOT_FOUND.into_response(),
    }
}

pub(super) async fn spawn_fake() -> (Arc<Fake>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/{version}/{pnid}/messages", post(messages))
        .route("/{version}/{pnid}/media", post(super::fake_upload::upload))
        .route("/{version}/{id}", get(node))
        .route("/whatsapp_business/attachments/", get(attachment))
        .route("/public/{name}", get(public))
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

pub(super) fn settings(graph_base: &str) -> WhatsappSettings {
    WhatsappSettings {
        phone_number_id: PNID.into(),
        access_token: Secret::new(TOKEN),
        app_secret: Secret::new("app-secret"),
        verify_token: Secret::new("verify"),
        graph_base: graph_base.into(),
        graph_version: VERSION.into(),
        timeout_secs: 1,
        media_timeout_secs: 2,
        read_receipts: true,
        business_account_id: None,
    }
}

pub(super) fn client_with(s: WhatsappSettings) -> GraphClient {
    let http = reqwest::Client::builder().build().expect("client");
    // The fake media server is local: private addresses allowed.
    let public_http = switchboard_core::public_http::PublicHttp::new(true).expect("client");
    GraphClient::new(http, public_http, Arc::new(s), "test".into())
}

pub(super) fn outbound(to: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: "m1".into(),
        tenant_id: "t".into(),
        channel_id: "test".into(),
        conversation_id: "c1".into(),
        to: Identity {
            kind: IdentityKind::Whatsapp,
            value: to.into(),
        },
        subject: None,
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
        allowed_types: vec!["image/*".into(), "video/*".into()],
    }
}
