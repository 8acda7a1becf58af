//! Outgoing webhooks end to end: the real binary delivers its tenants' events to a local
//! receiver that checks every signature independently (HMAC-SHA256 over `"<t>.<body>"`,
//! constant-time compare, tolerance window), fails on demand and records what it gets.
//! Covered: in-order delivery of exactly the tenant's events, filters, retries after
//! failures without skipping or reordering, disabling after a run of failures, re-enabling
//! through the API, test sends, the delivery log, admin-only access and tenant isolation;
//! and on PostgreSQL, two replicas that never deliver to one endpoint at the same time.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, AppBuilder, Daemon, eventually, switchboard_bin};

const OTHER_SECRET: &str = "other-tenant-webhook-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    endpoint: String,
    id: i64,
    kind: String,
    body: Value,
    /// The signature verified, the headers agree with the body, the content type is JSON.
    valid: bool,
    /// What the receiver answered.
    answered: u16,
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Got>>,
    /// Per endpoint path: how many of the next requests get a 500 (usize::MAX: all).
    fail: Mutex<HashMap<String, usize>>,
    secrets: HashMap<String, String>,
    /// Per endpoint path: requests in flight now, and the most ever at once.
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
    delay_ms: AtomicUsize,
}

struct Receiver {
    base: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(secrets: &[(&str, &str)]) -> Self {
        let state = Arc::new(ReceiverState {
            secrets: secrets
                .iter()
                .map(|(p, s)| (p.to_string(), s.to_string()))
                .collect(),
            ..Default::default()
        });
        let app = Router::new()
            .route("/{endpoint}", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state }
    }

    fn fail(&self, endpoint: &str, n: usize) {
        self.state
            .fail
            .lock()
            .expect("lock")
            .insert(endpoint.to_string(), n);
    }

    fn got(&self, endpoint: &str) -> Vec<Got> {
        self.state
            .got
            .lock()
            .expect("lock")
            .iter()
            .filter(|g| g.endpoint == endpoint)
            .cloned()
            .collect()
    }

    /// The events an endpoint accepted (2xx), in arrival order, without test sends.
    fn delivered(&self, endpoint: &str) -> Vec<(i64, String)> {
        self.got(endpoint)
            .into_iter()
            .filter(|g| g.answered == 200 && g.kind != "webhook.test")
            .map(|g| (g.id, g.kind))
            .collect()
    }

    fn max_in_flight(&self, endpoint: &str) -> usize {
        self.state
            .in_flight
            .lock()
            .expect("lock")
            .get(endpoint)
            .map_or(0, |(_, max)| *max)
    }
}

/// The receiver's own check of `Switchboard-Signature`, written from the README: HMAC-SHA256
/// of `"<t>.<raw body>"` with the secret, hex, compared in constant time (`verify_slice`),
/// and `t` within five minutes of now.
fn signature_ok(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - t).abs() > 300 {
        return false;
    }
    sigs.iter().any(|hex| {
        let Some(bytes) = decode_hex(hex) else {
            return false;
        };
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&bytes).is_ok()
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn receive(
    State(s): State<Arc<ReceiverState>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    {
        let mut f = s.in_flight.lock().expect("lock");
        let e = f.entry(endpoint.clone()).or_insert((0, 0));
        e.0 += 1;
        e.1 = e.1.max(e.0);
    }
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = json["id"].as_i64().unwrap_or(-1);
    let kind = json["type"].as_str().unwrap_or_default().to_string();
    let secret = s.secrets.get(&endpoint).cloned().unwrap_or_default();
    let valid = signature_ok(&secret, &header("switchboard-signature"), &body)
        && header("content-type") == "application/json"
        && header("switchboard-event-id") == id.to_string()
        && header("switchboard-event-type") == kind
        && json.get("data").is_some()
        && json["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'));
    let fail = {
        let mut fail = s.fail.lock().expect("lock");
        match fail.get_mut(&endpoint) {
            Some(n) if *n > 0 => {
                if *n != usize::MAX {
                    *n -= 1;
                }
                true
            }
            _ => false,
        }
    };
    let answered = if !valid {
        StatusCode::UNAUTHORIZED
    } else if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    s.got.lock().expect("lock").push(Got {
        endpoint: endpoint.clone(),
        id,
        kind,
        body: json,
        valid,
        answered: answered.as_u16(),
    });
    if let Some(e) = s.in_flight.lock().expect("lock").get_mut(&endpoint) {
        e.0 -= 1;
    }
    answered
}

/// A tenant's events as the database has them: (id, type), oldest first.
async fn db_events(db_url: &str, tenant: &str) -> Vec<(i64, String)> {
    if db_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db_url)
            .await
            .expect("open sqlite");
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, type FROM events WHERE tenant_id = $1 ORDER BY seq")
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .expect("events");
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(db_url).await.expect("open postgres");
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, type FROM events WHERE tenant_id = $1 ORDER BY seq")
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .expect("events");
        pool.close().await;
        rows
    }
}

fn sid(n: u32) -> String {
    format!("SM{n:032}")
}

async fn inbound_acme(d: &Daemon, n: u32) {
    let r = d
        .post_twilio("messages", &sms_params(&sid(n), "+14155550170", "hook me"))
        .await;
    assert_eq!(r.status(), 200);
}

async fn inbound_other(d: &Daemon, n: u32) {
    let url = format!("{}/webhooks/other-sms/messages", d.base);
    let s = sid(1000 + n);
    let params = sms_params(&s, "+14155550171", "other tenant");
    let sig = twilio_signature(AUTH_TOKEN, &url, &params);
    let r = d.post_form(&url, &params, Some(&sig)).await;
    assert_eq!(r.status(), 200);
}

/// The tenants' webhook endpoints (at `receiver`), fast webhook retries, and a Twilio
/// channel for tenant `other` (on the fake at `twilio_base`).
fn with_webhooks(app: AppBuilder, receiver: &str, twilio_base: &str) -> AppBuilder {
    app.tenant_toml(
        "acme",
        &format!(
            r#"
[[tenants.webhooks]]
id = "all"
url = "{receiver}/acme-all"
secret = "${{E2E_TWILIO_TOKEN}}"

[[tenants.webhooks]]
id = "messages"
url = "{receiver}/acme-messages"
secret = "${{E2E_TWILIO_TOKEN}}"
events = ["message.*"]
"#
        ),
    )
    .tenant_toml(
        "other",
        &format!(
            r#"
[[tenants.webhooks]]
id = "all"
url = "{receiver}/other-all"
secret = "{OTHER_SECRET}"
"#
        ),
    )
    .toml(&format!(
        r#"
[webhooks]
disable_after = 4
base_delay_ms = 50
max_delay_ms = 200
timeout_secs = 3
lease_secs = 10

[[channels]]
id = "other-sms"
tenant = "other"
type = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "${{E2E_TWILIO_TOKEN}}"
from = "+15005550007"
api_base = "{twilio_base}"
"#
    ))
}

fn receiver_secrets() -> [(&'static str, &'static str); 3] {
    [
        ("acme-all", AUTH_TOKEN),
        ("acme-messages", AUTH_TOKEN),
        ("other-all", OTHER_SECRET),
    ]
}

/// Waits until `endpoint` has accepted exactly the tenant's events in the database.
async fn caught_up(r: &Receiver, endpoint: &str, db: &str, tenant: &str) -> Vec<(i64, String)> {
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let want = db_events(db, tenant).await;
        let got = r.delivered(endpoint);
        if !want.is_empty() && got == want {
            return got;
        }
        last = (want, got);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{endpoint} did not catch up with {tenant}'s events:\nwant {:?}\ngot  {:?}",
        last.0, last.1
    );
}

fn webhook<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|w| w["id"] == id))
        .unwrap_or_else(|| panic!("no webhook {id} in {list}"))
}

/// An RFC 3339 UTC timestamp with its fraction padded to milliseconds (`…10.88Z` →
/// `…10.880Z`, no fraction → `.000`), so that string order is time order.
fn sortable(t: &str) -> String {
    let t = t.trim_end_matches('Z');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    format!("{whole}.{frac:0<3}Z")
}

/// Every entry of an endpoint's delivery log, following the cursor.
async fn delivery_log(d: &Daemon, token: &str, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/webhooks/{id}/deliveries?limit=5&cursor={c}"),
            None => format!("/api/v1/webhooks/{id}/deliveries?limit=5"),
        };
        let (status, page) = d.api(Method::GET, &path, token, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= 5);
        out.extend(items);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_in_order_retry_disable_and_resume() {
    let twilio = FakeTwilio::start().await;
    let twilio_base = twilio.base.clone();
    let r = Receiver::start(&receiver_secrets()).await;
    let app = App::builder(switchboard_bin!()).with_twilio(twilio);
    let d = with_webhooks(app, &r.base, &twilio_base)
        .token("acme", "admin", "boss")
        .token("acme", "agent", "ann")
        .token("other", "admin", "olga")
        .spawn()
        .await;
    let db = d.database_url.clone();
    let [admin, agent, other] = d.tokens.clone().try_into().expect("three tokens");

    // The endpoints, as configured; new ones start at the newest event (none yet).
    let (status, list) = d.api(Method::GET, "/api/v1/webhooks", &admin, None).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| w["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec!["all", "messages"]);
    let all = webhook(&list, "all");
    assert_eq!(all["state"], "enabled");
    // Only the channels' start-up health events can have been delivered yet: whatever the
    // cursor passed is `channel.updated`.
    let cursor = all["cursor"].as_i64().expect("cursor");
    let passed: Vec<(i64, String)> = db_events(&db, "acme")
        .await
        .into_iter()
        .filter(|(seq, _)| *seq <= cursor)
        .collect();
    assert!(
        passed.iter().all(|(_, kind)| kind == "channel.updated"),
        "{all}: delivered before any traffic: {passed:?}"
    );
    assert_eq!(all["consecutive_failures"], 0);
    assert_eq!(
        webhook(&list, "messages")["events"],
        serde_json::json!(["message.*"])
    );
    assert!(
        !list.to_string().contains(AUTH_TOKEN),
        "a secret leaked: {list}"
    );

    // Admin only; another tenant's endpoint is a 404.
    for (method, path) in [
        (Method::GET, "/api/v1/webhooks"),
        (Method::GET, "/api/v1/webhooks/all/deliveries"),
        (Method::POST, "/api/v1/webhooks/all/test"),
        (Method::POST, "/api/v1/webhooks/all/enable"),
    ] {
        let (status, body) = d.api(method.clone(), path, &agent, None).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    for (method, path) in [
        (Method::GET, "/api/v1/webhooks/messages/deliveries"),
        (Method::POST, "/api/v1/webhooks/messages/test"),
        (Method::POST, "/api/v1/webhooks/messages/enable"),
        (Method::GET, "/api/v1/webhooks/nope/deliveries"),
    ] {
        let (status, body) = d.api(method.clone(), path, &other, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, theirs) = d.api(Method::GET, "/api/v1/webhooks", &other, None).await;
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        webhook(&theirs, "all")["url"],
        format!("{}/other-all", r.base)
    );

    // 1. Events arrive in order, exactly the tenant's, signed; filters apply.
    inbound_acme(&d, 1).await;
    inbound_other(&d, 1).await;
    let first = caught_up(&r, "acme-all", &db, "acme").await;
    let kinds: Vec<&str> = first.iter().map(|(_, k)| k.as_str()).collect();
    assert!(kinds.contains(&"conversation.created"), "{kinds:?}");
    assert!(kinds.contains(&"message.created"), "{kinds:?}");
    caught_up(&r, "other-all", &db, "other").await;
    assert!(
        r.got("other-all")
            .iter()
            .all(|g| g.body["data"]["channel_id"] != "acme-sms"),
        "another tenant's events leaked"
    );
    // Each tenant counts its own events, 1, 2, 3... with no gaps, however they interleave;
    // the endpoints got exactly those ids.
    for (tenant, endpoint) in [("acme", "acme-all"), ("other", "other-all")] {
        let ids: Vec<i64> = r.delivered(endpoint).iter().map(|(id, _)| *id).collect();
        let want: Vec<i64> = (1..=i64::try_from(ids.len()).expect("few")).collect();
        assert_eq!(ids, want, "{tenant}'s event ids");
    }
    let message = r
        .got("acme-all")
        .into_iter()
        .find(|g| g.kind == "message.created")
        .expect("message.created");
    assert_eq!(message.body["data"]["channel_id"], "acme-sms");
    let keys: Vec<&str> = message
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec!["created_at", "data", "id", "type"]);

    // 2. Failures are retried, in order, without skipping.
    r.fail("acme-all", 2);
    inbound_acme(&d, 2).await;
    inbound_acme(&d, 3).await;
    let second = caught_up(&r, "acme-all", &db, "acme").await;
    let failed: Vec<Got> = r
        .got("acme-all")
        .into_iter()
        .filter(|g| g.answered == 500)
        .collect();
    assert_eq!(failed.len(), 2);
    let head = second[first.len()].0;
    assert!(failed.iter().all(|g| g.id == head), "{failed:?}");
    // Each event was accepted once, in increasing order.
    assert!(second.windows(2).all(|w| w[0].0 < w[1].0), "{second:?}");
    // The message.* endpoint got exactly the message events, unaffected.
    let want_messages: Vec<(i64, String)> = db_events(&db, "acme")
        .await
        .into_iter()
        .filter(|(_, k)| k.starts_with("message."))
        .collect();
    eventually(10, || async {
        (r.delivered("acme-messages") == want_messages).then_some(())
    })
    .await;
    let log = delivery_log(&d, &admin, "all").await;
    let mut attempts: Vec<(i64, Option<i64>)> = log
        .iter()
        .filter(|e| e["event_id"] == head)
        .map(|e| {
            (
                e["attempt"].as_i64().unwrap_or(0),
                e["status_code"].as_i64(),
            )
        })
        .collect();
    attempts.sort_unstable();
    assert_eq!(
        attempts,
        vec![(1, Some(500)), (2, Some(500)), (3, Some(200))]
    );

    // 3. A run of failures disables the endpoint; the API shows it.
    r.fail("acme-all", usize::MAX);
    inbound_acme(&d, 4).await;
    let disabled = eventually(20, || async {
        let (_, list) = d.api(Method::GET, "/api/v1/webhooks", &admin, None).await;
        let w = webhook(&list, "all").clone();
        (w["state"] == "disabled").then_some(w)
    })
    .await;
    assert_eq!(disabled["consecutive_failures"], 4);
    assert_eq!(disabled["last_status"], 500);
    assert!(
        disabled["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("HTTP 500")),
        "{disabled}"
    );
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|e| e.contains("4 consecutive")),
        "{disabled}"
    );
    let stuck_at = disabled["cursor"].as_i64().expect("cursor");
    let attempts_when_disabled = r.got("acme-all").len();
    let failing: Vec<i64> = r
        .got("acme-all")
        .into_iter()
        .filter(|g| g.answered == 500)
        .map(|g| g.id)
        .skip(2)
        .collect();
    assert_eq!(failing.len(), 4);
    assert!(failing.iter().all(|id| *id > stuck_at && *id == failing[0]));
    // While disabled nothing is sent, though events keep coming (and other endpoints get theirs).
    inbound_acme(&d, 5).await;
    let want_messages: Vec<(i64, String)> = db_events(&db, "acme")
        .await
        .into_iter()
        .filter(|(_, k)| k.starts_with("message."))
        .collect();
    eventually(10, || async {
        (r.delivered("acme-messages") == want_messages).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(r.got("acme-all").len(), attempts_when_disabled);
    assert!(
        db_events(&db, "acme")
            .await
            .iter()
            .any(|(_, k)| k == "webhook.disabled")
    );

    // 4. The test send reports the outcome synchronously, failed or not, and is logged.
    let (status, outcome) = d
        .api(Method::POST, "/api/v1/webhooks/all/test", &admin, None)
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["delivered"], false);
    assert_eq!(outcome["status_code"], 500);
    r.fail("acme-all", 0);
    let (status, outcome) = d
        .api(Method::POST, "/api/v1/webhooks/all/test", &admin, None)
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["delivered"], true, "{outcome}");
    assert_eq!(outcome["status_code"], 200);
    assert!(outcome["error"].is_null());
    assert!(outcome["duration_ms"].as_i64().is_some());
    let test = r
        .got("acme-all")
        .into_iter()
        .rfind(|g| g.kind == "webhook.test")
        .expect("test event");
    assert!(test.valid);
    assert_eq!(test.id, 0);
    assert_eq!(test.body["data"]["webhook_id"], "all");
    // A test send does not re-enable.
    let (_, list) = d.api(Method::GET, "/api/v1/webhooks", &admin, None).await;
    assert_eq!(webhook(&list, "all")["state"], "disabled");

    // 5. Re-enabling resets the failures and resumes where delivery stopped, in order.
    let (status, enabled) = d
        .api(Method::POST, "/api/v1/webhooks/all/enable", &admin, None)
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["state"], "enabled");
    assert_eq!(enabled["consecutive_failures"], 0);
    assert!(enabled["disabled_reason"].is_null());
    let all_events = caught_up(&r, "acme-all", &db, "acme").await;
    assert!(all_events.iter().any(|(_, k)| k == "webhook.disabled"));
    assert!(all_events.windows(2).all(|w| w[0].0 < w[1].0));
    let (_, list) = d.api(Method::GET, "/api/v1/webhooks", &admin, None).await;
    let w = webhook(&list, "all");
    assert_eq!(
        w["cursor"],
        all_events.last().map(|(id, _)| *id).unwrap_or(0)
    );
    assert_eq!(w["consecutive_failures"], 0);
    assert!(w["last_error"].is_null());
    assert!(r.got("acme-all").iter().all(|g| g.valid));
    assert!(r.got("acme-messages").iter().all(|g| g.valid));
    assert!(r.got("other-all").iter().all(|g| g.valid));

    // 6. The delivery log has every attempt, newest first, tests included.
    let log = delivery_log(&d, &admin, "all").await;
    assert_eq!(log.len(), r.got("acme-all").len());
    let times: Vec<String> = log
        .iter()
        .map(|e| sortable(e["created_at"].as_str().unwrap_or_default()))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(log.iter().filter(|e| e["kind"] == "test").count(), 2);
    assert_eq!(
        log.iter().filter(|e| e["success"] == false).count(),
        2 + 4 + 1
    );
    assert!(
        log.iter()
            .filter(|e| e["success"] == false)
            .all(|e| e["status_code"] == 500 && e["error"].as_str().is_some())
    );
    let (status, body) = d
        .api(
            Method::GET,
            "/api/v1/webhooks/all/deliveries?cursor=bogus",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("invalid_cursor"))
    );
    assert!(!d.log().contains(AUTH_TOKEN), "a secret reached the log");
    assert!(!d.log().contains(OTHER_SECRET), "a secret reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_never_deliver_to_one_endpoint_at_once() {
    let twilio = FakeTwilio::start().await;
    let twilio_base = twilio.base.clone();
    let r = Receiver::start(&receiver_secrets()).await;
    // Slow answers widen the window in which two replicas could overlap.
    r.state.delay_ms.store(25, Ordering::SeqCst);
    let app = App::builder(switchboard_bin!())
        .with_twilio(twilio)
        .postgres();
    let a = with_webhooks(app, &r.base, &twilio_base).spawn().await;
    let b = a.replica();
    let db = a.database_url.clone();

    for n in 0..16 {
        let d: &Daemon = if n % 2 == 0 { &a } else { &b };
        inbound_acme(d, 100 + n).await;
    }
    let got = caught_up(&r, "acme-all", &db, "acme").await;
    assert!(got.len() >= 32, "{got:?}");
    // Every event once, in order; never two requests to one endpoint at the same time.
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "{got:?}");
    assert_eq!(r.max_in_flight("acme-all"), 1);
    assert_eq!(r.max_in_flight("acme-messages"), 1);
    assert!(r.got("acme-all").iter().all(|g| g.valid));
    // The other tenant sees only its own events (its channel's health), none of acme's.
    assert!(
        r.got("other-all")
            .iter()
            .all(|g| g.kind == "channel.updated" && g.body["data"]["channel_id"] == "other-sms"),
        "{:?}",
        r.delivered("other-all")
    );
    // Written by two replicas at once, acme's ids are still 1, 2, 3... with no gaps.
    let ids: Vec<i64> = db_events(&db, "acme")
        .await
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        ids,
        (1..=i64::try_from(ids.len()).expect("few")).collect::<Vec<_>>()
    );
}
