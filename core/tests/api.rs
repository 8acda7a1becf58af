//! REST API v1 integration tests: each test gets a fresh SQLite store in a tempdir, two
//! tenants with a Twilio channel each and admin/agent tokens, builds the real router and
//! drives it with `tower::ServiceExt::oneshot`. Data is seeded through `ingest_message`.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::api::{AppState, router};
use switchboard_core::blob::BlobStore;
use switchboard_core::model::{
    Consent, Identity, IdentityKind, InboundAttachment, InboundMessage, new_id, now_millis,
};
use switchboard_core::store::{
    self, ChannelRecord, ChannelRef, IngestOutcome, JournalEntry, NewToken, Role, Store,
    StoredBlob, TenantRecord,
};
use switchboard_core::tokens;
use tokio::sync::Notify;
use tower::ServiceExt;

const MAX_BODY: usize = 16 * 1024;

struct TestApp {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    blobs: BlobStore,
    jobs: Arc<Notify>,
    /// acme, subject "alice", admin.
    admin: String,
    /// acme, subject "bob", agent.
    agent: String,
    /// globex, subject "gina", admin.
    other: String,
}

struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
    body: Value,
}

impl TestResponse {
    fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    /// Asserts the status and our error shape with the given code.
    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"].is_string(),
            "body: {}",
            self.body
        );
    }
}

impl TestApp {
    async fn spawn() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/db.sqlite", dir.path().display());
        let store = store::open(&url, 4).await.expect("open store");
        store.migrate().await.expect("migrate");
        let tenants = ["acme", "globex"].map(|id| TenantRecord {
            id: id.into(),
            name: None,
        });
        let channels = [
            ("acme-sms", "acme", "+14155550100"),
            ("globex-sms", "globex", "+14155550200"),
        ]
        .map(|(id, tenant, address)| ChannelRecord {
            id: id.into(),
            tenant_id: tenant.into(),
            kind: "twilio".into(),
            address: Some(address.into()),
        });
        store
            .sync_tenants_and_channels(&tenants, &channels)
            .await
            .expect("sync");
        let blobs = BlobStore::open(dir.path().join("blobs"))
            .await
            .expect("blobs");
        let mut app = Self {
            _dir: dir,
            store,
            blobs,
            jobs: Arc::new(Notify::new()),
            admin: String::new(),
            agent: String::new(),
            other: String::new(),
        };
        app.admin = app.token("acme", "alice", Role::Admin).await;
        app.agent = app.token("acme", "bob", Role::Agent).await;
        app.other = app.token("globex", "gina", Role::Admin).await;
        app
    }

    async fn token(&self, tenant: &str, name: &str, role: Role) -> String {
        let (token, hash) = tokens::generate();
        let new = NewToken {
            id: new_id(),
            tenant_id: tenant.into(),
            name: name.into(),
            role,
            hash,
        };
        self.store.create_token(&new).await.expect("create token");
        token
    }

    async fn send(&self, request: Request<Body>) -> TestResponse {
        let state = AppState {
            store: self.store.clone(),
            blobs: self.blobs.clone(),
            jobs: self.jobs.clone(),
        };
        let response = router(state, MAX_BODY)
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            bytes,
            body,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    async fn get(&self, uri: &str, token: &str) -> TestResponse {
        self.call("GET", uri, token, None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> TestResponse {
        self.call("POST", uri, token, Some(body)).await
    }

    /// Ingests a message on `channel` (of `tenant`); returns (message id, conversation id).
    async fn ingest(&self, tenant: &str, channel: &str, msg: InboundMessage) -> (String, String) {
        let journal = JournalEntry {
            idempotency_key: msg.provider_message_id.clone(),
            kind: "message".into(),
            content_type: "application/json".into(),
            payload: serde_json::to_vec(&msg).expect("json"),
        };
        let ch = ChannelRef {
            tenant_id: tenant.into(),
            channel_id: channel.into(),
        };
        match self
            .store
            .ingest_message(&ch, &journal, &msg)
            .await
            .expect("ingest")
        {
            IngestOutcome::Stored {
                message_id,
                conversation_id,
                ..
            } => (message_id, conversation_id),
            other => panic!("not stored: {other:?}"),
        }
    }

    /// An SMS to acme from `from`; returns the conversation id.
    async fn acme_sms(&self, from: &str, text: &str) -> String {
        self.ingest("acme", "acme-sms", sms(from, text)).await.1
    }

    async fn outbox_pending(&self, tenant: &str) -> i64 {
        let channels = self.store.list_channels(tenant).await.expect("channels");
        channels.iter().map(|c| c.outbox_pending).sum()
    }
}

fn sms(from: &str, text: &str) -> InboundMessage {
    InboundMessage {
        provider_message_id: format!("SM{}", new_id()),
        from: Identity {
            kind: IdentityKind::Phone,
            value: from.into(),
        },
        from_name: None,
        to: vec!["+14155550100".into()],
        cc: vec![],
        subject: None,
        text: Some(text.into()),
        html: None,
        attachments: vec![],
        reply_to: vec![],
        consent: None,
        flags: vec![],
        sent_at: None,
        external: json!({}),
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn health_and_fallbacks_use_our_shapes() {
    let app = TestApp::spawn().await;
    let ok = app
        .send(Request::get("/healthz").body(Body::empty()).expect("req"))
        .await;
    assert_eq!(
        (ok.status, ok.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = app
        .send(Request::get("/readyz").body(Body::empty()).expect("req"))
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    app.get("/api/v1/nope", &app.admin)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call("DELETE", "/api/v1/channels", &app.admin, None)
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(r.headers.get(header::ALLOW).is_some());
}

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
async fn another_tenants_objects_are_404_everywhere() {
    let app = TestApp::spawn().await;
    let mut msg = sms("+15550001111", "hello");
    msg.attachments.push(InboundAttachment {
        filename: Some("a.jpg".into()),
        content_type: Some("image/jpeg".into()),
        source: Some("https://api.twilio.example/media/ME1".into()),
        content_id: None,
    });
    let (message, conv) = app.ingest("acme", "acme-sms", msg).await;
    let detail = app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin,
        )
        .await;
    let attachment = detail.body["items"][0]["attachments"][0]["id"]
        .as_str()
        .expect("attachment")
        .to_string();
    assert!(!message.is_empty());

    let c = format!("/api/v1/conversations/{conv}");
    let reply = json!({"text": "hi"});
    for (method, uri, body) in [
        ("GET", c.clone(), None),
        ("GET", format!("{c}/messages"), None),
        ("POST", format!("{c}/messages"), Some(reply)),
        ("POST", format!("{c}/read"), None),
        ("POST", format!("{c}/close"), None),
        ("POST", format!("{c}/reopen"), None),
        (
            "POST",
            format!("{c}/assign"),
            Some(json!({"assignee": "gina"})),
        ),
        ("POST", format!("{c}/spam"), None),
        ("POST", format!("{c}/not-spam"), None),
        ("GET", format!("/api/v1/attachments/{attachment}"), None),
    ] {
        let r = app.call(method, &uri, &app.other, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            r.body
        );
        assert_eq!(r.code(), "not_found");
    }
    let list = app.get("/api/v1/conversations", &app.other).await;
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(app.outbox_pending("acme").await, 0);
    let acme = app.get(&c, &app.admin).await;
    assert_eq!(acme.body["conversation"]["status"], "open");
    assert_eq!(acme.body["conversation"]["assignee"], Value::Null);
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
async fn reply_is_accepted_once_and_replayed_idempotently() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001111", "hello").await;
    let other = app.acme_sms("+15550002222", "hello too").await;
    let uri = format!("/api/v1/conversations/{conv}/messages");
    let reply = || {
        Request::post(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", app.agent))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "reply-1")
            .body(Body::from(json!({"text": "On it!"}).to_string()))
            .expect("req")
    };
    let first = app.send(reply()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["direction"], "outbound");
    assert_eq!(first.body["sender"], "bob");
    assert_eq!(first.body["delivery_status"], "queued");
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.outbox_pending("acme").await, 1);
    let woke = tokio::time::timeout(Duration::from_millis(50), app.jobs.notified()).await;
    assert!(woke.is_ok(), "the dispatcher is woken for a new job");

    let again = app.send(reply()).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        app.outbox_pending("acme").await,
        1,
        "a replay queues no second job"
    );
    let woke = tokio::time::timeout(Duration::from_millis(50), app.jobs.notified()).await;
    assert!(woke.is_err(), "a replay wakes nobody");

    let misuse = Request::post(format!("/api/v1/conversations/{other}/messages"))
        .header(header::AUTHORIZATION, format!("Bearer {}", app.agent))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", "reply-1")
        .body(Body::from(json!({"text": "On it!"}).to_string()))
        .expect("req");
    app.send(misuse)
        .await
        .assert_error(StatusCode::CONFLICT, "idempotency_key_reused");

    let plain = app
        .post(
            &uri,
            &app.admin,
            json!({"media_urls": ["https://cdn.example/a.png"]}),
        )
        .await;
    assert_eq!(plain.status, StatusCode::ACCEPTED, "{}", plain.body);
    assert_ne!(plain.body["id"], first.body["id"]);
    assert_eq!(app.outbox_pending("acme").await, 2);
    let messages = app.get(&uri, &app.agent).await;
    assert_eq!(messages.body["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn bad_requests_get_our_error_shape() {
    let app = TestApp::spawn().await;
    let conv = app.acme_sms("+15550001111", "hello").await;
    let uri = format!("/api/v1/conversations/{conv}/messages");
    let unprocessable = [
        json!({}),
        json!({"text": "   "}),
        json!({"text": "x".repeat(10_001)}),
        json!({"text": "hi", "subject": "a\r\nBcc: evil@example.com"}),
        json!({"text": "hi", "subject": "s".repeat(999)}),
        json!({"media_urls": ["ftp://example.com/a.png"]}),
        json!({"media_urls": ["not a url"]}),
        json!({"media_urls": [format!("https://example.com/{}", "a".repeat(2048))]}),
        json!({"media_urls": vec!["https://example.com/a.png"; 11]}),
        json!({"text": 5}),
        json!({"text": "hi", "unknown": true}),
    ];
    for body in unprocessable {
        let r = app.post(&uri, &app.agent, body).await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    assert_eq!(app.outbox_pending("acme").await, 0);

    let raw = |body: &str, content_type: Option<&str>, extra: Option<(&str, &str)>| {
        let mut r =
            Request::post(&uri).header(header::AUTHORIZATION, format!("Bearer {}", app.agent));
        if let Some(ct) = content_type {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.body(Body::from(body.to_string())).expect("req")
    };
    let json_ct = Some("application/json");
    app.send(raw("{\"text\": ", json_ct, None))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    app.send(raw("{\"text\": \"hi\"}", None, None))
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.send(raw("{\"text\": \"hi\"}", Some("text/plain"), None))
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.send(raw(
        "{\"text\": \"hi\"}",
        json_ct,
        Some(("Idempotency-Key", "two words")),
    ))
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let long_key = "k".repeat(256);
    app.send(raw(
        "{\"text\": \"hi\"}",
        json_ct,
        Some(("Idempotency-Key", &long_key)),
    ))
    .await
    .assert_error(StatusCode::BAD_REQUEST, "bad_request");

    let big = json!({"text": "x".repeat(MAX_BODY)}).to_string();
    // Read up to the limit (no Content-Length) and refused up front (declared length).
    app.send(raw(&big, json_ct, None))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let declared = big.len().to_string();
    app.send(raw(&big, json_ct, Some(("content-length", &declared))))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(app.outbox_pending("acme").await, 0);
}

#[tokio::test]
async fn replying_to_an_opted_out_contact_is_409() {
    let app = TestApp::spawn().await;
    let mut stop = sms("+15550001111", "STOP");
    stop.consent = Some(Consent::OptOut);
    let (_, conv) = app.ingest("acme", "acme-sms", stop).await;
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.agent,
            json!({"text": "hi"}),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "contact_opted_out");
    let start = json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+15550001111"}, "text": "hi"});
    app.post("/api/v1/conversations", &app.agent, start)
        .await
        .assert_error(StatusCode::CONFLICT, "contact_opted_out");
    assert_eq!(app.outbox_pending("acme").await, 0);
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

#[tokio::test]
async fn start_an_outbound_conversation() {
    let app = TestApp::spawn().await;
    let body = json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+15550003333"},
                      "contact_name": "Ann", "text": "Your order shipped"});
    let request = |body: &Value| {
        Request::post("/api/v1/conversations")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.agent))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "start-1")
            .body(Body::from(body.to_string()))
            .expect("req")
    };
    let r = app.send(request(&body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let conv = r.body["message"]["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let replay = app.send(request(&body)).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.body["message"]["id"], r.body["message"]["id"]);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(app.outbox_pending("acme").await, 1);
    let detail = app
        .get(&format!("/api/v1/conversations/{conv}"), &app.agent)
        .await;
    assert_eq!(detail.body["conversation"]["contact"]["name"], "Ann");

    for bad in [
        json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "5550003333"}, "text": "hi"}),
        json!({"channel_id": "acme-sms", "to": {"kind": "fax", "value": "+15550003333"}, "text": "hi"}),
        json!({"channel_id": "acme-sms", "to": {"kind": "email", "value": "ann@example.com"}, "text": "hi"}),
        json!({"channel_id": "globex-sms", "to": {"kind": "phone", "value": "+15550003333"}, "text": "hi"}),
        json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+15550003333"}}),
        json!({"to": {"kind": "phone", "value": "+15550003333"}, "text": "hi"}),
    ] {
        app.post("/api/v1/conversations", &app.agent, bad)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let channels = app.get("/api/v1/channels", &app.agent).await;
    assert_eq!(channels.body["items"][0]["id"], "acme-sms");
    assert_eq!(channels.body["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn attachments_download_only_when_stored() {
    let app = TestApp::spawn().await;
    let mut msg = sms("+15550001111", "photo");
    msg.attachments.push(InboundAttachment {
        filename: Some("../../Grüße \"x\".pdf".into()),
        content_type: Some("application/pdf".into()),
        source: Some("https://api.twilio.example/media/ME1".into()),
        content_id: None,
    });
    msg.attachments.push(InboundAttachment {
        filename: None,
        content_type: None,
        source: None,
        content_id: None,
    });
    let (_, conv) = app.ingest("acme", "acme-sms", msg).await;
    let messages = app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.agent,
        )
        .await;
    let attachments = messages.body["items"][0]["attachments"]
        .as_array()
        .expect("attachments")
        .clone();
    let id_of = |state: &str| {
        let a = attachments
            .iter()
            .find(|a| a["state"] == state)
            .expect("attachment in state");
        format!("/api/v1/attachments/{}", a["id"].as_str().expect("id"))
    };
    let (pending, failed) = (id_of("pending"), id_of("failed"));
    app.get(&pending, &app.agent)
        .await
        .assert_error(StatusCode::CONFLICT, "attachment_pending");
    app.get(&failed, &app.agent)
        .await
        .assert_error(StatusCode::CONFLICT, "attachment_failed");

    let job = app
        .store
        .claim_job(now_millis() + 1_000, 60_000)
        .await
        .expect("claim")
        .expect("a media job");
    let bytes = b"%PDF-1.7 not really".to_vec();
    let (storage_key, sha256) = app.blobs.put(&bytes).await.expect("put");
    let stored = StoredBlob {
        storage_key,
        sha256,
        size: i64::try_from(bytes.len()).expect("size"),
        content_type: "application/pdf".into(),
    };
    app.store
        .attachment_stored(&job, &stored)
        .await
        .expect("stored");

    let r = app.get(&pending, &app.agent).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, bytes);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::CONTENT_SECURITY_POLICY], "sandbox");
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"Gr__e x.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20x.pdf"
    );
    app.get("/api/v1/attachments/nope", &app.agent)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}
