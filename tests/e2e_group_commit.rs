//! Group commit through the real daemon: a burst of concurrent signed Twilio webhooks
//! (with re-deliveries) is acknowledged, stored exactly once, every delivery through the
//! writers (the daemon's `/metrics` counts transactions and the deliveries they carried), on
//! SQLite and PostgreSQL. Whether deliveries share a transaction depends on how fast they
//! arrive against how fast a commit is, so the SQLite test makes it certain: it holds the
//! database's write lock from outside until a hundred deliveries are queued, and then they
//! must be committed in a few transactions, not one each.

use reqwest::Method;
use sqlx::Connection;
use std::collections::HashSet;
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, AppBuilder, eventually, switchboard_bin};

const DELIVERIES: u32 = 240;

fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn burst(builder: AppBuilder, hold_writer: bool) {
    let app = builder.token("acme", "admin", "boss").spawn().await;
    let admin = app.tokens[0].clone();
    // 240 deliveries from 24 senders; every tenth is a re-delivery of an earlier one.
    let sids: Vec<String> = (0..DELIVERIES)
        .map(|i| {
            let n = if i % 10 == 9 { i - 5 } else { i };
            format!("SM{n:032}")
        })
        .collect();
    let froms: Vec<String> = (0..DELIVERIES)
        .map(|i| format!("+1555000{:04}", i % 24))
        .collect();
    // SQLite: another process holds the write lock, so the daemon's writer waits and the
    // deliveries queue up behind it.
    let mut lock = None;
    if hold_writer {
        let url = format!(
            "sqlite://{}",
            app.dir.path().join("switchboard.db").display()
        );
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("side connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("write lock");
        lock = Some(conn);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (sid, from) in sids.iter().zip(&froms) {
        let d = app.daemon();
        let daemon = switchboard_testkit::Daemon::handle(&d.base, &d.dir, &d.config);
        let (sid, from) = (sid.clone(), from.clone());
        tasks.spawn(async move {
            daemon
                .post_twilio("messages", &sms_params(&sid, &from, "burst"))
                .await
                .status()
        });
    }
    if let Some(mut conn) = lock {
        eventually(8, || async {
            let queued = metric(&metrics(&app).await, "switchboard_group_commit_queued");
            (queued >= 100.0).then_some(())
        })
        .await;
        sqlx::query("COMMIT")
            .execute(&mut conn)
            .await
            .expect("release");
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("join"), 200);
    }
    let unique: HashSet<&String> = sids.iter().collect();
    let (status, body) = app
        .api(Method::GET, "/api/v1/conversations?limit=100", &admin, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 24, "one conversation per sender");
    let stored: i64 = items
        .iter()
        .map(|c| c["message_count"].as_i64().expect("count"))
        .sum();
    assert_eq!(stored, unique.len() as i64, "each message stored once");
    let page = metrics(&app).await;
    let commits = metric(&page, "switchboard_group_commits_total");
    let items = metric(&page, "switchboard_group_commit_items_total");
    assert_eq!(items, f64::from(DELIVERIES), "{page}");
    assert!(commits >= 1.0 && commits <= items, "{page}");
    if hold_writer {
        assert!(
            commits <= 40.0,
            "queued deliveries were not committed together: {commits} commits for {items}"
        );
    }
    assert_eq!(
        metric(&page, "switchboard_group_commit_queued"),
        0.0,
        "{page}"
    );
}

async fn metrics(app: &App) -> String {
    app.http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_burst_is_stored_once_in_shared_transactions_on_sqlite() {
    burst(App::builder(switchboard_bin!()), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_stored_once_through_the_writers_on_postgres() {
    burst(App::builder(switchboard_bin!()).postgres(), false).await;
}
