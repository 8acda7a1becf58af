//! The real store for the webhook tests: a fresh SQLite database in a tempdir, migrated and
//! synced with the tenant and the WhatsApp channel the tests post to. Storage failures are
//! real too: a SQLite trigger makes chosen journal inserts abort, like a failing disk.

use sqlx::SqlitePool;
use std::sync::Arc;
use switchboard_core::model::*;
use switchboard_core::store::*;
use tempfile::TempDir;

pub mod harness;

pub const TENANT: &str = "acme";
pub const CHANNEL: &str = "acme-wa";
pub const PNID: &str = "106540352242922";

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
                    kind: "whatsapp".into(),
                    address: Some(PNID.into()),
                }],
            )
            .await
            .expect("sync tenants and channels");
        let db = SqlitePool::connect(&url).await.expect("side connection");
        Self {
            store,
            db,
            _dir: dir,
        }
    }

    /// Every journaled delivery of the channel, oldest first.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        self.store
            .journal_entries(CHANNEL, i64::MAX)
            .await
            .expect("read journal")
    }

    /// The journal keys, sorted.
    pub async fn journal_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .journal()
            .await
            .into_iter()
            .map(|j| j.idempotency_key)
            .collect();
        keys.sort();
        keys
    }

    /// Status reports parked because no message of ours had their provider id.
    pub async fn parked_statuses(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM pending_statuses")
            .fetch_one(&self.db)
            .await
            .expect("count parked statuses")
    }

    /// Makes every journal insert whose key starts with `prefix` fail, as storage would.
    pub async fn fail_journal_inserts(&self, prefix: &str) {
        assert!(
            prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ':'),
            "a plain key prefix"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER fail_journal BEFORE INSERT ON inbound_events
             WHEN NEW.idempotency_key LIKE '{prefix}%'
             BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END"
        )))
        .execute(&self.db)
        .await
        .expect("create trigger");
    }

    /// Ends the failure injected by [`Self::fail_journal_inserts`].
    pub async fn heal(&self) {
        sqlx::query("DROP TRIGGER fail_journal")
            .execute(&self.db)
            .await
            .expect("drop trigger");
    }

    /// The tenant's conversations, newest first.
    pub async fn conversations(&self) -> Vec<ConversationView> {
        self.store
            .list_conversations(TENANT, &ConversationFilter::default(), &page())
            .await
            .expect("list conversations")
            .items
    }

    /// Every message of the tenant, over all conversations.
    pub async fn messages(&self) -> Vec<MessageView> {
        let mut all = Vec::new();
        for c in self.conversations().await {
            all.extend(
                self.store
                    .list_messages(TENANT, &c.id, &page())
                    .await
                    .expect("list messages")
                    .items,
            );
        }
        all
    }

    /// Our outbound message, accepted by WhatsApp as `wamid`: a conversation started with
    /// the contact, its send job claimed and completed with that provider id.
    pub async fn sent_message(&self, contact: &str, wamid: &str) -> String {
        let (queued, _) = self
            .store
            .start_conversation(
                TENANT,
                &StartConversation {
                    channel_id: CHANNEL.into(),
                    to: Identity {
                        kind: IdentityKind::Whatsapp,
                        value: contact.into(),
                    },
                    contact_name: None,
                    draft: ReplyDraft {
                        text: Some("Your order shipped".into()),
                        subject: None,
                        media_urls: vec![],
                        template: None,
                        author: "alice".into(),
                        idempotency_key: None,
                    },
                },
            )
            .await
            .expect("start conversation");
        let job = self
            .store
            .claim_job(now_millis(), 60_000)
            .await
            .expect("claim")
            .expect("a send job");
        assert_eq!(job.ref_id, queued.id);
        self.store.outbound_for_job(&job).await.expect("outbound");
        let receipt = SendReceipt {
            provider_message_id: wamid.into(),
            status: DeliveryStatus::Sent,
            external: serde_json::json!({}),
        };
        self.store.job_sent(&job, &receipt).await.expect("sent");
        queued.id
    }

    pub async fn message(&self, id: &str) -> MessageView {
        self.store.get_message(TENANT, id).await.expect("message")
    }
}

fn page() -> PageRequest {
    PageRequest {
        cursor: None,
        limit: 100,
    }
}
