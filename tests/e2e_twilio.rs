//! End to end through the real binary: signed Twilio webhooks in, conversations through the
//! REST API, replies out to a fake Twilio Messages API, status callbacks, MMS media and
//! opt-out, on a fresh SQLite database per test.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_testkit::twilio::*;
use switchboard_testkit::{App, eventually, switchboard_bin};

struct Env {
    app: App,
    admin: String,
    agent: String,
    other: String,
}

async fn env() -> Env {
    let app = App::builder(switchboard_bin!())
        .private_media()
        .token("acme", "admin", "boss")
        .token("acme", "agent", "alice")
        .token("other", "admin", "eve")
        .spawn()
        .await;
    let [admin, agent, other] = app.tokens.clone().try_into().expect("three tokens");
    Env {
        app,
        admin,
        agent,
        other,
    }
}

async fn conversations(e: &Env, token: &str) -> Vec<Value> {
    let (status, body) = e
        .app
        .api(Method::GET, "/api/v1/conversations", token, None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn messages(e: &Env, conversation: &str) -> Vec<Value> {
    let (status, body) = e
        .app
        .api(
            Method::GET,
            &format!("/api/v1/conversations/{conversation}/messages"),
            &e.admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn message_status(e: &Env, conversation: &str, id: &str) -> Option<Value> {
    messages(e, conversation)
        .await
        .into_iter()
        .find(|m| m["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_sms_reply_and_status_round_trip() {
    let e = env().await;
    let resp = e
        .app
        .post_twilio(
            "messages",
            &sms_params(
                "SM00000000000000000000000000000001",
                "+14155550123",
                "Hello, is my order shipped?",
            ),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap_or_default().contains("<Response"));

    // A retry of the same delivery is acknowledged and changes nothing.
    let again = e
        .app
        .post_twilio(
            "messages",
            &sms_params(
                "SM00000000000000000000000000000001",
                "+14155550123",
                "Hello, is my order shipped?",
            ),
        )
        .await;
    assert_eq!(again.status(), 200);

    let convs = conversations(&e, &e.agent).await;
    assert_eq!(convs.len(), 1);
    let conv = &convs[0];
    assert_eq!(conv["message_count"], 1);
    assert_eq!(conv["unread_count"], 1);
    assert_eq!(conv["contact"]["identities"][0]["value"], "+14155550123");
    let id = conv["id"].as_str().expect("id").to_string();
    let inbound = messages(&e, &id).await;
    assert_eq!(inbound[0]["text"], "Hello, is my order shipped?");
    assert_eq!(
        inbound[0]["external"]["FromCity"], "SAN FRANCISCO",
        "every Twilio parameter is kept"
    );

    // Another tenant cannot see it.
    assert!(conversations(&e, &e.other).await.is_empty());
    let (status, _) = e
        .app
        .api(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            &e.other,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Reply: 202, then the fake Twilio API receives it.
    let (status, reply) = e
        .app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            &e.agent,
            Some(json!({"text": "Yes, it left today."})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let reply_id = reply["id"].as_str().expect("reply id").to_string();
    let sent = eventually(10, || async {
        e.app
            .twilio()
            .requests()
            .into_iter()
            .find(|r| r.field("Body") == Some("Yes, it left today."))
    })
    .await;
    assert_eq!(
        sent.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(sent.field("To"), Some("+14155550123"));
    assert_eq!(sent.field("From"), Some(OUR_NUMBER));
    assert_eq!(
        sent.field("StatusCallback"),
        Some(e.app.webhook_url("status").as_str())
    );

    let m = eventually(10, || async {
        message_status(&e, &id, &reply_id)
            .await
            .filter(|m| m["delivery_status"] == "sent")
    })
    .await;
    let sid = m["provider_message_id"].as_str().expect("sid").to_string();

    // Status callbacks move it forward only.
    let status_params = |s: &'static str| {
        vec![
            ("AccountSid", ACCOUNT_SID.to_string()),
            ("From", OUR_NUMBER.to_string()),
            ("To", "+14155550123".to_string()),
            ("MessageSid", sid.clone()),
            ("SmsSid", sid.clone()),
            ("MessageStatus", s.to_string()),
            ("SmsStatus", s.to_string()),
            ("ApiVersion", "2010-04-01".to_string()),
        ]
    };
    for s in ["delivered", "sent"] {
        let p = status_params(s);
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = e.app.post_twilio("status", &p).await;
        assert!(
            r.status().is_success(),
            "status callback {s}: {}",
            r.status()
        );
    }
    let m = message_status(&e, &id, &reply_id).await.expect("reply");
    assert_eq!(
        m["delivery_status"], "delivered",
        "a late 'sent' never moves it back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_rejected_and_store_nothing() {
    let e = env().await;
    let params = sms_params("SM00000000000000000000000000000002", "+14155550124", "hi");
    let url = e.app.webhook_url("messages");
    let r = e.app.post_form(&url, &params, None).await;
    assert_eq!(r.status(), 403);
    let wrong = twilio_signature("not-the-token", &url, &params);
    assert_eq!(
        e.app.post_form(&url, &params, Some(&wrong)).await.status(),
        403
    );
    // Signed for other parameters than sent (tampered body).
    let signed_for = sms_params(
        "SM00000000000000000000000000000002",
        "+14155550124",
        "original",
    );
    let sig = twilio_signature(AUTH_TOKEN, &url, &signed_for);
    assert_eq!(
        e.app.post_form(&url, &params, Some(&sig)).await.status(),
        403
    );
    assert!(conversations(&e, &e.admin).await.is_empty());

    // Unknown channel: 404. Oversized body: 413.
    let r = e
        .app
        .post_form(
            &format!("{}/webhooks/nope/messages", e.app.base),
            &params,
            Some("x"),
        )
        .await;
    assert_eq!(r.status(), 404);
    // A body over the limit is refused from its Content-Length, before it is read. (Sent over
    // a raw socket: a client that keeps writing a body the server will not read gets a reset.)
    let status_line = oversized_request(&e.app.base, "/webhooks/acme-sms/messages", 70_000).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert!(conversations(&e, &e.admin).await.is_empty());
}

async fn inbound_conversation(e: &Env, sid: &str, from: &str) -> String {
    let r = e
        .app
        .post_twilio("messages", &sms_params(sid, from, "hello"))
        .await;
    assert_eq!(r.status(), 200);
    let convs = conversations(e, &e.admin).await;
    convs
        .iter()
        .find(|c| c["contact"]["identities"][0]["value"] == from)
        .and_then(|c| c["id"].as_str())
        .expect("conversation")
        .to_string()
}

async fn reply(e: &Env, conv: &str, text: &str) -> String {
    let (status, body) = e
        .app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            &e.admin,
            Some(json!({ "text": text })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_are_retried_or_recorded() {
    let e = env().await;
    let conv = inbound_conversation(&e, "SM00000000000000000000000000000010", "+14155550130").await;

    // 429 then 500, then success: retried with backoff, sent once accepted.
    e.app.twilio().plan(
        429,
        json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
    );
    e.app.twilio().plan(
        500,
        json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
    );
    let id = reply(&e, &conv, "retry me").await;
    let m = eventually(15, || async {
        message_status(&e, &conv, &id)
            .await
            .filter(|m| m["delivery_status"] == "sent")
    })
    .await;
    assert!(m["provider_message_id"].as_str().is_some());
    assert_eq!(
        e.app
            .twilio()
            .requests()
            .iter()
            .filter(|r| r.field("Body") == Some("retry me"))
            .count(),
        3
    );

    // 400 with a Twilio error code: permanent, recorded, not retried.
    e.app.twilio().plan(400, json!({"code": 21211, "message": "The 'To' number +14155550130 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}));
    let id = reply(&e, &conv, "bad number").await;
    let m = eventually(15, || async {
        message_status(&e, &conv, &id)
            .await
            .filter(|m| m["delivery_status"] == "failed")
    })
    .await;
    assert_eq!(m["error_code"], "21211");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        e.app
            .twilio()
            .requests()
            .iter()
            .filter(|r| r.field("Body") == Some("bad number"))
            .count(),
        1
    );

    // Transient errors past the attempt limit (3) fail the message.
    for _ in 0..3 {
        e.app.twilio().plan(
            503,
            json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
        );
    }
    let id = reply(&e, &conv, "never").await;
    let m = eventually(15, || async {
        message_status(&e, &conv, &id)
            .await
            .filter(|m| m["delivery_status"] == "failed")
    })
    .await;
    assert!(m["error_message"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_refuses_replies_until_opt_in() {
    let e = env().await;
    let conv = inbound_conversation(&e, "SM00000000000000000000000000000020", "+14155550140").await;
    let mut stop = sms_params("SM00000000000000000000000000000021", "+14155550140", "Stop");
    stop.push(("OptOutType", "STOP"));
    assert_eq!(e.app.post_twilio("messages", &stop).await.status(), 200);
    let (status, body) = e
        .app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{conv}/messages"),
            &e.admin,
            Some(json!({"text": "still there?"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "contact_opted_out");
    let start = sms_params(
        "SM00000000000000000000000000000022",
        "+14155550140",
        "START",
    );
    assert_eq!(e.app.post_twilio("messages", &start).await.status(), 200);
    reply(&e, &conv, "welcome back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mms_media_is_downloaded_and_served() {
    let e = env().await;
    // The CDN fails twice first: the durable media job retries and the message is kept meanwhile.
    e.app
        .twilio()
        .state
        .media_failures
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let media_url = e.app.twilio().media_url(1);
    let mut params = sms_params("MM00000000000000000000000000000001", "+14155550150", "look");
    params.retain(|(k, _)| *k != "NumMedia");
    params.push(("NumMedia", "1"));
    params.push(("MediaUrl0", &media_url));
    params.push(("MediaContentType0", "image/png"));
    assert_eq!(e.app.post_twilio("messages", &params).await.status(), 200);
    let conv = conversations(&e, &e.admin).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        messages(&e, &conv).await[0]["text"],
        "look",
        "the message is stored before its media"
    );
    let attachment = eventually(15, || async {
        let msgs = messages(&e, &conv).await;
        msgs[0]["attachments"][0]
            .clone()
            .as_object()
            .filter(|a| a["state"] == "stored")
            .cloned()
    })
    .await;
    let expected = e.app.twilio().state.media.lock().expect("lock").clone();
    let resp = e
        .app
        .http
        .get(format!(
            "{}/api/v1/attachments/{}",
            e.app.base,
            attachment["id"].as_str().expect("id")
        ))
        .bearer_auth(&e.agent)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.expect("bytes").to_vec(), expected);
    assert_eq!(attachment["size"], expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_and_roles() {
    let e = env().await;
    let (status, body) = e
        .app
        .api(Method::GET, "/api/v1/conversations", "sb_not-a-token", None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    e.app.cli(&["token", "revoke", "--tenant", "acme", "alice"]);
    let (status, _) = e
        .app
        .api(Method::GET, "/api/v1/conversations", &e.agent, None)
        .await;
    assert_eq!(status, 401, "a revoked token is refused at once");
    let (status, _) = e
        .app
        .api(Method::GET, "/api/v1/channels", &e.admin, None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend_end_to_end() {
    let app = App::builder(switchboard_bin!())
        .postgres()
        .token("acme", "admin", "boss")
        .spawn()
        .await;
    let (admin, twilio) = (&app.tokens[0], app.twilio());
    let r = app
        .post_twilio(
            "messages",
            &sms_params(
                "SM00000000000000000000000000000099",
                "+14155550199",
                "via postgres",
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let conv = app.newest_conversation(admin).await;
    let (status, _) = app.post_reply(admin, &conv, "pg reply").await;
    assert_eq!(status, 202);
    eventually(10, || async {
        twilio
            .requests()
            .into_iter()
            .find(|r| r.field("Body") == Some("pg reply"))
    })
    .await;
}

/// Sends only the head of a POST whose Content-Length exceeds the limit; returns the status line.
async fn oversized_request(base: &str, path: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: x\r\nContent-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered without the body")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_status_comes_from_provider_health_checks() {
    let e = env().await;
    // The Twilio channel reaches its (fake) API; the WhatsApp channel's Graph API is a
    // closed port in this configuration.
    let channels = eventually(15, || async {
        let (_, body) = e
            .app
            .api(Method::GET, "/api/v1/channels", &e.admin, None)
            .await;
        let items = body["items"].as_array()?.clone();
        let status = |id: &str| {
            items
                .iter()
                .find(|c| c["id"] == id)
                .map(|c| c["status"].clone())
        };
        (status("acme-sms")? == "active" && status("acme-wa")? == "error").then_some(items)
    })
    .await;
    let wa = channels
        .iter()
        .find(|c| c["id"] == "acme-wa")
        .expect("wa channel");
    let error = wa["last_error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{wa}");
    assert!(
        !error.contains("EAAG-test-access-token"),
        "no secrets in errors: {error}"
    );
}
