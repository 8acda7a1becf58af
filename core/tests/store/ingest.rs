//! Ingest: the journal and unique keys decide duplicates, under concurrency too; contacts, thread decisions, media jobs, reactions, and the event log read in order.

use crate::support::*;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    ingest_creates_contact_conversation_message,
    duplicates_change_nothing,
    concurrent_duplicate_deliveries_store_once,
    concurrent_messages_from_new_contact_share_one_conversation,
    reply_context_joins_that_conversation_and_reopens,
    media_job_marks_attachment_stored,
    too_large_attachment_is_recorded_with_its_size_and_no_job,
    reactions_attach_to_their_message_and_can_be_removed,
    event_readers_never_skip_under_concurrent_writes,
    a_failing_delivery_in_a_shared_transaction_fails_alone,
);

async fn ingest_creates_contact_conversation_message(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let out = store
        .ingest_message(&ch, &journal("k1"), &sms("SM1", "+15550001", "hello"))
        .await
        .expect("ingest");
    let IngestOutcome::Stored {
        conversation_id,
        message_id,
        created_conversation,
    } = out
    else {
        panic!("not stored: {out:?}")
    };
    assert!(created_conversation);
    let conv = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("conv");
    assert_eq!(conv.status, "open");
    assert_eq!(conv.message_count, 1);
    assert_eq!(conv.unread_count, 1);
    assert_eq!(conv.contact.identities[0].value, "+15550001");
    let msg = store.get_message("t1", &message_id).await.expect("msg");
    assert_eq!(msg.text.as_deref(), Some("hello"));
    assert_eq!(msg.direction, "inbound");
    assert_eq!(msg.external["MessageSid"], "SM1");
    // A second message from the same contact joins the open conversation.
    let out2 = store
        .ingest_message(&ch, &journal("k2"), &sms("SM2", "+15550001", "again"))
        .await
        .expect("ingest");
    assert!(
        matches!(out2, IngestOutcome::Stored { conversation_id: ref c, created_conversation: false, .. } if *c == conversation_id)
    );
    let conv = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("conv");
    assert_eq!((conv.message_count, conv.unread_count), (2, 2));
}

async fn duplicates_change_nothing(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let m = sms("SM1", "+15550001", "hello");
    assert!(matches!(
        store
            .ingest_message(&ch, &journal("k1"), &m)
            .await
            .expect("first"),
        IngestOutcome::Stored { .. }
    ));
    assert_eq!(
        store
            .ingest_message(&ch, &journal("k1"), &m)
            .await
            .expect("same key"),
        IngestOutcome::Duplicate
    );
    assert_eq!(
        store
            .ingest_message(&ch, &journal("k-other"), &m)
            .await
            .expect("same sid"),
        IngestOutcome::Duplicate
    );
    let page = store
        .list_conversations("t1", &ConversationFilter::default(), &page(10))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message_count, 1);
    assert_eq!(page.items[0].unread_count, 1);
}

async fn concurrent_duplicate_deliveries_store_once(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            // Half reuse the journal key, half only the provider id.
            let key = if i % 2 == 0 {
                "same".to_string()
            } else {
                format!("k{i}")
            };
            store
                .ingest_message(&ch, &journal(&key), &sms("SMdup", "+15550009", "x"))
                .await
        }));
    }
    let mut stored = 0;
    for t in tasks {
        if matches!(
            t.await.expect("join").expect("ingest"),
            IngestOutcome::Stored { .. }
        ) {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    let page = store
        .list_conversations("t1", &ConversationFilter::default(), &page(10))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message_count, 1);
}

async fn concurrent_messages_from_new_contact_share_one_conversation(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            store
                .ingest_message(
                    &ch,
                    &journal(&format!("k{i}")),
                    &sms(&format!("SM{i}"), "+15550100", "hi"),
                )
                .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("ingest");
    }
    let page = store
        .list_conversations("t1", &ConversationFilter::default(), &page(10))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1, "one contact, one conversation");
    assert_eq!(page.items[0].message_count, 12);
}

async fn reply_context_joins_that_conversation_and_reopens(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let IngestOutcome::Stored {
        conversation_id: first,
        ..
    } = store
        .ingest_message(&ch, &journal("k1"), &sms("SM1", "+15550001", "one"))
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    store
        .set_status("t1", &first, ConversationStatus::Closed, "alice")
        .await
        .expect("close");
    // With the first closed, a plain message opens a new conversation...
    let IngestOutcome::Stored {
        conversation_id: second,
        ..
    } = store
        .ingest_message(&ch, &journal("k2"), &sms("SM2", "+15550001", "two"))
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    assert_ne!(first, second);
    // ...but a reply to a message of the first rejoins and reopens it.
    let mut reply = sms("SM3", "+15550001", "re: one");
    reply.reply_to = vec!["SM-unknown".into(), "SM1".into()];
    let IngestOutcome::Stored {
        conversation_id: third,
        ..
    } = store
        .ingest_message(&ch, &journal("k3"), &reply)
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    assert_eq!(third, first);
    assert_eq!(
        store
            .get_conversation("t1", &first)
            .await
            .expect("conv")
            .status,
        "open"
    );
    // Threads never cross channels: the same reference on another channel opens a new one.
    let mut other = sms("SM4", "+15550001", "elsewhere");
    other.reply_to = vec!["SM1".into()];
    let IngestOutcome::Stored {
        conversation_id: fourth,
        ..
    } = store
        .ingest_message(&channel("t1", "sms2"), &journal("k4"), &other)
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    assert!(fourth != first && fourth != second);
}

/// An attachment a connector refused to keep (over its size cap): the message is stored,
/// the attachment is `too_large` with its size, and no media job tries to fetch it.
async fn too_large_attachment_is_recorded_with_its_size_and_no_job(store: Arc<dyn Store>) {
    let mut m = sms("MMBIG", "+15550001", "big file");
    m.attachments = vec![InboundAttachment {
        filename: Some("big.bin".into()),
        content_type: Some("application/octet-stream".into()),
        too_large: Some(31_457_280),
        ..Default::default()
    }];
    let IngestOutcome::Stored { message_id, .. } = store
        .ingest_message(&channel("t1", "sms1"), &journal("kbig"), &m)
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let msg = store.get_message("t1", &message_id).await.expect("msg");
    assert_eq!(msg.attachments[0].state, "too_large");
    assert_eq!(msg.attachments[0].size, Some(31_457_280));
    assert!(msg.attachments[0].storage_key.is_none());
    assert!(
        store
            .claim_job(now_millis(), 60_000)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn media_job_marks_attachment_stored(store: Arc<dyn Store>) {
    let mut m = sms("MM1", "+15550001", "pic");
    m.attachments = vec![InboundAttachment {
        filename: None,
        content_type: Some("image/jpeg".into()),
        source: Some("https://media.example/1".into()),
        content_id: None,
        ..Default::default()
    }];
    let IngestOutcome::Stored { message_id, .. } = store
        .ingest_message(&channel("t1", "sms1"), &journal("k1"), &m)
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let job = store
        .claim_job(now_millis(), 60_000)
        .await
        .expect("claim")
        .expect("media job");
    assert_eq!(job.kind, JobKind::FetchMedia);
    let ctx = store.media_for_job(&job).await.expect("ctx");
    assert_eq!(ctx.source, "https://media.example/1");
    let msg = store.get_message("t1", &message_id).await.expect("msg");
    assert_eq!(msg.attachments[0].state, "pending");
    store
        .attachment_stored(
            &job,
            &StoredBlob {
                storage_key: "sha256/ab/cd/abcd".into(),
                sha256: "abcd".into(),
                size: 3,
                content_type: "image/jpeg".into(),
            },
        )
        .await
        .expect("stored");
    let a = store
        .get_attachment("t1", &ctx.attachment_id)
        .await
        .expect("attachment");
    assert_eq!((a.state.as_str(), a.size), ("stored", Some(3)));
    assert!(matches!(
        store.get_attachment("t2", &ctx.attachment_id).await,
        Err(StoreError::NotFound)
    ));
}

async fn reactions_attach_to_their_message_and_can_be_removed(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let IngestOutcome::Stored { message_id, .. } = store
        .ingest_message(&ch, &journal("k1"), &sms("wamid.A", "+15550001", "hi"))
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let reaction = |emoji: Option<&str>, id: &str| ReactionUpdate {
        provider_message_id: id.into(),
        target_provider_id: "wamid.A".into(),
        from: Identity {
            kind: IdentityKind::PHONE,
            value: "+15550001".into(),
        },
        emoji: emoji.map(str::to_string),
        external: serde_json::json!({}),
    };
    let r = store
        .ingest_reaction(&ch, &journal("r1"), &reaction(Some("👍"), "wamid.R1"))
        .await
        .expect("react");
    assert_eq!(
        r,
        ReactionOutcome::Applied {
            message_id: message_id.clone()
        }
    );
    assert_eq!(
        store
            .ingest_reaction(&ch, &journal("r1"), &reaction(Some("👍"), "wamid.R1"))
            .await
            .expect("dup"),
        ReactionOutcome::Duplicate
    );
    store
        .ingest_reaction(&ch, &journal("r2"), &reaction(Some("❤️"), "wamid.R2"))
        .await
        .expect("change");
    let m = store.get_message("t1", &message_id).await.expect("msg");
    assert_eq!(
        m.reactions
            .iter()
            .map(|r| r.emoji.as_str())
            .collect::<Vec<_>>(),
        vec!["❤️"]
    );
    store
        .ingest_reaction(&ch, &journal("r3"), &reaction(None, "wamid.R3"))
        .await
        .expect("remove");
    assert!(
        store
            .get_message("t1", &message_id)
            .await
            .expect("msg")
            .reactions
            .is_empty()
    );
    let mut unknown = reaction(Some("😮"), "wamid.R4");
    unknown.target_provider_id = "wamid.nope".into();
    assert_eq!(
        store
            .ingest_reaction(&ch, &journal("r4"), &unknown)
            .await
            .expect("unknown"),
        ReactionOutcome::UnknownMessage
    );
    // Reactions never count as messages.
    let conv = store
        .get_conversation("t1", &m.conversation_id)
        .await
        .expect("conv");
    assert_eq!(conv.message_count, 1);
}

async fn event_readers_never_skip_under_concurrent_writes(store: Arc<dyn Store>) {
    // A reader following the log with a cursor while 8 writers ingest must end up with every
    // event: ids become visible in order (no id commits after a larger one was read).
    let (_, start) = store.event_bounds("t1").await.expect("bounds");
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..15 {
                let sid = format!("SMev{w}x{i}");
                store
                    .ingest_message(
                        &channel("t1", "sms1"),
                        &journal(&sid),
                        &sms(&sid, &format!("+1555800{w:04}"), "x"),
                    )
                    .await
                    .expect("ingest");
            }
        }));
    }
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while seen.len() < 8 * 15 * 2 && std::time::Instant::now() < deadline {
                for e in store.events_since("t1", cursor, 50).await.expect("read") {
                    cursor = e.seq;
                    seen.push(e.seq);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let seen = reader.await.expect("reader");
    let all: Vec<i64> = store
        .events_since("t1", start, 10_000)
        .await
        .expect("all")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all.len(), 8 * 15 * 2, "conversation and message events");
    assert_eq!(seen, all, "the following reader missed or reordered events");
}

/// Concurrent deliveries share transactions (group commit); one that the database refuses
/// (its channel does not exist) is rolled back alone and answered with its error, and every
/// other delivery is stored.
async fn a_failing_delivery_in_a_shared_transaction_fails_alone(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        let ch = if i == 7 {
            channel("t1", "ghost")
        } else {
            channel("t1", "sms1")
        };
        tasks.push(tokio::spawn(async move {
            store
                .ingest_message(
                    &ch,
                    &journal(&format!("k{i}")),
                    &sms(&format!("SM{i}"), &format!("+1555000{:02}", i % 8), "x"),
                )
                .await
        }));
    }
    let mut failed = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("join") {
            Ok(IngestOutcome::Stored { .. }) => {}
            Ok(other) => panic!("delivery {i}: {other:?}"),
            Err(_) => failed.push(i),
        }
    }
    assert_eq!(failed, vec![7]);
    let page = store
        .list_conversations("t1", &ConversationFilter::default(), &page(50))
        .await
        .expect("list");
    let stored: i64 = page.items.iter().map(|c| c.message_count).sum();
    assert_eq!(stored, 39);
}
