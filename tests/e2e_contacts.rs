//! Contacts end to end through the real binary, on SQLite and on PostgreSQL: search and
//! changes, merging a person's SMS and WhatsApp contacts (old ids answer 308), and erasure
//! (content, attachments and their files, raw journal entries; the conversation stays).

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_testkit::graph::{inbound, meta_signature};
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, eventually, switchboard_bin};

const ANN: &str = "+14155550123";

/// Tokens: admin `boss`, agent `alice` (tenant acme), admin `eve` (tenant other).
async fn app(postgres: bool) -> App {
    let mut b = App::builder(switchboard_bin!())
        .graph()
        .private_media()
        .token("acme", "admin", "boss")
        .token("acme", "agent", "alice")
        .token("other", "admin", "eve");
    if postgres {
        b = b.postgres();
    }
    b.spawn().await
}

fn sid(n: u32) -> String {
    format!("SM{n:032}")
}

async fn sms(app: &App, n: u32, from: &str, body: &str) {
    let sid = sid(n);
    let r = app
        .post_twilio("messages", &sms_params(&sid, from, body))
        .await;
    assert_eq!(r.status(), 200);
}

/// An MMS with the fake's current media bytes, once its attachment is stored.
async fn mms(app: &App, n: u32, from: &str) {
    let (sid, url) = (sid(n), app.twilio().media_url(n));
    let mut params = sms_params(&sid, from, "see attached");
    params.retain(|(k, _)| *k != "NumMedia");
    params.extend([
        ("NumMedia", "1"),
        ("MediaUrl0", url.as_str()),
        ("MediaContentType0", "image/png"),
    ]);
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    eventually(15, || async {
        let (_, rows) =
            sql_rows(app, "SELECT state FROM attachments WHERE state = 'pending'").await;
        rows.is_empty().then_some(())
    })
    .await;
}

async fn contacts(app: &App, token: &str, query: &str) -> Vec<Value> {
    let body = app.get_ok(&format!("/api/v1/contacts{query}"), token).await;
    body["items"].as_array().cloned().unwrap_or_default()
}

/// The one contact whose identity values contain `value`.
async fn contact_id(app: &App, value: &str) -> String {
    let found = contacts(
        app,
        &app.tokens[0],
        &format!("?q={}", value.replace('+', "%2B")),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    found[0]["id"].as_str().expect("id").to_string()
}

async fn messages(app: &App, conversation: &str) -> Vec<Value> {
    let body = app
        .get_ok(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &app.tokens[0],
        )
        .await;
    body["items"].as_array().cloned().unwrap_or_default()
}

/// `SELECT <one text column> ...` on the daemon's database (SQLite or PostgreSQL).
async fn sql_rows(app: &App, sql: &'static str) -> (usize, Vec<String>) {
    let rows: Vec<String> = if app.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.database_url).await.expect("pg");
        sqlx::query_scalar(sql)
            .fetch_all(&pool)
            .await
            .expect("query")
    } else {
        let pool = sqlx::SqlitePool::connect(&app.database_url)
            .await
            .expect("sqlite");
        sqlx::query_scalar(sql)
            .fetch_all(&pool)
            .await
            .expect("query")
    };
    (rows.len(), rows)
}

async fn sql_exec(app: &App, sql: &'static str) {
    if app.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.database_url).await.expect("pg");
        sqlx::query(sql).execute(&pool).await.expect("exec");
    } else {
        let pool = sqlx::SqlitePool::connect(&app.database_url)
            .await
            .expect("sqlite");
        sqlx::query(sql).execute(&pool).await.expect("exec");
    }
}

async fn event_types(app: &App) -> Vec<String> {
    sql_rows(app, "SELECT type FROM events ORDER BY seq")
        .await
        .1
}

/// A client that does not follow redirects, to see the 308 itself.
fn no_redirects() -> reqwest::Client {
    switchboard_testkit::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn search_change_and_isolate(postgres: bool) {
    let app = app(postgres).await;
    let [admin, agent, other] = app.tokens.clone().try_into().expect("three tokens");
    sms(&app, 1, ANN, "hi").await;
    sms(&app, 2, "+14155550199", "yo").await;

    let all = contacts(&app, &agent, "").await;
    assert_eq!(all.len(), 2);
    for c in &all {
        assert_eq!(c["identities"][0]["kind"], "phone");
        assert_eq!(c["conversation_count"], 1);
        assert!(c["last_activity_at"].is_string(), "{c}");
        assert_eq!(c["attributes"], json!({}));
    }
    let id = contact_id(&app, "0123").await;
    assert!(contacts(&app, &agent, "?q=NOBODY").await.is_empty());
    let (status, _) = app
        .api(
            Method::GET,
            &format!("/api/v1/contacts?q={}", "x".repeat(201)),
            &agent,
            None,
        )
        .await;
    assert_eq!(status, 400);

    // Any staff member changes name, notes and attributes.
    let path = format!("/api/v1/contacts/{id}");
    let change = json!({"name": "Ann Lee", "notes": "VIP", "attributes": {"tier": "gold", "n": 1}});
    let (status, body) = app.api(Method::PATCH, &path, &agent, Some(change)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Ann Lee");
    assert_eq!(contacts(&app, &agent, "?q=aNN").await[0]["id"], id.as_str());
    for (bad, field) in [
        (json!({"attributes": [1]}), "attributes"),
        (
            json!({"attributes": {"big": "x".repeat(17_000)}}),
            "attributes",
        ),
        (json!({"name": "a\nb"}), "name"),
        (json!({"notes": "a\u{0}b"}), "notes"),
        (json!({"nickname": "x"}), "nickname"),
    ] {
        let (status, body) = app.api(Method::PATCH, &path, &agent, Some(bad)).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{body}"
        );
    }
    let (status, body) = app
        .api(Method::PATCH, &path, &admin, Some(json!({"notes": null})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["notes"], Value::Null);
    let got = app.get_ok(&path, &agent).await;
    assert_eq!(
        (got["name"].clone(), got["attributes"].clone()),
        (json!("Ann Lee"), json!({"tier": "gold", "n": 1}))
    );

    let convs = app.get_ok(&format!("{path}/conversations"), &agent).await;
    assert_eq!(convs["items"][0]["contact"]["id"], id.as_str());
    let audit = app.get_ok(&format!("{path}/audit"), &agent).await;
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap_or(""),
                a["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(actions, vec![("boss", "update"), ("alice", "update")]);
    assert_eq!(
        event_types(&app)
            .await
            .iter()
            .filter(|t| *t == "contact.updated")
            .count(),
        2
    );

    // Another tenant sees nothing; agents cannot merge or erase.
    assert!(contacts(&app, &other, "").await.is_empty());
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(app.api(method, &path, &other, None).await.0, 404);
    }
    assert_eq!(
        app.api(Method::PATCH, &path, &other, Some(json!({"name": "x"})))
            .await
            .0,
        404
    );
    assert_eq!(
        app.api(Method::GET, "/api/v1/contacts/nope", &agent, None)
            .await
            .0,
        404
    );
    let merge = Some(json!({"from": contact_id(&app, "0199").await}));
    assert_eq!(
        app.api(Method::POST, &format!("{path}/merge"), &agent, merge)
            .await
            .0,
        403
    );
    assert_eq!(app.api(Method::DELETE, &path, &agent, None).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_searched_changed_and_isolated() {
    search_change_and_isolate(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_searched_changed_and_isolated_on_postgres() {
    search_change_and_isolate(true).await;
}

async fn whatsapp(app: &App, wa_id: &str, wamid: &str) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    let message = json!({"from": wa_id, "id": wamid, "timestamp": at, "type": "text", "text": {"body": "hello on WhatsApp"}});
    let body = serde_json::to_vec(&inbound(wa_id, message)).expect("json");
    let r = app
        .http
        .post(format!("{}/webhooks/acme-wa", app.base))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
}

async fn merge_sms_and_whatsapp(postgres: bool) {
    let app = app(postgres).await;
    let admin = app.tokens[0].clone();
    sms(&app, 1, ANN, "hi").await;
    whatsapp(&app, "14155550123", "wamid.M1").await;
    let all = contacts(&app, &admin, "").await;
    let id_of = |kind: &str| {
        all.iter()
            .find(|c| c["identities"][0]["kind"] == kind)
            .and_then(|c| c["id"].as_str())
            .expect("contact")
            .to_string()
    };
    let (phone, wa) = (id_of("phone"), id_of("whatsapp"));

    let merge = |from: Value| {
        let path = format!("/api/v1/contacts/{phone}/merge");
        let app = &app;
        let admin = admin.clone();
        async move {
            app.api(Method::POST, &path, &admin, Some(json!({"from": from})))
                .await
        }
    };
    let (status, merged) = merge(json!(wa)).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["identities"].as_array().map(Vec::len), Some(2));
    assert_eq!(merged["conversation_count"], 2);
    assert_eq!(contacts(&app, &admin, "").await.len(), 1);

    // The old id answers 308 to the survivor, query string kept; clients that follow land there.
    let client = no_redirects();
    for (suffix, expected) in [
        (String::new(), format!("/api/v1/contacts/{phone}")),
        (
            "/conversations?limit=1".into(),
            format!("/api/v1/contacts/{phone}/conversations?limit=1"),
        ),
    ] {
        let r = client
            .get(format!("{}/api/v1/contacts/{wa}{suffix}", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 308);
        assert_eq!(r.headers()["location"], expected.as_str());
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "contact_merged");
    }
    let followed = app.get_ok(&format!("/api/v1/contacts/{wa}"), &admin).await;
    assert_eq!(followed["id"], phone.as_str());

    // Merging again is a no-op; bad sources are named.
    assert_eq!(merge(json!(wa)).await.0, 200);
    for bad in [
        json!(phone),
        json!("no-such-contact"),
        json!(""),
        Value::Null,
    ] {
        let (status, body) = merge(bad).await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("from")),
            "{body}"
        );
    }

    // The person writes again on WhatsApp: same contact, same conversation.
    whatsapp(&app, "14155550123", "wamid.M2").await;
    let after = app
        .get_ok(&format!("/api/v1/contacts/{phone}"), &admin)
        .await;
    assert_eq!(after["conversation_count"], 2);
    let audit = app
        .get_ok(&format!("/api/v1/contacts/{phone}/audit"), &admin)
        .await;
    assert_eq!(audit["items"][0]["action"], "merge");
    assert_eq!(
        event_types(&app)
            .await
            .iter()
            .filter(|t| *t == "contact.merged")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_sms_and_whatsapp_contacts_are_merged() {
    merge_sms_and_whatsapp(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_sms_and_whatsapp_contacts_are_merged_on_postgres() {
    merge_sms_and_whatsapp(true).await;
}

fn set_media(app: &App, bytes: Vec<u8>) {
    *app.twilio().state.media.lock().expect("lock") = bytes;
}

fn blob_path(app: &App, sha256: &str) -> std::path::PathBuf {
    app.dir
        .path()
        .join("blobs/sha256")
        .join(&sha256[..2])
        .join(sha256)
}

async fn erase(postgres: bool) {
    let app = app(postgres).await;
    let admin = app.tokens[0].clone();
    // Bob and Ann send the same picture; Ann another one of her own.
    set_media(&app, vec![7u8; 64]);
    mms(&app, 10, "+14155550177").await;
    mms(&app, 11, ANN).await;
    set_media(&app, vec![9u8; 80]);
    mms(&app, 12, ANN).await;
    let ann = contact_id(&app, "0123").await;
    let conv = app
        .get_ok(&format!("/api/v1/contacts/{ann}/conversations"), &admin)
        .await["items"][0]["id"]
        .as_str()
        .expect("conversation")
        .to_string();
    // A reply, sent, and Twilio's status callback about it (journaled).
    let (status, _) = app.post_reply(&admin, &conv, "on its way").await;
    assert_eq!(status, 202);
    let sent = eventually(10, || async {
        messages(&app, &conv)
            .await
            .into_iter()
            .find(|m| m["delivery_status"] == "sent")
    })
    .await;
    let reply_sid = sent["provider_message_id"]
        .as_str()
        .expect("sid")
        .to_string();
    let params = [
        ("AccountSid", ACCOUNT_SID),
        ("From", OUR_NUMBER),
        ("To", ANN),
        ("MessageSid", reply_sid.as_str()),
        ("MessageStatus", "delivered"),
    ];
    assert!(
        app.post_twilio("status", &params)
            .await
            .status()
            .is_success()
    );
    // One entry as written before migration 0011 (no provider id): found by its key.
    sql_exec(&app, "UPDATE inbound_events SET provider_message_id = NULL WHERE idempotency_key = 'msg:SM00000000000000000000000000000011'").await;
    let shas: Vec<String> = messages(&app, &conv)
        .await
        .iter()
        .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["sha256"].as_str().map(str::to_string))
        .collect();
    assert_eq!(shas.len(), 2);
    assert!(shas.iter().all(|s| blob_path(&app, s).exists()));

    let (status, report) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/contacts/{ann}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"contact_id": ann, "conversations": 1, "messages": 3, "attachments": 2,
               "journal_entries": 3, "blobs_deleted": 1, "blobs_shared": 1})
    );
    let (kept, gone): (Vec<&String>, Vec<&String>) =
        shas.iter().partition(|s| blob_path(&app, s).exists());
    assert_eq!(
        (kept.len(), gone.len()),
        (1, 1),
        "Bob's copy of the shared picture stays"
    );

    // The contact answers 404 now; the conversation stays, emptied.
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/contacts/{ann}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("erased")),
        "{body}"
    );
    assert_eq!(
        app.api(
            Method::DELETE,
            &format!("/api/v1/contacts/{ann}"),
            &admin,
            None
        )
        .await
        .0,
        404
    );
    let c = app
        .get_ok(&format!("/api/v1/conversations/{conv}"), &admin)
        .await;
    assert_eq!(
        c["conversation"]["contact"],
        json!({"id": ann, "name": "erased", "identities": [], "erased": true})
    );
    let erased = messages(&app, &conv).await;
    assert_eq!(erased.len(), 3);
    for m in &erased {
        assert_eq!(
            (
                m["erased"].clone(),
                m["text"].clone(),
                m["external"].clone()
            ),
            (json!(true), Value::Null, json!({})),
            "{m}"
        );
    }
    let attachment = erased
        .iter()
        .find_map(|m| m["attachments"][0]["id"].as_str())
        .expect("attachment");
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/api/v1/attachments/{attachment}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("attachment_erased"))
    );
    let (status, body) = app.post_reply(&admin, &conv, "hello?").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("contact_erased"))
    );

    // The raw journal keeps Bob's delivery only; audit and event are there.
    let (_, keys) = sql_rows(
        &app,
        "SELECT idempotency_key FROM inbound_events ORDER BY idempotency_key",
    )
    .await;
    assert_eq!(keys, vec![format!("msg:{}", sid(10))]);
    assert!(
        event_types(&app)
            .await
            .contains(&"contact.erased".to_string())
    );
    let audit = app
        .get_ok(&format!("/api/v1/conversations/{conv}/audit"), &admin)
        .await;
    assert_eq!(audit["items"][0]["action"], "contact_erased");

    // The same number writing again is a new contact.
    sms(&app, 13, ANN, "me again").await;
    assert_ne!(contact_id(&app, "0123").await, ann);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_contact_removes_their_data() {
    erase(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_contact_removes_their_data_on_postgres() {
    erase(true).await;
}
