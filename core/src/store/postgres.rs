//! PostgreSQL: the path past one machine. Several daemon replicas share the database; job
//! claims use `FOR UPDATE SKIP LOCKED` and ingest locks the contact row, so replicas never
//! double-send a job or split one contact's messages into two new conversations.

use super::{Dialect, StoreResult, dialect};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Pool, Postgres};
use std::time::Duration;

pub struct PgStore {
    threading: std::sync::RwLock<crate::thread::ThreadingPolicy>,
    pool: PgPool,
}

impl PgStore {
    const DIALECT: Dialect = dialect::POSTGRES;
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self {
            threading: Default::default(),
            pool,
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
super::sql_ingest::impl_ingest_store!(PgStore, sqlx::Postgres);
super::sql_mail_batch::impl_mail_batch!(PgStore, sqlx::Postgres);
super::sql_jobs::impl_job_store!(PgStore, sqlx::Postgres);
super::sql_admin::impl_admin_store!(PgStore, sqlx::Postgres);
super::sql_conversations::impl_conversation_store!(PgStore, sqlx::Postgres);
super::sql_events::impl_event_store!(PgStore, sqlx::Postgres);
super::sql_sync::impl_sync_store!(PgStore, sqlx::Postgres);
super::sql_webhooks::impl_webhook_store!(PgStore, sqlx::Postgres);

impl PgStore {
    /// The threading policy in force (a poisoned lock still holds a valid policy).
    fn threading(&self) -> crate::thread::ThreadingPolicy {
        match self.threading.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl super::Store for PgStore {
    fn set_threading(&self, policy: crate::thread::ThreadingPolicy) {
        match self.threading.write() {
            Ok(mut p) => *p = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }

    fn backend(&self) -> super::Backend {
        super::Backend::Postgres(self.pool.clone())
    }
}
