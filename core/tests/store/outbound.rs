//! Outbound: delivery status moves forward only (parked reports included), job claims and leases, a send attempt's start across a crash, idempotent replies, opt-out, templates, read receipts, the audit trail.

use crate::support::*;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    status_moves_forward_only,
    status_before_send_record_is_applied_later,
    jobs_are_claimed_once_and_leases_expire,
    a_send_attempts_start_outlives_a_crash,
    reply_idempotency_and_opt_out,
    templates_and_read_receipts_reach_their_jobs,
    staff_actions_leave_an_audit_trail,
);

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

async fn a_send_attempts_start_outlives_a_crash(store: Arc<dyn Store>) {
    let before = now_millis();
    // Claimed and prepared (the provider is called next): a first attempt has no start.
    let (job, msg_id) = queued_reply(&store).await;
    assert_eq!(job.send_started_at, None);
    // The worker dies; once the lease expires the next claim carries the first start.
    let later = now_millis() + 61_000;
    let again = store
        .claim_job(later, 60_000)
        .await
        .expect("claim")
        .expect("expired lease");
    let started = again.send_started_at.expect("the first attempt's start");
    assert!(started >= before && started <= now_millis(), "{started}");
    // Another attempt keeps the first start (the earliest the provider may have it from).
    store.outbound_for_job(&again).await.expect("outbound");
    store
        .job_retry(&again, later, "transient")
        .await
        .expect("retry");
    let third = store
        .claim_job(later + 1, 60_000)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(third.send_started_at, Some(started));
    assert!(
        !store
            .provider_id_in_use("sms1", "SMfound")
            .await
            .expect("lookup")
    );
    store
        .job_sent(&third, &receipt("SMfound"))
        .await
        .expect("sent");
    assert!(
        store
            .provider_id_in_use("sms1", "SMfound")
            .await
            .expect("lookup")
    );
    assert!(
        !store
            .provider_id_in_use("other", "SMfound")
            .await
            .expect("lookup")
    );
    let m = store.get_message("t1", &msg_id).await.expect("msg");
    assert_eq!(m.provider_message_id.as_deref(), Some("SMfound"));
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
            StoreError::Refused(switchboard_core::store::Refusal::ContactOptedOut { .. })
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
