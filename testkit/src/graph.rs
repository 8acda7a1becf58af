//! A local fake of Meta's Graph API for the WhatsApp client tests and the end-to-end tests,
//! following Meta's documented shapes: a bearer token everywhere (Graph error 190
//! otherwise); the messages endpoint (`{"messaging_product","contacts","messages":[{"id"}]}`,
//! read receipts answered `{"success":true}`); multipart media upload (`{"id"}`,
//! [`crate::graph_upload`]); `GET /{version}/{id}`: the phone number, or a media item whose
//! download URLs expire (see [`crate::graph_media`]); public media for outbound sends, which
//! must never see our token. Errors come on demand: planned ([`FakeGraph::plan_error`]) or
//! by recipient number ([`to`]).
//!
//! Also the webhook side: Meta's signature and delivery payloads.

use crate::graph_media::{Media, attachment, node, public};
use crate::graph_upload::{Upload, upload};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const ACCESS_TOKEN: &str = "EAAG-test-access-token";
pub const APP_SECRET: &str = "wa-app-secret-for-tests";
pub const VERIFY_TOKEN: &str = "wa-verify-token";
pub const VERSION: &str = "v21.0";

/// Recipients that make the messages endpoint fail in documented ways.
pub mod to {
    pub const REENGAGEMENT: &str = "15550131047";
    pub const RATE_LIMITED: &str = "15550130429";
    pub const WABA_RATE_LIMIT: &str = "15550080007";
    pub const SERVER_ERROR: &str = "15550000500";
    pub const EXPIRED_TOKEN: &str = "15550000190";
    /// Answers after 3 s.
    pub const SLOW: &str = "15550000009";
    pub const NOT_JSON: &str = "15550000002";
    /// Accepts the first message, refuses every later one.
    pub const FIRST_ONLY: &str = "15550000003";
}

#[derive(Default)]
pub struct GraphState {
    /// JSON bodies posted to the messages endpoint (sends and read receipts).
    pub(crate) sent: Mutex<Vec<Value>>,
    /// Planned error answers for sends: (HTTP status, Graph error code).
    pub(crate) plan: Mutex<VecDeque<(u16, i64)>>,
    pub(crate) uploads: Mutex<Vec<Upload>>,
    /// Media ids downloaded successfully.
    pub(crate) downloads: Mutex<Vec<String>>,
    /// Authorized download requests, expired URLs included.
    pub(crate) download_attempts: AtomicUsize,
    pub(crate) resolutions: AtomicUsize,
    pub(crate) public_fetches: Mutex<Vec<String>>,
    pub(crate) media: Mutex<HashMap<String, Media>>,
    pub(crate) resolves: Mutex<HashMap<String, u32>>,
    pub(crate) grants: Mutex<HashMap<String, crate::graph_media::Grant>>,
    counter: Mutex<u64>,
    addr: Mutex<Option<SocketAddr>>,
}

impl GraphState {
    /// A fresh number for ids the fake hands out.
    pub(crate) fn next(&self) -> u64 {
        let mut c = self.counter.lock().expect("lock");
        *c += 1;
        *c
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr.lock().expect("lock").expect("bound"))
    }
}

pub struct FakeGraph {
    pub base: String,
    pub state: Arc<GraphState>,
}

impl FakeGraph {
    pub async fn start() -> Self {
        crate::install_crypto();
        let state = Arc::new(GraphState::default());
        let app = Router::new()
            .route("/{version}/{pnid}/messages", post(messages))
            .route("/{version}/{pnid}/media", post(upload))
            .route("/{version}/{id}", get(node))
            .route("/whatsapp_business/attachments/", get(attachment))
            .route("/public/{name}", get(public))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind graph");
        let addr = listener.local_addr().expect("addr");
        *state.addr.lock().expect("lock") = Some(addr);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// A media item; see [`Media`] for expiring URLs, lies and other cases.
    pub fn add(&self, id: &str, media: Media) {
        self.state
            .media
            .lock()
            .expect("lock")
            .insert(id.into(), media);
    }

    /// A media item whose first download URL has already expired (Meta's URLs live about
    /// five minutes), so a media job must re-resolve it.
    pub fn add_media(&self, id: &str, mime: &str, bytes: &[u8]) {
        self.add(id, Media::new(mime, bytes.to_vec()).expired_first(1));
    }

    pub fn plan_error(&self, status: u16, code: i64) {
        self.state
            .plan
            .lock()
            .expect("lock")
            .push_back((status, code));
    }

    pub fn sent(&self) -> Vec<Value> {
        self.state.sent.lock().expect("lock").clone()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.state.uploads.lock().expect("lock").clone()
    }

    /// How many media downloads succeeded.
    pub fn downloads(&self) -> usize {
        self.state.downloads.lock().expect("lock").len()
    }

    /// How many media downloads were tried (with the token), expired URLs included.
    pub fn download_attempts(&self) -> usize {
        self.state.download_attempts.load(Ordering::SeqCst)
    }

    /// How many media lookups (`GET /{version}/{media-id}`) there were.
    pub fn resolutions(&self) -> usize {
        self.state.resolutions.load(Ordering::SeqCst)
    }

    /// Public media names fetched (for outbound sends).
    pub fn public_fetches(&self) -> Vec<String> {
        self.state.public_fetches.lock().expect("lock").clone()
    }
}

pub(crate) fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

/// Meta's error body.
pub(crate) fn graph_error(status: StatusCode, code: i64, message: &str, details: &str) -> Response {
    let body = json!({"error": {
        "message": format!("(#{code}) {message}"),
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "AbCdEfGhIjKlMnOp"
    }});
    (status, axum::Json(body)).into_response()
}

pub(crate) fn unauthorized() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        190,
        "Error validating access token: Session has expired",
        "Error validating access token",
    )
}

fn invalid(details: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter", details)
}

async fn messages(
    State(fake): State<Arc<GraphState>>,
    Path((version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if version != VERSION || pnid != PHONE_NUMBER_ID {
        return invalid("unknown phone number id");
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return invalid("body is not JSON");
    };
    fake.sent.lock().expect("lock").push(req.clone());
    if req["messaging_product"] != "whatsapp" {
        return invalid("messaging_product");
    }
    if req["status"] == "read" {
        return if req["message_id"] == "wamid.unknown" {
            invalid("unknown message id")
        } else {
            axum::Json(json!({"success": true})).into_response()
        };
    }
    if let Some((status, code)) = fake.plan.lock().expect("lock").pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        return graph_error(status, code, "planned error", "planned error");
    }
    let to = req["to"].as_str().unwrap_or_default().to_string();
    if let Some(refusal) = refusal_for(&fake, &to).await {
        return refusal;
    }
    let n = fake.next();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.FAKE{n}"), "message_status": "accepted"}],
    }))
    .into_response()
}

/// The documented failure a [`to`] recipient stands for (none for other numbers).
async fn refusal_for(fake: &GraphState, to: &str) -> Option<Response> {
    let error = |status, code, message, details| Some(graph_error(status, code, message, details));
    match to {
        to::REENGAGEMENT => error(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ),
        to::RATE_LIMITED => error(
            StatusCode::TOO_MANY_REQUESTS,
            130429,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
        to::WABA_RATE_LIMIT => error(
            StatusCode::BAD_REQUEST,
            80007,
            "Rate limit issues",
            "The WhatsApp Business Account has reached its rate limit.",
        ),
        to::SERVER_ERROR => {
            Some((StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response())
        }
        to::EXPIRED_TOKEN => Some(unauthorized()),
        to::SLOW => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            None
        }
        to::NOT_JSON => Some((StatusCode::OK, "accepted!").into_response()),
        to::FIRST_ONLY => {
            let sent = fake.sent.lock().expect("lock");
            let earlier = sent.iter().filter(|r| r["to"] == to::FIRST_ONLY).count();
            (earlier > 1).then(|| {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    131026,
                    "Message undeliverable",
                    "Unable to deliver message.",
                )
            })
        }
        _ => None,
    }
}

/// `sha256=` + hex HMAC-SHA256(app secret, body), as Meta signs webhook deliveries.
pub fn meta_signature(body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
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
