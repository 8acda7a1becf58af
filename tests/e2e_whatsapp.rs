//! WhatsApp Cloud API end to end through the real binary against a fake Graph API: the
//! verification handshake, signed events, duplicates and out-of-order statuses, media,
//! the 24-hour window, templates, read receipts and Graph errors.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_testkit::graph::*;
use switchboard_testkit::{App, eventually, switchboard_bin};

struct Env {
    app: App,
    admin: String,
}

async fn env() -> Env {
    let app = App::builder(switchboard_bin!())
        .graph()
        .private_media()
        .token("acme", "admin", "boss")
        .spawn()
        .await;
    let admin = app.tokens[0].clone();
    Env { app, admin }
}

impl Env {
    fn url(&self) -> String {
        format!("{}/webhooks/acme-wa", self.app.base)
    }

    async fn deliver(&self, payload: &Value) -> u16 {
        let body = serde_json::to_vec(payload).expect("json");
        self.app
            .http
            .post(self.url())
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", meta_signature(&body))
            .body(body)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    async fn conversation_of(&self, wa_id: &str) -> Option<Value> {
        let (_, body) = self
            .app
            .api(
                Method::GET,
                "/api/v1/conversations?channel=acme-wa",
                &self.admin,
                None,
            )
            .await;
        body["items"]
            .as_array()?
            .iter()
            .find(|c| c["contact"]["identities"][0]["value"] == wa_id)
            .cloned()
    }

    async fn messages(&self, conv: &str) -> Vec<Value> {
        let (_, body) = self
            .app
            .api(
                Method::GET,
                &format!("/api/v1/conversations/{conv}/messages"),
                &self.admin,
                None,
            )
            .await;
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Now, as Meta's `timestamp` (seconds): the 24-hour window runs from it.
fn now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string()
}

fn text(id: &str, body: &str) -> Value {
    json!({"from": "16505551234", "id": id, "timestamp": now_secs(), "type": "text", "text": {"body": body}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_signatures() {
    let e = env().await;
    let ok = e
        .app
        .http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
            e.url()
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("text"), "1158201444");
    let bad = e
        .app
        .http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
            e.url()
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 403);

    let body = serde_json::to_vec(&inbound("16505551234", text("wamid.SIG1", "hi"))).expect("json");
    // Meta's exact form only: the right MAC spelled with an uppercase prefix or uppercase
    // hex digits is refused like a wrong one.
    let good = meta_signature(&body);
    let digest = good.trim_start_matches("sha256=");
    for sig in [
        None,
        Some("sha256=00".to_string()),
        Some(meta_signature(b"something else")),
        Some(format!("SHA256={digest}")),
        Some(format!("sha256={}", digest.to_ascii_uppercase())),
        Some(format!("SHA256={}", digest.to_ascii_uppercase())),
    ] {
        let mut req = e
            .app
            .http
            .post(e.url())
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(s) = sig {
            req = req.header("X-Hub-Signature-256", s);
        }
        assert_eq!(req.send().await.expect("post").status(), 403);
    }
    assert!(
        e.conversation_of("16505551234").await.is_none(),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_reply_statuses_read_receipts_and_errors() {
    let e = env().await;
    let delivery = inbound("16505551234", text("wamid.IN1", "Where is order #1042?"));
    assert_eq!(e.deliver(&delivery).await, 200);
    assert_eq!(
        e.deliver(&delivery).await,
        200,
        "Meta's retry is acknowledged"
    );
    let conv = e
        .conversation_of("16505551234")
        .await
        .expect("conversation");
    assert_eq!(conv["message_count"], 1);
    assert_eq!(conv["contact"]["name"], "Sheena Nelson");
    let id = conv["id"].as_str().expect("id").to_string();

    // Inside the window: a free-form reply goes out as a reply to the last inbound message.
    let (status, reply) = e
        .app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            &e.admin,
            Some(json!({"text": "It ships today"})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let sent = eventually(10, || async {
        e.app
            .graph()
            .sent()
            .into_iter()
            .find(|m| m["type"] == "text")
    })
    .await;
    assert_eq!(sent["to"], "16505551234");
    assert_eq!(sent["text"]["body"], "It ships today");
    assert_eq!(sent["context"]["message_id"], "wamid.IN1");
    let reply_id = reply["id"].as_str().expect("reply id").to_string();
    let wamid = eventually(10, || async {
        e.messages(&id)
            .await
            .into_iter()
            .find(|m| m["id"] == reply_id.as_str())
            .and_then(|m| m["provider_message_id"].as_str().map(str::to_string))
    })
    .await;

    // Statuses out of order: read, then a late delivered, never moves it back.
    assert_eq!(
        e.deliver(&switchboard_testkit::graph::status(
            &wamid,
            "read",
            "16505551234"
        ))
        .await,
        200
    );
    assert_eq!(
        e.deliver(&switchboard_testkit::graph::status(
            &wamid,
            "delivered",
            "16505551234"
        ))
        .await,
        200
    );
    let m = e
        .messages(&id)
        .await
        .into_iter()
        .find(|m| m["id"] == reply_id.as_str())
        .expect("reply");
    assert_eq!(m["delivery_status"], "read");

    // Staff reading the conversation sends a read receipt for the last inbound message.
    let (status, _) = e
        .app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{id}/read"),
            &e.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let receipt = eventually(10, || async {
        e.app
            .graph()
            .sent()
            .into_iter()
            .find(|m| m["status"] == "read")
    })
    .await;
    assert_eq!(receipt["message_id"], "wamid.IN1");

    // A permanent Graph error is recorded with its code.
    e.app.graph().plan_error(400, 131026);
    let (_, failing) = e
        .app
        .api(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            &e.admin,
            Some(json!({"text": "undeliverable"})),
        )
        .await;
    let failing_id = failing["id"].as_str().expect("id").to_string();
    let m = eventually(10, || async {
        e.messages(&id)
            .await
            .into_iter()
            .find(|m| m["id"] == failing_id.as_str() && m["delivery_status"] == "failed")
    })
    .await;
    assert_eq!(m["error_code"], "131026");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_closed_refuses_free_form_and_templates_go_out() {
    let e = env().await;
    let start = |body: Value| {
        let mut b =
            json!({"channel_id": "acme-wa", "to": {"kind": "whatsapp", "value": "4915112345678"}});
        if let (Some(o), Some(extra)) = (b.as_object_mut(), body.as_object()) {
            o.extend(extra.clone());
        }
        b
    };
    let (status, body) = e
        .app
        .api(
            Method::POST,
            "/api/v1/conversations",
            &e.admin,
            Some(start(json!({"text": "hello"}))),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "whatsapp_window_closed");
    let template = json!({"name": "order_update", "language": "en_US",
                          "components": [{"type": "body", "parameters": [{"type": "text", "text": "1042"}]}]});
    let (status, body) = e
        .app
        .api(
            Method::POST,
            "/api/v1/conversations",
            &e.admin,
            Some(start(json!({"template": template}))),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let sent = eventually(10, || async {
        e.app
            .graph()
            .sent()
            .into_iter()
            .find(|m| m["type"] == "template")
    })
    .await;
    assert_eq!(sent["to"], "4915112345678");
    assert_eq!(sent["template"]["name"], "order_update");
    assert_eq!(sent["template"]["language"]["code"], "en_US");
    assert_eq!(
        sent["template"]["components"][0]["parameters"][0]["text"],
        "1042"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_is_resolved_downloaded_verified_and_stored() {
    let e = env().await;
    let bytes = b"\xff\xd8\xff\xe0fake-jpeg-bytes".to_vec();
    e.app
        .graph()
        .add_media("1041234567890", "image/jpeg", &bytes);
    let image = json!({"from": "16505551234", "id": "wamid.IMG1", "timestamp": now_secs(), "type": "image",
                       "image": {"caption": "the damage", "mime_type": "image/jpeg",
                                 "sha256": "ignored-by-the-webhook", "id": "1041234567890"}});
    assert_eq!(e.deliver(&inbound("16505551234", image)).await, 200);
    let conv = e
        .conversation_of("16505551234")
        .await
        .expect("conversation");
    let id = conv["id"].as_str().expect("id").to_string();
    let attachment = eventually(15, || async {
        let msgs = e.messages(&id).await;
        msgs.first()
            .and_then(|m| m["attachments"][0].as_object().cloned())
            .filter(|a| a["state"] == "stored")
    })
    .await;
    let got = e
        .app
        .http
        .get(format!(
            "{}/api/v1/attachments/{}",
            e.app.base,
            attachment["id"].as_str().expect("id")
        ))
        .bearer_auth(&e.admin)
        .send()
        .await
        .expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), bytes);
    // The first download URL had expired: the job re-resolved the media id and retried.
    assert!(e.app.graph().resolutions() >= 2);
    assert!(e.app.graph().download_attempts() >= 2);
}
