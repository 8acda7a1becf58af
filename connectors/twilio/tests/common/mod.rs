//! The real store for the webhook tests: a fresh SQLite database in a tempdir, migrated and
//! synced with the tenant and channel the tests post to; [`TestStore::fail_writes`] makes the
//! database refuse writes, as in an outage.

use sqlx::SqlitePool;
use std::sync::Arc;
use switchboard_core::store::*;
use tempfile::TempDir;

pub const TENANT: &str = "acme";
pub const CHANNEL: &str = "acme-sms";

/// A migrated SQLite store; the tempdir lives as long as this value.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// A separate connection to the same file, for what the store has no API to read
    /// (parked statuses) and for injecting failures.
    db: SqlitePool,
    _dir: TempDir,
}

impl TestStore {
    pub async fn open() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = open(&url, 2).await.expect("open store");
        store.migrate().await.expect("migrate");
        store
            .sync_tenants_and_channels(
                &[TenantRecord {
                    id: TENANT.into(),
                    name: None,
                }],
                &[ChannelRecord {
                    id: CHANNEL.into(),
                    tenant_id: TENANT.into(),
                    kind: "twilio".into(),
                    address: Some("+14155550100".into()),
                }],
            )
            .await
            .expect("sync tenants and channels");
        let db = SqlitePool::connect(&url).await.expect("journal reader");
        Self {
            store,
            db,
            _dir: dir,
        }
    }

    /// Makes every journal insert fail inside the database (a trigger raising an error),
    /// so ingest fails the way it does when storage is down.
    pub async fn fail_writes(&self) {
        sqlx::query(
            "CREATE TRIGGER outage BEFORE INSERT ON inbound_events
             BEGIN SELECT RAISE(ABORT, 'simulated database outage'); END",
        )
        .execute(&self.db)
        .await
        .expect("create trigger");
    }

    /// Every journaled delivery of the channel, oldest first.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        self.store
            .journal_entries(CHANNEL, i64::MAX)
            .await
            .expect("read journal")
    }

    /// Status reports parked because no message of ours had their provider id.
    pub async fn parked_statuses(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM pending_statuses")
            .fetch_one(&self.db)
            .await
            .expect("count parked statuses")
    }

    /// The tenant's conversations, newest first.
    pub async fn conversations(&self) -> Vec<ConversationView> {
        self.store
            .list_conversations(TENANT, &ConversationFilter::default(), &page())
            .await
            .expect("list conversations")
            .items
    }

    /// The messages of the tenant's only conversation, newest first.
    pub async fn messages(&self) -> Vec<MessageView> {
        let conversations = self.conversations().await;
        assert_eq!(conversations.len(), 1, "one conversation expected");
        self.store
            .list_messages(TENANT, &conversations[0].id, &page())
            .await
            .expect("list messages")
            .items
    }
}

fn page() -> PageRequest {
    PageRequest {
        cursor: None,
        limit: 100,
    }
}
