//! What connector tests read from and do to a [`TestStore`]: the journal, conversations and
//! messages of its first tenant and channel, parked statuses, an outbound message already
//! accepted by the provider, and injected storage failures (a SQLite trigger that aborts
//! journal inserts, the way a failing disk or a database outage does).

use crate::store::TestStore;
use switchboard_core::contract::journal::*;
use switchboard_core::domain::model::*;
use switchboard_core::store::*;

fn page() -> PageRequest {
    PageRequest {
        cursor: None,
        limit: 100,
    }
}

impl TestStore {
    /// Every journaled delivery of the channel, oldest first.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        self.store
            .journal_entries(&self.channel, i64::MAX)
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
            .fetch_one(self.sqlite_pool())
            .await
            .expect("count parked statuses")
    }

    /// Makes every journal insert whose key starts with `prefix` (all of them for "") fail
    /// inside the database, so ingest fails the way it does when storage is down.
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
             BEGIN SELECT RAISE(ABORT, 'simulated database outage'); END"
        )))
        .execute(self.sqlite_pool())
        .await
        .expect("create trigger");
    }

    /// Ends the failure injected by [`Self::fail_journal_inserts`].
    pub async fn heal(&self) {
        sqlx::query("DROP TRIGGER fail_journal")
            .execute(self.sqlite_pool())
            .await
            .expect("drop trigger");
    }

    /// The tenant's conversations, newest first.
    pub async fn conversations(&self) -> Vec<ConversationRow> {
        self.store
            .list_conversations(&self.tenant, &ConversationFilter::default(), &page())
            .await
            .expect("list conversations")
            .items
    }

    /// Every message of the tenant, over all conversations.
    pub async fn messages(&self) -> Vec<MessageRow> {
        let mut all = Vec::new();
        for c in self.conversations().await {
            all.extend(
                self.store
                    .list_messages(&self.tenant, &c.id, &page())
                    .await
                    .expect("list messages")
                    .items,
            );
        }
        all
    }

    /// The messages of the tenant's only conversation (asserted), newest first.
    pub async fn conversation_messages(&self) -> Vec<MessageRow> {
        let conversations = self.conversations().await;
        assert_eq!(conversations.len(), 1, "one conversation expected");
        self.store
            .list_messages(&self.tenant, &conversations[0].id, &page())
            .await
            .expect("list messages")
            .items
    }

    pub async fn message(&self, id: &str) -> MessageRow {
        self.store
            .get_message(&self.tenant, id)
            .await
            .expect("message")
    }

    /// Our outbound message, accepted by the provider as `provider_id`: a conversation
    /// started with the contact, its send job claimed and completed with that id.
    pub async fn sent_message(
        &self,
        kind: IdentityKind,
        contact: &str,
        provider_id: &str,
    ) -> String {
        let to = Identity {
            kind,
            value: contact.into(),
        };
        self.sent_message_as(to, provider_id, DeliveryStatus::Sent)
            .await
    }

    /// [`Self::sent_message`] with the status of the provider's receipt (Twilio answers
    /// `queued`, WhatsApp `sent`).
    pub async fn sent_message_as(
        &self,
        to: Identity,
        provider_id: &str,
        receipt_status: DeliveryStatus,
    ) -> String {
        let (queued, _) = self
            .store
            .start_conversation(
                &self.tenant,
                &StartConversation {
                    channel_id: self.channel.clone(),
                    threading: switchboard_core::contract::ingest_types::Threading::ByContact,
                    to,
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
            provider_message_id: provider_id.into(),
            status: receipt_status,
            external: serde_json::json!({}),
        };
        self.store.job_sent(&job, &receipt).await.expect("sent");
        queued.id
    }
}

/// Generates, for each named test function of the calling module (`async fn(Arc<dyn
/// Store>)`), a `sqlite` and a `postgres` test that run it on a fresh database seeded by
/// `$seed()` (a [`crate::store::StoreBuilder`]; a function in scope of the calling module).
#[macro_export]
macro_rules! store_tests {
    (seed = $seed:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = super::$seed().sqlite().await;
                super::$name(db.store.clone()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = super::$seed().postgres().await;
                super::$name(db.store.clone()).await;
                db.drop_pg().await;
            })*
        }
    };
}
