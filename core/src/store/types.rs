//! Values passed into and returned from the store: journal entries, outcomes, API views,
//! jobs and admin records. Views serialize as the API shows them (RFC 3339 timestamps).

use crate::model::{Identity, Millis};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Serializes [`Millis`] as an RFC 3339 UTC timestamp.
pub fn rfc3339<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_millis(*ms))
}

/// Serializes an optional [`Millis`] as an RFC 3339 timestamp or null.
pub fn rfc3339_opt<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_millis(*ms)),
        None => s.serialize_none(),
    }
}

pub fn format_millis(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The channel a connector ingests for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    pub tenant_id: String,
    pub channel_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored {
        message_id: String,
        conversation_id: String,
        created_conversation: bool,
    },
    /// Seen before (journal key or provider message id): nothing changed.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReactionOutcome {
    /// The reaction was set on (or removed from) the message.
    Applied {
        message_id: String,
    },
    /// No message of ours has the target id (journaled, nothing else).
    UnknownMessage,
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The message moved forward to the reported status.
    Applied {
        message_id: String,
    },
    /// The message is already at or past the reported status.
    Stale {
        message_id: String,
    },
    /// No message of ours has that provider id (journaled, nothing else).
    UnknownMessage,
    Duplicate,
}

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub contact: Option<String>,
    pub assignee: Option<String>,
    pub unread: Option<bool>,
}

/// Keyset pagination: an opaque cursor from the previous page and a page size.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// A position in a list ordered by (timestamp, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts: Millis,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", self.ts, self.id))
    }

    pub fn decode(s: &str) -> Option<Self> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (ts, id) = text.split_once(':')?;
        if id.is_empty() || id.len() > 64 {
            return None;
        }
        Some(Self {
            ts: ts.parse().ok()?,
            id: id.to_string(),
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(example = "MTcxNDU2Nzg5MDEyMzowMTkwYWJjZC0wMDAw")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    pub id: String,
    pub name: Option<String>,
    pub identities: Vec<IdentityView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityView {
    #[schema(value_type = crate::model::IdentityKind)]
    pub kind: String,
    #[schema(example = "+14155550123")]
    pub value: String,
    pub opted_out: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    pub id: String,
    #[schema(example = "acme-sms")]
    pub channel_id: String,
    pub contact: ContactView,
    pub subject: Option<String>,
    #[schema(value_type = crate::model::ConversationStatus)]
    pub status: String,
    pub assignee: Option<String>,
    pub message_count: i64,
    pub unread_count: i64,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub last_message_at: Millis,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_inbound_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
    #[schema(value_type = Object)]
    pub external: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ParticipantView {
    /// `contact` or `staff`.
    #[schema(value_type = crate::api::openapi::PartyKind)]
    pub kind: String,
    /// The contact id, or the staff member's subject.
    pub id: String,
    pub unread_count: i64,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_read_at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    pub conversation_id: String,
    pub channel_id: String,
    #[schema(value_type = crate::model::Direction)]
    pub direction: String,
    /// `contact` or `staff`.
    #[schema(value_type = crate::api::openapi::PartyKind)]
    pub sender_kind: String,
    /// The contact's address, or the staff member's subject.
    pub sender: String,
    #[schema(value_type = crate::api::openapi::Recipients)]
    pub recipients: Value,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub provider_message_id: Option<String>,
    #[schema(value_type = crate::model::DeliveryStatus)]
    pub delivery_status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    #[schema(value_type = Vec<crate::model::Flag>)]
    pub flags: Vec<String>,
    pub spam: bool,
    pub attachments: Vec<AttachmentView>,
    /// Reactions of the contact (one per sender; removed ones are gone).
    pub reactions: Vec<ReactionView>,
    #[schema(value_type = Object)]
    pub external: Value,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub sent_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReactionView {
    #[serde(skip)]
    pub message_id: String,
    pub sender: String,
    pub emoji: String,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    pub id: String,
    pub message_id: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub content_id: Option<String>,
    /// `pending` (being fetched), `stored` or `failed`.
    #[schema(value_type = crate::api::openapi::AttachmentState)]
    pub state: String,
    pub error: Option<String>,
    #[serde(skip)]
    pub storage_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReplyDraft {
    pub text: Option<String>,
    pub subject: Option<String>,
    pub media_urls: Vec<String>,
    /// A provider template to send instead of free text (WhatsApp).
    pub template: Option<crate::model::Template>,
    /// The staff member's subject (token name, JWT `sub`).
    pub author: String,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StartConversation {
    pub channel_id: String,
    pub to: Identity,
    pub contact_name: Option<String>,
    pub draft: ReplyDraft,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnreadSummary {
    /// Conversations (open) with messages no staff member has read.
    pub conversations: i64,
    pub messages: i64,
    /// Unread messages in the conversations the caller takes part in.
    pub mine: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub id: String,
    #[schema(value_type = crate::model::ChannelKind)]
    pub kind: String,
    pub address: Option<String>,
    #[schema(example = "active")]
    pub status: String,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: Millis,
    /// Outbound messages waiting to be sent through this channel.
    pub outbox_pending: i64,
    /// Email channels: the sync state of each watched folder (last run, last error,
    /// messages seen and stored, backfill progress). Empty for webhook channels.
    pub sync: Vec<SyncState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Send,
    FetchMedia,
    /// Tell the provider an inbound message was read.
    ReadReceipt,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::FetchMedia => "fetch_media",
            Self::ReadReceipt => "read_receipt",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "send" => Some(Self::Send),
            "fetch_media" => Some(Self::FetchMedia),
            "read_receipt" => Some(Self::ReadReceipt),
            _ => None,
        }
    }
}

/// A claimed job. `attempts` counts this attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub tenant_id: String,
    pub kind: JobKind,
    /// The message (send) or attachment (fetch_media) the job is about.
    pub ref_id: String,
    pub channel_id: String,
    pub attempts: i64,
    /// The lease this claim holds; completing with another lease is refused.
    pub locked_until: Millis,
}

#[derive(Debug, Clone)]
pub struct OutboundContext {
    pub message: crate::model::OutboundMessage,
    /// The contact opted out of this channel since the reply was queued.
    pub opted_out: bool,
}

#[derive(Debug, Clone)]
pub struct MediaJobContext {
    pub attachment_id: String,
    pub source: String,
    pub tenant_id: String,
}

/// Bytes written to the blob store.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub storage_key: String,
    pub sha256: String,
    pub size: i64,
    pub content_type: String,
}

#[derive(Debug, Clone)]
pub struct TenantRecord {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub role: Role,
    /// sha256 of the token, hex; the token itself is never stored.
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            ts: 1_700_000_000_123,
            id: "0190-abc".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("%%%"), None);
        assert_eq!(Cursor::decode("bm9jb2xvbg"), None); // "nocolon"
    }

    #[test]
    fn millis_format_as_rfc3339() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_millis(1_500), "1970-01-01T00:00:01.5Z");
    }
}

/// One entry of the durable event log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EventRecord {
    /// Monotonic per database; the SSE event id and the WebSocket `since` cursor.
    #[serde(rename = "id")]
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    #[serde(rename = "data")]
    pub payload: sqlx::types::Json<Value>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

/// One staff action on a conversation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    /// The staff identity: API token name or JWT `sub`.
    pub actor: String,
    /// `reply`, `read`, `status` or `assign`.
    #[schema(example = "assign")]
    pub action: String,
    /// What changed, e.g. `{"assignee": "bob"}`, `{"status": "closed"}`, `{"message_id": "..."}`.
    #[schema(value_type = Object)]
    pub detail: sqlx::types::Json<Value>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

/// The sync state of one mailbox folder.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SyncState {
    pub channel_id: String,
    pub folder: String,
    pub uidvalidity: i64,
    pub last_uid: i64,
    pub highestmodseq: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_run_at: Option<Millis>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_success_at: Option<Millis>,
    pub last_error: Option<String>,
    /// Messages fetched and messages stored (new ones), since the folder was first synced.
    /// Bounces of our own mail, applied as delivery statuses, are not counted.
    pub seen: i64,
    pub stored: i64,
    /// Progress of a long backfill: done of total.
    pub backlog_total: i64,
    pub backlog_done: i64,
}

/// Where a folder's sync stands after a batch: the mailbox's UIDVALIDITY, the highest UID
/// covered, and HIGHESTMODSEQ where the server has CONDSTORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPosition {
    pub folder: String,
    pub uidvalidity: i64,
    pub last_uid: i64,
    pub highestmodseq: Option<i64>,
}

/// The outcome of one sync run of a folder (its position and counters move with the
/// batches it ingested, see `IngestStore::ingest_mail_batch`).
#[derive(Debug, Clone, Default)]
pub struct SyncRun {
    pub channel_id: String,
    pub folder: String,
    /// `None` for a successful run.
    pub error: Option<String>,
    pub backlog_total: i64,
    pub backlog_done: i64,
}
