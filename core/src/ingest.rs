//! The ingest pipeline's entry point for connectors.
//!
//! A connector verifies and normalizes a delivery (pure), then hands the raw journal entry
//! and the normalized message to [`Ingest`]. The store applies, in one transaction:
//! journal (dedupe by unique key) → contact resolve → thread decision ([`crate::thread`]) →
//! flags → persist → event. The caller may acknowledge the provider (2xx) only after this
//! returns `Ok`, which means the event is durably stored.

use crate::model::{Consent, Flag, InboundMessage, ReactionUpdate, StatusUpdate};
use crate::store::{
    ChannelRef, FolderPosition, IngestOutcome, JournalEntry, ReactionOutcome, StatusOutcome, Store,
    StoreError,
};
use std::sync::Arc;
use tokio::sync::Notify;

/// An ingest handle bound to one channel: a connector can only write into its own channel.
#[derive(Clone)]
pub struct Ingest {
    store: Arc<dyn Store>,
    channel: ChannelRef,
    /// Wakes the job dispatcher when ingest created work (media downloads).
    jobs: Arc<Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The delivery cannot be stored as sent (empty id, bad address); answer 400.
    #[error("invalid inbound event: {0}")]
    Invalid(String),
    /// Storage failed: answer 5xx so the provider retries.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ingest {
    pub fn new(store: Arc<dyn Store>, channel: ChannelRef, jobs: Arc<Notify>) -> Self {
        Self {
            store,
            channel,
            jobs,
        }
    }

    pub fn channel(&self) -> &ChannelRef {
        &self.channel
    }

    /// Stores one inbound message exactly once.
    pub async fn message(
        &self,
        journal: JournalEntry,
        mut msg: InboundMessage,
    ) -> Result<IngestOutcome, IngestError> {
        validate(&journal, &msg)?;
        apply_consent_flags(&mut msg);
        let outcome = self
            .store
            .ingest_message(&self.channel, &journal, &msg)
            .await?;
        let channel = self.channel.channel_id.clone();
        match &outcome {
            IngestOutcome::Stored { .. } => {
                metrics::counter!(crate::metrics::INGESTED, "channel" => channel).increment(1);
                if !msg.attachments.is_empty() {
                    self.jobs.notify_one();
                }
            }
            IngestOutcome::Duplicate => {
                metrics::counter!(crate::metrics::DUPLICATES, "channel" => channel, "kind" => "message").increment(1);
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
            validate(journal, msg)?;
            apply_consent_flags(msg);
        }
        let outcomes = self
            .store
            .ingest_mail_batch(&self.channel, position, &items)
            .await?;
        let channel = self.channel.channel_id.clone();
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Stored { .. }))
            .count();
        metrics::counter!(crate::metrics::INGESTED, "channel" => channel.clone())
            .increment(stored as u64);
        metrics::counter!(crate::metrics::DUPLICATES, "channel" => channel, "kind" => "message")
            .increment((outcomes.len() - stored) as u64);
        if stored > 0 && items.iter().any(|(_, m)| !m.attachments.is_empty()) {
            self.jobs.notify_one();
        }
        Ok(outcomes)
    }

    /// Applies one delivery status report (forward-only) exactly once.
    pub async fn status(
        &self,
        journal: JournalEntry,
        update: StatusUpdate,
    ) -> Result<StatusOutcome, IngestError> {
        if update.provider_message_id.trim().is_empty() {
            return Err(IngestError::Invalid("status without a message id".into()));
        }
        check_journal(&journal)?;
        let outcome = self
            .store
            .ingest_status(&self.channel, &journal, &update)
            .await?;
        if outcome == StatusOutcome::Duplicate {
            metrics::counter!(crate::metrics::DUPLICATES, "channel" => self.channel.channel_id.clone(), "kind" => "status")
                .increment(1);
        }
        tracing::debug!(channel = %self.channel.channel_id, key = %journal.idempotency_key, ?outcome, "ingested status");
        Ok(outcome)
    }

    /// Sets or removes a contact's reaction on a message, exactly once.
    pub async fn reaction(
        &self,
        journal: JournalEntry,
        reaction: ReactionUpdate,
    ) -> Result<ReactionOutcome, IngestError> {
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

    /// Journals a delivery that carries nothing to apply; false if it was a duplicate.
    pub async fn journal_only(&self, journal: JournalEntry) -> Result<bool, IngestError> {
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
