//! Email threading: References and In-Reply-To, reply tokens, same-contact subject matching, the closed-conversation policy, and parents adopting earlier replies.

use crate::support::*;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::contract::journal::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    mail_batches_move_the_cursor_with_their_messages,
    email_threads_by_references_token_and_subject,
    parent_arriving_late_adopts_its_replies,
    replies_sharing_a_missing_ancestor_share_a_thread,
    subject_matching_uses_mail_dates_and_skips_replies_to_unknown_mail,
    one_mail_batch_threads_as_message_by_message_ingest_does,
    raw_mail_is_journaled_compressed_and_reads_back_exactly,
    a_late_parent_in_a_batch_merges_after_the_events_that_announce_its_reply,
    two_mailboxes_syncing_at_once_share_a_new_senders_contact,
    a_backfill_into_empty_tables_refreshes_postgres_statistics,
);

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

/// INBOX at UIDVALIDITY 1, up to `last_uid`.
fn inbox(last_uid: i64) -> FolderPosition {
    FolderPosition {
        folder: "INBOX".into(),
        uidvalidity: 1,
        last_uid,
        highestmodseq: None,
    }
}

/// Messages as a batch, journaled as `mail:0`, `mail:1`...
fn batch_of(messages: Vec<InboundMessage>) -> Vec<(JournalEntry, InboundMessage)> {
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| (journal(&format!("mail:{i}")), m))
        .collect()
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
    store.set_threading(switchboard_core::domain::thread::ThreadingPolicy {
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
    store.set_threading(switchboard_core::domain::thread::ThreadingPolicy {
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

async fn mail_batches_move_the_cursor_with_their_messages(store: Arc<dyn Store>) {
    let ch = channel("t1", "mail1");
    let item = |id: &str| {
        (
            journal(&format!("mail:{id}")),
            mail(id, "ann@example.com", "Order", &[]),
        )
    };
    let pos = |uidvalidity: i64, last_uid: i64| FolderPosition {
        folder: "INBOX".into(),
        uidvalidity,
        last_uid,
        highestmodseq: None,
    };
    let out = store
        .ingest_mail_batch(
            &ch,
            &pos(1, 3),
            &[item("<m1@x>"), item("<m2@x>"), item("<m1@x>")],
        )
        .await
        .expect("batch");
    assert!(matches!(out[0], IngestOutcome::Stored { .. }));
    assert!(matches!(out[1], IngestOutcome::Stored { .. }));
    assert_eq!(
        out[2],
        IngestOutcome::Duplicate,
        "a duplicate inside a batch"
    );
    let state = |store: Arc<dyn Store>| async move {
        store.sync_states(Some("t1")).await.expect("states")[0].clone()
    };
    let s = state(store.clone()).await;
    assert_eq!((s.uidvalidity, s.last_uid, s.seen, s.stored), (1, 3, 3, 2));
    // A late batch never moves the cursor back within one UIDVALIDITY...
    store
        .ingest_mail_batch(&ch, &pos(1, 2), &[])
        .await
        .expect("empty batch");
    assert_eq!(state(store.clone()).await.last_uid, 3);
    // ...but a new UIDVALIDITY replaces the position, and re-fetched mail is not duplicated.
    let out = store
        .ingest_mail_batch(
            &ch,
            &pos(2, 5),
            &[item("<m1@x>"), item("<m2@x>"), item("<m3@x>")],
        )
        .await
        .expect("resync");
    assert_eq!(
        out[..2],
        [IngestOutcome::Duplicate, IngestOutcome::Duplicate]
    );
    assert!(matches!(out[2], IngestOutcome::Stored { .. }));
    let s = state(store.clone()).await;
    assert_eq!((s.uidvalidity, s.last_uid, s.stored), (2, 5, 3));
}

async fn replies_sharing_a_missing_ancestor_share_a_thread(store: Arc<dyn Store>) {
    // The root <root@x> never arrives (older than the mailbox); its replies still meet.
    let (c1, _) = stored(
        &store,
        mail("<r1@x>", "ann@example.com", "Re: plan", &["<root@x>"]),
    )
    .await;
    let (c2, created) = stored(
        &store,
        mail("<r2@x>", "bob@example.com", "Re: plan", &["<root@x>"]),
    )
    .await;
    assert_eq!((c2.as_str(), created), (c1.as_str(), false));
    // An unrelated reply to another missing root stays apart.
    let (c3, created) = stored(
        &store,
        mail("<r3@x>", "ann@example.com", "Re: other", &["<elsewhere@x>"]),
    )
    .await;
    assert!(created && c3 != c1);
}

async fn subject_matching_uses_mail_dates_and_skips_replies_to_unknown_mail(store: Arc<dyn Store>) {
    let day = 86_400_000i64;
    let now = now_millis();
    let dated = |id: &str, subject: &str, at: i64, refs: &[&str]| {
        let mut m = mail(id, "ann@example.com", subject, refs);
        m.sent_at = Some(at);
        m
    };
    // Mail from two years ago and from today, same subject, fetched together: two threads
    // (the window counts the mail's dates, not when it was fetched).
    let (old, _) = stored(&store, dated("<old@x>", "Invoice", now - 730 * day, &[])).await;
    let (new, created) = stored(&store, dated("<new@x>", "Invoice", now - day, &[])).await;
    assert!(created && new != old, "two years apart: a new thread");
    // Within the window, a message naming no parent joins by subject.
    let (again, created) = stored(&store, dated("<again@x>", "Re: Invoice", now, &[])).await;
    assert_eq!((again.as_str(), created), (new.as_str(), false));
    // A reply to mail we do not have is not matched by subject.
    let (other, created) = stored(
        &store,
        dated("<other@x>", "Re: Invoice", now, &["<unknown@y>"]),
    )
    .await;
    assert!(created && other != new);
}

async fn one_mail_batch_threads_as_message_by_message_ingest_does(store: Arc<dyn Store>) {
    // Everything a batch must resolve against itself: a reply to a parent earlier in the
    // batch, siblings of a missing root, a subject match, a parent arriving after its reply,
    // spam, and the same Message-ID twice.
    let mut spam = mail("<spam@x>", "zed@example.com", "Hello", &[]);
    spam.flags = vec![Flag::Spam];
    let batch = vec![
        mail("<p1@x>", "ann@example.com", "Printer", &[]),
        mail("<r2@x>", "bob@example.com", "Re: Printer", &["<p1@x>"]),
        mail("<r3@x>", "carol@example.com", "Re: Lost", &["<lost@x>"]),
        mail("<r4@x>", "dave@example.com", "Re: Lost", &["<lost@x>"]),
        mail("<c5@x>", "ann@example.com", "Re: Printer", &[]),
        mail(
            "<child@x>",
            "eve@example.com",
            "Re: Parent",
            &["<parent@x>"],
        ),
        mail("<parent@x>", "eve@example.com", "Parent", &[]),
        spam,
        mail("<p1@x>", "ann@example.com", "Printer (again)", &[]),
    ];
    let items = batch_of(batch);
    let position = inbox(9);
    let out = store
        .ingest_mail_batch(&channel("t1", "mail1"), &position, &items)
        .await
        .expect("batch");
    assert_eq!(
        out[8],
        IngestOutcome::Duplicate,
        "the same Message-ID twice"
    );
    let mut by_pid = std::collections::HashMap::new();
    for (o, (_, m)) in out.iter().zip(&items).take(8) {
        let IngestOutcome::Stored { message_id, .. } = o else {
            panic!("{} not stored", m.provider_message_id);
        };
        let now = store.get_message("t1", message_id).await.expect("message");
        by_pid.insert(m.provider_message_id.clone(), now.conversation_id);
    }
    let conv = |pid: &str| by_pid[pid].clone();
    assert_eq!(
        conv("<r2@x>"),
        conv("<p1@x>"),
        "reply to a parent earlier in the batch"
    );
    assert_eq!(conv("<c5@x>"), conv("<p1@x>"), "same contact and subject");
    assert_eq!(conv("<r4@x>"), conv("<r3@x>"), "siblings of a missing root");
    assert_eq!(
        conv("<child@x>"),
        conv("<parent@x>"),
        "a late parent adopts its reply"
    );
    let distinct: std::collections::HashSet<String> = by_pid.values().cloned().collect();
    assert_eq!(distinct.len(), 4);
    let printer = store
        .get_conversation("t1", &conv("<p1@x>"))
        .await
        .expect("conv");
    assert_eq!((printer.message_count, printer.unread_count), (3, 3));
    let adopted = store
        .get_conversation("t1", &conv("<parent@x>"))
        .await
        .expect("conv");
    assert_eq!(adopted.message_count, 2);
    let spam = store
        .get_conversation("t1", &conv("<spam@x>"))
        .await
        .expect("conv");
    assert_eq!((spam.status.as_str(), spam.unread_count), ("spam", 0));
    let page = PageRequest {
        cursor: None,
        limit: 50,
    };
    let all = store
        .list_conversations("t1", &ConversationFilter::default(), &page)
        .await
        .expect("list");
    assert_eq!(all.items.iter().map(|c| c.message_count).sum::<i64>(), 8);
}

async fn raw_mail_is_journaled_compressed_and_reads_back_exactly(store: Arc<dyn Store>) {
    let ch = channel("t1", "mail1");
    let raw = |id: &str| -> Vec<u8> {
        let mut raw = format!("Message-ID: <{id}>\r\nSubject: Order\r\n\r\n").into_bytes();
        raw.extend(b"Where is my order? It was due last week.\r\n".repeat(100));
        raw
    };
    let entry = |id: &str| {
        JournalEntry::compressed(format!("mail:{id}"), "message", "message/rfc822", raw(id))
    };
    // The batch path (SQLite's set-based one, PostgreSQL's per message) and the single one.
    let batch = [(
        entry("b1@x"),
        mail("<b1@x>", "ann@example.com", "Order", &[]),
    )];
    let position = inbox(1);
    store
        .ingest_mail_batch(&ch, &position, &batch)
        .await
        .expect("batch");
    store
        .ingest_message(
            &ch,
            &entry("s1@x"),
            &mail("<s1@x>", "bob@example.com", "Other", &[]),
        )
        .await
        .expect("single");
    store
        .journal_only(&ch, &journal("plain"))
        .await
        .expect("plain");

    let entries = store.journal_entries("mail1", 10).await.expect("journal");
    let keys: Vec<&str> = entries.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["mail:b1@x", "mail:s1@x", "plain"]);
    for (e, id) in entries[..2].iter().zip(["b1@x", "s1@x"]) {
        assert_eq!(e.encoding, PayloadEncoding::Zstd);
        assert!(e.payload.len() * 4 < raw(id).len(), "stored compressed");
        assert_eq!(
            e.raw_payload().expect("decode").as_ref(),
            raw(id).as_slice()
        );
        assert_eq!(e.content_type, "message/rfc822");
    }
    assert_eq!(entries[2].encoding, PayloadEncoding::Identity);
    assert_eq!(
        entries[2].raw_payload().expect("plain").as_ref(),
        b"key=plain"
    );
}

async fn a_late_parent_in_a_batch_merges_after_the_events_that_announce_its_reply(
    store: Arc<dyn Store>,
) {
    // Another sender, so no subject match: the parent opens its own conversation and then
    // adopts the reply's.
    let items = batch_of(vec![
        mail("<kid@x>", "fay@example.com", "Re: Budget", &["<budget@x>"]),
        mail("<budget@x>", "gus@example.com", "Budget", &[]),
    ]);
    let position = inbox(2);
    let out = store
        .ingest_mail_batch(&channel("t1", "mail1"), &position, &items)
        .await
        .expect("batch");
    let IngestOutcome::Stored { message_id, .. } = &out[1] else {
        panic!("parent not stored");
    };
    let parent = store.get_message("t1", message_id).await.expect("parent");
    let into = parent.conversation_id;
    let events = store.events_since("t1", 0, 1000).await.expect("events");
    let merges: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].kind == "conversation.merged")
        .collect();
    assert_eq!(merges.len(), 1, "the late parent's merge: {events:?}");
    let merge = &events[merges[0]].payload.0;
    let gone = merge["merged_conversation_id"].as_str().expect("merged id");
    assert_eq!(merge["into_conversation_id"].as_str(), Some(into.as_str()));
    let names_gone = |e: &EventRow| e.payload.0["conversation_id"].as_str() == Some(gone);
    assert!(
        events[..merges[0]]
            .iter()
            .any(|e| e.kind == "conversation.created" && names_gone(e)),
        "created before merged: {events:?}"
    );
    assert!(
        events[..merges[0]]
            .iter()
            .any(|e| e.kind == "message.created" && names_gone(e)),
        "its message announced before the merge: {events:?}"
    );
    assert!(
        !events[merges[0] + 1..].iter().any(names_gone),
        "nothing names a merged conversation after its merge: {events:?}"
    );
    let conversation = store.get_conversation("t1", &into).await.expect("conv");
    assert_eq!(conversation.message_count, 2);
}

async fn two_mailboxes_syncing_at_once_share_a_new_senders_contact(store: Arc<dyn Store>) {
    // Two mailboxes of one tenant sync at the same moment (two replicas on PostgreSQL, each
    // holding one mailbox's lease), each batch bringing the first mail of the same sender:
    // whichever creates the contact first wins, the other batch uses it.
    for round in 0..12i64 {
        let sender = format!("new{round}@example.com");
        let batch = |ch: &str| {
            vec![(
                journal(&format!("mail:{ch}:{round}")),
                mail(&format!("<{ch}-{round}@x>"), &sender, "Hello", &[]),
            )]
        };
        let position = inbox(round + 1);
        let (one, two) = (batch("mail1"), batch("mail2"));
        let (ch1, ch2) = (channel("t1", "mail1"), channel("t1", "mail2"));
        let (a, b) = tokio::join!(
            store.ingest_mail_batch(&ch1, &position, &one),
            store.ingest_mail_batch(&ch2, &position, &two),
        );
        let mut conversations = Vec::new();
        for out in [a, b] {
            let out = out.expect("batch");
            let IngestOutcome::Stored {
                conversation_id, ..
            } = &out[0]
            else {
                panic!("not stored: {out:?}");
            };
            conversations.push(conversation_id.clone());
        }
        let mut contacts = Vec::new();
        for id in &conversations {
            let c = store
                .get_conversation("t1", id)
                .await
                .expect("conversation");
            contacts.push(c.contact.id);
        }
        assert_eq!(contacts[0], contacts[1], "one contact for {sender}");
    }
}

async fn a_backfill_into_empty_tables_refreshes_postgres_statistics(store: Arc<dyn Store>) {
    let reltuples = |pool: sqlx::PgPool| async move {
        let rows: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass")
                .fetch_one(&pool)
                .await
                .expect("reltuples");
        rows
    };
    let pool = match store.backend() {
        Backend::Postgres(pool) => Some(pool),
        Backend::Sqlite => None,
    };
    if let Some(pool) = &pool {
        // Never analyzed: PostgreSQL says -1.
        assert!(reltuples(pool.clone()).await < 0.0);
    }
    let ch = channel("t1", "mail1");
    for b in 0..3i64 {
        let items: Vec<(JournalEntry, InboundMessage)> = (0..200)
            .map(|i| {
                let id = format!("<bulk-{b}-{i}@x>");
                (journal(&id), mail(&id, "ann@example.com", "Bulk", &[]))
            })
            .collect();
        let position = inbox((b + 1) * 200);
        store
            .ingest_mail_batch(&ch, &position, &items)
            .await
            .expect("batch");
    }
    // After 500 messages (the third batch) the planner knows the table's size.
    if let Some(pool) = pool {
        let rows = reltuples(pool).await;
        assert!((500.0..=700.0).contains(&rows), "reltuples {rows}");
    }
}
