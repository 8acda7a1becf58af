//! Client tests: sending (text, replies, templates, media), read receipts, the health check
//! and error mapping, against the fake Graph API.

use super::setup::*;
use super::*;
use serde_json::json;
use switchboard_core::domain::model::{IdentityKind, Template};
use switchboard_core::infra::config::Secret;

fn is_permanent(e: &SendError, want: &str) -> bool {
    matches!(e, SendError::Permanent { code, .. } if code == want)
}

fn is_transient(e: &SendError, want: &str) -> bool {
    matches!(e, SendError::Transient { code: Some(code), .. } if code == want)
}

#[tokio::test]
async fn text_is_posted_as_documented_and_the_receipt_is_sent() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let receipt = client.send(&outbound("16505551234")).await.expect("sent");
    assert_eq!(
        fake.sent(),
        vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "text",
            "text": {"preview_url": false, "body": "Your order shipped"}
        })]
    );
    assert!(receipt.provider_message_id.starts_with("wamid.FAKE"));
    assert_eq!(receipt.status, DeliveryStatus::Sent);
    assert_eq!(receipt.external["messaging_product"], "whatsapp");
    assert_eq!(receipt.external["contacts"][0]["wa_id"], "16505551234");
    assert_eq!(
        receipt.external["messages"][0]["id"],
        receipt.provider_message_id.as_str()
    );
}

#[tokio::test]
async fn a_reply_carries_its_context_and_phone_recipients_lose_the_plus() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let mut msg = outbound("+16505551234");
    msg.to.kind = IdentityKind::PHONE;
    msg.in_reply_to = Some("wamid.INBOUND".into());
    client.send(&msg).await.expect("sent");
    let sent = fake.sent();
    assert_eq!(sent[0]["to"], "16505551234");
    assert_eq!(sent[0]["context"], json!({"message_id": "wamid.INBOUND"}));
}

#[tokio::test]
async fn templates_are_sent_instead_of_text() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let mut msg = outbound("16505551234");
    msg.template = Some(Template {
        name: "order_shipped".into(),
        language: "en_US".into(),
        components: json!([{"type": "body", "parameters": [{"type": "text", "text": "#1042"}]}]),
    });
    let receipt = client.send(&msg).await.expect("sent");
    assert_eq!(receipt.status, DeliveryStatus::Sent);
    assert_eq!(
        fake.sent(),
        vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "template",
            "template": {
                "name": "order_shipped",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "#1042"}]}]
            }
        })]
    );
}

#[tokio::test]
async fn media_is_downloaded_uploaded_then_sent_with_the_text_as_caption() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let mut msg = outbound("16505551234");
    msg.in_reply_to = Some("wamid.INBOUND".into());
    msg.media_urls = vec![
        format!("{base}/public/photo.jpg"),
        format!("{base}/public/invoice.pdf"),
    ];
    let receipt = client.send(&msg).await.expect("sent");

    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0].fields["messaging_product"], "whatsapp");
    assert_eq!(uploads[0].fields["type"], "image/jpeg");
    assert_eq!(uploads[0].file_type, "image/jpeg");
    assert_eq!(uploads[0].filename, "photo.jpg");
    assert_eq!(uploads[0].bytes, vec![0x5Au8; 1200]);
    assert_eq!(uploads[1].fields["type"], "application/pdf");
    assert_eq!(uploads[1].filename, "invoice.pdf");
    assert_eq!(uploads[1].bytes.len(), 3000);

    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["type"], "image");
    let image_id = sent[0]["image"]["id"]
        .as_str()
        .expect("media id")
        .to_string();
    assert_eq!(
        sent[0]["image"],
        json!({"id": image_id, "caption": "Your order shipped"})
    );
    assert_eq!(sent[0]["context"], json!({"message_id": "wamid.INBOUND"}));
    assert_eq!(sent[1]["type"], "document");
    assert_eq!(sent[1]["document"]["filename"], "invoice.pdf");
    assert!(sent[1].get("context").is_none());
    assert!(sent[1]["document"].get("caption").is_none());

    assert_eq!(
        receipt.provider_message_id,
        receipt.external["messages"][0]["id"].as_str().expect("id")
    );
    assert_eq!(receipt.external["parts"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn text_goes_first_when_the_first_file_takes_no_caption() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let mut msg = outbound("16505551234");
    msg.media_urls = vec![format!("{base}/public/note.ogg")];
    client.send(&msg).await.expect("sent");
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["type"], "text");
    assert_eq!(sent[1]["type"], "audio");
    assert!(sent[1]["audio"].get("caption").is_none());
}

#[tokio::test]
async fn outbound_media_failures_send_nothing() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let attempt = |name: &str| {
        let mut msg = outbound("16505551234");
        msg.media_urls = vec![
            format!("{base}/public/photo.jpg"),
            format!("{base}/public/{name}"),
        ];
        msg
    };
    let err = client.send(&attempt("missing.png")).await.expect_err("404");
    assert!(is_permanent(&err, "media_url_unavailable"), "{err:?}");
    let err = client.send(&attempt("busy")).await.expect_err("503");
    assert!(is_transient(&err, "http_503"), "{err:?}");
    let err = client
        .send(&attempt("huge.jpg"))
        .await
        .expect_err("too large");
    assert!(is_permanent(&err, "media_too_large"), "{err:?}");
    let mut bad = outbound("16505551234");
    bad.media_urls = vec!["ftp://example.com/x.png".into()];
    let err = client.send(&bad).await.expect_err("not http");
    assert!(is_permanent(&err, "invalid_media_url"), "{err:?}");
    assert!(fake.sent().is_empty(), "no message went out");
    // The public media host never saw our token (the fake answers 400 if it does).
    assert!(fake.public_fetches().contains(&"photo.jpg".to_string()));
}

#[tokio::test]
async fn a_failure_after_a_part_was_accepted_is_permanent_partially_sent() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let mut msg = outbound(to::FIRST_ONLY);
    msg.media_urls = vec![
        format!("{base}/public/photo.jpg"),
        format!("{base}/public/clip.mp4"),
    ];
    let err = client.send(&msg).await.expect_err("second part refused");
    match &err {
        SendError::Permanent { code, message } => {
            assert_eq!(code, "partially_sent");
            assert!(
                message.contains("1 of 2 parts were sent (wamid.FAKE"),
                "{message}"
            );
            assert!(message.contains("131026"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test]
async fn graph_errors_are_classified() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let err = client
        .send(&outbound(to::REENGAGEMENT))
        .await
        .expect_err("131047");
    assert!(is_permanent(&err, "131047"), "{err:?}");
    assert!(err.to_string().contains("24 hours"), "{err}");
    let err = client
        .send(&outbound(to::RATE_LIMITED))
        .await
        .expect_err("429");
    assert!(is_transient(&err, "130429"), "{err:?}");
    let err = client
        .send(&outbound(to::WABA_RATE_LIMIT))
        .await
        .expect_err("80007");
    assert!(is_transient(&err, "80007"), "{err:?}");
    let err = client
        .send(&outbound(to::SERVER_ERROR))
        .await
        .expect_err("500");
    assert!(is_transient(&err, "http_500"), "{err:?}");
    let err = client
        .send(&outbound(to::EXPIRED_TOKEN))
        .await
        .expect_err("190");
    assert!(is_permanent(&err, "190"), "{err:?}");
    let err = client.send(&outbound(to::SLOW)).await.expect_err("timeout");
    assert!(is_transient(&err, "timeout"), "{err:?}");
    let err = client
        .send(&outbound(to::NOT_JSON))
        .await
        .expect_err("unreadable");
    assert!(is_permanent(&err, "invalid_response"), "{err:?}");
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_nothing_is_sent() {
    let (fake, base) = spawn_fake().await;
    let mut s = settings(&base);
    s.access_token = Secret::new("revoked");
    let client = client_with(s);
    let err = client
        .send(&outbound("16505551234"))
        .await
        .expect_err("401");
    assert!(is_permanent(&err, "190"), "{err:?}");
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn unreachable_graph_is_transient() {
    let client = client_with(settings("http://127.0.0.1:9"));
    let err = client
        .send(&outbound("16505551234"))
        .await
        .expect_err("down");
    assert!(is_transient(&err, "connect"), "{err:?}");
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_call() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    let mut email = outbound("a@b.example");
    email.to.kind = IdentityKind::EMAIL;
    let err = client.send(&email).await.expect_err("email");
    assert!(is_permanent(&err, "unsupported_recipient"), "{err:?}");
    let mut empty = outbound("16505551234");
    empty.text = Some("  ".into());
    let err = client.send(&empty).await.expect_err("empty");
    assert!(is_permanent(&err, "empty_message"), "{err:?}");
    let mut template = outbound("16505551234");
    template.template = Some(Template {
        name: "x".into(),
        language: "en".into(),
        components: json!("body"),
    });
    let err = client.send(&template).await.expect_err("bad components");
    assert!(is_permanent(&err, "invalid_template"), "{err:?}");
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn read_receipts_are_posted_as_documented() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base));
    client.mark_read("wamid.INBOUND").await.expect("marked");
    assert_eq!(
        fake.sent(),
        vec![
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.INBOUND"})
        ]
    );
    let err = client
        .mark_read("wamid.unknown")
        .await
        .expect_err("unknown");
    assert!(is_permanent(&err, "100"), "{err:?}");
    let err = client.mark_read(" ").await.expect_err("empty");
    assert!(is_permanent(&err, "invalid_message_id"), "{err:?}");
}

#[tokio::test]
async fn healthcheck_reads_the_phone_number() {
    let (_fake, base) = spawn_fake().await;
    assert_eq!(client_with(settings(&base)).healthcheck().await, Ok(()));
    let mut s = settings(&base);
    s.access_token = Secret::new("revoked");
    let err = client_with(s).healthcheck().await.expect_err("bad token");
    assert!(err.contains("(190)"), "{err}");
    assert!(!err.contains("revoked"), "the token never appears: {err}");
    let err = client_with(settings("http://127.0.0.1:9"))
        .healthcheck()
        .await
        .expect_err("down");
    assert!(err.contains("unavailable"), "{err}");
}
