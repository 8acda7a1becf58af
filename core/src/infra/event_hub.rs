//! Live events: the hub that tells connected clients (SSE, WebSocket) and the outgoing
//! webhook relay that the durable event log grew. The per-client reading is
//! [`super::stream_cursor`].
//!
//! The database is the source of truth: every event is a row written in the transaction of
//! the change it reports, so a client that resumes from its last id (SSE `Last-Event-ID`,
//! WebSocket `since`) misses nothing within the retention window. The hub only signals
//! "something new": it keeps each tenant's head (newest event id, the tenant's own counter)
//! in a watch channel per tenant, so a client wakes only for its own tenant's events, and a
//! generation for the relay that changes with any tenant's. On PostgreSQL the signal comes
//! from `LISTEN/NOTIFY`, so events written by any replica reach clients of every replica; a
//! slow poll backs it up (a notification can be lost across a reconnect). On SQLite (one
//! process) the hub polls the heads (one row per tenant).
//!
//! It also counts live connections and the bytes of events their cursors hold (for
//! `/metrics`).

use crate::domain::model::now_millis;
use crate::infra::config::EventsConfig;
use crate::store::{Backend, EVENTS_CHANNEL, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use super::stream_cursor::{Next, StreamCursor};

/// How often the hub looks whether closed connections left memory to give back...
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// ...and how many must have closed since the last time.
const TRIM_AFTER_CLOSED: i64 = 64;

pub struct EventHub {
    pub(crate) store: Arc<dyn Store>,
    /// Each tenant's newest event id, as last read (one entry per tenant that has events or
    /// a live client: bounded by the configured tenants).
    heads: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// Changes whenever any tenant's head moves (the outgoing webhook relay waits on it).
    generation: watch::Sender<i64>,
    retention_ms: i64,
    pub heartbeat: Duration,
    /// Live SSE and WebSocket connections, for metrics.
    pub connections: AtomicI64,
    /// Live connections closed since freed memory was last given back (see `trim_loop`).
    closed_since_trim: AtomicI64,
    /// Bytes of events (serialized size, approximately) read from the log by live
    /// connections' cursors and not yet handed to their connection: at most one read batch
    /// per connection. For metrics.
    pub buffered_bytes: AtomicI64,
    /// Cancelled when the hub's `run` sees shutdown: live streams end on it, since an open
    /// stream never finishes by itself and would hold graceful shutdown forever.
    pub closed: CancellationToken,
}

impl EventHub {
    pub fn new(store: Arc<dyn Store>, cfg: &EventsConfig) -> Arc<Self> {
        let (generation, _) = watch::channel(0);
        Arc::new(Self {
            store,
            heads: Mutex::new(HashMap::new()),
            generation,
            retention_ms: i64::try_from(cfg.retention_hours.saturating_mul(3_600_000))
                .unwrap_or(i64::MAX),
            heartbeat: Duration::from_secs(cfg.heartbeat_secs.max(1)),
            connections: AtomicI64::new(0),
            closed_since_trim: AtomicI64::new(0),
            buffered_bytes: AtomicI64::new(0),
            closed: CancellationToken::new(),
        })
    }

    /// A receiver that changes whenever any tenant may have new events.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.generation.subscribe()
    }

    /// A receiver of `tenant`'s head: changes when the tenant may have new events. Until the
    /// hub has read the tenant's head it holds 0.
    pub fn subscribe_tenant(&self, tenant: &str) -> watch::Receiver<i64> {
        let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        heads
            .entry(tenant.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Records the heads read from the store; wakes the subscribers of every tenant whose
    /// head moved, and the relay if any did.
    fn publish(&self, read: Vec<(String, i64)>) {
        let mut moved = false;
        {
            let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
            for (tenant, seq) in read {
                let head = heads.entry(tenant).or_insert_with(|| watch::channel(0).0);
                moved |= head.send_if_modified(|v| {
                    let newer = seq > *v;
                    if newer {
                        *v = seq;
                    }
                    newer
                });
            }
        }
        if moved {
            self.generation.send_modify(|g| *g = g.wrapping_add(1));
        }
    }

    async fn poll_once(&self) {
        match self.store.event_heads().await {
            Ok(heads) => self.publish(heads),
            Err(e) => tracing::warn!(error = %e, "reading the newest event ids failed"),
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
        tokio::spawn(self.clone().trim_loop(shutdown.clone()));
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

    /// Counts a live connection for as long as the returned guard lives.
    pub fn connection(self: &Arc<Self>) -> LiveConnection {
        self.connections.fetch_add(1, Ordering::Relaxed);
        LiveConnection(self.clone())
    }

    /// Gives the memory of closed connections back to the system once many have closed
    /// (the allocator would keep it: see [`crate::infra::memory`]).
    async fn trim_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TRIM_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
            if self.closed_since_trim.load(Ordering::Relaxed) >= TRIM_AFTER_CLOSED {
                self.closed_since_trim.store(0, Ordering::Relaxed);
                let _ =
                    tokio::task::spawn_blocking(crate::infra::memory::release_freed_memory).await;
            }
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

/// A live SSE or WebSocket connection, counted (`switchboard_live_connections`) while it lives.
pub struct LiveConnection(Arc<EventHub>);

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        self.0.closed_since_trim.fetch_add(1, Ordering::Relaxed);
    }
}
