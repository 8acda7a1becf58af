//! Regression tests of the adversarial run, through the real binary: each test is an
//! attack or fault that was seen through the daemon, and what the daemon must do instead.

use serde_json::{Value, json};
use switchboard_testkit::graph::{inbound, meta_signature};
use switchboard_testkit::twilio::sms_params;
use switchboard_testkit::{App, switchboard_bin};

async fn app(postgres: bool) -> App {
    let mut b = App::builder(switchboard_bin!())
        .graph()
        .token("acme", "admin", "boss");
    if postgres {
        b = b.postgres();
    }
    b.spawn().await
}

/// The messages of the conversation with the contact `value`, oldest first.
async fn messages_of(app: &App, value: &str) -> Vec<Value> {
    let admin = &app.tokens[0];
    let convs = app.get_ok("/api/v1/conversations", admin).await;
    let Some(conv) = convs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["contact"]["identities"][0]["value"] == value)
    else {
        return Vec::new();
    };
    let id = conv["id"].as_str().expect("id");
    let body = app
        .get_ok(&format!("/api/v1/conversations/{id}/messages"), admin)
        .await;
    body["items"].as_array().cloned().unwrap_or_default()
}

/// The raw journal payloads, as stored (small payloads are stored uncompressed).
async fn journal_payloads(app: &App) -> Vec<Vec<u8>> {
    let sql = "SELECT payload FROM inbound_events";
    if app.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.database_url).await.expect("pg");
        sqlx::query_scalar(sql)
            .fetch_all(&pool)
            .await
            .expect("journal")
    } else {
        let pool = sqlx::SqlitePool::connect(&app.database_url)
            .await
            .expect("sqlite");
        sqlx::query_scalar(sql)
            .fetch_all(&pool)
            .await
            .expect("journal")
    }
}

async fn nul_in_inbound_content_is_stored(postgres: bool) {
    let app = app(postgres).await;
    // Twilio: a NUL in the body and in a parameter name.
    let mut params = sms_params("SM000000000000000000000000000000a0", "+14155550177", "a\0b");
    params.push(("X\0Y", "v"));
    for _ in 0..2 {
        let resp = app.post_twilio("messages", &params).await;
        assert_eq!(
            resp.status(),
            200,
            "stored, then acknowledged as a duplicate"
        );
    }
    let sms = messages_of(&app, "+14155550177").await;
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0]["text"], "a\u{FFFD}b");
    assert_eq!(sms[0]["external"]["X\u{FFFD}Y"], "v");
    // WhatsApp: a NUL in a text (JSON `\u0000`).
    let body = serde_json::to_vec(&inbound(
        "16505550178",
        json!({"from": "16505550178", "id": "wamid.NUL1", "timestamp": now_secs(),
               "type": "text", "text": {"body": "a\u{0}b"}}),
    ))
    .expect("json");
    let status = app
        .http
        .post(format!("{}/webhooks/acme-wa", app.base))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body.clone())
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 200);
    let wa = messages_of(&app, "16505550178").await;
    assert_eq!(wa.len(), 1);
    assert_eq!(wa[0]["text"], "a\u{FFFD}b");
    // The journal keeps the bytes as received.
    let journal = journal_payloads(&app).await;
    assert!(journal.iter().any(|p| p.windows(5).any(|w| w == b"a%00b")));
    assert!(journal.contains(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_inbound_content_is_stored_on_sqlite() {
    nul_in_inbound_content_is_stored(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_inbound_content_is_stored_on_postgres() {
    nul_in_inbound_content_is_stored(true).await;
}

/// Posts a reply in `conv` with an optional `Idempotency-Key`: (status, body).
async fn reply(app: &App, conv: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/api/v1/conversations/{conv}/messages", app.base))
        .bearer_auth(&app.tokens[0])
        .json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.expect("reply");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn conversation_id(app: &App, value: &str) -> String {
    let admin = &app.tokens[0];
    let convs = app.get_ok("/api/v1/conversations", admin).await;
    convs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["contact"]["identities"][0]["value"] == value)
        .and_then(|c| c["id"].as_str())
        .expect("conversation")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_reused_with_another_body_is_a_conflict() {
    let app = app(false).await;
    let params = sms_params("SM000000000000000000000000000000b1", "+14155550179", "hi");
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    let conv = conversation_id(&app, "+14155550179").await;
    let (s, first) = reply(&app, &conv, Some("k-1"), json!({"text": "one"})).await;
    assert_eq!(s, 202, "{first}");
    let (s, again) = reply(&app, &conv, Some("k-1"), json!({"text": "one"})).await;
    assert_eq!(s, 202, "a true retry replays: {again}");
    assert_eq!(again["id"], first["id"]);
    for other in [
        json!({"text": "two"}),
        json!({"text": "one", "media_urls": ["https://example.com/a.png"]}),
    ] {
        let (s, body) = reply(&app, &conv, Some("k-1"), other.clone()).await;
        assert_eq!(s, 409, "{other}: {body}");
        assert_eq!(body["error"]["code"], "idempotency_key_reused");
    }
    // Starting a conversation: the same rule.
    let start = |text: &str| json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+14155550180"}, "text": text});
    let post_start = |body: Value| {
        app.http
            .post(format!("{}/api/v1/conversations", app.base))
            .bearer_auth(&app.tokens[0])
            .header("Idempotency-Key", "k-2")
            .json(&body)
            .send()
    };
    assert_eq!(post_start(start("a")).await.expect("start").status(), 202);
    assert_eq!(post_start(start("a")).await.expect("start").status(), 202);
    let resp = post_start(start("b")).await.expect("start");
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_url_naming_localhost_with_a_trailing_dot_fails_at_once() {
    let app = app(false).await;
    let body = serde_json::to_vec(&inbound(
        "16505550181",
        json!({"from": "16505550181", "id": "wamid.LH1", "timestamp": now_secs(),
               "type": "text", "text": {"body": "hi"}}),
    ))
    .expect("json");
    let status = app
        .http
        .post(format!("{}/webhooks/acme-wa", app.base))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body)
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 200);
    let conv = conversation_id(&app, "16505550181").await;
    for url in ["http://localhost.:9/a.png", "http://LOCALHOST../a.png"] {
        let (s, sent) = reply(&app, &conv, None, json!({"media_urls": [url]})).await;
        assert_eq!(s, 202, "{sent}");
        let id = sent["id"].as_str().expect("id").to_string();
        let failed = switchboard_testkit::eventually(10, || async {
            messages_of(&app, "16505550181")
                .await
                .into_iter()
                .find(|m| m["id"] == id.as_str() && m["delivery_status"] == "failed")
        })
        .await;
        assert_eq!(failed["error_code"], "invalid_media_url", "{url}: {failed}");
    }
    assert!(app.graph().sent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_retry_after_is_honoured() {
    let app = app(false).await;
    let params = sms_params("SM000000000000000000000000000000c1", "+14155550182", "hi");
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    let conv = conversation_id(&app, "+14155550182").await;
    // The outbox's own backoff here is 50-200 ms; Twilio asks for 1 s, then for a date
    // 3 s ahead (HTTP dates have whole seconds: more than 2 s from now).
    let twilio = app.twilio();
    let limited = json!({"code": 20429, "message": "Too Many Requests", "status": 429});
    twilio.plan_retry_after(429, limited.clone(), "1");
    let in_three = std::time::SystemTime::now() + std::time::Duration::from_secs(3);
    twilio.plan_retry_after(429, limited, &http_date(in_three));
    let (s, sent) = reply(&app, &conv, None, json!({"text": "later"})).await;
    assert_eq!(s, 202, "{sent}");
    let id = sent["id"].as_str().expect("id").to_string();
    switchboard_testkit::eventually(20, || async {
        messages_of(&app, "+14155550182")
            .await
            .into_iter()
            .find(|m| m["id"] == id.as_str() && m["delivery_status"] == "sent")
    })
    .await;
    let attempts: Vec<std::time::Instant> = twilio
        .requests()
        .iter()
        .filter(|r| r.field("Body") == Some("later"))
        .map(|r| r.at)
        .collect();
    assert_eq!(attempts.len(), 3);
    let first_gap = attempts[1] - attempts[0];
    let second_gap = attempts[2] - attempts[1];
    assert!(
        first_gap >= std::time::Duration::from_millis(1000),
        "{first_gap:?}"
    );
    assert!(
        second_gap >= std::time::Duration::from_millis(1000),
        "{second_gap:?}"
    );
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as `Retry-After` carries it.
fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since 1970, `offset` seconds from now, as Meta's `timestamp`.
fn secs_from_now(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    (now as i64 + offset).to_string()
}

fn now_secs() -> String {
    secs_from_now(0)
}

/// Delivers one signed WhatsApp text from `wa_id` with Meta's `timestamp`.
async fn deliver_whatsapp_text(app: &App, wa_id: &str, id: &str, timestamp: &str) {
    let body = serde_json::to_vec(&inbound(
        wa_id,
        json!({"from": wa_id, "id": id, "timestamp": timestamp, "type": "text",
               "text": {"body": "hello"}}),
    ))
    .expect("json");
    let status = app
        .http
        .post(format!("{}/webhooks/acme-wa", app.base))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body)
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_window_runs_from_the_message_timestamp() {
    let app = app(false).await;
    // Sent 25 hours ago, delivered now (Meta retried it): the window is already closed.
    deliver_whatsapp_text(
        &app,
        "16505550183",
        "wamid.OLD1",
        &secs_from_now(-25 * 3600),
    )
    .await;
    let conv = conversation_id(&app, "16505550183").await;
    let (s, body) = reply(&app, &conv, None, json!({"text": "too late"})).await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"]["code"], "whatsapp_window_closed");
    // A message sent an hour ago opens it; an older one delivered after it does not close it.
    deliver_whatsapp_text(&app, "16505550183", "wamid.NEW1", &secs_from_now(-3600)).await;
    deliver_whatsapp_text(
        &app,
        "16505550183",
        "wamid.OLD2",
        &secs_from_now(-30 * 3600),
    )
    .await;
    let (s, body) = reply(&app, &conv, None, json!({"text": "in time"})).await;
    assert_eq!(s, 202, "{body}");
}

/// An outgoing-webhook endpoint that answers its first request 429 with `Retry-After: 1`,
/// then 200, and records when each request came.
async fn rate_limited_endpoint() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
) {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = times.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                let n = {
                    let mut t = seen.lock().expect("lock");
                    t.push(std::time::Instant::now());
                    t.len()
                };
                if n == 1 {
                    let mut resp = StatusCode::TOO_MANY_REQUESTS.into_response();
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    resp
                } else {
                    StatusCode::OK.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("{base}/hook"), times)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_webhook_retry_after_is_honoured() {
    let (url, times) = rate_limited_endpoint().await;
    let app = App::builder(switchboard_bin!())
        .tenant_toml(
            "acme",
            &format!("[[tenants.webhooks]]\nid = \"hook\"\nurl = \"{url}\"\nsecret = \"webhook-secret-0123456789\"\n"),
        )
        .toml("[webhooks]\nbase_delay_ms = 50\nmax_delay_ms = 200\ntimeout_secs = 3\n")
        .spawn()
        .await;
    let params = sms_params("SM000000000000000000000000000000d1", "+14155550184", "hi");
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    let (first, second) = switchboard_testkit::eventually(15, || async {
        let t = times.lock().expect("lock");
        (t.len() >= 2).then(|| (t[0], t[1]))
    })
    .await;
    let gap = second - first;
    assert!(gap >= std::time::Duration::from_millis(1000), "{gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_media_is_fetched_only_from_the_channels_media_hosts() {
    // Private addresses allowed (the fake is on loopback): the media hosts alone decide.
    // The channel's hosts are its API origin's (127.0.0.1) and Twilio's defaults.
    let app = App::builder(switchboard_bin!())
        .private_media()
        .token("acme", "admin", "boss")
        .spawn()
        .await;
    let twilio = app.twilio();
    let listed = twilio.media_url(1);
    let off_list = twilio.media_url(2).replace("127.0.0.1", "localhost");
    let redirecting = format!("{}/media/cross-host", twilio.base);
    let media = [
        (listed.as_str(), "image/png"),
        ("http://169.254.169.254/latest/meta-data/iam/", "image/gif"),
        (off_list.as_str(), "image/jpeg"),
        (redirecting.as_str(), "image/webp"),
    ];
    let mut params = sms_params("MM000000000000000000000000000000e1", "+14155550185", "pics");
    params.retain(|(k, _)| *k != "NumMedia");
    params.push(("NumMedia", "4"));
    let keys: Vec<(String, String)> = (0..media.len())
        .map(|i| (format!("MediaUrl{i}"), format!("MediaContentType{i}")))
        .collect();
    for ((url, ct), (url_key, ct_key)) in media.iter().zip(&keys) {
        params.push((url_key.as_str(), url));
        params.push((ct_key.as_str(), ct));
    }
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    // Every attachment settles; the message is kept whatever happened to its media.
    let msg = switchboard_testkit::eventually(20, || async {
        messages_of(&app, "+14155550185")
            .await
            .into_iter()
            .next()
            .filter(|m| {
                m["attachments"]
                    .as_array()
                    .is_some_and(|a| a.len() == 4 && a.iter().all(|a| a["state"] != "pending"))
            })
    })
    .await;
    assert_eq!(msg["text"], "pics");
    let state_of = |ct: &str| {
        let a = msg["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["content_type"] == ct)
            .cloned()
            .unwrap_or(Value::Null);
        (
            a["state"].clone(),
            a["error"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(state_of("image/png").0, "stored", "{msg}");
    for ct in ["image/gif", "image/jpeg", "image/webp"] {
        let (state, error) = state_of(ct);
        assert_eq!(state, "failed", "{ct}: {msg}");
        assert!(error.starts_with("media_url_refused"), "{ct}: {error}");
    }
    // Off-list hosts were never asked; the listed URL's redirect off the list was not followed.
    let asked = twilio.media_requests();
    assert!(
        !asked.iter().any(|p| p.ends_with("/Media/ME2")),
        "{asked:?}"
    );
    assert!(!asked.iter().any(|p| p == "/media/cdn"), "{asked:?}");
    assert!(asked.iter().any(|p| p == "/media/cross-host"), "{asked:?}");
}
