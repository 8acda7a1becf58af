//! The real store for the webhook tests: a fresh SQLite database in a tempdir, migrated and
//! synced with the tenant and channel the tests post to, plus [`FailingIngest`], which wraps
//! it and fails message and status ingest like a database outage.

use sqlx::SqlitePool;
use std::sync::Arc;
use switchboard_core::model::*;
use switchboard_core::store::*;
use tempfile::TempDir;

pub const TENANT: &str = "acme";
pub const CHANNEL: &str = "acme-sms";

/// A migrated SQLite store; the tempdir lives as long as this value.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// A separate connection to the same file, for the journal (the store has no API to
    /// read it back).
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

    /// Every journaled delivery of the channel, oldest first.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT idempotency_key, kind, content_type, payload FROM inbound_events
              WHERE tenant_id = $1 AND channel_id = $2 ORDER BY received_at, id",
        )
        .bind(TENANT)
        .bind(CHANNEL)
        .fetch_all(&self.db)
        .await
        .expect("read journal");
        rows.into_iter()
            .map(
                |(idempotency_key, kind, content_type, payload)| JournalEntry {
                    idempotency_key,
                    kind,
                    content_type,
                    payload,
                },
            )
            .collect()
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

fn outage() -> StoreError {
    StoreError::Database(sqlx::Error::PoolTimedOut)
}

/// The real store, except that ingesting a message or a status fails as if the database
/// were unreachable. Everything else is delegated.
pub struct FailingIngest(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl IngestStore for FailingIngest {
    async fn ingest_message(
        &self,
        _: &ChannelRef,
        _: &JournalEntry,
        _: &InboundMessage,
    ) -> StoreResult<IngestOutcome> {
        Err(outage())
    }
    async fn ingest_status(
        &self,
        _: &ChannelRef,
        _: &JournalEntry,
        _: &StatusUpdate,
    ) -> StoreResult<StatusOutcome> {
        Err(outage())
    }
    async fn ingest_reaction(
        &self,
        channel: &ChannelRef,
        journal: &JournalEntry,
        reaction: &ReactionUpdate,
    ) -> StoreResult<ReactionOutcome> {
        self.0.ingest_reaction(channel, journal, reaction).await
    }
    async fn journal_only(
        &self,
        channel: &ChannelRef,
        journal: &JournalEntry,
    ) -> StoreResult<bool> {
        self.0.journal_only(channel, journal).await
    }
}

#[async_trait::async_trait]
impl ConversationStore for FailingIngest {
    async fn list_conversations(
        &self,
        tenant: &str,
        filter: &ConversationFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<ConversationView>> {
        self.0.list_conversations(tenant, filter, page).await
    }
    async fn get_conversation(&self, tenant: &str, id: &str) -> StoreResult<ConversationView> {
        self.0.get_conversation(tenant, id).await
    }
    async fn list_participants(
        &self,
        tenant: &str,
        conversation: &str,
    ) -> StoreResult<Vec<ParticipantView>> {
        self.0.list_participants(tenant, conversation).await
    }
    async fn list_messages(
        &self,
        tenant: &str,
        conversation: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageView>> {
        self.0.list_messages(tenant, conversation, page).await
    }
    async fn get_message(&self, tenant: &str, id: &str) -> StoreResult<MessageView> {
        self.0.get_message(tenant, id).await
    }
    async fn create_reply(
        &self,
        tenant: &str,
        conversation: &str,
        draft: &ReplyDraft,
    ) -> StoreResult<(MessageView, bool)> {
        self.0.create_reply(tenant, conversation, draft).await
    }
    async fn start_conversation(
        &self,
        tenant: &str,
        start: &StartConversation,
    ) -> StoreResult<(MessageView, bool)> {
        self.0.start_conversation(tenant, start).await
    }
    async fn mark_read(
        &self,
        tenant: &str,
        conversation: &str,
        staff: &str,
    ) -> StoreResult<ConversationView> {
        self.0.mark_read(tenant, conversation, staff).await
    }
    async fn set_status(
        &self,
        tenant: &str,
        conversation: &str,
        status: ConversationStatus,
        staff: &str,
    ) -> StoreResult<ConversationView> {
        self.0.set_status(tenant, conversation, status, staff).await
    }
    async fn assign(
        &self,
        tenant: &str,
        conversation: &str,
        assignee: Option<&str>,
        staff: &str,
    ) -> StoreResult<ConversationView> {
        self.0.assign(tenant, conversation, assignee, staff).await
    }
    async fn unread_summary(&self, tenant: &str, staff: &str) -> StoreResult<UnreadSummary> {
        self.0.unread_summary(tenant, staff).await
    }
    async fn get_attachment(&self, tenant: &str, id: &str) -> StoreResult<AttachmentView> {
        self.0.get_attachment(tenant, id).await
    }
    async fn list_channels(&self, tenant: &str) -> StoreResult<Vec<ChannelView>> {
        self.0.list_channels(tenant).await
    }
    async fn queue_read_receipt(&self, tenant: &str, conversation: &str) -> StoreResult<bool> {
        self.0.queue_read_receipt(tenant, conversation).await
    }
}

#[async_trait::async_trait]
impl JobStore for FailingIngest {
    async fn claim_job(&self, now: Millis, lease_ms: i64) -> StoreResult<Option<Job>> {
        self.0.claim_job(now, lease_ms).await
    }
    async fn outbound_for_job(&self, job: &Job) -> StoreResult<OutboundContext> {
        self.0.outbound_for_job(job).await
    }
    async fn job_sent(&self, job: &Job, receipt: &SendReceipt) -> StoreResult<()> {
        self.0.job_sent(job, receipt).await
    }
    async fn job_retry(&self, job: &Job, next_at: Millis, error: &str) -> StoreResult<()> {
        self.0.job_retry(job, next_at, error).await
    }
    async fn job_failed(&self, job: &Job, code: &str, message: &str) -> StoreResult<()> {
        self.0.job_failed(job, code, message).await
    }
    async fn media_for_job(&self, job: &Job) -> StoreResult<MediaJobContext> {
        self.0.media_for_job(job).await
    }
    async fn read_receipt_target(&self, job: &Job) -> StoreResult<String> {
        self.0.read_receipt_target(job).await
    }
    async fn job_done(&self, job: &Job) -> StoreResult<()> {
        self.0.job_done(job).await
    }
    async fn attachment_stored(&self, job: &Job, stored: &StoredBlob) -> StoreResult<()> {
        self.0.attachment_stored(job, stored).await
    }
    async fn next_job_due(&self) -> StoreResult<Option<Millis>> {
        self.0.next_job_due().await
    }
}

#[async_trait::async_trait]
impl AdminStore for FailingIngest {
    async fn migrate(&self) -> StoreResult<()> {
        self.0.migrate().await
    }
    async fn migrations_applied(&self) -> StoreResult<bool> {
        self.0.migrations_applied().await
    }
    async fn sync_tenants_and_channels(
        &self,
        tenants: &[TenantRecord],
        channels: &[ChannelRecord],
    ) -> StoreResult<()> {
        self.0.sync_tenants_and_channels(tenants, channels).await
    }
    async fn create_token(&self, token: &NewToken) -> StoreResult<()> {
        self.0.create_token(token).await
    }
    async fn revoke_token(&self, tenant: &str, id_or_name: &str) -> StoreResult<u64> {
        self.0.revoke_token(tenant, id_or_name).await
    }
    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.0.find_token(hash).await
    }
    async fn set_channel_status(
        &self,
        channel: &str,
        status: &str,
        error: Option<&str>,
    ) -> StoreResult<()> {
        self.0.set_channel_status(channel, status, error).await
    }
}
