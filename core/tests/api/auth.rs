//! Authentication and authorization: missing, malformed and revoked tokens, and the
//! actions only an admin may take (spam, assigning others).

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

#[tokio::test]
async fn missing_bad_and_revoked_tokens_are_401() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            Request::get("/api/v1/channels")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    app.get("/api/v1/channels", "sb_not_a_real_token")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let basic = Request::get("/api/v1/channels")
        .header(header::AUTHORIZATION, "Basic YWxpY2U6cHc=")
        .body(Body::empty())
        .expect("req");
    app.send(basic)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    assert_eq!(
        app.get("/api/v1/channels", &app.agent).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.store.revoke_token("acme", "bob").await.expect("revoke"),
        1
    );
    app.get("/api/v1/channels", &app.agent)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn spam_and_assigning_others_need_admin() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001111", "hello").await;
    let c = format!("/api/v1/conversations/{conv}");

    for action in ["spam", "not-spam"] {
        app.post(&format!("{c}/{action}"), &app.agent, json!({}))
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let r = app.post(&format!("{c}/spam"), &app.admin, json!({})).await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::OK, json!("spam"))
    );
    // Reopening a spam conversation is not-spam in disguise.
    app.post(&format!("{c}/reopen"), &app.agent, json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .post(&format!("{c}/not-spam"), &app.admin, json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (StatusCode::OK, json!("open"))
    );

    let assign = format!("{c}/assign");
    app.post(&assign, &app.agent, json!({"assignee": "carol"}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .post(&assign, &app.agent, json!({"assignee": "bob"}))
        .await;
    assert_eq!(
        (r.status, r.body["assignee"].clone()),
        (StatusCode::OK, json!("bob"))
    );
    let r = app
        .post(&assign, &app.agent, json!({"assignee": null}))
        .await;
    assert_eq!(
        (r.status, r.body["assignee"].clone()),
        (StatusCode::OK, Value::Null)
    );
    // Carol has no token and no directory entry yet: not assignable until an admin adds her.
    let r = app
        .post(&assign, &app.admin, json!({"assignee": "carol"}))
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("assignee"))
    );
    let r = app
        .post("/api/v1/staff", &app.admin, json!({"id": "carol"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(&assign, &app.admin, json!({"assignee": "carol"}))
        .await;
    assert_eq!(
        (r.status, r.body["assignee"].clone()),
        (StatusCode::OK, json!("carol"))
    );
    app.post(&assign, &app.agent, json!({"assignee": null}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .post(&assign, &app.admin, json!({"assignee": null}))
        .await;
    assert_eq!(
        (r.status, r.body["assignee"].clone()),
        (StatusCode::OK, Value::Null)
    );
    app.post(&assign, &app.admin, json!({}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post(&assign, &app.admin, json!({"assignee": ""}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}
