//! The store suite for outgoing webhooks: every test runs against SQLite and against
//! PostgreSQL, each on a fresh database.

use crate::support::*;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    endpoints_sync_from_configuration_and_start_at_the_newest_event,
    claims_are_exclusive_and_leases_expire,
    failures_back_off_then_disable_until_re_enabled,
    filtered_events_move_the_cursor_without_resetting_failures,
    delivery_log_paginates_newest_first_is_tenant_scoped_and_prunes,
);

const LEASE: i64 = 60_000;

fn endpoint(tenant: &str, id: &str, url: &str, events: &[&str]) -> WebhookEndpointRecord {
    WebhookEndpointRecord {
        tenant_id: tenant.into(),
        id: id.into(),
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

fn attempt(
    claim: &WebhookClaim,
    seq: i64,
    status: Option<i64>,
    error: Option<&str>,
) -> WebhookAttempt {
    WebhookAttempt {
        tenant_id: claim.tenant_id.clone(),
        endpoint_id: claim.id.clone(),
        kind: "event",
        event_seq: seq,
        event_type: "message.created".into(),
        attempt: claim.consecutive_failures + 1,
        status_code: status,
        error: error.map(str::to_string),
        duration_ms: 12,
        at: now_millis(),
    }
}

/// Records a 2xx for `seq` under the claim; false if the lease was lost.
async fn delivered(
    store: &Arc<dyn Store>,
    claim: &mut WebhookClaim,
    seq: i64,
    status: i64,
) -> StoreResult<bool> {
    let a = attempt(claim, seq, Some(status), None);
    store.webhook_advance(claim, seq, Some(&a), LEASE).await
}

/// Ingests one inbound SMS (a new contact each time) on a channel of `tenant`.
async fn inbound(store: &Arc<dyn Store>, tenant: &str, channel_id: &str, n: u32) {
    let out = store
        .ingest_message(
            &channel(tenant, channel_id),
            &journal(&format!("wh{tenant}{n}")),
            &sms(
                &format!("SMwh{tenant}{n}"),
                &format!("+1555888{n:04}"),
                "hello",
            ),
        )
        .await
        .expect("ingest");
    assert!(matches!(out, IngestOutcome::Stored { .. }));
}

async fn newest(store: &Arc<dyn Store>, tenant: &str) -> i64 {
    store.event_bounds(tenant).await.expect("bounds").1
}

async fn view(store: &Arc<dyn Store>, tenant: &str, id: &str) -> WebhookEndpointRow {
    store
        .get_webhook_endpoint(tenant, id)
        .await
        .expect("endpoint")
}

async fn endpoints_sync_from_configuration_and_start_at_the_newest_event(store: Arc<dyn Store>) {
    inbound(&store, "t1", "sms1", 1).await;
    let start = newest(&store, "t1").await;
    assert!(start > 0);
    store
        .sync_webhook_endpoints(&[
            endpoint("t1", "crm", "https://crm.example/in", &[]),
            endpoint("t1", "bi", "https://bi.example/in", &["message.*"]),
            endpoint("t2", "crm", "https://t2.example/in", &[]),
        ])
        .await
        .expect("sync");
    let list = store.list_webhook_endpoints("t1").await.expect("list");
    let ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec!["bi", "crm"]);
    // No history flood: a new endpoint owes nothing yet.
    assert!(
        list.iter()
            .all(|e| e.cursor == start && e.state == "enabled")
    );
    assert_eq!(list[0].events, vec!["message.*".to_string()]);
    assert!(list[1].events.is_empty());
    assert_eq!(list[1].consecutive_failures, 0);
    assert_eq!(list[1].next_attempt_at, None);
    assert_eq!(view(&store, "t2", "crm").await.cursor, 0);
    assert_eq!(view(&store, "t2", "crm").await.url, "https://t2.example/in");
    // Another tenant's endpoint does not exist for this one.
    assert!(matches!(
        store.get_webhook_endpoint("t2", "bi").await,
        Err(StoreError::NotFound)
    ));

    // Deliver, so the cursor moves; then the configuration changes.
    inbound(&store, "t1", "sms1", 2).await;
    let after = newest(&store, "t1").await;
    // Both of t1's endpoints owe the new events; t2's does not.
    let mut claims = Vec::new();
    while let Some(c) = store
        .claim_webhook_endpoint(now_millis(), LEASE)
        .await
        .expect("claim")
    {
        claims.push(c);
    }
    claims.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<(&str, &str)> = claims
        .iter()
        .map(|c| (c.tenant_id.as_str(), c.id.as_str()))
        .collect();
    assert_eq!(ids, vec![("t1", "bi"), ("t1", "crm")]);
    let claim = &mut claims[1];
    assert!(delivered(&store, claim, after, 200).await.expect("advance"));
    for c in &claims {
        store
            .release_webhook_endpoint(c, now_millis())
            .await
            .expect("release");
    }
    store
        .sync_webhook_endpoints(&[
            endpoint("t1", "crm", "https://crm.example/v2", &["conversation.*"]),
            endpoint("t2", "crm", "https://t2.example/in", &[]),
        ])
        .await
        .expect("resync");
    let crm = view(&store, "t1", "crm").await;
    assert_eq!(crm.url, "https://crm.example/v2");
    assert_eq!(crm.events, vec!["conversation.*".to_string()]);
    assert_eq!(crm.cursor, after, "a known endpoint keeps its cursor");
    assert_eq!(crm.created_at, list[1].created_at);
    // Removed from configuration: not listed, not found, not delivered to.
    let ids: Vec<String> = store
        .list_webhook_endpoints("t1")
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec!["crm".to_string()]);
    assert!(matches!(
        store.get_webhook_endpoint("t1", "bi").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.enable_webhook_endpoint("t1", "bi").await,
        Err(StoreError::NotFound)
    ));
    inbound(&store, "t1", "sms1", 3).await;
    let claim = store
        .claim_webhook_endpoint(now_millis(), LEASE)
        .await
        .expect("claim")
        .expect("crm owes events");
    assert_eq!(claim.id, "crm");
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none(),
        "a removed endpoint is never claimed"
    );
    // Back in the configuration: it resumes where it was.
    store
        .sync_webhook_endpoints(&[
            endpoint("t1", "crm", "https://crm.example/v2", &[]),
            endpoint("t1", "bi", "https://bi.example/in", &["message.*"]),
        ])
        .await
        .expect("re-add");
    assert_eq!(view(&store, "t1", "bi").await.cursor, start);
}

/// Claims the only due endpoint and checks it is `id`.
async fn claim_for(store: &Arc<dyn Store>, id: &str) -> WebhookClaim {
    let claim = store
        .claim_webhook_endpoint(now_millis(), LEASE)
        .await
        .expect("claim")
        .expect("an endpoint owes events");
    assert_eq!(claim.id, id);
    claim
}

async fn claims_are_exclusive_and_leases_expire(store: Arc<dyn Store>) {
    store
        .sync_webhook_endpoints(&[endpoint("t1", "crm", "https://crm.example/in", &[])])
        .await
        .expect("sync");
    let start = view(&store, "t1", "crm").await.cursor;
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none(),
        "nothing owed, nothing claimed"
    );
    // Events of another tenant do not make it due.
    inbound(&store, "t2", "sms-t2", 1).await;
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none()
    );

    inbound(&store, "t1", "sms1", 1).await;
    let first = claim_for(&store, "crm").await;
    assert_eq!((first.tenant_id.as_str(), first.cursor), ("t1", start));
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none(),
        "a leased endpoint is not claimed twice"
    );
    store
        .release_webhook_endpoint(&first, now_millis())
        .await
        .expect("release");

    // Many workers at once: exactly one wins.
    let now = now_millis();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_webhook_endpoint(now, LEASE).await.expect("claim")
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        if let Some(c) = t.await.expect("join") {
            won.push(c);
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let mut stale = won.remove(0);

    // The lease expires: another worker takes over, and the first one's writes are refused.
    let mut current = store
        .claim_webhook_endpoint(now_millis() + LEASE + 1, LEASE)
        .await
        .expect("claim")
        .expect("expired lease is claimable");
    let events = store.events_since("t1", start, 100).await.expect("events");
    let last = events.last().expect("events").seq;
    assert!(
        !delivered(&store, &mut stale, last, 200)
            .await
            .expect("stale advance")
    );
    assert_eq!(stale.cursor, start);
    assert_eq!(view(&store, "t1", "crm").await.cursor, start);
    let failed = store
        .webhook_failed(
            &stale,
            &attempt(&stale, last, Some(500), Some("HTTP 500")),
            now_millis(),
            5,
        )
        .await
        .expect("stale failure");
    assert_eq!(failed, WebhookFailure::LeaseLost);
    assert_eq!(view(&store, "t1", "crm").await.consecutive_failures, 0);

    let lease_before = current.locked_until;
    for e in &events {
        assert!(
            delivered(&store, &mut current, e.seq, 204)
                .await
                .expect("advance")
        );
        assert_eq!(current.cursor, e.seq);
    }
    assert!(current.locked_until >= lease_before);
    let v = view(&store, "t1", "crm").await;
    assert_eq!(
        (v.cursor, v.last_status, v.last_error),
        (last, Some(204), None)
    );
    assert!(v.last_success_at.is_some());
    // Still leased until released; then caught up, so not due.
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    store
        .release_webhook_endpoint(&current, now_millis())
        .await
        .expect("release");
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    // The cursor never moves backwards.
    inbound(&store, "t1", "sms1", 2).await;
    let mut again = claim_for(&store, "crm").await;
    assert!(
        store
            .webhook_advance(&mut again, start, None, LEASE)
            .await
            .expect("advance")
    );
    assert_eq!(view(&store, "t1", "crm").await.cursor, last);
}

async fn failures_back_off_then_disable_until_re_enabled(store: Arc<dyn Store>) {
    store
        .sync_webhook_endpoints(&[endpoint("t1", "crm", "https://crm.example/in", &[])])
        .await
        .expect("sync");
    let start = view(&store, "t1", "crm").await.cursor;
    inbound(&store, "t1", "sms1", 1).await;
    let head = store.events_since("t1", start, 1).await.expect("events")[0].seq;

    let mut retry_at = now_millis() + 60_000;
    let claim = claim_for(&store, "crm").await;
    assert_eq!(claim.consecutive_failures, 0);
    let out = store
        .webhook_failed(
            &claim,
            &attempt(&claim, head, Some(500), Some("HTTP 500: boom")),
            retry_at,
            3,
        )
        .await
        .expect("fail");
    assert_eq!(
        out,
        WebhookFailure::Retry {
            consecutive_failures: 1
        }
    );
    // Not due before the retry time.
    assert!(
        store
            .claim_webhook_endpoint(now_millis(), LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(
        store.next_webhook_due(now_millis()).await.expect("due"),
        Some(retry_at)
    );
    let v = view(&store, "t1", "crm").await;
    assert_eq!(v.consecutive_failures, 1);
    assert_eq!(v.last_status, Some(500));
    assert_eq!(v.last_error.as_deref(), Some("HTTP 500: boom"));
    assert_eq!(v.next_attempt_at, Some(retry_at));
    assert_eq!(v.cursor, start, "a failed event is not skipped");

    let claim = store
        .claim_webhook_endpoint(retry_at, LEASE)
        .await
        .expect("claim")
        .expect("due at the retry time");
    assert_eq!((claim.consecutive_failures, claim.cursor), (1, start));
    retry_at += 60_000;
    let out = store
        .webhook_failed(
            &claim,
            &attempt(&claim, head, None, Some("timed out after 10s")),
            retry_at,
            3,
        )
        .await
        .expect("fail");
    assert_eq!(
        out,
        WebhookFailure::Retry {
            consecutive_failures: 2
        }
    );
    let claim = store
        .claim_webhook_endpoint(retry_at, LEASE)
        .await
        .expect("claim")
        .expect("due");
    let out = store
        .webhook_failed(
            &claim,
            &attempt(&claim, head, Some(503), Some("HTTP 503")),
            retry_at + 1,
            3,
        )
        .await
        .expect("fail");
    assert_eq!(
        out,
        WebhookFailure::Disabled {
            consecutive_failures: 3
        }
    );

    let v = view(&store, "t1", "crm").await;
    assert_eq!(v.state, "disabled");
    assert!(
        v.disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("3 consecutive") && r.contains("HTTP 503")),
        "{v:?}"
    );
    assert!(v.disabled_at.is_some());
    assert_eq!(
        (v.cursor, v.consecutive_failures, v.next_attempt_at),
        (start, 3, None)
    );
    // The disabling is an event of the tenant (live clients and other endpoints see it).
    let events = store.events_since("t1", head, 100).await.expect("events");
    let disabled = events
        .iter()
        .find(|e| e.kind == "webhook.disabled")
        .expect("webhook.disabled event");
    assert_eq!(disabled.payload.0["webhook_id"], "crm");
    assert_eq!(disabled.payload.0["consecutive_failures"], 3);
    assert!(
        store
            .events_since("t2", 0, 100)
            .await
            .expect("t2")
            .is_empty()
    );
    // Disabled endpoints are never claimed, however late.
    assert!(
        store
            .claim_webhook_endpoint(now_millis() + 86_400_000, LEASE)
            .await
            .expect("claim")
            .is_none()
    );
    assert_eq!(
        store.next_webhook_due(now_millis()).await.expect("due"),
        None
    );
    // Re-enabling is tenant-scoped, resets the failures, and delivery resumes at the same
    // event.
    assert!(matches!(
        store.enable_webhook_endpoint("t2", "crm").await,
        Err(StoreError::NotFound)
    ));
    let v = store
        .enable_webhook_endpoint("t1", "crm")
        .await
        .expect("enable");
    assert_eq!(v.state, "enabled");
    assert_eq!(
        (v.consecutive_failures, v.disabled_reason, v.disabled_at),
        (0, None, None)
    );
    let mut claim = claim_for(&store, "crm").await;
    assert_eq!((claim.consecutive_failures, claim.cursor), (0, start));
    assert!(
        delivered(&store, &mut claim, head, 200)
            .await
            .expect("advance")
    );
    let v = view(&store, "t1", "crm").await;
    assert_eq!(
        (v.cursor, v.consecutive_failures, v.last_error),
        (head, 0, None)
    );
}

async fn filtered_events_move_the_cursor_without_resetting_failures(store: Arc<dyn Store>) {
    store
        .sync_webhook_endpoints(&[endpoint(
            "t1",
            "crm",
            "https://crm.example/in",
            &["message.*"],
        )])
        .await
        .expect("sync");
    inbound(&store, "t1", "sms1", 1).await;
    let claim = claim_for(&store, "crm").await;
    let head = newest(&store, "t1").await;
    store
        .webhook_failed(
            &claim,
            &attempt(&claim, head, Some(500), Some("HTTP 500")),
            now_millis(),
            10,
        )
        .await
        .expect("fail");
    let mut claim = claim_for(&store, "crm").await;
    // Passing over events (no attempt) moves the cursor but is not a success.
    assert!(
        store
            .webhook_advance(&mut claim, head - 1, None, LEASE)
            .await
            .expect("advance")
    );
    let v = view(&store, "t1", "crm").await;
    assert_eq!((v.cursor, v.consecutive_failures), (head - 1, 1));
    assert_eq!(v.last_status, Some(500));
    // Nothing was logged for passing over.
    let log = store
        .list_webhook_deliveries("t1", "crm", &page(10))
        .await
        .expect("log");
    assert_eq!(log.items.len(), 1);
}

async fn delivery_log_paginates_newest_first_is_tenant_scoped_and_prunes(store: Arc<dyn Store>) {
    store
        .sync_webhook_endpoints(&[
            endpoint("t1", "crm", "https://crm.example/in", &[]),
            endpoint("t2", "crm", "https://t2.example/in", &[]),
        ])
        .await
        .expect("sync");
    let base = now_millis() - 10_000;
    let entry = |tenant: &str, n: i64, at: Millis| WebhookAttempt {
        tenant_id: tenant.into(),
        endpoint_id: "crm".into(),
        kind: if n == 0 { "test" } else { "event" },
        event_seq: n,
        event_type: if n == 0 {
            "webhook.test".into()
        } else {
            "message.created".into()
        },
        attempt: 1 + n % 3,
        status_code: if n % 2 == 0 { Some(200) } else { Some(500) },
        error: if n % 2 == 0 {
            None
        } else {
            Some("HTTP 500".into())
        },
        duration_ms: n * 10,
        at,
    };
    // Two entries share a timestamp: the id breaks the tie, without gaps or repeats.
    let times = [0, 1, 2, 2, 3, 4, 5];
    for (n, t) in times.iter().enumerate() {
        store
            .record_webhook_delivery(&entry("t1", n as i64, base + t))
            .await
            .expect("record");
    }
    store
        .record_webhook_delivery(&entry("t2", 99, base))
        .await
        .expect("record t2");

    let mut seen = Vec::new();
    let mut request = page(3);
    loop {
        let p = store
            .list_webhook_deliveries("t1", "crm", &request)
            .await
            .expect("page");
        assert!(p.items.len() <= 3);
        seen.extend(p.items);
        match p.next_cursor {
            Some(c) => request.cursor = Some(PageCursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(seen.len(), times.len());
    let mut ids: Vec<&str> = seen.iter().map(|d| d.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), times.len(), "repeats");
    assert!(
        seen.windows(2)
            .all(|w| (w[0].created_at, &w[0].id) > (w[1].created_at, &w[1].id)),
        "not newest first"
    );
    let oldest = seen.last().expect("oldest");
    assert_eq!((oldest.kind.as_str(), oldest.event_id), ("test", 0));
    assert!(oldest.success);
    let failed = seen.iter().find(|d| d.event_id == 1).expect("entry 1");
    assert!(!failed.success);
    assert_eq!(
        (failed.status_code, failed.error.as_deref()),
        (Some(500), Some("HTTP 500"))
    );
    assert_eq!((failed.attempt, failed.duration_ms), (2, 10));

    let t2 = store
        .list_webhook_deliveries("t2", "crm", &page(10))
        .await
        .expect("t2");
    assert_eq!(t2.items.len(), 1);
    assert_eq!(t2.items[0].event_id, 99);
    assert!(matches!(
        store.list_webhook_deliveries("t2", "nope", &page(10)).await,
        Err(StoreError::NotFound)
    ));

    // Retention: everything before base + 2 goes (t1's first two, and t2's).
    assert_eq!(
        store
            .prune_webhook_deliveries(base + 2)
            .await
            .expect("prune"),
        3
    );
    let left = store
        .list_webhook_deliveries("t1", "crm", &page(100))
        .await
        .expect("left");
    assert_eq!(left.items.len(), times.len() - 2);
}
