//! The crash tests. Inbound: a burst of signed webhooks with duplicates mixed in, `kill -9`
//! of the daemon in the middle of it, a restart, and then the promises are checked directly
//! in the database: every acknowledged message is present exactly once, nothing is
//! half-stored, and after the provider's retries every message is present exactly once.
//! Outbound: `kill -9` while Twilio holds the answer to a send it accepted; after the
//! restart the message is found in Twilio's Messages list, not sent a second time.

use sqlx::Connection;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, Daemon, eventually, spawn_app, switchboard_bin};
use tokio::sync::Mutex;

const MESSAGES: usize = 400;

fn sid(i: usize) -> String {
    format!("SM{i:032}")
}

fn from(i: usize) -> String {
    format!("+1415555{:04}", i % 37)
}

/// Sends message `i` (with its duplicate when `i` is odd); returns whether any 2xx came back.
async fn deliver(d: &Daemon, i: usize) -> bool {
    let sid = sid(i);
    let from = from(i);
    let body = format!("message {i}");
    let params = sms_params(&sid, &from, &body);
    let copies = if i % 2 == 1 { 2 } else { 1 };
    let mut acked = false;
    for _ in 0..copies {
        let url = d.webhook_url("messages");
        let sig = twilio_signature(AUTH_TOKEN, &url, &params);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let resp = d
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", sig)
            .body(body)
            .send()
            .await;
        if let Ok(r) = resp
            && r.status().is_success()
        {
            acked = true;
        }
    }
    acked
}

struct Invariants {
    per_sid: Vec<(String, i64)>,
    journal_without_message: i64,
    count_mismatch: i64,
}

async fn check(db: &std::path::Path) -> Invariants {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open db");
    let per_sid: Vec<(String, i64)> =
        sqlx::query_as("SELECT provider_message_id, COUNT(*) FROM messages WHERE direction = 'inbound' GROUP BY provider_message_id")
            .fetch_all(&mut conn)
            .await
            .expect("per sid");
    let journal_without_message: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbound_events e WHERE e.kind = 'message' AND NOT EXISTS
           (SELECT 1 FROM messages m WHERE m.channel_id = e.channel_id AND instr(e.idempotency_key, m.provider_message_id) > 0)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("journal check");
    let count_mismatch: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM conversations c WHERE c.message_count <> (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count check");
    Invariants {
        per_sid,
        journal_without_message,
        count_mismatch,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_burst_loses_and_duplicates_nothing() {
    let mut app: App = spawn_app(switchboard_bin!()).await;

    let acked = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..12 {
        let (acked, next, done) = (acked.clone(), next.clone(), done.clone());
        let dir = app.dir.path().to_path_buf();
        let config = app.config.clone();
        let base = app.base.clone();
        workers.push(tokio::spawn(async move {
            // Each worker talks to the first daemon through a lightweight handle.
            let d = Daemon::handle(&base, &dir, &config);
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= MESSAGES {
                    break;
                }
                if deliver(&d, i).await {
                    acked.lock().await.insert(i);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Kill mid-burst.
    eventually(60, || async {
        (done.load(Ordering::SeqCst) >= MESSAGES / 3).then_some(())
    })
    .await;
    app.kill9();
    for w in workers {
        w.await.expect("worker");
    }
    let acked: HashSet<usize> = acked.lock().await.clone();
    assert!(
        acked.len() >= MESSAGES / 3,
        "burst acknowledged {} before the kill",
        acked.len()
    );
    assert!(acked.len() < MESSAGES, "the kill must interrupt the burst");

    let db = app.dir.path().join("switchboard.db");
    let after_crash = check(&db).await;
    assert_eq!(
        after_crash.journal_without_message, 0,
        "a journaled delivery without its message is half-stored"
    );
    assert_eq!(
        after_crash.count_mismatch, 0,
        "conversation counters disagree with stored messages"
    );
    let present: HashSet<String> = after_crash.per_sid.iter().map(|(s, _)| s.clone()).collect();
    for (s, n) in &after_crash.per_sid {
        assert_eq!(*n, 1, "{s} stored {n} times");
    }
    for i in &acked {
        assert!(present.contains(&sid(*i)), "acknowledged message {i} lost");
    }

    // Restart; the provider retries everything it has no 2xx for (and some it has).
    app.start();
    let restarted = app.daemon();
    for i in 0..MESSAGES {
        if !acked.contains(&i) || i % 5 == 0 {
            assert!(
                deliver(restarted, i).await,
                "retry of {i} after restart not acknowledged"
            );
        }
    }
    let final_state = check(&db).await;
    assert_eq!(final_state.per_sid.len(), MESSAGES);
    assert!(final_state.per_sid.iter().all(|(_, n)| *n == 1));
    assert_eq!(final_state.journal_without_message, 0);
    assert_eq!(final_state.count_mismatch, 0);
    eprintln!(
        "crash test: {} acknowledged before kill -9, {} present after it, {} after retries",
        acked.len(),
        present.len(),
        final_state.per_sid.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_send_does_not_send_twice() {
    // A short lease, so the restarted daemon takes the interrupted job over soon (longer
    // than the few milliseconds between the send and the kill).
    let mut app = App::builder(switchboard_bin!())
        .env("SWITCHBOARD_OUTBOX__LEASE_SECS", "3")
        .token("acme", "admin", "boss")
        .spawn()
        .await;
    let admin = app.tokens[0].clone();
    let params = sms_params(
        "SM000000000000000000000000000000f1",
        "+14155550190",
        "where?",
    );
    assert_eq!(app.post_twilio("messages", &params).await.status(), 200);
    let conv = app.newest_conversation(&admin).await;

    // Twilio accepts the reply but its answer never reaches the daemon: killed meanwhile.
    app.twilio().delay_answers(Duration::from_secs(60));
    let (status, reply) = app.post_reply(&admin, &conv, "on its way").await;
    assert_eq!(status, 202, "{reply}");
    let sid = eventually(15, || async {
        app.twilio()
            .messages()
            .iter()
            .find(|m| m["body"] == "on its way")
            .and_then(|m| m["sid"].as_str().map(str::to_string))
    })
    .await;
    app.kill9();
    app.twilio().delay_answers(Duration::ZERO);

    app.start();
    let path = format!("/api/v1/conversations/{conv}/messages");
    let sent = eventually(30, || async {
        let page = app.get_ok(&path, &admin).await;
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["id"] == reply["id"] && m["delivery_status"] == "sent")
            .cloned()
    })
    .await;
    assert_eq!(sent["provider_message_id"], sid.as_str(), "{sent}");
    let posts = app
        .twilio()
        .sent()
        .iter()
        .filter(|form| form.iter().any(|(k, v)| k == "Body" && v == "on its way"))
        .count();
    assert_eq!(posts, 1, "Twilio received the reply {posts} times");
    assert!(
        app.log().contains("recorded, not sent again"),
        "the restarted daemon found the message in Twilio's list"
    );
}
