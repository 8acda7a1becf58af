//! Deliveries end to end: statuses in and out of order, reactions, replies in context,
//! batches, storage failures and retries, items journaled only — against core's real
//! `Ingest` on a real SQLite store.

#[allow(dead_code)]
mod common;

use axum::http::StatusCode;
use common::harness::*;
use common::{CHANNEL, PNID, test_store};
use switchboard_core::domain::model::IdentityKind;
use switchboard_testkit::Golden;
use switchboard_testkit::golden::fixtures_dir;
use switchboard_whatsapp::WhatsappConnector;

#[tokio::test]
async fn out_of_order_statuses_never_move_a_message_backwards() {
    let (c, store) = connector().await;
    let id = store
        .sent_message(IdentityKind::WHATSAPP, USER, OUTBOUND)
        .await;
    assert_eq!(deliver(&c, "status-read").await, StatusCode::OK);
    assert_eq!(store.message(&id).await.delivery_status, "read");
    for late in ["status-delivered", "status-sent", "status-failed"] {
        assert_eq!(deliver(&c, late).await, StatusCode::OK);
        assert_eq!(store.message(&id).await.delivery_status, "read", "{late}");
    }
    // A retry of a status is a duplicate.
    assert_eq!(deliver(&c, "status-read").await, StatusCode::OK);
    let keys = store.journal_keys().await;
    assert_eq!(
        keys,
        vec![
            format!("status:{OUTBOUND}:delivered"),
            format!("status:{OUTBOUND}:failed"),
            format!("status:{OUTBOUND}:read"),
            format!("status:{OUTBOUND}:sent"),
        ]
    );
    assert_eq!(store.parked_statuses().await, 0);
}

#[tokio::test]
async fn a_failed_status_records_metas_error() {
    let (c, store) = connector().await;
    let id = store
        .sent_message(IdentityKind::WHATSAPP, USER, OUTBOUND)
        .await;
    assert_eq!(deliver(&c, "status-failed").await, StatusCode::OK);
    let m = store.message(&id).await;
    assert_eq!(m.delivery_status, "failed");
    assert_eq!(m.error_code.as_deref(), Some("131047"));
    assert!(
        m.error_message
            .as_deref()
            .is_some_and(|e| e.starts_with("Re-engagement message: Message failed")),
        "{:?}",
        m.error_message
    );
    // The handset's receipt is the stronger fact.
    assert_eq!(deliver(&c, "status-delivered").await, StatusCode::OK);
    assert_eq!(store.message(&id).await.delivery_status, "delivered");
}

#[tokio::test]
async fn statuses_for_unknown_messages_are_parked_and_unknown_values_journaled() {
    let (c, store) = connector().await;
    assert_eq!(deliver(&c, "status-delivered").await, StatusCode::OK);
    assert_eq!(store.parked_statuses().await, 1);
    assert_eq!(deliver(&c, "status-deleted").await, StatusCode::OK);
    assert_eq!(
        store.parked_statuses().await,
        1,
        "deleted is not a delivery state"
    );
    let journal = store.journal().await;
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[1].kind, "event");
    assert_eq!(
        journal[1].idempotency_key,
        format!("status:{OUTBOUND}:deleted")
    );
}

#[tokio::test]
async fn a_reaction_is_set_then_removed() {
    let (c, store) = connector().await;
    let id = store
        .sent_message(IdentityKind::WHATSAPP, USER, OUTBOUND)
        .await;
    assert_eq!(deliver(&c, "reaction").await, StatusCode::OK);
    let m = store.message(&id).await;
    assert_eq!(m.reactions.len(), 1, "{:?}", m.reactions);
    assert_eq!(m.reactions[0].emoji, "👍");
    assert_eq!(m.reactions[0].sender, USER);
    assert_eq!(deliver(&c, "reaction-removed").await, StatusCode::OK);
    assert!(store.message(&id).await.reactions.is_empty());
    // Retries of either change nothing.
    assert_eq!(deliver(&c, "reaction").await, StatusCode::OK);
    assert!(store.message(&id).await.reactions.is_empty());
    let journal = store.journal().await;
    assert_eq!(journal.len(), 2);
    assert!(journal.iter().all(|j| j.kind == "reaction"));
    assert_eq!(
        store.messages().await.len(),
        1,
        "a reaction is not a message"
    );
}

#[tokio::test]
async fn a_reply_in_context_joins_the_conversation_of_the_message_it_answers() {
    let (c, store) = connector().await;
    let id = store
        .sent_message(IdentityKind::WHATSAPP, USER, OUTBOUND)
        .await;
    let conversation = store.message(&id).await.conversation_id;
    assert_eq!(deliver(&c, "context-reply").await, StatusCode::OK);
    let conversations = store.conversations().await;
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].id, conversation);
    assert_eq!(conversations[0].message_count, 2);
}

#[tokio::test]
async fn a_batched_delivery_stores_every_item_once() {
    let (c, store) = connector().await;
    store
        .sent_message(IdentityKind::WHATSAPP, USER, OUTBOUND)
        .await;
    assert_eq!(deliver(&c, "batched").await, StatusCode::OK);
    let journal = store.journal().await;
    assert_eq!(journal.len(), 7, "3 messages, 3 statuses, 1 account update");
    assert!(journal.iter().all(|j| j.payload == fixture("batched")));
    let kinds: Vec<&str> = journal.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "message").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "status").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "event").count(), 1);
    let conversations = store.conversations().await;
    assert_eq!(conversations.len(), 2, "two contacts");
    let messages = store.messages().await;
    assert_eq!(
        messages.iter().filter(|m| m.direction == "inbound").count(),
        3
    );
    let outbound = messages
        .iter()
        .find(|m| m.direction == "outbound")
        .expect("our message");
    assert_eq!(outbound.delivery_status, "read");
    assert_eq!(
        store.parked_statuses().await,
        1,
        "the status of an unknown message"
    );

    assert_eq!(deliver(&c, "batched").await, StatusCode::OK);
    assert_eq!(store.journal().await.len(), 7);
    assert_eq!(store.messages().await.len(), 4);
}

#[tokio::test]
async fn a_storage_failure_mid_delivery_asks_meta_to_retry() {
    let (c, store) = connector().await;
    store.fail_journal_inserts("status:").await;
    let (status, _, text) = call(&c, signed(&fixture("batched"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(
        !text.contains("simulated") && !text.contains("inbound_events"),
        "internals leaked: {text}"
    );
    // The items before the failure are stored; the rest are not.
    assert_eq!(store.journal().await.len(), 2);
    store.heal().await;
    assert_eq!(deliver(&c, "batched").await, StatusCode::OK);
    assert_eq!(store.journal().await.len(), 7);
    assert_eq!(store.messages().await.len(), 3, "no message stored twice");
}

#[tokio::test]
async fn other_numbers_and_other_fields_are_journaled_only() {
    let store = test_store().await;
    let mut other = settings();
    other.insert(
        "phone_number_id".into(),
        toml::Value::String("999000111".into()),
    );
    let c = WhatsappConnector::new(
        CHANNEL.into(),
        &other,
        context(store.store.clone(), CHANNEL),
    )
    .expect("valid");
    assert_eq!(deliver(&c, "text").await, StatusCode::OK);
    assert_eq!(deliver(&c, "account-update").await, StatusCode::OK);
    assert_eq!(deliver(&c, "value-errors").await, StatusCode::OK);
    assert!(store.conversations().await.is_empty());
    let journal = store.journal().await;
    assert_eq!(journal.len(), 3);
    assert!(journal.iter().all(|j| j.kind == "event"));
    assert!(
        journal[0]
            .idempotency_key
            .starts_with(&format!("foreign:{PNID}:"))
    );
    assert!(
        journal[1]
            .idempotency_key
            .starts_with("event:account_update:")
    );
}

#[tokio::test]
async fn every_fixture_is_accepted_and_stored_idempotently() {
    let (c, store) = connector().await;
    store
        .sent_message(IdentityKind::WHATSAPP, USER, OUTBOUND)
        .await;
    // The golden suite's inputs (sorted), less those that must be rejected.
    let names: Vec<String> = Golden::new(fixtures_dir("whatsapp"), ".json")
        .golden_suffix(".golden.json")
        .inputs()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| !n.starts_with("invalid-"))
        .collect();
    for name in &names {
        assert_eq!(deliver(&c, name).await, StatusCode::OK, "{name}");
    }
    let journaled = store.journal().await.len();
    for name in &names {
        assert_eq!(deliver(&c, name).await, StatusCode::OK, "{name} again");
    }
    assert_eq!(
        store.journal().await.len(),
        journaled,
        "retries add nothing"
    );
}
