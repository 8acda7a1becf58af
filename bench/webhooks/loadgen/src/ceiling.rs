//! The store ceiling: how many durable one-row inserts per second the same database, with
//! the durability settings Switchboard uses, takes from the same number of concurrent
//! workers, one transaction per insert. Switchboard's acknowledged messages/s is reported
//! as a ratio of this: the daemon cannot beat it while it commits once per message, and the
//! gap is its own overhead (parsing, verifying, threading, journaling, events).
//!
//! - SQLite: the options of Switchboard's writer (`core/src/store/sqlite.rs`): WAL,
//!   `synchronous = FULL`, 16 KiB pages, `wal_autocheckpoint = 8192`, a 16 MiB page cache,
//!   in-memory temp store, and one writer connection that every worker queues on (as every
//!   Switchboard request does).
//! - PostgreSQL: the server's defaults (`synchronous_commit = on`), a pool of the size
//!   Switchboard uses (`database.max_connections`, at least 2). Its sockets lack the
//!   TCP_NODELAY the daemon sets (`core/src/store/pg_nodelay.rs`), which does not matter
//!   here: each statement is a few hundred bytes, one segment sent after the previous
//!   answer, so Nagle's algorithm never holds it back.

use crate::stats::Summary;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the ceiling run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CeilingResult {
    pub label: String,
    pub backend: String,
    pub workers: usize,
    pub pool: u32,
    pub duration_s: f64,
    pub inserts: u64,
    pub inserts_per_s: f64,
    pub errors: u64,
    pub latency: Summary,
    pub load_average: String,
}

enum Db {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

const CREATE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS bench_ceiling (
    id INTEGER PRIMARY KEY, provider_message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL, created_at INTEGER NOT NULL)";
const CREATE_PG: &str = "CREATE TABLE IF NOT EXISTS bench_ceiling (
    id BIGSERIAL PRIMARY KEY, provider_message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL, created_at BIGINT NOT NULL)";
const INSERT: &str =
    "INSERT INTO bench_ceiling (provider_message_id, body, created_at) VALUES ($1, $2, $3)";

impl Db {
    async fn open(url: &str, pool: u32) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .page_size(16384)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("wal_autocheckpoint", "8192")
                .pragma("cache_size", "-16384")
                .pragma("temp_store", "memory");
            let p = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .with_context(|| format!("opening {url}"))?;
            sqlx::query(CREATE_SQLITE).execute(&p).await?;
            Ok(Db::Sqlite(p))
        } else {
            let options = PgConnectOptions::from_str(url)?;
            let p = PgPoolOptions::new()
                .max_connections(pool.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .with_context(|| format!("connecting to {url}"))?;
            sqlx::query(CREATE_PG).execute(&p).await?;
            Ok(Db::Pg(p))
        }
    }

    /// One insert in its own transaction, committed.
    async fn insert(&self, id: &str, body: &str, now: i64) -> Result<()> {
        match self {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Db::Pg(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn close(self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Pg(p) => p.close().await,
        }
    }
}

/// Runs `workers` insert loops for `warmup + duration`; counts what completes in the
/// `duration` window after the warm-up.
pub async fn run(
    label: &str,
    url: &str,
    workers: usize,
    pool: u32,
    warmup: Duration,
    duration: Duration,
) -> Result<CeilingResult> {
    let db = Arc::new(Db::open(url, pool).await?);
    let start = Instant::now();
    let window_start = start + warmup;
    let end = window_start + duration;
    let stop = Arc::new(AtomicBool::new(false));
    // A body the size of a Twilio inbound-SMS form (about 450 bytes).
    let body: Arc<str> = Arc::from("x".repeat(450));
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let (db, stop, body) = (db.clone(), stop.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut done, mut errors) = (0u64, 0u64);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let id = format!("ceiling-{w}-{seq}");
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let t0 = Instant::now();
                let ok = db.insert(&id, &body, now).await.is_ok();
                let t1 = Instant::now();
                if t1 >= end {
                    break;
                }
                if t0 >= window_start {
                    if ok {
                        done += 1;
                        latencies.push(t1 - t0);
                    } else {
                        errors += 1;
                    }
                }
            }
            (done, errors, latencies)
        }));
    }
    tokio::time::sleep_until(end.into()).await;
    stop.store(true, Ordering::Relaxed);
    let (mut inserts, mut errors, mut latencies) = (0, 0, Vec::new());
    for t in tasks {
        let (d, e, l) = t.await?;
        inserts += d;
        errors += e;
        latencies.extend(l);
    }
    if let Ok(db) = Arc::try_unwrap(db) {
        db.close().await;
    }
    let secs = duration.as_secs_f64();
    Ok(CeilingResult {
        label: label.to_string(),
        backend: crate::backend_of(url).to_string(),
        workers,
        pool: if url.starts_with("sqlite:") {
            1
        } else {
            pool.max(2)
        },
        duration_s: secs,
        inserts,
        inserts_per_s: inserts as f64 / secs,
        errors,
        latency: Summary::of(&mut latencies),
        load_average: crate::load_average(),
    })
}
