//! Client tests: sending through the Messages API and the health check.

use super::setup::*;
use super::*;
use switchboard_core::infra::config::Secret;

#[tokio::test]
async fn send_posts_the_form_and_parses_the_receipt() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(
        settings(&base),
        Some("https://sb.example/webhooks/test/status"),
    );
    let mut msg = outbound(IdentityKind::PHONE, "+14155550111");
    msg.media_urls = vec![
        "https://cdn.example/a.png".into(),
        "https://cdn.example/b.png".into(),
    ];
    let receipt = client.send(&msg).await.expect("sent");
    assert_eq!(
        receipt.provider_message_id,
        "SM00000000000000000000000000000001"
    );
    assert_eq!(receipt.status, DeliveryStatus::Queued);
    assert_eq!(receipt.external["account_sid"], SID);

    let sent = fake.sent();
    let pairs: Vec<(&str, &str)> = sent[0]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("To", "+14155550111"),
            ("From", "+14155550100"),
            ("Body", "Your order shipped"),
            ("MediaUrl", "https://cdn.example/a.png"),
            ("MediaUrl", "https://cdn.example/b.png"),
            ("StatusCallback", "https://sb.example/webhooks/test/status"),
        ]
    );
}

#[tokio::test]
async fn whatsapp_and_messaging_service_fields() {
    let (fake, base) = spawn_fake().await;
    let mut s = settings(&base);
    s.from = None;
    s.messaging_service_sid = Some("MG123".into());
    let client = client_with(s, None);
    client
        .send(&outbound(IdentityKind::WHATSAPP, "5511987654321"))
        .await
        .expect("sent");
    let sent = fake.sent();
    assert_eq!(
        crate::form::first(&sent[0], "To"),
        Some("whatsapp:+5511987654321")
    );
    assert_eq!(
        crate::form::first(&sent[0], "MessagingServiceSid"),
        Some("MG123")
    );
    assert_eq!(crate::form::first(&sent[0], "From"), None);
    assert_eq!(crate::form::first(&sent[0], "StatusCallback"), None);
}

#[tokio::test]
async fn twilio_refusals_are_permanent_with_their_code() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+15005550001"))
        .await
        .expect_err("refused");
    match err {
        SendError::Permanent { code, message } => {
            assert_eq!(code, "21211");
            assert!(message.contains("not a valid phone number"), "{message}");
            assert!(
                message.contains("https://www.twilio.com/docs/errors/21211"),
                "{message}"
            );
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+15005550404"))
        .await
        .expect_err("404");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "http_404"),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_are_transient() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+15005550429"))
        .await
        .expect_err("429");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "20429"),
        "{err:?}"
    );
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+15005550500"))
        .await
        .expect_err("500");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "http_500"),
        "{err:?}"
    );
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+15005550009"))
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "timeout"),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_failures_are_transient() {
    // A port nothing listens on: bind, read the port, drop the listener.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client_with(settings(&format!("http://127.0.0.1:{port}")), None);
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+14155550111"))
        .await
        .expect_err("no server");
    assert!(
        matches!(err, SendError::Transient { code: Some(ref c), .. } if c == "connect"),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_credentials_and_bad_answers_are_permanent() {
    let (_fake, base) = spawn_fake().await;
    let mut s = settings(&base);
    s.auth_token = Secret::new("wrong");
    let err = client_with(s, None)
        .send(&outbound(IdentityKind::PHONE, "+14155550111"))
        .await
        .expect_err("401");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );

    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::PHONE, "+15005550002"))
        .await
        .expect_err("not json");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "invalid_response"),
        "{err:?}"
    );
}

#[tokio::test]
async fn unsendable_messages_fail_before_calling_twilio() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let err = client
        .send(&outbound(IdentityKind::EMAIL, "a@example.com"))
        .await
        .expect_err("email");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "unsupported_recipient")
    );
    let mut empty = outbound(IdentityKind::PHONE, "+14155550111");
    empty.text = Some("  ".into());
    let err = client.send(&empty).await.expect_err("empty");
    assert!(matches!(err, SendError::Permanent { ref code, .. } if code == "empty_message"));
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn healthcheck_reports_credentials_and_account_state() {
    let (_fake, base) = spawn_fake().await;
    client_with(settings(&base), None)
        .healthcheck()
        .await
        .expect("healthy");
    let mut wrong = settings(&base);
    wrong.auth_token = Secret::new("nope");
    let err = client_with(wrong, None)
        .healthcheck()
        .await
        .expect_err("401");
    assert!(err.contains("401"), "{err}");
    let mut suspended = settings(&base);
    suspended.account_sid = "ACsuspended".into();
    let err = client_with(suspended, None)
        .healthcheck()
        .await
        .expect_err("suspended");
    assert!(err.contains("suspended"), "{err}");
}
