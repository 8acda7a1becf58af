//! Tenancy and listing: isolation between tenants, keyset pagination, API tokens, mailbox sync state.

use crate::support::*;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::contract::journal::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    tenants_are_isolated,
    pagination_has_no_gaps_or_repeats,
    tokens_create_find_revoke,
    sync_runs_are_recorded_per_folder,
    channels_dropped_from_configuration_are_listed_as_removed,
);

async fn tenants_are_isolated(store: Arc<dyn Store>) {
    let IngestOutcome::Stored {
        conversation_id,
        message_id,
        ..
    } = store
        .ingest_message(
            &channel("t1", "sms1"),
            &journal("k1"),
            &sms("SM1", "+15550001", "hi"),
        )
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    assert!(matches!(
        store.get_conversation("t2", &conversation_id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_message("t2", &message_id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .create_reply("t2", &conversation_id, &draft("x", None))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.mark_read("t2", &conversation_id, "bob").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .set_status("t2", &conversation_id, ConversationStatus::Closed, "bob")
            .await,
        Err(StoreError::NotFound)
    ));
    let list = store
        .list_conversations("t2", &ConversationFilter::default(), &page(10))
        .await
        .expect("list");
    assert!(list.items.is_empty());
    // The same phone number in another tenant is another contact.
    let IngestOutcome::Stored {
        conversation_id: other,
        ..
    } = store
        .ingest_message(
            &channel("t2", "sms-t2"),
            &journal("k1"),
            &sms("SM1", "+15550001", "hi"),
        )
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let a = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("a");
    let b = store.get_conversation("t2", &other).await.expect("b");
    assert_ne!(a.contact.id, b.contact.id);
}

async fn pagination_has_no_gaps_or_repeats(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    for i in 0..23 {
        store
            .ingest_message(
                &ch,
                &journal(&format!("k{i}")),
                &sms(&format!("SM{i}"), &format!("+1555000{i:04}"), "hi"),
            )
            .await
            .expect("ingest");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .list_conversations(
                "t1",
                &ConversationFilter::default(),
                &PageRequest {
                    cursor: cursor.clone(),
                    limit: 5,
                },
            )
            .await
            .expect("page");
        assert!(p.items.len() <= 5);
        seen.extend(p.items.into_iter().map(|c| c.id));
        match p.next_cursor {
            Some(c) => cursor = Some(PageCursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((n, seen.len()), (23, 23));
    let unread = ConversationFilter {
        unread: Some(false),
        ..Default::default()
    };
    assert!(
        store
            .list_conversations("t1", &unread, &page(50))
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

async fn tokens_create_find_revoke(store: Arc<dyn Store>) {
    let (token, hash) = switchboard_core::infra::auth::tokens::generate();
    store
        .create_token(&NewToken {
            id: new_id(),
            tenant_id: "t1".into(),
            name: "ci".into(),
            role: Role::Agent,
            hash: hash.clone(),
        })
        .await
        .expect("create");
    let found = store
        .find_token(&switchboard_core::infra::auth::tokens::hash(&token))
        .await
        .expect("find");
    assert_eq!(
        found.map(|t| (t.tenant_id, t.role)),
        Some(("t1".to_string(), Role::Agent))
    );
    assert_eq!(
        store
            .revoke_token("t2", "ci")
            .await
            .expect("revoke other tenant"),
        0
    );
    assert_eq!(store.revoke_token("t1", "ci").await.expect("revoke"), 1);
    assert!(store.find_token(&hash).await.expect("find").is_none());
    let err = store
        .create_token(&NewToken {
            id: new_id(),
            tenant_id: "nope".into(),
            name: "x".into(),
            role: Role::Admin,
            hash: "h".into(),
        })
        .await
        .expect_err("unknown tenant");
    assert!(matches!(
        err,
        StoreError::Refused(switchboard_core::store::Refusal::UnknownTenant { .. })
    ));
}

async fn sync_runs_are_recorded_per_folder(store: Arc<dyn Store>) {
    let ch = channel("t1", "mail1");
    let position = FolderPosition {
        folder: "INBOX".into(),
        uidvalidity: 7,
        last_uid: 10,
        highestmodseq: Some(99),
    };
    let items: Vec<(JournalEntry, InboundMessage)> = ["<s1@x>", "<s2@x>"]
        .iter()
        .map(|id| {
            (
                journal(&format!("mail:{id}")),
                mail(id, "ann@example.com", "hi", &[]),
            )
        })
        .collect();
    store
        .ingest_mail_batch(&ch, &position, &items)
        .await
        .expect("batch");
    let run = |error: Option<&str>| SyncRun {
        channel_id: "mail1".into(),
        folder: "INBOX".into(),
        error: error.map(str::to_string),
        backlog_total: 100,
        backlog_done: 10,
    };
    store.record_sync_run(&run(None)).await.expect("first run");
    store
        .record_sync_run(&run(Some("connection reset")))
        .await
        .expect("failed run");
    let states = store.sync_states(Some("t1")).await.expect("states");
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!(
        (s.uidvalidity, s.last_uid, s.highestmodseq, s.seen, s.stored),
        (7, 10, Some(99), 2, 2)
    );
    assert_eq!(s.last_error.as_deref(), Some("connection reset"));
    assert!(
        s.last_success_at.is_some(),
        "a failed run keeps the last success"
    );
    assert_eq!((s.backlog_total, s.backlog_done), (100, 10));
    assert!(
        store
            .sync_states(Some("t2"))
            .await
            .expect("other tenant")
            .is_empty()
    );
    let channels = store.list_channels("t1").await.expect("channels");
    let mail_channel = channels
        .iter()
        .find(|c| c.id == "mail1")
        .expect("mail channel");
    assert_eq!(
        mail_channel.sync.len(),
        1,
        "the channels API shows the folder's sync state"
    );
    assert!(
        channels
            .iter()
            .filter(|c| c.id != "mail1")
            .all(|c| c.sync.is_empty())
    );
    assert!(matches!(
        store
            .record_sync_run(&SyncRun {
                channel_id: "nope".into(),
                ..run(None)
            })
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn channels_dropped_from_configuration_are_listed_as_removed(store: Arc<dyn Store>) {
    let status = |channels: &[ChannelRow], id: &str| {
        channels
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.status.clone())
            .expect("listed")
    };
    let before = store.list_channels("t1").await.expect("list");
    assert!(before.len() >= 2, "{before:?}");
    let kept = before[0].id.clone();
    let dropped = before[1].id.clone();
    let retired = store
        .retire_unconfigured_channels(std::slice::from_ref(&kept))
        .await
        .expect("retire");
    assert!(retired >= 1);
    let after = store.list_channels("t1").await.expect("list");
    assert_eq!(status(&after, &kept), "active");
    assert_eq!(status(&after, &dropped), "removed");
    // Configured again: active again.
    let record = ChannelRecord {
        id: dropped.clone(),
        tenant_id: "t1".into(),
        kind: before[1].kind.clone(),
        address: before[1].address.clone(),
    };
    store
        .sync_tenants_and_channels(&[], &[record])
        .await
        .expect("sync");
    let again = store.list_channels("t1").await.expect("list");
    assert_eq!(status(&again, &dropped), "active");
    // Retiring twice changes nothing more.
    assert_eq!(
        store
            .retire_unconfigured_channels(&[kept.clone(), dropped.clone()])
            .await
            .expect("retire"),
        0
    );
}
