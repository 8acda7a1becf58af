//! The inbox list through the real daemon, on SQLite and PostgreSQL: one request gives each
//! row its latest message, channel kind, triage fields and the caller's own unread count;
//! the filters (assignee `me`/`none`, priority, tag, updated_since) and the optional total
//! combine; triage changes (priority, tags, subject) are audited; a message is readable by
//! its id.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, AppBuilder, switchboard_bin};

async fn list(app: &App, token: &str, query: &str) -> Value {
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/conversations{query}"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

async fn inbox(builder: AppBuilder) {
    let app = builder
        .token("acme", "admin", "boss")
        .token("acme", "agent", "alice")
        .spawn()
        .await;
    let [boss, alice] = app.tokens.clone().try_into().expect("two tokens");
    for (sid, from, text) in [
        (
            "SM0000000000000000000000000000000a",
            "+15550000001",
            "first",
        ),
        (
            "SM0000000000000000000000000000000b",
            "+15550000002",
            "hello",
        ),
        (
            "SM0000000000000000000000000000000c",
            "+15550000001",
            "Is   my\norder on its way? ".repeat(20).as_str(),
        ),
    ] {
        let r = app
            .post_twilio("messages", &sms_params(sid, from, text))
            .await;
        assert_eq!(r.status(), 200);
    }
    // One request: rows carry the latest message, channel kind and unread counts.
    let page = list(&app, &alice, "?total=true").await;
    assert_eq!(page["total"], 2, "{page}");
    let rows = page["items"].as_array().expect("items");
    let first = &rows[0];
    assert_eq!(first["contact"]["identities"][0]["value"], "+15550000001");
    assert_eq!(first["channel_kind"], "twilio");
    assert_eq!(first["unread_count"], 2);
    assert_eq!(first["my_unread_count"], 2);
    assert_eq!(first["tags"], json!([]));
    assert!(first["priority"].is_null());
    let last = &first["last_message"];
    assert_eq!(last["direction"], "inbound");
    assert_eq!(last["sender"], "+15550000001");
    assert_eq!(last["delivery_status"], "received");
    let snippet = last["snippet"].as_str().expect("snippet");
    assert!(
        snippet.starts_with("Is my order on its way? Is my"),
        "{snippet}"
    );
    assert!(
        snippet.ends_with('…') && snippet.chars().count() <= 141,
        "{snippet}"
    );
    assert!(page.get("total").is_some());
    assert!(list(&app, &alice, "").await.get("total").is_none());
    let conv = first["id"].as_str().expect("id").to_string();
    let other = rows[1]["id"].as_str().expect("id").to_string();

    // The caller's unread count is their own: reading it clears alice's, not boss's.
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/read"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let mine = list(
        &app,
        &alice,
        &format!(
            "?contact={}",
            first["contact"]["id"].as_str().expect("contact")
        ),
    )
    .await;
    assert_eq!(mine["items"][0]["my_unread_count"], 0);

    // Triage: priority and tags, audited; then the filters.
    let before = list(&app, &alice, "").await["items"][0]["updated_at"].clone();
    let (status, body) = app
        .api(
            Method::PATCH,
            &format!("/api/v1/conversations/{conv}"),
            &alice,
            Some(json!({"priority": "high", "tags": ["vip", " billing ", "vip"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["priority"], "high");
    assert_eq!(body["tags"], json!(["billing", "vip"]));
    assert_ne!(body["updated_at"], before);
    for (bad, why) in [
        (json!({"priority": "asap"}), "priority"),
        (json!({"tags": ["a\nb"]}), "tags"),
        (json!({}), "nothing to change"),
        (json!({"subject": "  "}), "subject"),
    ] {
        let (status, body) = app
            .api(
                Method::PATCH,
                &format!("/api/v1/conversations/{conv}"),
                &alice,
                Some(bad),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains(why),
            "{body}"
        );
    }
    let (status, audit) = app
        .api(
            Method::GET,
            &format!("/api/v1/conversations/{conv}/audit"),
            &boss,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(audit["items"][0]["action"], "triage");
    assert_eq!(
        ids(&list(&app, &boss, "?priority=high").await),
        vec![conv.clone()]
    );
    assert_eq!(
        ids(&list(&app, &boss, "?priority=none").await),
        vec![other.clone()]
    );
    assert_eq!(
        ids(&list(&app, &boss, "?tag=vip&priority=high&total=true").await),
        vec![conv.clone()]
    );
    assert!(ids(&list(&app, &boss, "?tag=nope").await).is_empty());
    let (status, _) = app
        .api(
            Method::GET,
            "/api/v1/conversations?priority=asap",
            &boss,
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .api(
            Method::GET,
            "/api/v1/conversations?updated_since=yesterday",
            &boss,
            None,
        )
        .await;
    assert_eq!(status, 400);
    let since = body["updated_at"].as_str().expect("updated_at").to_string();
    assert_eq!(
        ids(&list(&app, &boss, &format!("?updated_since={since}")).await),
        vec![conv.clone()]
    );

    // Assignee `me` and `none`.
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{other}/assign"),
            &alice,
            Some(json!({"assignee": "alice"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&list(&app, &alice, "?assignee=me").await),
        vec![other.clone()]
    );
    assert!(ids(&list(&app, &boss, "?assignee=me").await).is_empty());
    assert_eq!(
        ids(&list(&app, &boss, "?assignee=none").await),
        vec![conv.clone()]
    );

    // A message by its id; another tenant's or a made-up id is a 404.
    let message = last["id"].as_str().expect("message id");
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/messages/{message}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conversation_id"], conv.as_str());
    assert_eq!(body["direction"], "inbound");
    let (status, _) = app
        .api(Method::GET, "/api/v1/messages/nope", &alice, None)
        .await;
    assert_eq!(status, 404);

    // A staff reply is announced as an inbound message is: the conversation, then the
    // message; its delivery updates name the conversation.
    let (status, reply) = app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{other}/messages"),
            &alice,
            Some(json!({"text": "On its way"})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let reply_id = reply["id"].as_str().expect("reply id").to_string();
    let events = events_until(&app, &alice, |events| {
        events.iter().any(|(kind, data)| {
            kind == "message.updated" && data["data"]["message_id"] == reply_id.as_str()
        })
    })
    .await;
    let at = events
        .iter()
        .position(|(kind, data)| {
            kind == "message.created" && data["data"]["message_id"] == reply_id.as_str()
        })
        .expect("message.created for the reply");
    assert_eq!(events[at - 1].0, "conversation.updated", "{events:?}");
    assert_eq!(events[at - 1].1["data"]["conversation_id"], other.as_str());
    // Each event carries what it is about, as it is now: no follow-up call.
    let created = &events[at].1;
    assert_eq!(created["message"]["id"], reply_id.as_str(), "{created}");
    assert_eq!(created["message"]["text"], "On its way");
    assert_eq!(created["message"]["conversation_id"], other.as_str());
    let updated = &events[at - 1].1;
    assert_eq!(updated["conversation"]["id"], other.as_str(), "{updated}");
    assert!(
        updated["conversation"]["last_message"]["id"].is_string(),
        "{updated}"
    );
    let (_, update) = events
        .iter()
        .find(|(kind, data)| {
            kind == "message.updated" && data["data"]["message_id"] == reply_id.as_str()
        })
        .expect("message.updated");
    assert_eq!(
        update["data"]["conversation_id"],
        other.as_str(),
        "{update}"
    );
}

/// The tenant's events from the start (SSE), read until `done` says enough.
async fn events_until(
    app: &App,
    token: &str,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut resp = app
        .http
        .get(format!("{}/api/v1/events?since=0", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let (mut buf, mut out) = (String::new(), Vec::new());
    while !done(&out) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(15), resp.chunk())
            .await
            .expect("events within 15 s")
            .expect("chunk")
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let kind = frame
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            if let (Some(kind), Some(data)) = (kind, data) {
                out.push((kind.to_string(), serde_json::from_str(data).expect("json")));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_list_rows_filters_and_triage_on_sqlite() {
    inbox(App::builder(switchboard_bin!())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_list_rows_filters_and_triage_on_postgres() {
    inbox(App::builder(switchboard_bin!()).postgres()).await;
}
