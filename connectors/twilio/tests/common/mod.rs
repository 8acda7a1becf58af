//! An in-memory store for the webhook tests: it journals by idempotency key (dedupe),
//! records what was ingested, and can be switched "down" to simulate a storage failure.
//! Only the ingest part of the store is implemented; connectors never call the rest.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use switchboard_core::model::*;
use switchboard_core::store::*;

#[derive(Default)]
pub struct FakeStore {
    keys: Mutex<HashSet<String>>,
    pub journal: Mutex<Vec<JournalEntry>>,
    pub messages: Mutex<Vec<InboundMessage>>,
    pub statuses: Mutex<Vec<StatusUpdate>>,
    pub down: AtomicBool,
}

impl FakeStore {
    fn journal(&self, entry: &JournalEntry) -> StoreResult<bool> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("database unavailable".into()));
        }
        let fresh = self
            .keys
            .lock()
            .expect("lock")
            .insert(entry.idempotency_key.clone());
        if fresh {
            self.journal.lock().expect("lock").push(entry.clone());
        }
        Ok(fresh)
    }
}

#[async_trait::async_trait]
impl IngestStore for FakeStore {
    async fn ingest_message(
        &self,
        _: &ChannelRef,
        journal: &JournalEntry,
        msg: &InboundMessage,
    ) -> StoreResult<IngestOutcome> {
        if !self.journal(journal)? {
            return Ok(IngestOutcome::Duplicate);
        }
        self.messages.lock().expect("lock").push(msg.clone());
        Ok(IngestOutcome::Stored {
            message_id: "m1".into(),
            conversation_id: "c1".into(),
            created_conversation: true,
        })
    }

    async fn ingest_status(
        &self,
        _: &ChannelRef,
        journal: &JournalEntry,
        update: &StatusUpdate,
    ) -> StoreResult<StatusOutcome> {
        if !self.journal(journal)? {
            return Ok(StatusOutcome::Duplicate);
        }
        self.statuses.lock().expect("lock").push(update.clone());
        Ok(StatusOutcome::UnknownMessage)
    }

    async fn journal_only(&self, _: &ChannelRef, journal: &JournalEntry) -> StoreResult<bool> {
        self.journal(journal)
    }
}

/// The rest of the store is never called by a connector.
macro_rules! unused {
    () => {
        unimplemented!("not used by connectors")
    };
}

#[async_trait::async_trait]
impl ConversationStore for FakeStore {
    async fn list_conversations(
        &self,
        _: &str,
        _: &ConversationFilter,
        _: &PageRequest,
    ) -> StoreResult<Page<ConversationView>> {
        unused!()
    }
    async fn get_conversation(&self, _: &str, _: &str) -> StoreResult<ConversationView> {
        unused!()
    }
    async fn list_participants(&self, _: &str, _: &str) -> StoreResult<Vec<ParticipantView>> {
        unused!()
    }
    async fn list_messages(
        &self,
        _: &str,
        _: &str,
        _: &PageRequest,
    ) -> StoreResult<Page<MessageView>> {
        unused!()
    }
    async fn get_message(&self, _: &str, _: &str) -> StoreResult<MessageView> {
        unused!()
    }
    async fn create_reply(
        &self,
        _: &str,
        _: &str,
        _: &ReplyDraft,
    ) -> StoreResult<(MessageView, bool)> {
        unused!()
    }
    async fn start_conversation(
        &self,
        _: &str,
        _: &StartConversation,
    ) -> StoreResult<(MessageView, bool)> {
        unused!()
    }
    async fn mark_read(&self, _: &str, _: &str, _: &str) -> StoreResult<ConversationView> {
        unused!()
    }
    async fn set_status(
        &self,
        _: &str,
        _: &str,
        _: ConversationStatus,
        _: &str,
    ) -> StoreResult<ConversationView> {
        unused!()
    }
    async fn assign(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: &str,
    ) -> StoreResult<ConversationView> {
        unused!()
    }
    async fn unread_summary(&self, _: &str, _: &str) -> StoreResult<UnreadSummary> {
        unused!()
    }
    async fn get_attachment(&self, _: &str, _: &str) -> StoreResult<AttachmentView> {
        unused!()
    }
    async fn list_channels(&self, _: &str) -> StoreResult<Vec<ChannelView>> {
        unused!()
    }
}

#[async_trait::async_trait]
impl JobStore for FakeStore {
    async fn claim_job(&self, _: Millis, _: i64) -> StoreResult<Option<Job>> {
        unused!()
    }
    async fn outbound_for_job(&self, _: &Job) -> StoreResult<OutboundContext> {
        unused!()
    }
    async fn job_sent(&self, _: &Job, _: &SendReceipt) -> StoreResult<()> {
        unused!()
    }
    async fn job_retry(&self, _: &Job, _: Millis, _: &str) -> StoreResult<()> {
        unused!()
    }
    async fn job_failed(&self, _: &Job, _: &str, _: &str) -> StoreResult<()> {
        unused!()
    }
    async fn media_for_job(&self, _: &Job) -> StoreResult<MediaJobContext> {
        unused!()
    }
    async fn attachment_stored(&self, _: &Job, _: &StoredBlob) -> StoreResult<()> {
        unused!()
    }
    async fn next_job_due(&self) -> StoreResult<Option<Millis>> {
        unused!()
    }
}

#[async_trait::async_trait]
impl AdminStore for FakeStore {
    async fn migrate(&self) -> StoreResult<()> {
        unused!()
    }
    async fn migrations_applied(&self) -> StoreResult<bool> {
        unused!()
    }
    async fn sync_tenants_and_channels(
        &self,
        _: &[TenantRecord],
        _: &[ChannelRecord],
    ) -> StoreResult<()> {
        unused!()
    }
    async fn create_token(&self, _: &NewToken) -> StoreResult<()> {
        unused!()
    }
    async fn revoke_token(&self, _: &str, _: &str) -> StoreResult<u64> {
        unused!()
    }
    async fn find_token(&self, _: &str) -> StoreResult<Option<TokenRecord>> {
        unused!()
    }
    async fn set_channel_status(&self, _: &str, _: &str, _: Option<&str>) -> StoreResult<()> {
        unused!()
    }
}
