//! The store: one trait, two implementations (SQLite, PostgreSQL), one test suite.
//!
//! The trait is split by concern (ingest, conversations, jobs, admin) so each part stays
//! readable; [`Store`] is all of them. Both implementations are generated from the same
//! query code (`sql_*` macros in this module's files): the SQL is written once in the subset
//! both databases accept (`$N` placeholders, `ON CONFLICT`, `RETURNING`), and the few places
//! where the dialects differ are constants of [`Dialect`]. Unique keys in the database, not
//! checks in code, decide what is a duplicate.

mod composer;
mod contact_types;
mod dialect;
pub(crate) mod group_commit;
mod pg_nodelay;
pub(crate) mod rows;
mod sql_admin;
mod sql_common;
mod sql_composer;
mod sql_contact_erase;
mod sql_contact_merge;
mod sql_contact_store;
mod sql_contacts;
pub(crate) mod sql_conversations;
mod sql_event_log;
mod sql_group_commit;
mod sql_ingest;
mod sql_jobs;
pub(crate) mod sql_mail_batch;
mod sql_outgoing_webhooks;
mod sql_staff;
mod sql_staff_directory;
mod sql_sync;
mod sql_threading;
mod sql_triage;
mod sql_views;
mod types;

pub mod postgres;
pub mod sqlite;

use crate::contract::ingest_types::{
    ChannelRef, FolderPosition, IngestOutcome, ReactionOutcome, StatusOutcome, SyncRun,
};
use crate::contract::journal::JournalEntry;
pub use composer::{CannedDraft, CannedReplyRow, ComposerStore, NoteRow};
pub use contact_types::*;
pub use dialect::{Dialect, EVENTS_CHANNEL};
pub use sql_outgoing_webhooks::{
    WebhookAttempt, WebhookClaim, WebhookDeliveryRow, WebhookEndpointRecord, WebhookEndpointRow,
    WebhookFailure,
};
pub use types::*;

use crate::domain::model::{InboundMessage, Millis, StatusUpdate};
use async_trait::async_trait;
use std::sync::Arc;

/// Errors of the store layer. `Refused` and `NotFound` are expected outcomes the API maps to
/// 4xx; `Database` is an internal failure whose details are logged, never shown to callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The request is valid but the stored state forbids it; the API maps it to a 409.
    #[error("{0}")]
    Refused(Refusal),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Too many deliveries are waiting for the writer: refuse this one at once (the
    /// webhook answers 503 with `Retry-After`) rather than queue without bound.
    #[error("too many deliveries waiting to be stored")]
    Overloaded,
    /// The write could not be carried out now (the writer failed or stopped).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Why the stored state refuses a change. Typed, so each caller says it in its own words
/// (the API as an error code, the CLI as a message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The contact opted out of messages on the channel (STOP).
    #[error(
        "{address} opted out of messages on this channel (they can reply START to opt back in)"
    )]
    ContactOptedOut { address: String },
    /// A configured channel id already belongs to another tenant in the database.
    #[error("channel {channel} belongs to tenant {owner}, not {tenant}")]
    ChannelTenantChanged {
        channel: String,
        owner: String,
        tenant: String,
    },
    /// A token was requested for a tenant the configuration does not declare.
    #[error("tenant {tenant:?} is not configured")]
    UnknownTenant { tenant: String },
    /// Only a failed outbound message can be sent again.
    #[error("only a failed or undelivered outbound message can be retried (this one is {status})")]
    NotRetryable { status: String },
    /// Another canned reply of the tenant has this shortcut.
    #[error("the shortcut {shortcut:?} is taken by another canned reply")]
    ShortcutTaken { shortcut: String },
    /// The tenant's staff directory already has an entry with this id.
    #[error("the staff directory already has {id:?} (change it with PATCH)")]
    StaffExists { id: String },
    /// The contact was merged into another: `into` is the one to use now.
    #[error("contact {contact} was merged into {into}")]
    ContactMerged { contact: String, into: String },
    /// The contact was erased: nothing can be done with it, nor sent to it.
    #[error("contact {contact} was erased")]
    ContactErased { contact: String },
    /// A contact named in a request body does not exist in the tenant.
    #[error("no contact {contact} in this tenant")]
    NoSuchContact { contact: String },
}

/// Ingest: the journal, dedupe, contact resolution, thread decision and persistence of
/// inbound traffic, each delivery in one transaction.
#[async_trait]
pub trait IngestStore: Send + Sync {
    /// Journals and applies one inbound message. A journal key seen before is a
    /// [`IngestOutcome::Duplicate`] and changes nothing.
    async fn ingest_message(
        &self,
        channel: &ChannelRef,
        journal: &JournalEntry,
        msg: &InboundMessage,
    ) -> StoreResult<IngestOutcome>;

    /// Ingests a batch of fetched mail and moves the folder's cursor in the same
    /// transaction, so a cursor never passes a message that is not stored. Each item is
    /// deduplicated like [`IngestStore::ingest_message`]. A new UIDVALIDITY replaces the
    /// position (the caller resyncs; duplicates are caught by their journal keys).
    async fn ingest_mail_batch(
        &self,
        channel: &ChannelRef,
        position: &FolderPosition,
        items: &[(JournalEntry, InboundMessage)],
    ) -> StoreResult<Vec<IngestOutcome>>;

    /// Journals and applies one delivery status report, forward-only.
    async fn ingest_status(
        &self,
        channel: &ChannelRef,
        journal: &JournalEntry,
        update: &StatusUpdate,
    ) -> StoreResult<StatusOutcome>;

    /// Journals and applies one reaction (set or removed) to a message of the channel.
    async fn ingest_reaction(
        &self,
        channel: &ChannelRef,
        journal: &JournalEntry,
        reaction: &crate::domain::model::ReactionUpdate,
    ) -> StoreResult<ReactionOutcome>;

    /// Journals an event that carries nothing to apply (kept for replay and audit).
    async fn journal_only(&self, channel: &ChannelRef, journal: &JournalEntry)
    -> StoreResult<bool>;

    /// A channel's journal, oldest first, at most `limit` entries (for replay and audit;
    /// [`JournalEntry::raw_payload`] gives each payload as received).
    async fn journal_entries(&self, channel_id: &str, limit: i64)
    -> StoreResult<Vec<JournalEntry>>;
}

/// Conversations and messages as the API sees them; every call is tenant-scoped and
/// another tenant's object is [`StoreError::NotFound`].
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn list_conversations(
        &self,
        tenant: &str,
        filter: &ConversationFilter,
        page: &PageRequest,
    ) -> StoreResult<RowPage<ConversationRow>>;
    /// How many conversations match `filter` (paging aside).
    async fn count_conversations(
        &self,
        tenant: &str,
        filter: &ConversationFilter,
    ) -> StoreResult<i64>;
    async fn get_conversation(&self, tenant: &str, id: &str) -> StoreResult<ConversationRow>;
    async fn list_participants(
        &self,
        tenant: &str,
        conversation: &str,
    ) -> StoreResult<Vec<ParticipantRow>>;
    async fn list_messages(
        &self,
        tenant: &str,
        conversation: &str,
        page: &PageRequest,
    ) -> StoreResult<RowPage<MessageRow>>;
    async fn get_message(&self, tenant: &str, id: &str) -> StoreResult<MessageRow>;
    /// Writes a staff reply and its outbox job in one transaction. Returns the message and
    /// whether it was created now (false: the idempotency key was used before).
    async fn create_reply(
        &self,
        tenant: &str,
        conversation: &str,
        draft: &ReplyDraft,
    ) -> StoreResult<(MessageRow, bool)>;
    /// Opens a conversation with a contact on a channel and queues the first message.
    async fn start_conversation(
        &self,
        tenant: &str,
        start: &StartConversation,
    ) -> StoreResult<(MessageRow, bool)>;
    async fn mark_read(
        &self,
        tenant: &str,
        conversation: &str,
        staff: &str,
    ) -> StoreResult<ConversationRow>;
    async fn set_status(
        &self,
        tenant: &str,
        conversation: &str,
        status: crate::domain::model::ConversationStatus,
        staff: &str,
    ) -> StoreResult<ConversationRow>;
    async fn assign(
        &self,
        tenant: &str,
        conversation: &str,
        assignee: Option<&str>,
        staff: &str,
    ) -> StoreResult<ConversationRow>;
    /// Changes priority, tags and subject together (absent fields stay).
    async fn update_triage(
        &self,
        tenant: &str,
        conversation: &str,
        change: &TriageChange,
        staff: &str,
    ) -> StoreResult<ConversationRow>;
    /// Unread counts; with `visible_to`, only of conversations assigned to that staff
    /// identity or to no one.
    async fn unread_summary(
        &self,
        tenant: &str,
        staff: &str,
        visible_to: Option<&str>,
    ) -> StoreResult<UnreadRow>;
    async fn get_attachment(&self, tenant: &str, id: &str) -> StoreResult<AttachmentRow>;
    async fn list_channels(&self, tenant: &str) -> StoreResult<Vec<ChannelRow>>;
    /// The audit trail of staff actions on a conversation, newest first.
    async fn list_audit(
        &self,
        tenant: &str,
        conversation: &str,
        page: &PageRequest,
    ) -> StoreResult<RowPage<AuditRow>>;
    /// The reply token of a conversation (for the Reply-To of outbound mail).
    async fn reply_token(&self, conversation: &str) -> StoreResult<Option<String>>;
    /// Queues a read receipt for the conversation's latest inbound message; false if none.
    async fn queue_read_receipt(&self, tenant: &str, conversation: &str) -> StoreResult<bool>;
}

/// The contact directory: search, details, changes, merges and erasure. Every call is
/// tenant-scoped (another tenant's contact is [`StoreError::NotFound`]); a merged contact is
/// refused with [`Refusal::ContactMerged`] naming its survivor, an erased one with
/// [`Refusal::ContactErased`].
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Live contacts, newest first (merged and erased ones are not listed).
    async fn list_contacts(
        &self,
        tenant: &str,
        filter: &ContactFilter,
        page: &PageRequest,
    ) -> StoreResult<RowPage<ContactDetailRow>>;
    async fn get_contact(&self, tenant: &str, id: &str) -> StoreResult<ContactDetailRow>;
    /// Applies a change, with an audit entry and a `contact.updated` event (none when the
    /// change names no field).
    async fn update_contact(
        &self,
        tenant: &str,
        id: &str,
        patch: &ContactPatch,
        actor: &str,
    ) -> StoreResult<ContactDetailRow>;
    /// The contact's conversations on every channel, newest activity first.
    async fn list_contact_conversations(
        &self,
        tenant: &str,
        id: &str,
        page: &PageRequest,
    ) -> StoreResult<RowPage<ConversationRow>>;
    /// Staff actions on the contact (updates, merges), newest first.
    async fn list_contact_audit(
        &self,
        tenant: &str,
        id: &str,
        page: &PageRequest,
    ) -> StoreResult<RowPage<AuditRow>>;
    /// Moves `from`'s identities, conversations and participations to `into` and leaves
    /// `from` a tombstone naming `into`, with an audit entry and a `contact.merged` event, in
    /// one transaction. A `from` merged before stands for its survivor; one already merged
    /// into `into` changes nothing. An unknown `from` is [`Refusal::NoSuchContact`].
    async fn merge_contacts(
        &self,
        tenant: &str,
        into: &str,
        from: &str,
        actor: &str,
    ) -> StoreResult<ContactDetailRow>;
    /// Erases the contact's data in one transaction (see `sql_contact_erase`): the caller
    /// deletes the returned blobs afterwards.
    async fn erase_contact(&self, tenant: &str, id: &str, actor: &str) -> StoreResult<Erasure>;
    /// Whether any attachment (of any tenant: blobs are shared) names these bytes.
    async fn blob_in_use(&self, storage_key: &str) -> StoreResult<bool>;
}

/// The durable job queue behind the outbox and media downloads.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Claims one due job for `lease_ms`; safe with many workers and replicas.
    async fn claim_job(&self, now: Millis, lease_ms: i64) -> StoreResult<Option<Job>>;
    /// Everything a send job needs, with the message set to `sending` and the attempt's
    /// start recorded (the first attempt's is kept: [`Job::send_started_at`]).
    async fn outbound_for_job(&self, job: &Job) -> StoreResult<OutboundContext>;
    /// Whether a message of the channel already has this provider id (a provider's match
    /// for an interrupted send that is in fact another message's).
    async fn provider_id_in_use(
        &self,
        channel_id: &str,
        provider_message_id: &str,
    ) -> StoreResult<bool>;
    async fn job_sent(
        &self,
        job: &Job,
        receipt: &crate::domain::model::SendReceipt,
    ) -> StoreResult<()>;
    async fn job_retry(&self, job: &Job, next_at: Millis, error: &str) -> StoreResult<()>;
    /// Gives up on a job; a send job's message becomes `failed` with the error code.
    async fn job_failed(&self, job: &Job, code: &str, message: &str) -> StoreResult<()>;
    async fn media_for_job(&self, job: &Job) -> StoreResult<MediaJobContext>;
    /// The provider id of the message a read-receipt job is about.
    async fn read_receipt_target(&self, job: &Job) -> StoreResult<String>;
    /// Ends a job that needs no further record (read receipts).
    async fn job_done(&self, job: &Job) -> StoreResult<()>;
    /// Records the fetched bytes of an attachment; false if the attachment was erased
    /// meanwhile (it does not name the bytes: delete them unless [`ContactStore::blob_in_use`]).
    async fn attachment_stored(&self, job: &Job, stored: &StoredBlob) -> StoreResult<bool>;
    /// Outbound messages waiting to be sent, and when the oldest of them was queued.
    async fn outbox_stats(&self) -> StoreResult<(i64, Option<Millis>)>;
    /// The earliest time a pending job becomes due, for the dispatcher's sleep.
    async fn next_job_due(&self) -> StoreResult<Option<Millis>>;
}

/// Tenants, channels and tokens: what configuration and the CLI manage.
#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn migrate(&self) -> StoreResult<()>;
    /// Applied migration versions and whether all known ones are applied.
    async fn migrations_applied(&self) -> StoreResult<bool>;
    async fn sync_tenants_and_channels(
        &self,
        tenants: &[TenantRecord],
        channels: &[ChannelRecord],
    ) -> StoreResult<()>;
    /// Marks `removed` every channel whose id is not in `configured` (the configuration
    /// dropped it): it stays for its history, but is no longer listed as active. A channel
    /// configured again becomes active at the next [`Self::sync_tenants_and_channels`].
    async fn retire_unconfigured_channels(&self, configured: &[String]) -> StoreResult<u64>;
    async fn create_token(&self, token: &NewToken) -> StoreResult<()>;
    /// Revokes by id or name within a tenant; returns how many were revoked.
    async fn revoke_token(&self, tenant: &str, id_or_name: &str) -> StoreResult<u64>;
    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    async fn set_channel_status(
        &self,
        channel: &str,
        status: &str,
        error: Option<&str>,
    ) -> StoreResult<()>;
}

/// The durable event log (`message.created`, `conversation.updated`, ...), written in the
/// same transactions as the changes it reports. Event ids count per tenant: 1, 2, 3...
#[async_trait]
pub trait EventStore: Send + Sync {
    /// A tenant's events after `after` (exclusive), oldest first.
    async fn events_since(
        &self,
        tenant: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>>;
    /// A tenant's oldest retained event id and its newest id ever (its head; 0 before its
    /// first event). With nothing retained, the oldest is `head + 1`.
    async fn event_bounds(&self, tenant: &str) -> StoreResult<(i64, i64)>;
    /// Every tenant's head (newest event id): the change signal of live streams.
    async fn event_heads(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Deletes events created before `before`; returns how many.
    async fn prune_events(&self, before: Millis) -> StoreResult<u64>;
}

/// Outgoing webhooks: endpoints from configuration, each with a cursor into its tenant's
/// event log, claimed with a lease for in-order delivery, and the delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Makes the stored endpoints match configuration. A new endpoint starts at its tenant's
    /// newest event (no history flood); a known one keeps its cursor, state and failures; one
    /// no longer configured is marked removed (never delivered to, not listed).
    async fn sync_webhook_endpoints(&self, endpoints: &[WebhookEndpointRecord]) -> StoreResult<()>;
    async fn list_webhook_endpoints(&self, tenant: &str) -> StoreResult<Vec<WebhookEndpointRow>>;
    async fn get_webhook_endpoint(&self, tenant: &str, id: &str)
    -> StoreResult<WebhookEndpointRow>;
    /// Claims one enabled, due endpoint that owes events, for `lease_ms`; safe with many
    /// workers and replicas.
    async fn claim_webhook_endpoint(
        &self,
        now: Millis,
        lease_ms: i64,
    ) -> StoreResult<Option<WebhookClaim>>;
    /// Moves the claim's cursor to `seq` and extends its lease. With an attempt (a 2xx) the
    /// failure count resets and the attempt is logged; without one (events the endpoint's
    /// filter passes over) only the cursor moves. False if the lease was lost.
    async fn webhook_advance(
        &self,
        claim: &mut WebhookClaim,
        seq: i64,
        attempt: Option<&WebhookAttempt>,
        lease_ms: i64,
    ) -> StoreResult<bool>;
    /// Logs a failed attempt, counts it, schedules the retry at `next_at` and releases the
    /// claim; at `disable_after` consecutive failures disables the endpoint (and writes a
    /// `webhook.disabled` event).
    async fn webhook_failed(
        &self,
        claim: &WebhookClaim,
        attempt: &WebhookAttempt,
        next_at: Millis,
        disable_after: i64,
    ) -> StoreResult<WebhookFailure>;
    /// Ends a claim; the endpoint is due again at `next_at`.
    async fn release_webhook_endpoint(
        &self,
        claim: &WebhookClaim,
        next_at: Millis,
    ) -> StoreResult<()>;
    /// Re-enables an endpoint of the tenant and resets its failures (due at once).
    async fn enable_webhook_endpoint(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<WebhookEndpointRow>;
    /// Logs an attempt made outside a claim (a test send).
    async fn record_webhook_delivery(&self, attempt: &WebhookAttempt) -> StoreResult<()>;
    /// An endpoint's delivery log, newest first; NotFound for another tenant's endpoint.
    async fn list_webhook_deliveries(
        &self,
        tenant: &str,
        endpoint: &str,
        page: &PageRequest,
    ) -> StoreResult<RowPage<WebhookDeliveryRow>>;
    /// Deletes log entries created before `before`; returns how many.
    async fn prune_webhook_deliveries(&self, before: Millis) -> StoreResult<u64>;
    /// The earliest future time an enabled endpoint's retry or lease comes due.
    async fn next_webhook_due(&self, now: Millis) -> StoreResult<Option<Millis>>;
}

/// The staff directory of each tenant: identities seen authenticating and entries admins
/// manage. Every call is tenant-scoped.
#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Records that an identity authenticated: a new entry if it has none, else its last
    /// sighting (how, with which role, when) is updated.
    async fn record_staff_seen(&self, tenant: &str, seen: &StaffSighting) -> StoreResult<()>;
    /// The directory, by id.
    async fn list_staff(&self, tenant: &str, page: &PageRequest) -> StoreResult<RowPage<StaffRow>>;
    async fn get_staff(&self, tenant: &str, id: &str) -> StoreResult<StaffRow>;
    /// Adds an entry; [`Refusal::StaffExists`] if the id has one.
    async fn create_staff(&self, tenant: &str, entry: &NewStaff) -> StoreResult<StaffRow>;
    async fn update_staff(
        &self,
        tenant: &str,
        id: &str,
        change: &StaffChange,
    ) -> StoreResult<StaffRow>;
    async fn delete_staff(&self, tenant: &str, id: &str) -> StoreResult<()>;
    /// Who a conversation (named by its id or one of its messages) is assigned to;
    /// [`StoreError::NotFound`] if it is not one of the tenant's.
    async fn conversation_assignee(
        &self,
        tenant: &str,
        of: ConversationOf<'_>,
    ) -> StoreResult<Option<String>>;
}

/// Mailbox sync state (email): what `/metrics` and the channels API report.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Sync state of every mailbox folder, of one tenant or of all.
    async fn sync_states(&self, tenant: Option<&str>) -> StoreResult<Vec<SyncStateRow>>;
    /// Records one sync run of a folder (and emits `channel.updated`).
    async fn record_sync_run(&self, run: &SyncRun) -> StoreResult<()>;
    /// Where a folder's sync stands (`None` before its first batch).
    async fn folder_position(
        &self,
        channel_id: &str,
        folder: &str,
    ) -> StoreResult<Option<FolderPosition>>;
    /// Takes or renews the channel's sync lease for `holder` until `now + ttl_ms`; false
    /// while another holder's lease runs (so only one replica syncs a mailbox).
    async fn acquire_sync_lease(
        &self,
        channel_id: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool>;
    /// Gives the lease up (on shutdown), if `holder` has it.
    async fn release_sync_lease(&self, channel_id: &str, holder: &str) -> StoreResult<()>;
}

/// All of the store.
pub trait Store:
    IngestStore
    + ConversationStore
    + ComposerStore
    + ContactStore
    + JobStore
    + AdminStore
    + EventStore
    + WebhookStore
    + SyncStore
    + StaffStore
{
    /// The database URL's backend, for backend-specific wiring (PostgreSQL notifications).
    fn backend(&self) -> Backend;
    /// Sets the threading policy ingest applies (defaults until called).
    fn set_threading(&self, policy: crate::domain::thread::ThreadingPolicy);
}

/// Which database a store runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(sqlx::PgPool),
}

/// Opens the store the URL names (`sqlite:` or `postgres:`) and runs migrations if asked.
pub async fn open(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = Arc::new(sqlite::SqliteStore::open(url, max_connections).await?);
        // One writer: SQLite has one anyway.
        store.start_writers(1);
        Ok(store)
    } else {
        let store = Arc::new(postgres::PgStore::open(url, max_connections).await?);
        // A few writers, leaving connections for readers and the other workers: each
        // commits a batch while the next one fills.
        store.start_writers((max_connections as usize / 3).clamp(1, 4));
        Ok(store)
    }
}
