//! The store suite: every test runs against SQLite and against PostgreSQL, each on a fresh
//! database. PostgreSQL is taken from `SWITCHBOARD_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a missing server fails the suite — the
//! test command starts one.

mod support;

use std::sync::Arc;
use support::*;
use switchboard_core::model::*;
use switchboard_core::store::*;

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = super::support::TestDb::sqlite().await;
                super::$name(db.store.clone()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = super::support::TestDb::postgres().await;
                super::$name(db.store.clone()).await;
                db.drop_pg().await;
            })*
        }
    };
}

store_tests!(
    ingest_creates_contact_conversation_message,
    duplicates_change_nothing,
    concurrent_duplicate_deliveries_store_once,
    concurrent_messages_from_new_contact_share_one_conversation,
    reply_context_joins_that_conversation_and_reopens,
    status_moves_forward_only,
    status_before_send_record_is_applied_later,
    jobs_are_claimed_once_and_leases_expire,
    reply_idempotency_and_opt_out,
    tenants_are_isolated,
    pagination_has_no_gaps_or_repeats,
    tokens_create_find_revoke,
    media_job_marks_attachment_stored,
    reactions_attach_to_their_message_and_can_be_removed,
    templates_and_read_receipts_reach_their_jobs,
    staff_actions_leave_an_audit_trail,
    event_readers_never_skip_under_concurrent_writes,
    email_threads_by_references_token_and_subject,
    parent_arriving_late_adopts_its_replies,
    sync_runs_are_recorded_per_folder,
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

async fn status_moves_forward_only(store: Arc<dyn Store>) {
    let (job, msg_id) = queued_reply(&store).await;
    store
        .job_sent(&job, &receipt("SMout1"))
        .await
        .expect("sent");
    let ch = channel("t1", "sms1");
    let st = |s, key: &str| {
        let store = store.clone();
        let ch = ch.clone();
        let key = key.to_string();
        async move {
            store
                .ingest_status(&ch, &journal(&key), &status("SMout1", s))
                .await
                .expect("status")
        }
    };
    assert!(matches!(
        st(DeliveryStatus::Delivered, "s1").await,
        StatusOutcome::Applied { .. }
    ));
    assert!(matches!(
        st(DeliveryStatus::Sent, "s2").await,
        StatusOutcome::Stale { .. }
    ));
    assert_eq!(
        st(DeliveryStatus::Delivered, "s1").await,
        StatusOutcome::Duplicate
    );
    assert!(matches!(
        st(DeliveryStatus::Read, "s3").await,
        StatusOutcome::Applied { .. }
    ));
    assert!(matches!(
        st(DeliveryStatus::Failed, "s4").await,
        StatusOutcome::Stale { .. }
    ));
    let m = store.get_message("t1", &msg_id).await.expect("msg");
    assert_eq!(m.delivery_status, "read");
    assert_eq!(m.provider_message_id.as_deref(), Some("SMout1"));
}

async fn status_before_send_record_is_applied_later(store: Arc<dyn Store>) {
    let (job, msg_id) = queued_reply(&store).await;
    let ch = channel("t1", "sms1");
    let mut failed = status("SMearly", DeliveryStatus::Undelivered);
    failed.error_code = Some("30003".into());
    assert_eq!(
        store
            .ingest_status(&ch, &journal("early"), &failed)
            .await
            .expect("status"),
        StatusOutcome::UnknownMessage
    );
    store
        .job_sent(&job, &receipt("SMearly"))
        .await
        .expect("sent");
    let m = store.get_message("t1", &msg_id).await.expect("msg");
    assert_eq!(m.delivery_status, "undelivered");
    assert_eq!(m.error_code.as_deref(), Some("30003"));
}

async fn jobs_are_claimed_once_and_leases_expire(store: Arc<dyn Store>) {
    for i in 0..6 {
        queued_reply_n(&store, i).await;
    }
    let now = now_millis();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(j) = store.claim_job(now, 60_000).await.expect("claim") {
                got.push(j.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (6, 6), "each job claimed exactly once");
    // Nothing is claimable while leases hold; after they expire, jobs come back.
    assert!(
        store
            .claim_job(now + 1_000, 60_000)
            .await
            .expect("claim")
            .is_none()
    );
    let again = store
        .claim_job(now + 61_000, 60_000)
        .await
        .expect("claim")
        .expect("expired lease");
    assert_eq!(again.attempts, 2);
    // The first claim's lease is lost: its late outcome must not overwrite the new claim.
    let mut stale = again.clone();
    stale.locked_until = now + 60_000;
    store.job_retry(&stale, now, "late").await.expect("retry");
    assert!(
        store
            .claim_job(now + 62_000, 60_000)
            .await
            .expect("claim")
            .is_some_and(|j| j.id != again.id)
    );
}

async fn reply_idempotency_and_opt_out(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let IngestOutcome::Stored {
        conversation_id, ..
    } = store
        .ingest_message(&ch, &journal("k1"), &sms("SM1", "+15550001", "hi"))
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let d = draft("hello", Some("idem-1"));
    let (a, created_a) = store
        .create_reply("t1", &conversation_id, &d)
        .await
        .expect("reply");
    let (b, created_b) = store
        .create_reply("t1", &conversation_id, &d)
        .await
        .expect("replay");
    assert!(created_a && !created_b);
    assert_eq!(a.id, b.id);
    let channels = store.list_channels("t1").await.expect("channels");
    assert_eq!(
        channels
            .iter()
            .find(|c| c.id == "sms1")
            .map(|c| c.outbox_pending),
        Some(1)
    );
    let conv = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("conv");
    assert_eq!((conv.unread_count, conv.message_count), (0, 2));

    let mut stop = sms("SM2", "+15550001", "STOP");
    stop.consent = Some(Consent::OptOut);
    stop.flags = vec![Flag::OptOut];
    store
        .ingest_message(&ch, &journal("k2"), &stop)
        .await
        .expect("stop");
    let conv = store
        .get_conversation("t1", &conversation_id)
        .await
        .expect("conv");
    assert_eq!(conv.unread_count, 0, "an opt-out never bumps unread");
    let err = store
        .create_reply("t1", &conversation_id, &draft("more", None))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            StoreError::Refused {
                code: "contact_opted_out",
                ..
            }
        ),
        "{err:?}"
    );
    let mut start = sms("SM3", "+15550001", "START");
    start.consent = Some(Consent::OptIn);
    store
        .ingest_message(&ch, &journal("k3"), &start)
        .await
        .expect("start");
    store
        .create_reply("t1", &conversation_id, &draft("welcome back", None))
        .await
        .expect("allowed again");
}

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
            Some(c) => cursor = Some(Cursor::decode(&c).expect("cursor")),
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
    let (token, hash) = switchboard_core::tokens::generate();
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
        .find_token(&switchboard_core::tokens::hash(&token))
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
        StoreError::Refused {
            code: "unknown_tenant",
            ..
        }
    ));
}

async fn media_job_marks_attachment_stored(store: Arc<dyn Store>) {
    let mut m = sms("MM1", "+15550001", "pic");
    m.attachments = vec![InboundAttachment {
        filename: None,
        content_type: Some("image/jpeg".into()),
        source: Some("https://media.example/1".into()),
        content_id: None,
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
            kind: IdentityKind::Phone,
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

async fn templates_and_read_receipts_reach_their_jobs(store: Arc<dyn Store>) {
    let ch = channel("t1", "sms1");
    let IngestOutcome::Stored {
        conversation_id, ..
    } = store
        .ingest_message(&ch, &journal("k1"), &sms("wamid.B", "+15550001", "hi"))
        .await
        .expect("ingest")
    else {
        panic!("not stored")
    };
    let mut d = draft("", None);
    d.text = None;
    d.template = Some(Template {
        name: "order_update".into(),
        language: "en_US".into(),
        components: serde_json::json!([{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]),
    });
    store
        .create_reply("t1", &conversation_id, &d)
        .await
        .expect("template reply");
    let job = store
        .claim_job(now_millis(), 60_000)
        .await
        .expect("claim")
        .expect("send job");
    let ctx = store.outbound_for_job(&job).await.expect("outbound");
    assert_eq!(ctx.message.template, d.template);
    assert!(ctx.message.text.is_none());

    assert!(
        store
            .queue_read_receipt("t1", &conversation_id)
            .await
            .expect("queue")
    );
    assert!(
        !store
            .queue_read_receipt("t2", &conversation_id)
            .await
            .expect("other tenant")
    );
    let job = store
        .claim_job(now_millis(), 60_000)
        .await
        .expect("claim")
        .expect("receipt job");
    assert_eq!(job.kind, JobKind::ReadReceipt);
    assert_eq!(
        store.read_receipt_target(&job).await.expect("target"),
        "wamid.B"
    );
    store.job_done(&job).await.expect("done");
    assert!(
        store
            .claim_job(now_millis() + 1, 60_000)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn staff_actions_leave_an_audit_trail(store: Arc<dyn Store>) {
    let IngestOutcome::Stored {
        conversation_id: c, ..
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
    store.mark_read("t1", &c, "ann").await.expect("read");
    store
        .assign("t1", &c, Some("bob"), "ann")
        .await
        .expect("assign");
    store
        .create_reply("t1", &c, &draft("on it", None))
        .await
        .expect("reply");
    store
        .set_status("t1", &c, ConversationStatus::Closed, "bob")
        .await
        .expect("close");
    let trail = store.list_audit("t1", &c, &page(10)).await.expect("audit");
    let actions: Vec<(&str, &str)> = trail
        .items
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("bob", "status"),
            ("alice", "reply"),
            ("ann", "assign"),
            ("ann", "read")
        ]
    );
    assert_eq!(trail.items[0].detail.0["status"], "closed");
    assert!(matches!(
        store.list_audit("t2", &c, &page(10)).await,
        Err(StoreError::NotFound)
    ));
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

async fn stored(store: &Arc<dyn Store>, m: InboundMessage) -> (String, bool) {
    let key = format!("mail:{}", m.provider_message_id);
    match store
        .ingest_message(&channel("t1", "mail1"), &journal(&key), &m)
        .await
        .expect("ingest")
    {
        IngestOutcome::Stored {
            conversation_id,
            created_conversation,
            ..
        } => (conversation_id, created_conversation),
        IngestOutcome::Duplicate => panic!("duplicate"),
    }
}

async fn reply_token_of(store: &Arc<dyn Store>, conversation: &str) -> String {
    // The token is not in the API view; the email connector reads it to build Reply-To.
    store
        .reply_token(conversation)
        .await
        .expect("token")
        .expect("has token")
}

async fn email_threads_by_references_token_and_subject(store: Arc<dyn Store>) {
    let (c1, new1) = stored(&store, mail("<a@x>", "ann@example.com", "Order 42", &[])).await;
    assert!(new1);
    assert_eq!(
        stored(
            &store,
            mail("<b@x>", "ann@example.com", "Re: Order 42", &["<a@x>"])
        )
        .await,
        (c1.clone(), false)
    );
    assert_eq!(
        stored(
            &store,
            mail(
                "<c@x>",
                "bob@example.com",
                "totally different",
                &["<zzz@x>", "<a@x>"]
            )
        )
        .await
        .0,
        c1,
        "References, newest first, any sender"
    );
    let token = reply_token_of(&store, &c1).await;
    let mut by_token = mail("<d@x>", "carl@example.com", "new subject", &[]);
    by_token.thread_token = Some(token);
    assert_eq!(stored(&store, by_token).await.0, c1, "reply token");
    assert_eq!(
        stored(
            &store,
            mail("<e@x>", "ann@example.com", "AW: RE: order 42", &[])
        )
        .await
        .0,
        c1,
        "same contact + subject"
    );
    let (c2, new2) = stored(
        &store,
        mail("<f@x>", "ann@example.com", "Another topic", &[]),
    )
    .await;
    assert!(new2 && c2 != c1, "email never joins by contact alone");
    let (c3, _) = stored(&store, mail("<g@x>", "dora@example.com", "Order 42", &[])).await;
    assert!(c3 != c1, "subject matching needs the same contact");
    store.set_threading(switchboard_core::thread::ThreadingPolicy {
        subject_matching: false,
        ..Default::default()
    });
    let (c4, _) = stored(
        &store,
        mail("<h@x>", "ann@example.com", "Re: Order 42", &[]),
    )
    .await;
    assert!(c4 != c1, "subject matching off");
    store
        .set_status("t1", &c1, ConversationStatus::Closed, "ann")
        .await
        .expect("close");
    store.set_threading(switchboard_core::thread::ThreadingPolicy {
        reopen_closed: false,
        ..Default::default()
    });
    let (c5, _) = stored(
        &store,
        mail("<i@x>", "ann@example.com", "Re: Order 42", &["<a@x>"]),
    )
    .await;
    assert!(
        c5 != c1,
        "reply to a closed conversation starts a new one when configured"
    );
    store.set_threading(Default::default());
    let (c6, _) = stored(
        &store,
        mail("<j@x>", "ann@example.com", "Re: Order 42", &["<a@x>"]),
    )
    .await;
    assert_eq!(c6, c1);
    assert_eq!(
        store
            .get_conversation("t1", &c1)
            .await
            .expect("conv")
            .status,
        "open",
        "reopened"
    );
}

async fn parent_arriving_late_adopts_its_replies(store: Arc<dyn Store>) {
    let (orphan, _) = stored(
        &store,
        mail("<child@x>", "bob@example.com", "Re: Plan", &["<parent@x>"]),
    )
    .await;
    let (grandchild_conv, _) = stored(
        &store,
        mail(
            "<gc@x>",
            "bob@example.com",
            "Re: Re: Plan",
            &["<child@x>", "<parent@x>"],
        ),
    )
    .await;
    assert_eq!(grandchild_conv, orphan);
    let (parent, created) =
        stored(&store, mail("<parent@x>", "ann@example.com", "Plan", &[])).await;
    assert!(created);
    assert!(
        matches!(
            store.get_conversation("t1", &orphan).await,
            Err(StoreError::NotFound)
        ),
        "orphan merged away"
    );
    let conv = store
        .get_conversation("t1", &parent)
        .await
        .expect("parent conv");
    assert_eq!(conv.message_count, 3);
    let msgs = store
        .list_messages("t1", &parent, &page(10))
        .await
        .expect("messages");
    assert_eq!(msgs.items.len(), 3);
    let (first, last) = store.event_bounds("t1").await.expect("bounds");
    let events = store
        .events_since("t1", first - 1, last)
        .await
        .expect("events");
    assert!(events.iter().any(|e| e.kind == "conversation.merged"
        && e.payload.0["into_conversation_id"] == parent.as_str()));
}

async fn sync_runs_are_recorded_per_folder(store: Arc<dyn Store>) {
    let run = |error: Option<&str>, last_uid: i64| SyncRun {
        channel_id: "mail1".into(),
        folder: "INBOX".into(),
        uidvalidity: 7,
        last_uid,
        highestmodseq: Some(99),
        error: error.map(str::to_string),
        seen: 10,
        stored: 4,
        backlog_total: 100,
        backlog_done: 10,
    };
    store
        .record_sync_run(&run(None, 10))
        .await
        .expect("first run");
    store
        .record_sync_run(&run(Some("connection reset"), 10))
        .await
        .expect("failed run");
    let states = store.sync_states(Some("t1")).await.expect("states");
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!(
        (s.uidvalidity, s.last_uid, s.seen, s.stored),
        (7, 10, 20, 8)
    );
    assert_eq!(s.last_error.as_deref(), Some("connection reset"));
    assert!(
        s.last_success_at.is_some(),
        "a failed run keeps the last success"
    );
    assert!(
        store
            .sync_states(Some("t2"))
            .await
            .expect("other tenant")
            .is_empty()
    );
    assert!(matches!(
        store
            .record_sync_run(&SyncRun {
                channel_id: "nope".into(),
                ..run(None, 1)
            })
            .await,
        Err(StoreError::NotFound)
    ));
}
