//! Live events end to end: SSE and WebSocket clients connected to the real binary see a
//! webhook's events arrive, and resume after a disconnect without losing any; each tenant's
//! ids count 1, 2, 3... on their own; `/metrics` counts the live connections and the event
//! bytes they hold, which stay bounded for a client that stops reading until it is cut off.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, switchboard_bin};
use tokio_tungstenite::tungstenite::Message;

struct Env {
    app: App,
    token: String,
    other: String,
}

async fn env() -> Env {
    let app = App::builder(switchboard_bin!())
        .token("acme", "agent", "ui")
        .token("other", "agent", "ui")
        .spawn()
        .await;
    let [token, other] = app.tokens.clone().try_into().expect("two tokens");
    Env { app, token, other }
}

async fn inbound(e: &Env, n: u32) {
    let sid = format!("SM{n:032}");
    let r = e
        .app
        .post_twilio("messages", &sms_params(&sid, "+14155550160", "live"))
        .await;
    assert_eq!(r.status(), 200);
}

/// Reads SSE frames from a streaming response until `count` events arrived.
async fn sse_events(resp: &mut reqwest::Response, count: usize) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .expect("event within 10s")
            .expect("chunk")
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        parse_frames(&mut buf, &mut out);
    }
    out
}

/// Reads SSE events until none arrived for `quiet`.
async fn sse_until_quiet(
    resp: &mut reqwest::Response,
    quiet: Duration,
) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < quiet {
        let Ok(chunk) = tokio::time::timeout(quiet, resp.chunk()).await else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(
            &chunk.expect("chunk").expect("stream open"),
        ));
        let before = out.len();
        parse_frames(&mut buf, &mut out);
        if out.len() > before {
            last = tokio::time::Instant::now();
        }
    }
    out
}

/// Moves the complete frames at the start of `buf` that carry an id into `out`.
fn parse_frames(buf: &mut String, out: &mut Vec<(String, String, Value)>) {
    {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !id.is_empty() {
                out.push((id, kind, serde_json::from_str(&data).expect("json data")));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_delivers_and_resumes_with_last_event_id() {
    let e = env().await;
    let url = format!("{}/api/v1/events", e.app.base);
    let mut resp = e
        .app
        .http
        .get(&url)
        .bearer_auth(&e.token)
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut other = e
        .app
        .http
        .get(&url)
        .bearer_auth(&e.other)
        .send()
        .await
        .expect("connect other");

    inbound(&e, 1).await;
    let first = sse_events(&mut resp, 2).await;
    let kinds: Vec<&str> = first.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(kinds, vec!["conversation.created", "message.created"]);
    assert_eq!(first[1].2["data"]["channel_id"], "acme-sms");
    assert_eq!(first[0].2["data"]["unread_count"], 1);
    let last_id = first[1].0.clone();
    drop(resp);

    // While disconnected, two more messages arrive.
    inbound(&e, 2).await;
    inbound(&e, 3).await;
    let mut resumed = e
        .app
        .http
        .get(&url)
        .bearer_auth(&e.token)
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .expect("reconnect");
    let missed = sse_events(&mut resumed, 4).await;
    let kinds: Vec<&str> = missed.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "conversation.updated",
            "message.created",
            "conversation.updated",
            "message.created"
        ]
    );
    let ids: Vec<i64> = missed
        .iter()
        .map(|(id, _, _)| id.parse().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > last_id.parse::<i64>().expect("id"));

    // The other tenant saw nothing of it: its stream has no event within a short wait.
    let quiet = tokio::time::timeout(Duration::from_millis(700), other.chunk()).await;
    if let Ok(Ok(Some(chunk))) = quiet {
        assert!(
            !String::from_utf8_lossy(&chunk).contains("message.created"),
            "cross-tenant event leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_delivers_and_resumes_with_since() {
    let e = env().await;
    let ws_url = format!(
        "{}/api/v1/ws?access_token={}",
        e.app.base.replace("http://", "ws://"),
        e.token
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("ws connect");
    inbound(&e, 10).await;
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("frame within 10s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            seen.push(serde_json::from_str(&t).expect("json"));
        }
    }
    assert_eq!(seen[1]["type"], "message.created");
    let since = seen[1]["id"].as_i64().expect("id");
    ws.close(None).await.expect("close");

    inbound(&e, 11).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}&since={since}"))
        .await
        .expect("reconnect");
    let mut resumed: Vec<Value> = Vec::new();
    while resumed.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("frame within 10s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            resumed.push(serde_json::from_str(&t).expect("json"));
        }
    }
    assert_eq!(resumed[0]["type"], "conversation.updated");
    assert_eq!(resumed[1]["type"], "message.created");
    assert_eq!(resumed[0]["id"].as_i64(), Some(since + 1));

    // No token: refused before the upgrade.
    let bare = format!("{}/api/v1/ws", e.app.base.replace("http://", "ws://"));
    assert!(tokio_tungstenite::connect_async(&bare).await.is_err());
    let _ = ws.send(Message::Close(None)).await;
}

/// A Twilio channel for tenant `other`, and a tenant `quiet` that never has an event.
const MORE_TENANTS: &str = r#"
[[channels]]
id = "other-sms"
tenant = "other"
type = "twilio"
account_sid = "AC00000000000000000000000000000001"
auth_token = "${E2E_TWILIO_TOKEN}"
from = "+15005550007"
api_base = "http://127.0.0.1:9"

[[tenants]]
id = "quiet"
"#;

async fn inbound_other(app: &App, n: u32) {
    let url = format!("{}/webhooks/other-sms/messages", app.base);
    let sid = format!("SM{:032}", 5000 + n);
    let params = sms_params(&sid, "+14155550161", "other");
    let sig = twilio_signature(AUTH_TOKEN, &url, &params);
    assert_eq!(app.post_form(&url, &params, Some(&sig)).await.status(), 200);
}

async fn sse(app: &App, token: &str, query: &str) -> reqwest::Response {
    let resp = app
        .http
        .get(format!("{}/api/v1/events{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), 200);
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_counts_its_own_event_ids_without_gaps() {
    let app = App::builder(switchboard_bin!())
        .toml(MORE_TENANTS)
        .token("acme", "agent", "ui")
        .token("other", "agent", "ui")
        .token("quiet", "agent", "ui")
        .spawn()
        .await;
    let [acme, other, quiet] = app.tokens.clone().try_into().expect("three tokens");
    let e = Env {
        app,
        token: acme.clone(),
        other: other.clone(),
    };
    for n in 0..3 {
        inbound(&e, 20 + n).await;
        inbound_other(&e.app, n).await;
    }
    // From the start, each tenant sees its own events numbered 1, 2, 3... with no gaps and
    // no reset, although the two tenants' events interleaved.
    for (token, channel) in [(&acme, "acme-sms"), (&other, "other-sms")] {
        let mut resp = sse(&e.app, token, "?since=0").await;
        let got = sse_until_quiet(&mut resp, Duration::from_millis(1500)).await;
        let ids: Vec<i64> = got
            .iter()
            .map(|(id, _, _)| id.parse().expect("id"))
            .collect();
        let want: Vec<i64> = (1..=i64::try_from(ids.len()).expect("few")).collect();
        assert_eq!(ids, want, "{channel}: {got:?}");
        assert!(
            got.iter()
                .all(|(id, _, v)| v["id"].as_i64() == id.parse().ok())
        );
        assert!(
            got.iter().all(|(_, kind, _)| kind != "stream.reset"),
            "{got:?}"
        );
        let messages = got
            .iter()
            .filter(|(_, k, _)| k == "message.created")
            .count();
        assert_eq!(messages, 3, "{channel}: {got:?}");
        let tenant = channel.trim_end_matches("sms");
        assert!(
            got.iter().all(|(_, _, v)| v["data"]["channel_id"]
                .as_str()
                .is_some_and(|c| c.starts_with(tenant))),
            "another tenant's event: {got:?}"
        );
    }
    // A tenant without events: `since=0` is simply the start (no reset, nothing foreign); an
    // id past its head is reset to its own head, 0.
    let mut fresh = sse(&e.app, &quiet, "?since=0").await;
    let got = sse_until_quiet(&mut fresh, Duration::from_millis(1000)).await;
    assert!(got.is_empty(), "{got:?}");
    let mut ahead = sse(&e.app, &quiet, "?since=7").await;
    let got = sse_events(&mut ahead, 1).await;
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("0", "stream.reset")
    );
}

/// A gauge's value on `/metrics`.
async fn gauge(app: &App, name: &str) -> f64 {
    let page = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Appends `n` events of about `size` bytes to `tenant`'s log, as the store writes them.
async fn backlog(db_url: &str, tenant: &str, n: i64, size: usize) {
    let pool = sqlx::SqlitePool::connect(db_url)
        .await
        .expect("open sqlite");
    let mut tx = pool.begin().await.expect("begin");
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO tenant_event_counters (tenant_id, last_seq) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq
         RETURNING last_seq",
    )
    .bind(tenant)
    .bind(n)
    .fetch_one(&mut *tx)
    .await
    .expect("counter");
    let payload = serde_json::json!({ "channel_id": "acme-sms", "note": "x".repeat(size) });
    for seq in last - n + 1..=last {
        sqlx::query(
            "INSERT INTO events (tenant_id, seq, type, payload, created_at) VALUES ($1, $2, 'message.updated', $3, 0)",
        )
        .bind(tenant)
        .bind(seq)
        .bind(sqlx::types::Json(&payload))
        .execute(&mut *tx)
        .await
        .expect("event");
    }
    tx.commit().await.expect("commit");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_live_connections_and_a_stalled_client_is_bounded_then_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = App::builder(switchboard_bin!())
        .env("SWITCHBOARD_EVENTS__HEARTBEAT_SECS", "1")
        .env("SWITCHBOARD_SERVER__IDLE_TIMEOUT_SECS", "3")
        .token("acme", "agent", "ui")
        .spawn()
        .await;
    let token = app.tokens[0].clone();
    // About 10 MB of history: more than any socket buffers hold.
    backlog(&app.database_url, "acme", 1200, 8192).await;

    // A client that asks for all of it and then reads nothing, through a tiny window.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let addr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let mut stalled = socket.connect(addr).await.expect("connect");
    let request = format!(
        "GET /api/v1/events?since=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stalled
        .write_all(request.as_bytes())
        .await
        .expect("request");
    let mut head = [0u8; 64];
    let n = stalled.read(&mut head).await.expect("response");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    tokio::time::sleep(Duration::from_millis(500)).await;

    // A client that reads everything, meanwhile. The stalled client holds at most a batch of
    // events in the daemon (16 events of about 8 KiB), not the 10 MB it owes; so does the
    // reader between two reads.
    let mut reader = sse(&app, &token, "?since=0").await;
    assert_eq!(gauge(&app, "switchboard_live_connections").await, 2.0);
    let mut got = 0;
    while got < 1200 {
        let frames = sse_events(&mut reader, (1200 - got).min(100)).await;
        got += frames
            .iter()
            .filter(|(_, k, _)| k == "message.updated")
            .count();
        let held = gauge(&app, "switchboard_live_buffered_bytes").await;
        assert!(
            held <= 2.0 * 16.0 * 8400.0,
            "{held} bytes buffered for two clients"
        );
    }
    // ...and is disconnected once nothing could be written to it for the idle timeout,
    // while the reading client, kept busy by heartbeats, stays.
    switchboard_testkit::eventually(15, || async {
        (gauge(&app, "switchboard_live_connections").await == 1.0).then_some(())
    })
    .await;
    assert_eq!(gauge(&app, "switchboard_live_buffered_bytes").await, 0.0);
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stalled connection is still open");
    drop(reader);
    switchboard_testkit::eventually(10, || async {
        (gauge(&app, "switchboard_live_connections").await == 0.0).then_some(())
    })
    .await;
}
