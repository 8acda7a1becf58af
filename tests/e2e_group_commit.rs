//! Group commit through the real daemon: a burst of concurrent signed Twilio webhooks
//! (with re-deliveries) is acknowledged, stored exactly once, and written in shared
//! transactions (the daemon's `/metrics` counts transactions and the deliveries they
//! carried), on SQLite and PostgreSQL.

use reqwest::Method;
use std::collections::HashSet;
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, AppBuilder, switchboard_bin};

const DELIVERIES: u32 = 240;

fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn burst(builder: AppBuilder) {
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
    let page = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    let commits = metric(&page, "switchboard_group_commits_total");
    let items = metric(&page, "switchboard_group_commit_items_total");
    assert_eq!(items, f64::from(DELIVERIES), "{page}");
    assert!(
        commits < items,
        "no delivery shared a transaction: {commits} commits for {items} deliveries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_stored_once_in_shared_transactions_on_sqlite() {
    burst(App::builder(switchboard_bin!())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_stored_once_in_shared_transactions_on_postgres() {
    burst(App::builder(switchboard_bin!()).postgres()).await;
}
