//! Client tests: looking an interrupted send up in the fake's Messages list (filters,
//! paging, matching, errors).

use super::setup::*;
use super::*;
use switchboard_core::contract::connector::PriorSend;
use switchboard_core::domain::model::now_millis;
use switchboard_core::infra::config::Secret;

fn sids(found: &PriorSend) -> Vec<String> {
    match found {
        PriorSend::Found(receipts) => receipts
            .iter()
            .map(|r| r.provider_message_id.clone())
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_message_twilio_has_is_found_with_its_sid_and_status() {
    let (fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let since = now_millis();
    let msg = outbound(IdentityKind::PHONE, "+14155550111");
    let receipt = client.send(&msg).await.expect("sent");
    let found = client.find_prior_send(&msg, since).await.expect("listed");
    assert_eq!(sids(&found), vec![receipt.provider_message_id.clone()]);
    let PriorSend::Found(receipts) = found else {
        panic!("found")
    };
    // The list shows the message as Twilio has it now (sent), not as it was created.
    assert_eq!(receipts[0].status, DeliveryStatus::Sent);
    assert_eq!(receipts[0].external["to"], "+14155550111");
    // Another text, another recipient: not ours.
    let mut other = msg.clone();
    other.text = Some("Something else".into());
    assert_eq!(
        client.find_prior_send(&other, since).await.expect("listed"),
        PriorSend::NotFound
    );
    let elsewhere = outbound(IdentityKind::PHONE, "+14155550112");
    assert_eq!(
        client
            .find_prior_send(&elsewhere, since)
            .await
            .expect("listed"),
        PriorSend::NotFound
    );
    // Created well before the attempt began: an earlier message with the same text.
    let later = since + 3_600_000;
    assert_eq!(
        client.find_prior_send(&msg, later).await.expect("listed"),
        PriorSend::NotFound
    );
    assert_eq!(fake.sent().len(), 1, "a lookup never sends");
}

#[tokio::test]
async fn the_list_is_paged_until_the_attempts_start() {
    let (_fake, base) = spawn_fake().await;
    let client = client_with(settings(&base), None);
    let since = now_millis();
    let msg = outbound(IdentityKind::PHONE, "+14155550113");
    let ours = client.send(&msg).await.expect("sent");
    // More than a page of newer messages to the same number.
    let mut newer = msg.clone();
    newer.text = Some("later news".into());
    for _ in 0..55 {
        client.send(&newer).await.expect("sent");
    }
    let found = client.find_prior_send(&msg, since).await.expect("listed");
    assert_eq!(sids(&found), vec![ours.provider_message_id]);
}

#[tokio::test]
async fn list_errors_are_classified_like_sends() {
    let (_fake, base) = spawn_fake().await;
    let mut wrong = settings(&base);
    wrong.auth_token = Secret::new("nope");
    let msg = outbound(IdentityKind::PHONE, "+14155550114");
    let err = client_with(wrong, None)
        .find_prior_send(&msg, now_millis())
        .await
        .expect_err("401");
    assert!(
        matches!(err, SendError::Permanent { ref code, .. } if code == "auth"),
        "{err:?}"
    );
    let down = client_with(settings("http://127.0.0.1:9"), None)
        .find_prior_send(&msg, now_millis())
        .await
        .expect_err("unreachable");
    assert!(matches!(down, SendError::Transient { .. }), "{down:?}");
}
