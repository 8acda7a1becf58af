//! A fake Meta Graph API for end-to-end tests, following the documented shapes: the
//! messages endpoint (send, mark-as-read), media resolution (`GET /{version}/{media-id}`)
//! with short-lived download URLs that need the bearer token, and errors on demand.
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const ACCESS_TOKEN: &str = "EAAG-test-access-token";
pub const APP_SECRET: &str = "wa-app-secret-for-tests";
pub const VERIFY_TOKEN: &str = "wa-verify-token";
pub const VERSION: &str = "v21.0";

#[derive(Default)]
pub struct GraphState {
    /// JSON bodies posted to /{version}/{phone-number-id}/messages.
    pub messages: Mutex<Vec<Value>>,
    /// Planned error answers for the messages endpoint: (HTTP status, Graph error code).
    pub plan: Mutex<VecDeque<(u16, i64)>>,
    pub media: Mutex<HashMap<String, (String, Vec<u8>)>>,
    pub base: Mutex<String>,
    /// How many media resolutions so far; the first URL handed out has already expired,
    /// so the media job must re-resolve (Meta's URLs live about five minutes).
    pub resolutions: std::sync::atomic::AtomicUsize,
    pub downloads: std::sync::atomic::AtomicUsize,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct FakeGraph {
    pub base: String,
    pub state: Arc<GraphState>,
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "OAuthException", "code": code,
                                    "error_data": {"messaging_product": "whatsapp", "details": message},
                                    "fbtrace_id": "AbCdEf123"}})),
    )
        .into_response()
}

impl FakeGraph {
    pub async fn start() -> Self {
        let state = Arc::new(GraphState::default());
        let app = Router::new()
            .route("/{version}/{id}/messages", post(messages))
            .route("/{version}/{id}", get(resolve_media))
            .route("/media-download/{id}", get(download))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind graph");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        *state.base.lock().expect("lock") = base.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state }
    }

    pub fn add_media(&self, id: &str, mime: &str, bytes: &[u8]) {
        self.state
            .media
            .lock()
            .expect("lock")
            .insert(id.into(), (mime.into(), bytes.to_vec()));
    }

    pub fn plan_error(&self, status: u16, code: i64) {
        self.state
            .plan
            .lock()
            .expect("lock")
            .push_back((status, code));
    }

    pub fn sent(&self) -> Vec<Value> {
        self.state.messages.lock().expect("lock").clone()
    }
}

async fn messages(
    State(s): State<Arc<GraphState>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    if version != VERSION || id != PHONE_NUMBER_ID {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported post request.");
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    };
    s.messages.lock().expect("lock").push(json.clone());
    if json["status"] == "read" {
        return axum::Json(json!({"success": true})).into_response();
    }
    if let Some((status, code)) = s.plan.lock().expect("lock").pop_front() {
        return graph_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            "planned error",
        );
    }
    let n = s.messages.lock().expect("lock").len();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": json["to"], "wa_id": json["to"]}],
        "messages": [{"id": format!("wamid.OUT{n:020}")}]
    }))
    .into_response()
}

async fn resolve_media(
    State(s): State<Arc<GraphState>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    let media = s.media.lock().expect("lock").get(&id).cloned();
    let Some((mime, bytes)) = media else {
        return graph_error(StatusCode::NOT_FOUND, 100, "Unsupported get request.");
    };
    let base = s.base.lock().expect("lock").clone();
    let sha = hex_sha256(&bytes);
    let first = s
        .resolutions
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        == 0;
    let expires = if first {
        unix_now().saturating_sub(1)
    } else {
        unix_now() + 300
    };
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{base}/media-download/{id}?ext={expires}&hash=abc"),
        "mime_type": mime,
        "sha256": sha,
        "file_size": bytes.len(),
        "id": id
    }))
    .into_response()
}

async fn download(
    State(s): State<Arc<GraphState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.downloads
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let expires: u64 = q.get("ext").and_then(|v| v.parse().ok()).unwrap_or(0);
    if expires < unix_now() {
        return StatusCode::NOT_FOUND.into_response();
    }
    match s.media.lock().expect("lock").get(&id).cloned() {
        Some((mime, bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256=` + hex HMAC-SHA256(app secret, body), as Meta signs webhook deliveries.
pub fn meta_signature(body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A webhook delivery with one inbound message from `wa_id`.
pub fn inbound(wa_id: &str, message: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": wa_id}],
            "messages": [message]
        }}]}]
    })
}

/// A webhook delivery with one status of one of our messages.
pub fn status(wamid: &str, status: &str, recipient: &str) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1739321100", "recipient_id": recipient}]
        }}]}]
    })
}
