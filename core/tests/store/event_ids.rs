//! Event ids per tenant: each tenant counts its own events 1, 2, 3... with no gaps, whatever
//! other tenants write and however writers interleave; and the migration that introduced the
//! per-tenant counters numbers an existing log per tenant and translates the outgoing
//! webhook cursors, on SQLite and PostgreSQL alike.

use crate::support::*;
use std::borrow::Cow;
use std::sync::Arc;
use switchboard_core::contract::ingest_types::*;
use switchboard_core::store::*;

switchboard_testkit::store_tests!(
    seed = seeded_store;
    each_tenant_counts_its_own_event_ids_without_gaps,
    concurrent_writers_of_two_tenants_leave_no_gaps,
);

/// A tenant's event ids, oldest first.
async fn ids(store: &Arc<dyn Store>, tenant: &str) -> Vec<i64> {
    store
        .events_since(tenant, 0, 100_000)
        .await
        .expect("events")
        .iter()
        .map(|e| e.seq)
        .collect()
}

fn one_to(n: usize) -> Vec<i64> {
    (1..=i64::try_from(n).expect("small")).collect()
}

async fn sms_in(store: &Arc<dyn Store>, tenant: &str, channel_id: &str, key: &str) {
    let out = store
        .ingest_message(
            &channel(tenant, channel_id),
            &journal(key),
            &sms(key, "+15550009999", "hi"),
        )
        .await
        .expect("ingest");
    assert!(matches!(out, IngestOutcome::Stored { .. }), "{out:?}");
}

async fn each_tenant_counts_its_own_event_ids_without_gaps(store: Arc<dyn Store>) {
    // A tenant that never had an event: nothing retained, head 0, so `since=0` is in range.
    assert_eq!(store.event_bounds("t2").await.expect("bounds"), (1, 0));
    for n in 0..4 {
        sms_in(&store, "t1", "sms1", &format!("SMa{n}")).await;
        sms_in(&store, "t2", "sms-t2", &format!("SMb{n}")).await;
    }
    // A mail batch takes several ids at once.
    let position = FolderPosition {
        folder: "INBOX".into(),
        uidvalidity: 1,
        last_uid: 3,
        highestmodseq: None,
    };
    let items: Vec<_> = (0..3)
        .map(|n| {
            let id = format!("<ids{n}@x>");
            (
                journal(&id),
                mail(&id, "ann@example.com", &format!("S{n}"), &[]),
            )
        })
        .collect();
    store
        .ingest_mail_batch(&channel("t1", "mail1"), &position, &items)
        .await
        .expect("batch");
    sms_in(&store, "t2", "sms-t2", "SMb-last").await;

    let (t1, t2) = (ids(&store, "t1").await, ids(&store, "t2").await);
    assert_eq!(t1, one_to(t1.len()), "t1");
    assert_eq!(t2, one_to(t2.len()), "t2");
    assert!(
        t1.len() > 4 * 2 + 3,
        "conversation and message events: {t1:?}"
    );
    assert_eq!(t2.len(), 5 * 2, "conversation and message events");
    let n1 = i64::try_from(t1.len()).expect("small");
    assert_eq!(store.event_bounds("t1").await.expect("bounds"), (1, n1));
    let mut heads = store.event_heads().await.expect("heads");
    heads.sort();
    assert_eq!(heads, vec![("t1".to_string(), n1), ("t2".to_string(), 10)]);

    // Pruning keeps the counters: ids are never reused, and the head stays where it was.
    store.prune_events(i64::MAX).await.expect("prune");
    assert_eq!(
        store.event_bounds("t1").await.expect("bounds"),
        (n1 + 1, n1)
    );
    sms_in(&store, "t1", "sms1", "SMa-after").await;
    assert_eq!(ids(&store, "t1").await, vec![n1 + 1, n1 + 2]);
}

async fn concurrent_writers_of_two_tenants_leave_no_gaps(store: Arc<dyn Store>) {
    let mut writers = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        let (tenant, ch) = if w % 2 == 0 {
            ("t1", "sms1")
        } else {
            ("t2", "sms-t2")
        };
        writers.push(tokio::spawn(async move {
            for i in 0..10 {
                sms_in(&store, tenant, ch, &format!("SMc{w}x{i}")).await;
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    for tenant in ["t1", "t2"] {
        let got = ids(&store, tenant).await;
        assert_eq!(got, one_to(3 * 10 * 2), "{tenant}");
    }
}

/// Runs the migrations before per-tenant ids, writes an old-style log (one id sequence for
/// every tenant) with webhook endpoints at various cursors, then lets the store migrate.
macro_rules! renumbering_test {
    ($pool:ty, $migrations:literal, $url:expr) => {
        let (url, _keep) = $url;
        let pool = <$pool>::connect(&url).await.expect("connect");
        let mut migrator = sqlx::migrate!($migrations);
        migrator.migrations = Cow::Owned(
            migrator
                .migrations
                .iter()
                .filter(|m| m.version < 9)
                .cloned()
                .collect(),
        );
        migrator.run(&pool).await.expect("old migrations");
        for t in ["t1", "t2"] {
            sqlx::query("INSERT INTO tenants (id, created_at) VALUES ($1, 0)")
                .bind(t)
                .execute(&pool)
                .await
                .expect("tenant");
        }
        // Old ids 1..=9: t1 has 1, 2, 4, 7, 9 and t2 has 3, 5, 6, 8; 1 was pruned since.
        for (n, t) in ["t1", "t1", "t2", "t1", "t2", "t2", "t1", "t2", "t1"]
            .iter()
            .enumerate()
        {
            sqlx::query("INSERT INTO events (tenant_id, type, payload, created_at) VALUES ($1, $2, $3, 0)")
                .bind(*t)
                .bind(format!("old.{}", n + 1))
                .bind(sqlx::types::Json(serde_json::json!({})))
                .execute(&pool)
                .await
                .expect("event");
        }
        sqlx::query("DELETE FROM events WHERE seq = 1").execute(&pool).await.expect("prune");
        // (tenant, endpoint, old cursor): after t1's 4; past t1's 4 on another tenant's id;
        // before everything retained; t2 caught up; t2 at the start.
        let cursors = [("t1", "a", 4), ("t1", "b", 6), ("t1", "c", 1), ("t2", "a", 8), ("t2", "z", 0)];
        for (t, id, cursor) in cursors {
            sqlx::query(
                "INSERT INTO webhook_endpoints (uid, tenant_id, id, url, events, state, cursor_seq, created_at, updated_at)
                 VALUES ($1, $2, $3, 'http://r', $4, 'enabled', $5, 0, 0)",
            )
            .bind(format!("{t}-{id}"))
            .bind(t)
            .bind(id)
            .bind(sqlx::types::Json(serde_json::json!([])))
            .bind(cursor)
            .execute(&pool)
            .await
            .expect("endpoint");
        }
        for (kind, seq) in [("event", 7i64), ("event", 1), ("test", 0)] {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, kind, event_seq, event_type, attempt, duration_ms, created_at)
                 VALUES ($1, 't1', 'a', $2, $3, 'x', 1, 1, 0)",
            )
            .bind(format!("d{seq}"))
            .bind(kind)
            .bind(seq)
            .execute(&pool)
            .await
            .expect("delivery");
        }

        let store = open(&url, 2).await.expect("open");
        store.migrate().await.expect("migrate");
        let kinds = |t: &'static str| {
            let store = store.clone();
            async move {
                store
                    .events_since(t, 0, 100)
                    .await
                    .expect("events")
                    .into_iter()
                    .map(|e| (e.seq, e.kind))
                    .collect::<Vec<_>>()
            }
        };
        let named = |v: &[(i64, &str)]| v.iter().map(|(s, k)| (*s, k.to_string())).collect::<Vec<_>>();
        assert_eq!(kinds("t1").await, named(&[(1, "old.2"), (2, "old.4"), (3, "old.7"), (4, "old.9")]));
        assert_eq!(kinds("t2").await, named(&[(1, "old.3"), (2, "old.5"), (3, "old.6"), (4, "old.8")]));
        assert_eq!(store.event_bounds("t1").await.expect("bounds"), (1, 4));
        // Each cursor names the new id of the last event it covered: nothing is delivered
        // twice and nothing skipped.
        let cursor = |t: &'static str, id: &'static str| {
            let store = store.clone();
            async move { store.get_webhook_endpoint(t, id).await.expect("endpoint").cursor }
        };
        assert_eq!(cursor("t1", "a").await, 2, "t1/a had old 2 and 4");
        assert_eq!(cursor("t1", "b").await, 2, "t1/b had t1's events up to old 4");
        assert_eq!(cursor("t1", "c").await, 0, "t1/c owes every retained event");
        assert_eq!(cursor("t2", "a").await, 4);
        assert_eq!(cursor("t2", "z").await, 0);
        let mut log: Vec<(String, i64)> = sqlx::query_as("SELECT kind, event_seq FROM webhook_deliveries")
            .fetch_all(&pool)
            .await
            .expect("log");
        log.sort();
        assert_eq!(log, vec![("event".into(), 0), ("event".into(), 3), ("test".into(), 0)]);
        // The counters go on from the renumbered heads.
        store
            .sync_tenants_and_channels(
                &[TenantRecord { id: "t1".into(), name: None }],
                &[ChannelRecord { id: "sms1".into(), tenant_id: "t1".into(), kind: "twilio".into(), address: None }],
            )
            .await
            .expect("seed");
        sms_in(&store, "t1", "sms1", "SMafter").await;
        assert_eq!(store.event_bounds("t1").await.expect("bounds"), (1, 6));
        assert_eq!(store.event_heads().await.expect("heads").len(), 2);
        pool.close().await;
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_renumbers_events_per_tenant_and_moves_cursors_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    renumbering_test!(sqlx::SqlitePool, "../migrations/sqlite", (url, dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_renumbers_events_per_tenant_and_moves_cursors_postgres() {
    let db = switchboard_testkit::PgDatabase::create("sb_renumber").await;
    renumbering_test!(sqlx::PgPool, "../migrations/postgres", (db.url.clone(), db));
}
