//! End-to-end test support: the real `switchboard` binary started on a free port with a
//! generated configuration and a fresh database, and a fake Twilio API that records what it
//! receives and answers as Twilio documents (201 JSON, 400 with an error code, 429, 500).
#![allow(dead_code)]

pub mod graph;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789";
pub const OUR_NUMBER: &str = "+15005550006";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A request the fake Twilio API received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub form: Vec<(String, String)>,
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
    /// Planned answers for the Messages API, consumed in order; empty means 201.
    pub plan: Mutex<VecDeque<(u16, Value)>>,
    pub media: Mutex<Vec<u8>>,
    /// How many media downloads to fail with 503 before serving the bytes.
    pub media_failures: std::sync::atomic::AtomicUsize,
}

pub struct FakeTwilio {
    pub base: String,
    pub state: Arc<FakeState>,
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        *state.media.lock().expect("lock") = b"\x89PNG\r\n\x1a\nfake-png-bytes".to_vec();
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
            .route("/2010-04-01/Accounts/{file}", get(account))
            .route(
                "/2010-04-01/Accounts/{sid}/Messages/{msg}/Media/{media}",
                get(media_redirect),
            )
            .route("/cdn/{media}", get(media_bytes))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state }
    }

    pub fn plan(&self, status: u16, body: Value) {
        self.state
            .plan
            .lock()
            .expect("lock")
            .push_back((status, body));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn media_url(&self, n: u32) -> String {
        format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{n}/Media/ME{n}",
            self.base
        )
    }
}

fn expected_basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    )
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
    s.requests.lock().expect("lock").push(Recorded {
        path: format!("/2010-04-01/Accounts/{sid}/Messages.json"),
        authorization: authorization.clone(),
        form: form.clone(),
    });
    if authorization.as_deref() != Some(expected_basic().as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})),
        )
            .into_response();
    }
    if let Some((status, body)) = s.plan.lock().expect("lock").pop_front() {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(body),
        )
            .into_response();
    }
    let n = s.requests.lock().expect("lock").len();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "account_sid": sid,
            "api_version": "2010-04-01",
            "body": get("Body"),
            "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
            "date_sent": null,
            "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": get("From"),
            "messaging_service_sid": get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": format!("SMfake{n:026}"),
            "status": "queued",
            "subresource_uris": {"media": format!("/2010-04-01/Accounts/{sid}/Messages/SMfake{n:026}/Media.json")},
            "to": get("To"),
            "uri": format!("/2010-04-01/Accounts/{sid}/Messages/SMfake{n:026}.json")
        })),
    )
        .into_response()
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json`: the account, as the health check reads it.
async fn account(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected_basic().as_str());
    match file.strip_suffix(".json") {
        Some(sid) if ok && sid == ACCOUNT_SID => axum::Json(json!({
            "sid": sid, "status": "active", "type": "Full", "friendly_name": "test account"
        }))
        .into_response(),
        Some(_) if ok => StatusCode::NOT_FOUND.into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response(),
    }
}

async fn media_redirect(
    Path((_, _, media)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected_basic().as_str())
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/cdn/{media}"))],
    )
        .into_response()
}

async fn media_bytes(State(s): State<Arc<FakeState>>) -> Response {
    use std::sync::atomic::Ordering;
    if s.media_failures.load(Ordering::SeqCst) > 0 {
        s.media_failures.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let bytes = s.media.lock().expect("lock").clone();
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

/// The daemon under test.
pub struct Daemon {
    /// None for a handle that only talks to a daemon someone else owns.
    pub child: Option<Child>,
    pub base: String,
    pub dir: std::path::PathBuf,
    pub config: std::path::PathBuf,
    pub http: reqwest::Client,
}

pub fn write_config(dir: &std::path::Path, twilio_base: &str) -> std::path::PathBuf {
    write_config_with(
        dir,
        twilio_base,
        &format!("sqlite://{}/switchboard.db", dir.display()),
    )
}

/// A fresh PostgreSQL database for one test (the server from `SWITCHBOARD_TEST_PG`).
pub async fn fresh_pg_url() -> String {
    use sqlx::Connection;
    let admin = std::env::var("SWITCHBOARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!("sb_e2e_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("bad admin url {admin}"),
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}{}", std::process::id())
}

pub fn write_config_with(
    dir: &std::path::Path,
    twilio_base: &str,
    db_url: &str,
) -> std::path::PathBuf {
    write_config_full(dir, twilio_base, "http://127.0.0.1:9", db_url)
}

/// The full test configuration: a Twilio and a WhatsApp channel for tenant `acme`.
pub fn write_config_full(
    dir: &std::path::Path,
    twilio_base: &str,
    graph_base: &str,
    db_url: &str,
) -> std::path::PathBuf {
    use graph::{ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN};
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536
max_webhook_body_bytes = 65536

[database]
url = "{db_url}"

[blobs]
path = "{dir}/blobs"

[outbox]
base_delay_ms = 50
max_delay_ms = 200
poll_interval_ms = 50
max_attempts = 3

[media]
max_bytes = 1048576

[[tenants]]
id = "acme"

[[tenants]]
id = "other"

[[channels]]
id = "acme-sms"
tenant = "acme"
type = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "${{E2E_TWILIO_TOKEN}}"
from = "{OUR_NUMBER}"
api_base = "{twilio_base}"

[[channels]]
id = "acme-wa"
tenant = "acme"
type = "whatsapp"
phone_number_id = "{PHONE_NUMBER_ID}"
access_token = "{ACCESS_TOKEN}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
graph_base = "{graph_base}"
"#,
        dir = dir.display()
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Adds TOML to one tenant of a configuration written by [`write_config`] (for example
/// `[[tenants.webhooks]]` entries): inserted right after that tenant's `id` line, so the
/// tables it opens belong to that tenant.
pub fn add_to_tenant(config: &std::path::Path, tenant: &str, toml: &str) {
    let text = std::fs::read_to_string(config).expect("read config");
    let line = format!("[[tenants]]\nid = \"{tenant}\"\n");
    let at = text.find(&line).expect("tenant in config") + line.len();
    let mut out = text[..at].to_string();
    out.push_str(toml.trim_start_matches('\n'));
    out.push('\n');
    out.push_str(&text[at..]);
    std::fs::write(config, out).expect("write config");
}

/// Appends top-level TOML (sections, more channels) to a configuration.
pub fn append_config(config: &std::path::Path, toml: &str) {
    let mut text = std::fs::read_to_string(config).expect("read config");
    text.push('\n');
    text.push_str(toml);
    std::fs::write(config, text).expect("write config");
}

/// An HTTP client for tests (rustls with the ring provider, as the daemon uses).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn command(config: &std::path::Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--config")
        .arg(config)
        .env("E2E_TWILIO_TOKEN", AUTH_TOKEN)
        .env("RUST_LOG", "info,switchboard_core=debug");
    c
}

/// Runs a one-shot CLI command and returns its stdout.
pub fn cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = command(config).args(args).output().expect("run cli");
    assert!(
        out.status.success(),
        "switchboard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Daemon {
    pub fn start(dir: &std::path::Path, config: &std::path::Path) -> Self {
        let mut child = command(config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("daemon.log"))
                    .expect("log file"),
            ))
            .spawn()
            .expect("spawn daemon");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("switchboard listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "daemon did not start; log:\n{}",
                    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
                )
            });
        Self {
            child: Some(child),
            base,
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            http: http(),
        }
    }

    /// A handle to a running daemon, without owning (or killing) its process.
    pub fn handle(base: &str, dir: &std::path::Path, config: &std::path::Path) -> Self {
        Self {
            child: None,
            base: base.to_string(),
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            http: http(),
        }
    }

    /// `kill -9`: no shutdown hooks, no flushing.
    pub fn kill9(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn webhook_url(&self, route: &str) -> String {
        format!("{}/webhooks/acme-sms/{route}", self.base)
    }

    /// Posts a form to a Twilio webhook route, signed as Twilio signs it.
    pub async fn post_twilio(&self, route: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let url = self.webhook_url(route);
        let sig = twilio_signature(AUTH_TOKEN, &url, params);
        self.post_form(&url, params, Some(&sig)).await
    }

    pub async fn post_form(
        &self,
        url: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send().await.expect("post webhook")
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("api call");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
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

/// Polls `f` until it returns Some, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An email-only configuration: tenant `acme` and the given `[[channels]]` TOML (see
/// `tests/e2e_email.rs`), with a fast outbox and the given database.
pub fn write_email_config(
    dir: &std::path::Path,
    db_url: &str,
    channels: &str,
) -> std::path::PathBuf {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[database]
url = "{db_url}"

[blobs]
path = "{dir}/blobs"

[outbox]
base_delay_ms = 50
max_delay_ms = 200
poll_interval_ms = 50
max_attempts = 3

[[tenants]]
id = "acme"

{channels}
"#,
        dir = dir.display()
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// The SQLite database URL of a test directory (as [`write_config`] uses).
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}/switchboard.db", dir.display())
}

/// Runs a one-shot CLI command and returns (success, stdout, stderr), whatever the outcome.
pub fn cli_output(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = command(config).args(args).output().expect("run cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

impl Daemon {
    /// A graceful stop: SIGTERM, then waits up to `secs` for the process to exit (and
    /// `kill -9` after that). Returns whether it exited by itself in time.
    pub fn terminate(&mut self, secs: u64) -> bool {
        let Some(c) = self.child.as_mut() else {
            return true;
        };
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if !matches!(c.try_wait(), Ok(None)) {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        self.child = None;
        false
    }

    /// `GET /api/v1/...` as `token`, asserting 200.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.api(reqwest::Method::GET, path, token, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}
