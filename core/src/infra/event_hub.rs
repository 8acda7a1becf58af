//! Live events: the hub that tells connected clients (SSE, WebSocket) that the durable event
//! log grew, and the per-client cursor logic that reads it.
//!
//! The database is the source of truth: every event is a row written in the transaction of
//! the change it reports, so a client that resumes from its last id (SSE `Last-Event-ID`,
//! WebSocket `since`) misses nothing within the retention window. The hub only signals
//! "something new"; clients then read their tenant's rows after their cursor. On PostgreSQL
//! the signal comes from `LISTEN/NOTIFY`, so events written by any replica reach clients of
//! every replica; a slow poll backs it up (a notification can be lost across a reconnect).
//! On SQLite (one process) the hub polls the newest id, which is an index lookup.

use crate::domain::model::now_millis;
use crate::infra::config::EventsConfig;
use crate::store::{Backend, EVENTS_CHANNEL, EventRow, Store, StoreResult};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How many events one read returns.
const BATCH: i64 = 200;

pub struct EventHub {
    store: Arc<dyn Store>,
    latest: watch::Sender<i64>,
    retention_ms: i64,
    pub heartbeat: Duration,
    /// Live SSE and WebSocket connections, for metrics.
    pub connections: AtomicI64,
    /// Cancelled when the hub's `run` sees shutdown: live streams end on it, since an open
    /// stream never finishes by itself and would hold graceful shutdown forever.
    pub closed: CancellationToken,
}

impl EventHub {
    pub fn new(store: Arc<dyn Store>, cfg: &EventsConfig) -> Arc<Self> {
        let (latest, _) = watch::channel(0);
        Arc::new(Self {
            store,
            latest,
            retention_ms: i64::try_from(cfg.retention_hours.saturating_mul(3_600_000))
                .unwrap_or(i64::MAX),
            heartbeat: Duration::from_secs(cfg.heartbeat_secs.max(1)),
            connections: AtomicI64::new(0),
            closed: CancellationToken::new(),
        })
    }

    /// A receiver that changes whenever new events may be readable.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }

    /// Records that events up to `seq` exist (wakes subscribers if it is news).
    fn bump(&self, seq: i64) {
        self.latest.send_if_modified(|v| {
            if seq > *v {
                *v = seq;
                true
            } else {
                false
            }
        });
    }

    async fn poll_once(&self) {
        match self.store.latest_event_seq().await {
            Ok(seq) => self.bump(seq),
            Err(e) => tracing::warn!(error = %e, "reading the newest event id failed"),
        }
    }

    /// Watches for new events and prunes old ones until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let closed = self.closed.clone();
        let on_shutdown = shutdown.clone();
        tokio::spawn(async move {
            on_shutdown.cancelled().await;
            closed.cancel();
        });
        let pruner = tokio::spawn(self.clone().prune_loop(shutdown.clone()));
        match self.store.backend() {
            Backend::Postgres(pool) => self.listen_postgres(pool, &shutdown).await,
            Backend::Sqlite => self.poll_loop(Duration::from_millis(200), &shutdown).await,
        }
        let _ = pruner.await;
    }

    async fn poll_loop(&self, every: Duration, shutdown: &CancellationToken) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn listen_postgres(&self, pool: sqlx::PgPool, shutdown: &CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let listener = async {
                let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
                l.listen(EVENTS_CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            }
            .await;
            match listener {
                Ok(mut l) => {
                    backoff = Duration::from_millis(200);
                    // Anything written while we were not listening.
                    self.poll_once().await;
                    loop {
                        tokio::select! {
                            n = l.try_recv() => match n {
                                Ok(Some(_)) => self.poll_once().await,
                                Ok(None) => { self.poll_once().await; }
                                Err(e) => { tracing::warn!(error = %e, "event listener lost"); break; }
                            },
                            // The safety net: a slow poll.
                            _ = tokio::time::sleep(Duration::from_secs(2)) => self.poll_once().await,
                            _ = shutdown.cancelled() => return,
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for events; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    async fn prune_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            match self
                .store
                .prune_events(now_millis().saturating_sub(self.retention_ms))
                .await
            {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old events pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning events failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// One client's position in its tenant's event log.
pub struct StreamCursor {
    store: Arc<dyn Store>,
    tenant: String,
    after: i64,
    buffer: VecDeque<EventRow>,
}

/// What a client receives next.
pub enum Next {
    Event(EventRow),
    /// Nothing new within a heartbeat interval.
    Idle,
}

impl StreamCursor {
    /// Starts after `since` (a resuming client's last id), or at the newest event (a new
    /// client sees only what happens from now on). Returns a `stream.reset` event first
    /// when the requested position was pruned, so the client knows to reload its state.
    pub async fn open(
        store: Arc<dyn Store>,
        tenant: &str,
        since: Option<i64>,
    ) -> StoreResult<Self> {
        let (first, last) = store.event_bounds(tenant).await?;
        let mut buffer = VecDeque::new();
        let reset = |reason: &str| EventRow {
            seq: last,
            kind: "stream.reset".into(),
            payload: sqlx::types::Json(
                serde_json::json!({ "reason": reason, "oldest_available": first }),
            ),
            created_at: now_millis(),
        };
        let after = match since {
            Some(s) if s > last => {
                buffer.push_back(reset(
                    "the given id is newer than the event log; reload state",
                ));
                last
            }
            Some(s) if first > 0 && s + 1 < first => {
                buffer.push_back(reset(
                    "events after the given id are no longer retained; reload state",
                ));
                s
            }
            Some(s) => s.max(0),
            None => last,
        };
        Ok(Self {
            store,
            tenant: tenant.to_string(),
            after,
            buffer,
        })
    }

    /// The next event, waiting for one (up to `heartbeat`) when caught up.
    pub async fn next(
        &mut self,
        changes: &mut watch::Receiver<i64>,
        heartbeat: Duration,
    ) -> StoreResult<Next> {
        if let Some(e) = self.buffer.pop_front() {
            return Ok(Next::Event(e));
        }
        loop {
            let batch = self
                .store
                .events_since(&self.tenant, self.after, BATCH)
                .await?;
            if let Some(last) = batch.last() {
                self.after = last.seq;
                self.buffer.extend(batch);
                return Ok(self.buffer.pop_front().map_or(Next::Idle, Next::Event));
            }
            match tokio::time::timeout(heartbeat, changes.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out, or the hub is gone (shutdown): let the caller heartbeat or stop.
                Ok(Err(_)) | Err(_) => return Ok(Next::Idle),
            }
        }
    }
}
