//! The embedded default: SQLite in WAL mode with `synchronous = FULL`, so a commit is on
//! disk before a webhook is acknowledged. Writes go through a single connection (SQLite has
//! one writer anyway; one connection turns lock contention into an orderly queue), reads
//! through a pool.

use super::{Dialect, StoreResult, dialect};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    threading: std::sync::RwLock<crate::domain::thread::ThreadingPolicy>,
    /// Deliveries waiting for the writer tasks (group commit).
    group: super::group_commit::GroupQueue,
    writer: Pool<Sqlite>,
    reader: Pool<Sqlite>,
}

impl SqliteStore {
    const DIALECT: Dialect = dialect::SQLITE;
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

    /// Opens (creating if missing) the database file the URL names.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // 16 KiB pages for new databases: mail bodies and raw journal entries span many
            // pages, and every page is a write and a checksum in the WAL.
            .page_size(16384)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
        }
        // The writer checkpoints the WAL every 8,192 pages (128 MiB) instead of 1,000: a mail
        // backfill writes tens of MiB, and each checkpoint costs an fsync of the database.
        // Its page cache holds 16 MiB (the default is 2 MiB): a batch of mail modifies more
        // than that, and a full cache spills pages to the WAL mid-transaction, some of them
        // twice. Statement journals (a multi-row statement's undo) stay in memory instead of
        // temporary files.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", "8192")
                    .pragma("cache_size", "-16384")
                    .pragma("temp_store", "memory"),
            )
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        Ok(Self {
            threading: Default::default(),
            group: Default::default(),
            writer,
            reader,
        })
    }

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }
}

super::sql_common::impl_common_queries!(SqliteStore, sqlx::Sqlite);
super::sql_contacts::impl_journal_and_contact_queries!(SqliteStore, sqlx::Sqlite);
super::sql_threading::impl_threading_queries!(SqliteStore, sqlx::Sqlite);
super::sql_views::impl_view_queries!(SqliteStore, sqlx::Sqlite);
super::sql_staff::impl_staff_queries!(SqliteStore, sqlx::Sqlite);
super::sql_triage::impl_triage_queries!(SqliteStore, sqlx::Sqlite);
super::sql_composer::impl_composer_store!(SqliteStore, sqlx::Sqlite);
super::sql_ingest::impl_ingest_store!(SqliteStore, sqlx::Sqlite);
super::sql_group_commit::impl_group_commit!(SqliteStore, sqlx::Sqlite);
super::sql_mail_batch::impl_mail_batch!(SqliteStore, sqlx::Sqlite);
super::sql_jobs::impl_job_store!(SqliteStore, sqlx::Sqlite);
super::sql_admin::impl_admin_store!(SqliteStore, sqlx::Sqlite);
super::sql_conversations::impl_conversation_store!(SqliteStore, sqlx::Sqlite);
super::sql_contact_store::impl_contact_store!(SqliteStore, sqlx::Sqlite);
super::sql_contact_merge::impl_contact_merge!(SqliteStore, sqlx::Sqlite);
super::sql_contact_erase::impl_contact_erase!(SqliteStore, sqlx::Sqlite);
super::sql_event_log::impl_event_store!(SqliteStore, sqlx::Sqlite);
super::sql_sync::impl_sync_store!(SqliteStore, sqlx::Sqlite);
super::sql_outgoing_webhooks::impl_webhook_store!(SqliteStore, sqlx::Sqlite);
super::sql_staff_directory::impl_staff_directory!(SqliteStore, sqlx::Sqlite);

impl SqliteStore {
    /// Nothing to do: SQLite plans with its indexes whatever the table sizes.
    async fn after_mail_batch(&self, _stored: usize) {}
}

impl SqliteStore {
    /// The threading policy in force (a poisoned lock still holds a valid policy).
    fn threading(&self) -> crate::domain::thread::ThreadingPolicy {
        match self.threading.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl super::Store for SqliteStore {
    fn set_threading(&self, policy: crate::domain::thread::ThreadingPolicy) {
        match self.threading.write() {
            Ok(mut p) => *p = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }

    fn backend(&self) -> super::Backend {
        super::Backend::Sqlite
    }
}
