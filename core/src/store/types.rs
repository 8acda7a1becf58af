//! Values passed into and returned from the store: filters and pages, typed rows (the API
//! turns them into its views), drafts, jobs and admin records.

use crate::domain::model::{Identity, Millis};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub contact: Option<String>,
    /// A staff identity, or the empty string for unassigned conversations.
    pub assignee: Option<String>,
    pub unread: Option<bool>,
    pub priority: Option<String>,
    pub tag: Option<String>,
    /// Only conversations changed at or after this time.
    pub updated_since: Option<Millis>,
    /// Who is asking: rows then carry that staff member's own unread count.
    pub viewer: Option<String>,
    /// Only conversations assigned to this staff identity or to no one (an agent of a
    /// tenant whose `agent_visibility` is `assigned`).
    pub visible_to: Option<String>,
}

/// Keyset pagination: an opaque cursor from the previous page and a page size.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub cursor: Option<PageCursor>,
    pub limit: i64,
}

/// A position in a list ordered by (timestamp, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub ts: Millis,
    pub id: String,
}

impl PageCursor {
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

#[derive(Debug, Clone)]
pub struct RowPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ContactRow {
    pub id: String,
    pub name: Option<String>,
    pub identities: Vec<IdentityRow>,
    /// The contact was erased (its name is then `erased`, and it has no identities).
    pub erased: bool,
}

#[derive(Debug, Clone)]
pub struct IdentityRow {
    pub kind: String,
    pub value: String,
    pub opted_out: bool,
}

#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: String,
    pub channel_id: String,
    pub channel_kind: String,
    pub contact: ContactRow,
    pub subject: Option<String>,
    pub status: String,
    pub assignee: Option<String>,
    pub priority: Option<String>,
    pub tags: Vec<String>,
    pub message_count: i64,
    pub unread_count: i64,
    /// The viewer's own unread count (see [`ConversationFilter::viewer`]): their participant
    /// row's, or the conversation's when they never opened it.
    pub my_unread_count: Option<i64>,
    pub last_message: Option<LastMessageRow>,
    pub last_message_at: Millis,
    pub last_inbound_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub external: Value,
}

/// A triage change: `None` leaves a field as it is; `priority: Some(None)` clears it;
/// `tags` replaces the whole set.
#[derive(Debug, Clone, Default)]
pub struct TriageChange {
    pub priority: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub subject: Option<String>,
}

/// What a conversation list shows of the latest message.
#[derive(Debug, Clone)]
pub struct LastMessageRow {
    pub id: String,
    pub direction: String,
    pub sender: String,
    /// The start of the text (or the subject when there is no text), on one line.
    pub snippet: String,
    pub delivery_status: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone)]
pub struct ParticipantRow {
    /// `contact` or `staff`.
    pub kind: String,
    /// The contact id, or the staff member's subject.
    pub id: String,
    pub unread_count: i64,
    pub last_read_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: String,
    pub conversation_id: String,
    pub channel_id: String,
    pub direction: String,
    /// `contact` or `staff`.
    pub sender_kind: String,
    /// The contact's address, or the staff member's subject.
    pub sender: String,
    pub recipients: Value,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub provider_message_id: Option<String>,
    pub delivery_status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub flags: Vec<String>,
    pub spam: bool,
    pub attachments: Vec<AttachmentRow>,
    /// Reactions of the contact (one per sender; removed ones are gone).
    pub reactions: Vec<ReactionRow>,
    pub external: Value,
    pub sent_at: Option<Millis>,
    pub created_at: Millis,
    /// Erased with its contact: no content, addresses or attachments left.
    pub erased: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReactionRow {
    pub message_id: String,
    pub sender: String,
    pub emoji: String,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct AttachmentRow {
    pub id: String,
    pub message_id: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub content_id: Option<String>,
    /// `pending` (being fetched), `stored`, `failed`, `too_large` or `erased`.
    pub state: String,
    pub error: Option<String>,
    pub storage_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReplyDraft {
    pub text: Option<String>,
    pub subject: Option<String>,
    pub media_urls: Vec<String>,
    /// A provider template to send instead of free text (WhatsApp).
    pub template: Option<crate::domain::model::Template>,
    /// The staff member's subject (token name, JWT `sub`).
    pub author: String,
    pub idempotency_key: Option<String>,
}

impl ReplyDraft {
    /// The key of `external` that holds [`Self::fingerprint`].
    pub const FINGERPRINT_KEY: &'static str = "request_sha256";

    /// A digest of what the request asks to send (text, subject, media, template), stored
    /// with the message: a retry with the same `Idempotency-Key` but another body is told
    /// apart from a true retry, which must replay the first answer.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let content = serde_json::json!({
            "text": self.text,
            "subject": self.subject,
            "media_urls": self.media_urls,
            "template": self.template,
        });
        hex::encode(Sha256::digest(content.to_string().as_bytes()))
    }

    /// Whether `message`, found under this draft's idempotency key, was made from the same
    /// body. Messages stored before fingerprints existed are taken to match.
    pub fn same_request_as(&self, message: &MessageRow) -> bool {
        message
            .external
            .get(Self::FINGERPRINT_KEY)
            .and_then(Value::as_str)
            .is_none_or(|f| f == self.fingerprint())
    }
}

#[derive(Debug, Clone)]
pub struct StartConversation {
    pub channel_id: String,
    /// How the channel threads (its connector declares it): a chat channel reuses the
    /// contact's open conversation, a mail channel starts a new one per new mail.
    pub threading: crate::contract::ingest_types::Threading,
    pub to: Identity,
    pub contact_name: Option<String>,
    pub draft: ReplyDraft,
}

#[derive(Debug, Clone)]
pub struct UnreadRow {
    /// Conversations (open) with messages no staff member has read.
    pub conversations: i64,
    pub messages: i64,
    /// Unread messages in the conversations the caller takes part in.
    pub mine: i64,
}

#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: String,
    pub kind: String,
    pub address: Option<String>,
    pub status: String,
    pub last_error: Option<String>,
    pub updated_at: Millis,
    /// Outbound messages waiting to be sent through this channel.
    pub outbox_pending: i64,
    /// Email channels: the sync state of each watched folder (last run, last error,
    /// messages seen and stored, backfill progress). Empty for webhook channels.
    pub sync: Vec<SyncStateRow>,
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
    /// A send job: when an earlier attempt began calling the provider (the first one; kept
    /// until the job ends). Set, an earlier attempt may have delivered the message without
    /// its outcome being recorded, and the connector is asked before sending again.
    pub send_started_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct OutboundContext {
    pub message: crate::domain::model::OutboundMessage,
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
        let c = PageCursor {
            ts: 1_700_000_000_123,
            id: "0190-abc".into(),
        };
        assert_eq!(PageCursor::decode(&c.encode()), Some(c));
        assert_eq!(PageCursor::decode("%%%"), None);
        assert_eq!(PageCursor::decode("bm9jb2xvbg"), None); // "nocolon"
    }

    #[test]
    fn millis_format_as_rfc3339() {
        assert_eq!(
            crate::domain::model::format_millis(0),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            crate::domain::model::format_millis(1_500),
            "1970-01-01T00:00:01.5Z"
        );
    }
}

/// One entry of the durable event log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// The tenant's own gap-free counter (1, 2, 3...); the SSE event id, the `since`
    /// cursor and the outgoing webhook event id.
    pub seq: i64,
    pub kind: String,
    pub payload: sqlx::types::Json<Value>,
    pub created_at: Millis,
}

/// One staff action on a conversation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    /// The staff identity: API token name or JWT `sub`.
    pub actor: String,
    /// `reply`, `read`, `status` or `assign`.
    pub action: String,
    /// What changed, e.g. `{"assignee": "bob"}`, `{"status": "closed"}`, `{"message_id": "..."}`.
    pub detail: sqlx::types::Json<Value>,
    pub created_at: Millis,
}

/// The sync state of one mailbox folder.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SyncStateRow {
    pub channel_id: String,
    pub folder: String,
    pub uidvalidity: i64,
    pub last_uid: i64,
    pub highestmodseq: Option<i64>,
    pub last_run_at: Option<Millis>,
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

/// One entry of a tenant's staff directory.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffRow {
    /// The staff identity as tokens and JWTs carry it (token name, JWT `sub`).
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Inactive entries cannot be assigned conversations.
    pub active: bool,
    /// Created or edited by an admin (otherwise only recorded when it authenticated).
    pub managed: bool,
    /// How it last authenticated (`token` or `jwt`); None if it never did.
    pub auth_kind: Option<String>,
    /// The role it last authenticated with.
    pub role: Option<String>,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A staff identity that authenticated: recorded in its tenant's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSighting {
    pub id: String,
    /// `token` or `jwt`.
    pub auth_kind: &'static str,
    pub role: Role,
}

/// A directory entry an admin adds.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
}

/// An admin's change to a directory entry: `None` leaves a field as it is; for the
/// optional texts `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct StaffChange {
    pub display_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub active: Option<bool>,
}

/// A conversation named directly or through one of its messages (the live stream's
/// events name one or the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationOf<'a> {
    Id(&'a str),
    Message(&'a str),
}
