//! A local fake of Twilio's REST API, for the connector's client tests and the end-to-end
//! tests alike. It records what it receives and answers as Twilio documents:
//! - Messages API: 201 with the Message JSON; 401 (error 20003) without the right basic
//!   auth; planned answers ([`FakeTwilio::plan`]) in order; and Twilio's magic test numbers
//!   as recipients for refusals (`+15005550001`: 400/21211), 429 (`…0429`), 500 (`…0500`),
//!   404 (`…0404`), a 201 that is not JSON (`…0002`) and a slow answer (`…0009`, 3 s);
//!   [`FakeTwilio::delay_answers`] holds the answers to created messages (the message
//!   exists at once, as when Twilio accepted it and the answer was lost);
//! - the Messages list (`GET …/Messages.json`): the messages created so far, as sent, with
//!   Twilio's filters and paging (see [`crate::twilio_list`]);
//! - the account (`GET /Accounts/{sid}.json`): active, or suspended for `ACsuspended…`;
//! - media behind basic auth: Twilio's `…/Media/{id}` redirecting to a CDN path (failing
//!   with 503 on demand), and `/media/{name}` cases: same-host and cross-host redirects,
//!   oversized bodies, a disallowed type, 503 and a CDN that must never see credentials;
//!   every media request's path is recorded ([`FakeTwilio::media_requests`]).
//!
//! Any account SID (`AC…`) is accepted with the right token, as the client tests swap SIDs.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789";
pub const OUR_NUMBER: &str = "+15005550006";

/// A Messages API request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub form: Vec<(String, String)>,
    /// When the fake received it (to measure retry delays).
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn field(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub struct FakeState {
    pub requests: Mutex<Vec<Recorded>>,
    /// Planned answers for the Messages API, consumed in order; empty means the default.
    /// The third item is a `Retry-After` value to answer with.
    pub plan: Mutex<VecDeque<(u16, Value, Option<String>)>>,
    /// The bytes behind Twilio's media URLs ([`FakeTwilio::media_url`]).
    pub media: Mutex<Vec<u8>>,
    /// How many media downloads to fail with 503 before serving the bytes.
    pub media_failures: AtomicUsize,
    /// How the SIDs of sent messages start (then digits, 34 characters as Twilio's).
    pub sid_prefix: Mutex<String>,
    /// The Message resources created, oldest first, as the list shows them (sent).
    pub messages: Mutex<Vec<Value>>,
    /// Milliseconds the answer to a created message is held back.
    pub answer_delay_ms: AtomicU64,
    /// The paths of the media requests received, in order.
    pub media_requests: Mutex<Vec<String>>,
    port: AtomicUsize,
}

impl FakeState {
    fn record_media(&self, path: String) {
        self.media_requests.lock().expect("lock").push(path);
    }
}

pub struct FakeTwilio {
    pub base: String,
    pub state: Arc<FakeState>,
}

impl FakeTwilio {
    pub async fn start() -> Self {
        crate::install_crypto();
        let state = Arc::new(FakeState::default());
        *state.media.lock().expect("lock") = b"\x89PNG\r\n\x1a\nfake-png-bytes".to_vec();
        // Distinct from the inbound SIDs tests make up (`SM000…1`), so a status callback
        // for our message never matches theirs.
        *state.sid_prefix.lock().expect("lock") = "SMfake".into();
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(messages).get(crate::twilio_list::list),
            )
            .route("/2010-04-01/Accounts/{file}", get(account))
            .route(
                "/2010-04-01/Accounts/{sid}/Messages/{msg}/Media/{media}",
                get(media_redirect),
            )
            .route("/cdn/{media}", get(media_bytes))
            .route("/media/{name}", get(media_case))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let addr = listener.local_addr().expect("addr");
        state.port.store(addr.port().into(), Ordering::SeqCst);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            state,
        }
    }

    pub fn plan(&self, status: u16, body: Value) {
        self.state
            .plan
            .lock()
            .expect("lock")
            .push_back((status, body, None));
    }

    /// Like [`Self::plan`], with a `Retry-After` header (seconds or an HTTP date).
    pub fn plan_retry_after(&self, status: u16, body: Value, retry_after: &str) {
        self.state.plan.lock().expect("lock").push_back((
            status,
            body,
            Some(retry_after.to_string()),
        ));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// The decoded forms of the Messages API requests, in order.
    pub fn sent(&self) -> Vec<Vec<(String, String)>> {
        self.requests().into_iter().map(|r| r.form).collect()
    }

    /// Holds the answer to every created message for `delay` (the message is created, and
    /// listed, at once).
    pub fn delay_answers(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.answer_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The Message resources created so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        self.state.messages.lock().expect("lock").clone()
    }

    /// The paths of the media requests received so far.
    pub fn media_requests(&self) -> Vec<String> {
        self.state.media_requests.lock().expect("lock").clone()
    }

    pub fn media_url(&self, n: u32) -> String {
        format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{n}/Media/ME{n}",
            self.base
        )
    }
}

/// The account of a basic `Authorization` header with the right token.
pub(crate) fn account_of(headers: &HeaderMap) -> Option<String> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|d| String::from_utf8(d).ok())?;
    let (user, pass) = decoded.split_once(':')?;
    (user.starts_with("AC") && pass == AUTH_TOKEN).then(|| user.to_string())
}

pub(crate) fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

async fn messages(
    State(s): State<Arc<FakeState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let n = {
        let mut requests = s.requests.lock().expect("lock");
        requests.push(Recorded {
            path: format!("/2010-04-01/Accounts/{sid}/Messages.json"),
            authorization,
            form: form.clone(),
            at: std::time::Instant::now(),
        });
        requests.len()
    };
    if account_of(&headers).is_none() {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let planned = s.plan.lock().expect("lock").pop_front();
    if let Some((status, body, retry_after)) = planned {
        let mut resp = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(body),
        )
            .into_response();
        if let Some(v) = retry_after.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let to = get("To").unwrap_or_default();
    match to.as_str() {
        "+15005550001" => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                21211,
                "The 'To' number +15005550001 is not a valid phone number.",
            );
        }
        "+15005550429" => {
            return twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        }
        "+15005550500" => return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        "+15005550404" => return (StatusCode::NOT_FOUND, "").into_response(),
        "+15005550009" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return StatusCode::CREATED.into_response();
        }
        "+15005550002" => return (StatusCode::CREATED, "not json").into_response(),
        _ => {}
    }
    // Numbered by request for stable assertions.
    let prefix = s.sid_prefix.lock().expect("lock").clone();
    let msg = format!(
        "{prefix}{n:0width$}",
        width = 34usize.saturating_sub(prefix.len())
    );
    let resource = message_resource(&sid, &msg, &to, &get);
    // Twilio has the message from here on, whatever happens to the answer: the list shows
    // it sent.
    let mut listed = resource.clone();
    listed["status"] = json!("sent");
    listed["date_sent"] = listed["date_created"].clone();
    s.messages.lock().expect("lock").push(listed);
    let delay = s.answer_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    (StatusCode::CREATED, axum::Json(resource)).into_response()
}

/// The Message resource of a created message, as Twilio answers it (queued).
fn message_resource(
    account: &str,
    msg: &str,
    to: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Value {
    let now = crate::twilio_list::rfc2822_now();
    json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": get("Body").unwrap_or_default(),
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": get("From"),
        "messaging_service_sid": get("MessagingServiceSid"),
        "num_media": get("MediaUrl").map_or("0", |_| "1"),
        "num_segments": "1",
        "price": null,
        "price_unit": "USD",
        "sid": msg,
        "status": "queued",
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{account}/Messages/{msg}/Media.json")},
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{msg}.json")
    })
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json`: the account, as the health check reads it.
async fn account(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(user) = account_of(&headers) else {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    };
    match file.strip_suffix(".json") {
        Some(sid) if sid == user => {
            let status = if sid.starts_with("ACsuspended") {
                "suspended"
            } else {
                "active"
            };
            axum::Json(json!({
                "sid": sid, "status": status, "type": "Full", "friendly_name": "test account"
            }))
            .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn media_redirect(
    State(s): State<Arc<FakeState>>,
    Path((sid, msg, media)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    s.record_media(format!(
        "/2010-04-01/Accounts/{sid}/Messages/{msg}/Media/{media}"
    ));
    if account_of(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/cdn/{media}"))],
    )
        .into_response()
}

async fn media_bytes(State(s): State<Arc<FakeState>>, Path(media): Path<String>) -> Response {
    s.record_media(format!("/cdn/{media}"));
    if s.media_failures.load(Ordering::SeqCst) > 0 {
        s.media_failures.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let bytes = s.media.lock().expect("lock").clone();
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

fn jpeg(len: usize) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], vec![0xFFu8; len]).into_response()
}

/// `/media/{name}`: one download case per name (see the module docs).
async fn media_case(
    State(s): State<Arc<FakeState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.record_media(format!("/media/{name}"));
    if name == "cdn" {
        // The CDN must never see our credentials.
        return if headers.contains_key(header::AUTHORIZATION) {
            (StatusCode::BAD_REQUEST, "credentials leaked").into_response()
        } else {
            jpeg(10)
        };
    }
    if account_of(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let port = s.port.load(Ordering::SeqCst);
    match name.as_str() {
        "ok" => jpeg(100),
        "redirect" => (StatusCode::FOUND, [(header::LOCATION, "/media/ok")]).into_response(),
        "cross-host" => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                format!("http://localhost:{port}/media/cdn"),
            )],
        )
            .into_response(),
        "big-declared" => jpeg(5000),
        "big-streamed" => {
            let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 100])));
            let body = Body::from_stream(futures::stream::iter(chunks.collect::<Vec<_>>()));
            ([(header::CONTENT_TYPE, "image/png")], body).into_response()
        }
        "exe" => (
            [(header::CONTENT_TYPE, "application/x-msdownload")],
            vec![0u8; 10],
        )
            .into_response(),
        "busy" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Twilio's algorithm, written independently of the connector: HMAC-SHA1 over the URL
/// followed by the parameters sorted by name, each name directly followed by its value.
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("hmac key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A Twilio inbound SMS webhook's parameters, as Twilio sends them.
pub fn sms_params<'a>(sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", "94105"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", OUR_NUMBER),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}
