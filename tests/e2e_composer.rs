//! The composer's companions through the real daemon, on SQLite and PostgreSQL: retrying a
//! failed reply, internal notes with mentions, canned replies with placeholders, and bulk
//! actions.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, AppBuilder, eventually, switchboard_bin};

async fn call(app: &App, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, body) = app.api(method.clone(), path, token, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {body}"
    );
    body
}

async fn conversation(app: &App, token: &str, sid: &str, from: &str, name: &str) -> String {
    let mut params = sms_params(sid, from, "hello");
    params.push(("ProfileName", name));
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    let list = call(app, Method::GET, "/api/v1/conversations", token, None).await;
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["contact"]["identities"][0]["value"] == from)
        .and_then(|c| c["id"].as_str())
        .expect("conversation")
        .to_string()
}

async fn composer(builder: AppBuilder) {
    let app = builder
        .token("acme", "admin", "boss")
        .token("acme", "agent", "alice")
        .spawn()
        .await;
    let [boss, alice] = app.tokens.clone().try_into().expect("tokens");
    let conv = conversation(
        &app,
        &alice,
        "SM000000000000000000000000000000a1",
        "+15550001001",
        "Ann Lee",
    )
    .await;
    let other = conversation(
        &app,
        &alice,
        "SM000000000000000000000000000000a2",
        "+15550001002",
        "Bo",
    )
    .await;

    // Retry: a permanently refused reply fails; retried, it is queued again and sent.
    app.twilio().plan(
        400,
        json!({"code": 21211, "message": "not a valid phone number", "status": 400}),
    );
    let reply = call(
        &app,
        Method::POST,
        &format!("/api/v1/conversations/{conv}/messages"),
        &alice,
        Some(json!({"text": "try me"})),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/messages/{id}");
    eventually(15, || async {
        let m = call(&app, Method::GET, &path, &alice, None).await;
        (m["delivery_status"] == "failed").then_some(())
    })
    .await;
    let retried = call(&app, Method::POST, &format!("{path}/retry"), &alice, None).await;
    assert_eq!(retried["delivery_status"], "queued");
    assert!(retried["error_code"].is_null());
    eventually(15, || async {
        let m = call(&app, Method::GET, &path, &alice, None).await;
        (m["delivery_status"] == "sent").then_some(())
    })
    .await;
    let (status, body) = app
        .api(Method::POST, &format!("{path}/retry"), &alice, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("message_not_retryable"))
    );
    let (status, _) = app
        .api(Method::POST, "/api/v1/messages/nope/retry", &alice, None)
        .await;
    assert_eq!(status, 404);

    // Notes: never sent, listed newest first, mentions found.
    let sends_before = app.twilio().requests().len();
    let note = call(
        &app,
        Method::POST,
        &format!("/api/v1/conversations/{conv}/notes"),
        &alice,
        Some(json!({"text": "@boss refund? cc @boss."})),
    )
    .await;
    assert_eq!(note["mentions"], json!(["boss"]));
    assert_eq!(note["author"], "alice");
    let notes = call(
        &app,
        Method::GET,
        &format!("/api/v1/conversations/{conv}/notes"),
        &boss,
        None,
    )
    .await;
    assert_eq!(notes["items"][0]["id"], note["id"]);
    assert_eq!(
        app.twilio().requests().len(),
        sends_before,
        "a note was sent"
    );
    let (status, body) = app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/notes"),
            &alice,
            Some(json!({"text": " "})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("/text"))
    );

    // Canned replies: created, rendered for a conversation, shortcut unique, changed, deleted.
    let canned = call(
        &app,
        Method::POST,
        "/api/v1/canned-replies",
        &alice,
        Some(json!({"shortcut": "/ship", "title": "Shipping", "body": "Hi {{contact.first_name}}, {{agent.name}} here. {{typo}}"})),
    )
    .await;
    assert_eq!(canned["shortcut"], "ship");
    let rendered = call(
        &app,
        Method::GET,
        &format!("/api/v1/canned-replies?conversation_id={conv}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(rendered[0]["rendered"], "Hi Ann, alice here. {{typo}}");
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/canned-replies",
            &boss,
            Some(json!({"shortcut": "ship", "title": "x", "body": "y"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("shortcut_taken"))
    );
    let cid = canned["id"].as_str().expect("id");
    let changed = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/canned-replies/{cid}"),
        &boss,
        Some(json!({"title": "Shipping (EU)"})),
    )
    .await;
    assert_eq!(
        (changed["title"].as_str(), changed["shortcut"].as_str()),
        (Some("Shipping (EU)"), Some("ship"))
    );
    let (status, _) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/canned-replies/{cid}"),
            &boss,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        call(&app, Method::GET, "/api/v1/canned-replies", &alice, None).await,
        json!([])
    );

    // Bulk: each conversation as its single action; an unknown id fails alone.
    let done = call(
        &app,
        Method::POST,
        "/api/v1/conversations/bulk",
        &alice,
        Some(json!({"ids": [conv, "nope", other], "action": "close"})),
    )
    .await;
    let oks: Vec<bool> = done["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["ok"].as_bool().expect("ok"))
        .collect();
    assert_eq!(oks, vec![true, false, true]);
    assert_eq!(done["results"][1]["error"]["error"]["code"], "not_found");
    let closed = call(
        &app,
        Method::GET,
        "/api/v1/conversations?status=closed&total=true",
        &alice,
        None,
    )
    .await;
    assert_eq!(closed["total"], 2);
    // An agent may not assign others, in bulk as alone.
    let done = call(
        &app,
        Method::POST,
        "/api/v1/conversations/bulk",
        &alice,
        Some(json!({"ids": [conv], "action": "assign", "assignee": "boss"})),
    )
    .await;
    assert_eq!(done["results"][0]["error"]["error"]["code"], "forbidden");
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/conversations/bulk",
            &alice,
            Some(json!({"ids": [], "action": "read"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("/ids"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_notes_canned_replies_and_bulk_on_sqlite() {
    composer(App::builder(switchboard_bin!())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_notes_canned_replies_and_bulk_on_postgres() {
    composer(App::builder(switchboard_bin!()).postgres()).await;
}
