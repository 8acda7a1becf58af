//! Conversations: listing with filters and keyset pagination, message pages, read
//! state and the unread summary, closing and reopening.

use crate::support::{TestApp, ids, sms};
use axum::http::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn list_filters_and_paginates_without_gaps_or_duplicates() {
    let app = TestApp::spawn().await;
    let mut convs = Vec::new();
    for i in 0..7 {
        convs.push(app.acme_sms(&format!("+1555000{i:04}"), "hi").await);
    }
    app.ingest("globex", "globex-sms", sms("+15559990000", "elsewhere"))
        .await;

    let all = app.get("/api/v1/conversations?limit=100", &app.admin).await;
    assert_eq!(all.status, StatusCode::OK);
    let all_ids = ids(&all.body);
    assert_eq!(all_ids.len(), 7);
    assert_eq!(all.body["next_cursor"], Value::Null);

    let mut seen = Vec::new();
    let mut uri = "/api/v1/conversations?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = app.get(&uri, &app.agent).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        seen.extend(ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/conversations?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, all_ids,
        "pages must walk the full list in order, once"
    );

    app.post(
        &format!("/api/v1/conversations/{}/close", convs[0]),
        &app.agent,
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/v1/conversations/{}/close", convs[1]),
        &app.agent,
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/v1/conversations/{}/assign", convs[2]),
        &app.agent,
        json!({"assignee": "bob"}),
    )
    .await;
    app.post(
        &format!("/api/v1/conversations/{}/read", convs[3]),
        &app.agent,
        json!({}),
    )
    .await;

    let q = |query: &str| format!("/api/v1/conversations?{query}");
    let mut closed = ids(&app.get(&q("status=closed"), &app.agent).await.body);
    closed.sort();
    let mut expected = vec![convs[0].clone(), convs[1].clone()];
    expected.sort();
    assert_eq!(closed, expected);
    assert_eq!(
        ids(&app.get(&q("status=open"), &app.agent).await.body).len(),
        5
    );
    assert_eq!(
        ids(&app.get(&q("assignee=bob"), &app.agent).await.body),
        vec![convs[2].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("assignee=none"), &app.agent).await.body).len(),
        6
    );
    assert_eq!(
        ids(&app.get(&q("unread=false"), &app.agent).await.body),
        vec![convs[3].clone()]
    );
    assert_eq!(
        ids(&app.get(&q("unread=true"), &app.agent).await.body).len(),
        6
    );
    assert_eq!(
        ids(&app
            .get(&q("channel=acme-sms&status=open&limit=2"), &app.agent)
            .await
            .body)
        .len(),
        2
    );
    assert!(ids(&app.get(&q("channel=globex-sms"), &app.agent).await.body).is_empty());
    let contact = app
        .get(&format!("/api/v1/conversations/{}", convs[4]), &app.agent)
        .await;
    let contact_id = contact.body["conversation"]["contact"]["id"]
        .as_str()
        .expect("contact")
        .to_string();
    assert_eq!(
        ids(&app
            .get(&q(&format!("contact={contact_id}")), &app.agent)
            .await
            .body),
        vec![convs[4].clone()]
    );

    app.get(&q("cursor=not-a-cursor"), &app.agent)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_cursor");
    for bad in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "status=pending",
        "unread=maybe",
        "sort=asc",
    ] {
        app.get(&q(bad), &app.agent)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn messages_paginate_newest_first() {
    let app = TestApp::spawn().await;
    let mut conv = String::new();
    for i in 0..5 {
        conv = app.acme_sms("+15550001111", &format!("message {i}")).await;
    }
    let mut texts = Vec::new();
    let mut uri = format!("/api/v1/conversations/{conv}/messages?limit=2");
    loop {
        let page = app.get(&uri, &app.agent).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for m in page.body["items"].as_array().expect("items") {
            texts.push(m["text"].as_str().expect("text").to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/conversations/{conv}/messages?limit=2&cursor={c}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..5).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);
    let detail = app
        .get(&format!("/api/v1/conversations/{conv}"), &app.agent)
        .await;
    assert_eq!(detail.body["conversation"]["message_count"], 5);
    assert_eq!(detail.body["participants"][0]["kind"], "contact");
}

#[tokio::test]
async fn mark_read_zeroes_unread_and_the_summary_follows() {
    let app = TestApp::spawn().await;
    app.acme_sms("+15550001111", "one").await;
    let conv = app.acme_sms("+15550001111", "two").await;
    let c = format!("/api/v1/conversations/{conv}");
    assert_eq!(
        app.get(&c, &app.agent).await.body["conversation"]["unread_count"],
        2
    );
    let before = app.get("/api/v1/unread", &app.agent).await;
    assert_eq!(
        (
            before.body["conversations"].clone(),
            before.body["messages"].clone()
        ),
        (json!(1), json!(2))
    );

    let read = app.post(&format!("{c}/read"), &app.agent, json!({})).await;
    assert_eq!(
        (read.status, read.body["unread_count"].clone()),
        (StatusCode::OK, json!(0))
    );
    let after = app.get("/api/v1/unread", &app.agent).await;
    assert_eq!(
        after.body,
        json!({"conversations": 0, "messages": 0, "mine": 0})
    );

    app.acme_sms("+15550001111", "three").await;
    let again = app.get("/api/v1/unread", &app.agent).await;
    assert_eq!(
        (again.body["messages"].clone(), again.body["mine"].clone()),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn close_and_reopen() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001111", "hello").await;
    let c = format!("/api/v1/conversations/{conv}");
    let closed = app.post(&format!("{c}/close"), &app.agent, json!({})).await;
    assert_eq!(
        (closed.status, closed.body["status"].clone()),
        (StatusCode::OK, json!("closed"))
    );
    assert_eq!(
        app.get(&c, &app.agent).await.body["conversation"]["status"],
        "closed"
    );
    let open = app
        .post(&format!("{c}/reopen"), &app.agent, json!({}))
        .await;
    assert_eq!(
        (open.status, open.body["status"].clone()),
        (StatusCode::OK, json!("open"))
    );
    app.get(&format!("{c}/close"), &app.agent)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
