//! The ingest pipeline's entry point for connectors.
//!
//! A connector verifies and normalizes a delivery (pure), then hands the raw journal entry
//! and the normalized message to [`Ingest`]. The store applies, in one transaction:
//! journal (dedupe by unique key) → contact resolve → thread decision ([`crate::domain::thread`]) →
//! flags → persist → event. The caller may acknowledge the provider (2xx) only after this
//! returns `Ok`, which means the event is durably stored. Every entry point first makes the
//! model's text storable on both databases (`ingest_text`: NUL becomes U+FFFD).

use super::ingest_text;
use super::ingest_types::{
    ChannelRef, FolderPosition, IngestOutcome, ReactionOutcome, StatusOutcome, SyncRun,
};
use super::journal::JournalEntry;
use crate::domain::model::{Consent, Flag, InboundMessage, ReactionUpdate, StatusUpdate};
use crate::infra::blob::BlobStore;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::Notify;

/// An ingest handle bound to one channel: a connector can only write into its own channel.
#[derive(Clone)]
pub struct Ingest {
    store: Arc<dyn Store>,
    channel: ChannelRef,
    /// Wakes the job dispatcher when ingest created work (media downloads).
    jobs: Arc<Notify>,
    /// Where attachment bytes a connector already holds are written (email parts).
    blobs: Option<BlobStore>,
    /// The tenant's blocked senders, lower-cased (`@domain` entries match subdomains).
    blocklist: Arc<[String]>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The delivery cannot be stored as sent (empty id, bad address); answer 400.
    #[error("invalid inbound event: {0}")]
    Invalid(String),
    /// Storage failed: answer 5xx so the provider retries.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Attachment bytes could not be written: answer 5xx (or retry the batch).
    #[error("attachment storage: {0}")]
    Blob(String),
}

impl From<crate::infra::blob::BlobError> for IngestError {
    fn from(e: crate::infra::blob::BlobError) -> Self {
        IngestError::Blob(e.to_string())
    }
}

impl Ingest {
    pub fn new(store: Arc<dyn Store>, channel: ChannelRef, jobs: Arc<Notify>) -> Self {
        Self {
            store,
            channel,
            jobs,
            blobs: None,
            blocklist: Arc::from(Vec::new()),
        }
    }

    /// Flags messages from these senders `blocked` (addresses, numbers, `@domain`).
    pub fn with_blocklist(mut self, entries: &[String]) -> Self {
        self.blocklist = entries.iter().map(|e| e.trim().to_lowercase()).collect();
        self
    }

    /// Whether the tenant blocked this sender.
    pub fn is_blocked(&self, sender: &str) -> bool {
        blocked(&self.blocklist, sender)
    }

    /// Lets this handle store attachment bytes that connectors hand over with a message.
    pub fn with_blobs(mut self, blobs: BlobStore) -> Self {
        self.blobs = Some(blobs);
        self
    }

    fn apply_blocklist(&self, msg: &mut InboundMessage) {
        if self.is_blocked(&msg.from.value) && !msg.flags.contains(&Flag::Blocked) {
            msg.flags.push(Flag::Blocked);
            msg.flags.sort();
        }
    }

    /// [`Self::store_contents`] for a whole batch, in one blocking task.
    async fn store_batch_contents(
        &self,
        items: &mut [(JournalEntry, InboundMessage)],
    ) -> Result<(), IngestError> {
        let mut messages: Vec<&mut InboundMessage> = items.iter_mut().map(|(_, m)| m).collect();
        self.store_attachment_bytes(&mut messages).await
    }

    /// Writes the attachment bytes of several messages to the blob store now, in one
    /// blocking task, and puts each attachment's [`PreparedBlob`](crate::infra::blob::PreparedBlob)
    /// in `stored` (the only way a row gets a storage key). A sync engine calls this while
    /// earlier mail is being stored, so that storing the batch later writes no files;
    /// [`Self::mail_batch`] does it for whatever is left.
    pub async fn store_attachment_bytes(
        &self,
        messages: &mut [&mut InboundMessage],
    ) -> Result<(), IngestError> {
        let mut contents = Vec::new();
        let mut places = Vec::new();
        for (i, msg) in messages.iter_mut().enumerate() {
            for (j, a) in msg.attachments.iter_mut().enumerate() {
                if let Some(bytes) = a.content.take() {
                    contents.push(bytes);
                    places.push((i, j));
                }
            }
        }
        if contents.is_empty() {
            return Ok(());
        }
        let blobs = self.blobs.as_ref().ok_or_else(|| {
            IngestError::Blob("attachment bytes given but no blob store configured".into())
        })?;
        let prepared = blobs.prepare(contents).await?;
        for ((i, j), blob) in places.into_iter().zip(prepared) {
            if let Some(a) = messages.get_mut(i).and_then(|m| m.attachments.get_mut(j)) {
                a.stored = Some(blob);
            }
        }
        Ok(())
    }

    /// Writes the bytes a connector holds to the blob store (content-addressed, so a retry
    /// writes nothing new) before the message that refers to them is stored.
    async fn store_contents(&self, msg: &mut InboundMessage) -> Result<(), IngestError> {
        self.store_attachment_bytes(&mut [msg]).await
    }

    pub fn channel(&self) -> &ChannelRef {
        &self.channel
    }

    /// Stores one inbound message exactly once.
    pub async fn message(
        &self,
        mut journal: JournalEntry,
        mut msg: InboundMessage,
    ) -> Result<IngestOutcome, IngestError> {
        // One sanitizing step for every connector: text both databases can store.
        ingest_text::clean_journal(&mut journal);
        ingest_text::clean_message(&mut msg);
        validate(&journal, &msg)?;
        apply_consent_flags(&mut msg);
        self.apply_blocklist(&mut msg);
        self.store_contents(&mut msg).await?;
        let outcome = self
            .store
            .ingest_message(&self.channel, &journal, &msg)
            .await?;
        let channel = self.channel.channel_id.clone();
        match &outcome {
            IngestOutcome::Stored { .. } => {
                metrics::counter!(crate::infra::metrics::INGESTED, "channel" => channel)
                    .increment(1);
                if !msg.attachments.is_empty() {
                    self.jobs.notify_one();
                }
            }
            IngestOutcome::Duplicate => {
                metrics::counter!(crate::infra::metrics::DUPLICATES, "channel" => channel, "kind" => "message").increment(1);
            }
        }
        tracing::debug!(channel = %self.channel.channel_id, key = %journal.idempotency_key, ?outcome, "ingested message");
        Ok(outcome)
    }

    /// Stores a batch of fetched mail and moves the folder's cursor with it, in one
    /// transaction: the cursor never passes a message that is not stored. Invalid items
    /// (no Message-ID, no sender) are refused before anything is written.
    pub async fn mail_batch(
        &self,
        position: &FolderPosition,
        mut items: Vec<(JournalEntry, InboundMessage)>,
    ) -> Result<Vec<IngestOutcome>, IngestError> {
        for (journal, msg) in &mut items {
            ingest_text::clean_journal(journal);
            ingest_text::clean_message(msg);
            validate(journal, msg)?;
            apply_consent_flags(msg);
            self.apply_blocklist(msg);
        }
        self.store_batch_contents(&mut items).await?;
        let outcomes = self
            .store
            .ingest_mail_batch(&self.channel, position, &items)
            .await?;
        let channel = self.channel.channel_id.clone();
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Stored { .. }))
            .count();
        metrics::counter!(crate::infra::metrics::INGESTED, "channel" => channel.clone())
            .increment(stored as u64);
        metrics::counter!(crate::infra::metrics::DUPLICATES, "channel" => channel, "kind" => "message")
            .increment((outcomes.len() - stored) as u64);
        if stored > 0 && items.iter().any(|(_, m)| !m.attachments.is_empty()) {
            self.jobs.notify_one();
        }
        Ok(outcomes)
    }

    /// Applies one delivery status report (forward-only) exactly once.
    pub async fn status(
        &self,
        mut journal: JournalEntry,
        mut update: StatusUpdate,
    ) -> Result<StatusOutcome, IngestError> {
        ingest_text::clean_journal(&mut journal);
        ingest_text::clean_status(&mut update);
        if update.provider_message_id.trim().is_empty() {
            return Err(IngestError::Invalid("status without a message id".into()));
        }
        check_journal(&journal)?;
        let outcome = self
            .store
            .ingest_status(&self.channel, &journal, &update)
            .await?;
        if outcome == StatusOutcome::Duplicate {
            metrics::counter!(crate::infra::metrics::DUPLICATES, "channel" => self.channel.channel_id.clone(), "kind" => "status")
                .increment(1);
        }
        tracing::debug!(channel = %self.channel.channel_id, key = %journal.idempotency_key, ?outcome, "ingested status");
        Ok(outcome)
    }

    /// Sets or removes a contact's reaction on a message, exactly once.
    pub async fn reaction(
        &self,
        mut journal: JournalEntry,
        mut reaction: ReactionUpdate,
    ) -> Result<ReactionOutcome, IngestError> {
        ingest_text::clean_journal(&mut journal);
        ingest_text::clean_reaction(&mut reaction);
        if reaction.target_provider_id.trim().is_empty() || reaction.from.value.trim().is_empty() {
            return Err(IngestError::Invalid(
                "reaction without a target or sender".into(),
            ));
        }
        check_journal(&journal)?;
        let outcome = self
            .store
            .ingest_reaction(&self.channel, &journal, &reaction)
            .await?;
        tracing::debug!(channel = %self.channel.channel_id, key = %journal.idempotency_key, ?outcome, "ingested reaction");
        Ok(outcome)
    }

    /// Where this channel's sync of `folder` stands (`None` before its first batch).
    pub async fn folder_position(
        &self,
        folder: &str,
    ) -> Result<Option<FolderPosition>, IngestError> {
        self.store
            .folder_position(&self.channel.channel_id, folder)
            .await
            .map_err(IngestError::from)
    }

    /// Records a sync run (or its progress) of one of this channel's folders.
    pub async fn record_sync_run(
        &self,
        folder: &str,
        error: Option<String>,
        backlog_total: usize,
        backlog_done: usize,
    ) -> Result<(), IngestError> {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.store
            .record_sync_run(&SyncRun {
                channel_id: self.channel.channel_id.clone(),
                folder: folder.to_string(),
                error,
                backlog_total: count(backlog_total),
                backlog_done: count(backlog_done),
            })
            .await
            .map_err(IngestError::from)
    }

    /// Takes or renews this channel's sync lease (one replica syncs a mailbox at a time).
    pub async fn acquire_sync_lease(&self, holder: &str, ttl_ms: i64) -> Result<bool, IngestError> {
        self.store
            .acquire_sync_lease(&self.channel.channel_id, holder, ttl_ms)
            .await
            .map_err(IngestError::from)
    }

    /// Gives this channel's sync lease up, if `holder` has it.
    pub async fn release_sync_lease(&self, holder: &str) -> Result<(), IngestError> {
        self.store
            .release_sync_lease(&self.channel.channel_id, holder)
            .await
            .map_err(IngestError::from)
    }

    /// Journals a delivery that carries nothing to apply; false if it was a duplicate.
    pub async fn journal_only(&self, mut journal: JournalEntry) -> Result<bool, IngestError> {
        ingest_text::clean_journal(&mut journal);
        check_journal(&journal)?;
        Ok(self.store.journal_only(&self.channel, &journal).await?)
    }
}

fn check_journal(journal: &JournalEntry) -> Result<(), IngestError> {
    if journal.idempotency_key.trim().is_empty() || journal.idempotency_key.len() > 512 {
        return Err(IngestError::Invalid(
            "idempotency key empty or too long".into(),
        ));
    }
    Ok(())
}

fn validate(journal: &JournalEntry, msg: &InboundMessage) -> Result<(), IngestError> {
    check_journal(journal)?;
    if msg.provider_message_id.trim().is_empty() {
        return Err(IngestError::Invalid("message without a provider id".into()));
    }
    if msg.from.value.trim().is_empty() {
        return Err(IngestError::Invalid("message without a sender".into()));
    }
    Ok(())
}

/// Whether `sender` matches an entry: the same address or number (case-insensitive), or an
/// `@domain` entry naming its domain or a parent domain.
fn blocked(list: &[String], sender: &str) -> bool {
    let sender = sender.trim().to_lowercase();
    let domain = sender.rsplit_once('@').map(|(_, d)| d);
    list.iter().any(|entry| match entry.strip_prefix('@') {
        Some(blocked_domain) => domain.is_some_and(|d| {
            d == blocked_domain
                || d.strip_suffix(blocked_domain)
                    .is_some_and(|rest| rest.ends_with('.'))
        }),
        None => *entry == sender,
    })
}

/// A consent change is a flag too, so it never bumps unread counts or triggers automation.
fn apply_consent_flags(msg: &mut InboundMessage) {
    let flag = match msg.consent {
        Some(Consent::OptOut) => Some(Flag::OptOut),
        Some(Consent::OptIn) => Some(Flag::OptIn),
        None => None,
    };
    if let Some(f) = flag
        && !msg.flags.contains(&f)
    {
        msg.flags.push(f);
    }
    msg.flags.sort();
    msg.flags.dedup();
}

#[cfg(test)]
mod tests {
    use super::blocked;

    #[test]
    fn blocklist_matches_addresses_numbers_and_domains() {
        let list: Vec<String> = ["@spam.example", "bad@ok.example", "+15550100"]
            .map(String::from)
            .to_vec();
        assert!(blocked(&list, "x@spam.example"));
        assert!(blocked(&list, "X@Mail.Spam.Example"));
        assert!(!blocked(&list, "x@notspam.example"));
        assert!(blocked(&list, "BAD@ok.example"));
        assert!(!blocked(&list, "good@ok.example"));
        assert!(blocked(&list, "+15550100"));
        assert!(!blocked(&list, "+15550101"));
        assert!(!blocked(&[], "x@spam.example"));
    }
}
