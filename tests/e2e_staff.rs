//! Staff end to end, on SQLite and PostgreSQL: `GET /api/v1/me`, the staff directory (seen
//! identities and admin-managed entries), assignees checked against it, and a tenant's
//! `agent_visibility = "assigned"` across lists, detail, actions and live events.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_testkit::twilio::sms_params;
use switchboard_testkit::{App, AppBuilder, switchboard_bin};

const JWT_SECRET: &str = "e2e-staff-jwt-secret-0123456789abcdef";

fn builder(postgres: bool) -> AppBuilder {
    let b = App::builder(switchboard_bin!())
        .token("acme", "admin", "boss")
        .token("acme", "agent", "ann")
        .toml(&format!(
            "[auth]\njwt_algorithm = \"HS256\"\njwt_secret = \"{JWT_SECRET}\"\n"
        ));
    if postgres { b.postgres() } else { b }
}

fn jwt(subject: &str, role: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let claims = json!({"sub": subject, "tenant": "acme", "role": role, "exp": exp});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("encode")
}

async fn call(app: &App, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, body) = app.api(method.clone(), path, token, body).await;
    json!({"status": status, "body": body})
}

async fn me(postgres: bool) {
    let app = builder(postgres).spawn().await;
    let [boss, ann] = app.tokens.clone().try_into().expect("tokens");
    let me = app.get_ok("/api/v1/me", &ann).await;
    assert_eq!(me["id"], "ann");
    assert_eq!(me["role"], "agent");
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["auth"], "token");
    assert!(me["token_id"].is_string(), "{me}");
    assert_eq!(me["display_name"], Value::Null);
    assert_eq!(me["conversation_visibility"], "all");
    // A display name from the directory shows up.
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/staff/ann",
        &boss,
        Some(json!({"display_name": "Ann Agent", "email": "ann@acme.example"})),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    let me = app.get_ok("/api/v1/me", &ann).await;
    assert_eq!(me["display_name"], "Ann Agent");
    assert_eq!(me["email"], "ann@acme.example");
    let me = app.get_ok("/api/v1/me", &jwt("jay", "admin")).await;
    assert_eq!(
        (&me["id"], &me["role"], &me["auth"], &me["token_id"]),
        (&json!("jay"), &json!("admin"), &json!("jwt"), &Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_says_who_the_caller_is() {
    me(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_says_who_the_caller_is_on_postgres() {
    me(true).await;
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

async fn directory(postgres: bool) {
    let app = builder(postgres).spawn().await;
    let [boss, ann] = app.tokens.clone().try_into().expect("tokens");
    app.get_ok("/api/v1/me", &boss).await;
    app.get_ok("/api/v1/me", &jwt("jay", "agent")).await;
    // Every identity that authenticated is listed, with how it did.
    let page = app.get_ok("/api/v1/staff", &ann).await;
    assert_eq!(ids(&page), ["ann", "boss", "jay"]);
    let jay = &page["items"][2];
    assert_eq!(
        (&jay["auth"], &jay["role"]),
        (&json!("jwt"), &json!("agent"))
    );
    assert_eq!(
        (&jay["managed"], &jay["active"]),
        (&json!(false), &json!(true))
    );
    assert!(jay["last_seen_at"].is_string(), "{jay}");
    let first = app.get_ok("/api/v1/staff?limit=2", &ann).await;
    assert_eq!(ids(&first), ["ann", "boss"]);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let rest = app
        .get_ok(&format!("/api/v1/staff?limit=2&cursor={cursor}"), &ann)
        .await;
    assert_eq!(ids(&rest), ["jay"]);

    // Only admins manage it.
    let carol = json!({"id": "carol", "display_name": "Carol", "email": "carol@acme.example"});
    let r = call(
        &app,
        Method::POST,
        "/api/v1/staff",
        &ann,
        Some(carol.clone()),
    )
    .await;
    assert_eq!(r["status"], 403, "{r}");
    let r = call(
        &app,
        Method::POST,
        "/api/v1/staff",
        &boss,
        Some(carol.clone()),
    )
    .await;
    assert_eq!(r["status"], 201, "{r}");
    assert_eq!(r["body"]["managed"], true);
    assert_eq!(r["body"]["auth"], Value::Null);
    let r = call(&app, Method::POST, "/api/v1/staff", &boss, Some(carol)).await;
    assert_eq!(
        (&r["status"], &r["body"]["error"]["code"]),
        (&json!(409), &json!("staff_exists"))
    );
    let bad = json!({"id": "dave", "email": "not an address"});
    let r = call(&app, Method::POST, "/api/v1/staff", &boss, Some(bad)).await;
    assert_eq!(r["status"], 422, "{r}");
    assert!(
        r["body"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("email"))
    );

    let change = json!({"display_name": null, "active": false});
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/staff/carol",
        &boss,
        Some(change),
    )
    .await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(
        (&r["body"]["display_name"], &r["body"]["active"]),
        (&Value::Null, &json!(false))
    );
    assert_eq!(r["body"]["email"], "carol@acme.example");
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/staff/nobody",
        &boss,
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(r["status"], 404);
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/staff/carol",
        &boss,
        Some(json!({})),
    )
    .await;
    assert_eq!(r["status"], 422);

    let r = call(&app, Method::DELETE, "/api/v1/staff/carol", &ann, None).await;
    assert_eq!(r["status"], 403);
    let r = call(&app, Method::DELETE, "/api/v1/staff/carol", &boss, None).await;
    assert_eq!(r["status"], 204, "{r}");
    let r = call(&app, Method::GET, "/api/v1/staff/carol", &ann, None).await;
    assert_eq!(r["status"], 404);
    // Another tenant's directory is its own.
    let other = app.token("other", "admin", "olga");
    assert_eq!(ids(&app.get_ok("/api/v1/staff", &other).await), ["olga"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_seen_identities_and_admins_manage_it() {
    directory(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_seen_identities_and_admins_manage_it_on_postgres() {
    directory(true).await;
}

/// A new conversation from `from` (an inbound SMS); its id.
async fn inbound(app: &App, admin: &str, sid: u32, from: &str) -> String {
    let sid = format!("SM{sid:032}");
    let r = app
        .post_twilio("messages", &sms_params(&sid, from, "hello"))
        .await;
    assert_eq!(r.status(), 200);
    app.newest_conversation(admin).await
}

async fn assign(app: &App, token: &str, conversation: &str, assignee: Value) -> Value {
    let path = format!("/api/v1/conversations/{conversation}/assign");
    call(
        app,
        Method::POST,
        &path,
        token,
        Some(json!({"assignee": assignee})),
    )
    .await
}

async fn assignees(postgres: bool) {
    let app = builder(postgres).spawn().await;
    let [boss, ann] = app.tokens.clone().try_into().expect("tokens");
    let c = inbound(&app, &boss, 1, "+14155550101").await;
    let r = assign(&app, &boss, &c, json!("zed")).await;
    assert_eq!(r["status"], 422, "{r}");
    let message = r["body"]["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("assignee") && message.contains("zed"),
        "{message}"
    );
    // An agent takes a conversation themselves; admins assign to directory entries.
    assert_eq!(assign(&app, &ann, &c, json!("ann")).await["status"], 200);
    let zed = json!({"id": "zed"});
    let r = call(&app, Method::POST, "/api/v1/staff", &boss, Some(zed)).await;
    assert_eq!(r["status"], 201, "{r}");
    let r = assign(&app, &boss, &c, json!("zed")).await;
    assert_eq!(
        (&r["status"], &r["body"]["assignee"]),
        (&json!(200), &json!("zed"))
    );
    // An inactive member cannot be assigned; unassigning always works.
    let off = json!({"active": false});
    call(&app, Method::PATCH, "/api/v1/staff/zed", &boss, Some(off)).await;
    assert_eq!(assign(&app, &boss, &c, Value::Null).await["status"], 200);
    let r = assign(&app, &boss, &c, json!("zed")).await;
    assert_eq!(r["status"], 422, "{r}");
    assert!(
        r["body"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("inactive"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignees_must_be_active_directory_entries() {
    assignees(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignees_must_be_active_directory_entries_on_postgres() {
    assignees(true).await;
}

/// Reads SSE events (type, data) until one satisfies `last`.
async fn sse_until(
    resp: &mut reqwest::Response,
    last: impl Fn(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .expect("event within 10s")
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
                let event: Value = serde_json::from_str(data).expect("json");
                let done = last(kind, &event["data"]);
                out.push((kind.to_string(), event["data"].clone()));
                if done {
                    return out;
                }
            }
        }
    }
}

async fn visibility(postgres: bool) {
    let app = builder(postgres)
        .tenant_toml("acme", "agent_visibility = \"assigned\"")
        .spawn()
        .await;
    let [boss, ann] = app.tokens.clone().try_into().expect("tokens");
    call(
        &app,
        Method::POST,
        "/api/v1/staff",
        &boss,
        Some(json!({"id": "carol"})),
    )
    .await;
    let free = inbound(&app, &boss, 1, "+14155550101").await;
    let mine = inbound(&app, &boss, 2, "+14155550102").await;
    let theirs = inbound(&app, &boss, 3, "+14155550103").await;
    assert_eq!(assign(&app, &ann, &mine, json!("ann")).await["status"], 200);
    assert_eq!(
        assign(&app, &boss, &theirs, json!("carol")).await["status"],
        200
    );
    // Ann cannot take what she cannot see.
    assert_eq!(
        assign(&app, &ann, &theirs, json!("ann")).await["status"],
        404
    );

    let me = app.get_ok("/api/v1/me", &ann).await;
    assert_eq!(me["conversation_visibility"], "assigned");
    let mut seen = ids(&app.get_ok("/api/v1/conversations", &ann).await);
    seen.sort();
    let mut want = vec![free.clone(), mine.clone()];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        ids(&app.get_ok("/api/v1/conversations", &boss).await).len(),
        3
    );
    let unread = app.get_ok("/api/v1/unread", &ann).await;
    assert_eq!(unread["conversations"], 2, "{unread}");
    assert_eq!(
        app.get_ok("/api/v1/unread", &boss).await["conversations"],
        3
    );
    for (method, path) in [
        (Method::GET, format!("/api/v1/conversations/{theirs}")),
        (
            Method::GET,
            format!("/api/v1/conversations/{theirs}/messages"),
        ),
        (Method::GET, format!("/api/v1/conversations/{theirs}/audit")),
        (Method::POST, format!("/api/v1/conversations/{theirs}/read")),
        (
            Method::POST,
            format!("/api/v1/conversations/{theirs}/close"),
        ),
    ] {
        let (status, body) = app.api(method.clone(), &path, &ann, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, _) = app.post_reply(&ann, &theirs, "hi").await;
    assert_eq!(status, 404);
    app.get_ok(&format!("/api/v1/conversations/{mine}/messages"), &ann)
        .await;
    app.get_ok(&format!("/api/v1/conversations/{theirs}"), &boss)
        .await;

    // Live events: from the start of the log, Ann's stream carries only what she sees, and
    // the assignment that takes a conversation away from her.
    let mut resp = app
        .http
        .get(format!("{}/api/v1/events?since=0", app.base))
        .bearer_auth(&ann)
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        assign(&app, &boss, &mine, json!("carol")).await["status"],
        200
    );
    let events = sse_until(&mut resp, |kind, data| {
        kind == "conversation.updated" && data["previous_assignee"] == "ann"
    })
    .await;
    let about = |c: &str| events.iter().any(|(_, d)| d["conversation_id"] == c);
    assert!(about(&free) && about(&mine), "{events:?}");
    assert!(!about(&theirs), "{events:?}");
    assert_eq!(
        app.api(
            Method::GET,
            &format!("/api/v1/conversations/{mine}"),
            &ann,
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_of_an_assigned_tenant_see_only_theirs_and_unassigned() {
    visibility(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_of_an_assigned_tenant_see_only_theirs_and_unassigned_on_postgres() {
    visibility(true).await;
}
