//! PostgreSQL: the path past one machine. Several daemon replicas share the database; job
//! claims use `FOR UPDATE SKIP LOCKED` and ingest locks the contact row, so replicas never
//! double-send a job or split one contact's messages into two new conversations.

use super::{Dialect, StoreResult, dialect};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Pool, Postgres};
use std::str::FromStr;
use std::time::Duration;

pub struct PgStore {
    threading: std::sync::RwLock<crate::domain::thread::ThreadingPolicy>,
    /// Deliveries waiting for the writer tasks (group commit).
    group: super::group_commit::GroupQueue,
    pool: PgPool,
    /// Mail stored by batches since the tables' statistics were last looked at, and how
    /// many messages the table held then (see [`PgStore::after_mail_batch`]).
    loaded: std::sync::Mutex<(u64, Option<u64>)>,
}

impl PgStore {
    const DIALECT: Dialect = dialect::POSTGRES;
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let port = options.get_port();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |_, _| {
                Box::pin(async move {
                    super::pg_nodelay::set_on_sockets_to(port);
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            threading: Default::default(),
            group: Default::default(),
            pool,
            loaded: std::sync::Mutex::new((0, None)),
        })
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }
}

super::sql_common::impl_common_queries!(PgStore, sqlx::Postgres);
super::sql_contacts::impl_journal_and_contact_queries!(PgStore, sqlx::Postgres);
super::sql_threading::impl_threading_queries!(PgStore, sqlx::Postgres);
super::sql_views::impl_view_queries!(PgStore, sqlx::Postgres);
super::sql_staff::impl_staff_queries!(PgStore, sqlx::Postgres);
super::sql_triage::impl_triage_queries!(PgStore, sqlx::Postgres);
super::sql_composer::impl_composer_store!(PgStore, sqlx::Postgres);
super::sql_ingest::impl_ingest_store!(PgStore, sqlx::Postgres);
super::sql_group_commit::impl_group_commit!(PgStore, sqlx::Postgres);
super::sql_mail_batch::impl_mail_batch!(PgStore, sqlx::Postgres);
super::sql_jobs::impl_job_store!(PgStore, sqlx::Postgres);
super::sql_admin::impl_admin_store!(PgStore, sqlx::Postgres);
super::sql_conversations::impl_conversation_store!(PgStore, sqlx::Postgres);
super::sql_contact_store::impl_contact_store!(PgStore, sqlx::Postgres);
super::sql_contact_merge::impl_contact_merge!(PgStore, sqlx::Postgres);
super::sql_contact_erase::impl_contact_erase!(PgStore, sqlx::Postgres);
super::sql_event_log::impl_event_store!(PgStore, sqlx::Postgres);
super::sql_sync::impl_sync_store!(PgStore, sqlx::Postgres);
super::sql_outgoing_webhooks::impl_webhook_store!(PgStore, sqlx::Postgres);
super::sql_staff_directory::impl_staff_directory!(PgStore, sqlx::Postgres);

impl PgStore {
    /// The threading policy in force (a poisoned lock still holds a valid policy).
    fn threading(&self) -> crate::domain::thread::ThreadingPolicy {
        match self.threading.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The tables whose statistics a bulk load of mail outgrows.
const ANALYZE_BULK_TABLES: &str =
    "ANALYZE messages, message_refs, inbound_events, conversations, contact_identities";

impl PgStore {
    /// Keeps the planner's statistics up with a backfill. A first sync into empty tables
    /// inserts thousands of rows within seconds, long before autovacuum analyzes them;
    /// meanwhile the planner believes the tables tiny and reads every row of the channel
    /// for each batch's lookups (30 ms a lookup at 10,000 messages instead of 0.3 ms).
    /// Each time the mail stored by batches reaches the number of messages the table held
    /// at the last look (at least 500), the tables are analyzed again: a handful of times
    /// while they grow from nothing, never while they are large (autovacuum keeps those).
    async fn after_mail_batch(&self, stored: usize) {
        let (since, known) = match self.loaded.lock() {
            Ok(mut loaded) => {
                loaded.0 += stored as u64;
                *loaded
            }
            Err(_) => return,
        };
        if since < 500 {
            return;
        }
        let size = match known {
            Some(size) => size,
            // First look since start-up: how large is the table already?
            None => match self.messages_estimate().await {
                Ok(size) => {
                    if let Ok(mut loaded) = self.loaded.lock() {
                        loaded.1 = Some(size);
                    }
                    size
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading table statistics failed");
                    return;
                }
            },
        };
        if since < size {
            return;
        }
        let refreshed = match sqlx::query(ANALYZE_BULK_TABLES).execute(&self.pool).await {
            Ok(_) => self.messages_estimate().await,
            Err(e) => Err(e),
        };
        if let Err(e) = &refreshed {
            tracing::warn!(error = %e, "refreshing table statistics failed");
        }
        if let Ok(mut loaded) = self.loaded.lock() {
            // After a failure too: try again only after as many messages more.
            *loaded = (0, Some(refreshed.unwrap_or(size).max(since)));
        }
    }

    /// The planner's estimate of the messages table's rows (0 before its first analysis).
    async fn messages_estimate(&self) -> Result<u64, sqlx::Error> {
        let rows: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass")
                .fetch_one(&self.pool)
                .await?;
        Ok(rows.max(0.0) as u64)
    }
}

impl super::Store for PgStore {
    fn set_threading(&self, policy: crate::domain::thread::ThreadingPolicy) {
        match self.threading.write() {
            Ok(mut p) => *p = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }

    fn backend(&self) -> super::Backend {
        super::Backend::Postgres(self.pool.clone())
    }
}
