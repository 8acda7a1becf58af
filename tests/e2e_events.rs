//! Live events end to end: SSE and WebSocket clients connected to the real binary see a
//! webhook's events arrive, and resume after a disconnect without losing any.

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
    out
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
