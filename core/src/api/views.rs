//! The API's view types: what responses and live events show, with their OpenAPI schemas.
//!
//! The store returns typed rows ([`crate::store`]); each view here is built from its row in
//! one `From` impl, so the wire format (RFC 3339 times, renamed and hidden fields) is the
//! API's alone and a database column never leaks by accident. Message and attachment views
//! are built with `new(row, urls)`: they carry signed media URLs ([`MediaUrls`]).

use super::media::MediaUrls;
use crate::domain::model::{Millis, format_millis};
use crate::store::{
    AttachmentRow, AuditRow, ChannelRow, ContactRow, EventRow, IdentityRow, MessageRow,
    ParticipantRow, ReactionRow, RowPage, SyncStateRow, UnreadRow, WebhookDeliveryRow,
    WebhookEndpointRow,
};
use serde::{Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

pub use super::conversation_views::{ConversationPage, ConversationView, LastMessageView};
mod staff;
pub use staff::{AuthKind, ConversationVisibility, MeView, StaffRole, StaffView};

/// Who is on a side of a conversation: the contact, or a staff member.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartyKind {
    Contact,
    Staff,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentState {
    /// Being fetched from the provider; download answers 409 `attachment_pending`.
    Pending,
    /// Downloadable.
    Stored,
    /// Could not be fetched; download answers 409 `attachment_failed`.
    Failed,
    /// Over the size limit: not kept (`size` says how large it was); download answers 409
    /// `attachment_too_large`.
    #[serde(rename = "too_large")]
    TooLarge,
    /// Erased with its contact: no name, type, size or bytes left; download answers 409
    /// `attachment_erased`.
    Erased,
}

/// The addresses of a message: inbound messages have `from`, `to` and `cc`, outbound ones `to`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"from": ["+14155550123"], "to": ["+14155550100"], "cc": []}))]
pub struct Recipients {
    #[schema(required = false)]
    pub from: Vec<String>,
    #[schema(required = false)]
    pub to: Vec<String>,
    #[schema(required = false)]
    pub cc: Vec<String>,
}

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

/// An endpoint as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpointView {
    #[schema(example = "crm")]
    pub id: String,
    #[schema(example = "https://crm.example/hooks/switchboard")]
    pub url: String,
    /// Event types and prefixes delivered; empty means every event.
    #[schema(example = json!(["message.*", "conversation.updated"]))]
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    #[schema(example = "enabled")]
    pub state: String,
    /// Why the endpoint was disabled (while disabled).
    pub disabled_reason: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub disabled_at: Option<Millis>,
    /// The id of the last event delivered (or passed over by the filter).
    pub cursor: i64,
    pub consecutive_failures: i64,
    /// The HTTP status of the last attempt (null: none yet, or no response).
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_attempt_at: Option<Millis>,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_success_at: Option<Millis>,
    /// When the next retry is due, while failing.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub next_attempt_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

impl From<WebhookEndpointRow> for WebhookEndpointView {
    fn from(r: WebhookEndpointRow) -> Self {
        Self {
            id: r.id,
            url: r.url,
            events: r.events,
            state: r.state,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            cursor: r.cursor,
            consecutive_failures: r.consecutive_failures,
            last_status: r.last_status,
            last_error: r.last_error,
            last_attempt_at: r.last_attempt_at,
            last_success_at: r.last_success_at,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
        }
    }
}

/// One entry of the delivery log, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookDeliveryView {
    pub id: String,
    /// `event` or `test`.
    #[schema(example = "event")]
    pub kind: String,
    /// The event's id (0 for a test send).
    pub event_id: i64,
    pub event_type: String,
    pub attempt: i64,
    /// The HTTP status received (null: no response — timeout, connection error).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// A 2xx was received.
    pub success: bool,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

impl From<WebhookDeliveryRow> for WebhookDeliveryView {
    fn from(r: WebhookDeliveryRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            event_id: r.event_id,
            event_type: r.event_type,
            attempt: r.attempt,
            status_code: r.status_code,
            error: r.error,
            duration_ms: r.duration_ms,
            success: r.success,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(example = "MTcxNDU2Nzg5MDEyMzowMTkwYWJjZC0wMDAw")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of views built with `f`, for views that need more than their row.
    pub fn build<R>(r: RowPage<R>, f: impl FnMut(R) -> T) -> Self {
        Self {
            items: r.items.into_iter().map(f).collect(),
            next_cursor: r.next_cursor,
        }
    }
}

impl<R, T: From<R>> From<RowPage<R>> for Page<T> {
    fn from(r: RowPage<R>) -> Self {
        Self {
            items: r.items.into_iter().map(Into::into).collect(),
            next_cursor: r.next_cursor,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    pub id: String,
    pub name: Option<String>,
    pub identities: Vec<IdentityView>,
    /// The contact was erased: its name is `erased` and it has no identities left.
    pub erased: bool,
}

impl From<ContactRow> for ContactView {
    fn from(r: ContactRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            identities: r.identities.into_iter().map(Into::into).collect(),
            erased: r.erased,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityView {
    #[schema(value_type = crate::domain::model::IdentityKind)]
    pub kind: String,
    #[schema(example = "+14155550123")]
    pub value: String,
    pub opted_out: bool,
}

impl From<IdentityRow> for IdentityView {
    fn from(r: IdentityRow) -> Self {
        Self {
            kind: r.kind,
            value: r.value,
            opted_out: r.opted_out,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ParticipantView {
    /// `contact` or `staff`.
    #[schema(value_type = PartyKind)]
    pub kind: String,
    /// The contact id, or the staff member's subject.
    pub id: String,
    pub unread_count: i64,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_read_at: Option<Millis>,
}

impl From<ParticipantRow> for ParticipantView {
    fn from(r: ParticipantRow) -> Self {
        Self {
            kind: r.kind,
            id: r.id,
            unread_count: r.unread_count,
            last_read_at: r.last_read_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    pub conversation_id: String,
    pub channel_id: String,
    #[schema(value_type = crate::domain::model::Direction)]
    pub direction: String,
    /// `contact` or `staff`.
    #[schema(value_type = PartyKind)]
    pub sender_kind: String,
    /// The contact's address, or the staff member's subject.
    pub sender: String,
    #[schema(value_type = Recipients)]
    pub recipients: Value,
    pub subject: Option<String>,
    pub text: Option<String>,
    /// The sanitized HTML body, inline (`cid:`) images at their signed URLs.
    pub html: Option<String>,
    /// A signed URL (API origin) of the HTML body as a page for a sandboxed iframe.
    #[schema(
        example = "/api/v1/messages/0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b/html?tenant=acme&expires=1777777200&sig=q5y0bnfBZUpeE6qHWVgVwdJSqXt3v6Hh2sX0Yy3eOkA"
    )]
    pub html_url: Option<String>,
    /// When this view's signed URLs stop working (fetch the message again for new ones).
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T13:30:00Z")]
    #[serde(serialize_with = "rfc3339")]
    pub urls_expire_at: Millis,
    pub provider_message_id: Option<String>,
    #[schema(value_type = crate::domain::model::DeliveryStatus)]
    pub delivery_status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    #[schema(value_type = Vec<crate::domain::model::Flag>)]
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
    /// Erased with its contact: subject, text, html, addresses (`sender` is `erased` for
    /// the contact's own messages), `external` and attachments are gone.
    pub erased: bool,
}

impl MessageView {
    /// The view of a message, its media URLs signed by `urls`.
    pub fn new(r: MessageRow, urls: &MediaUrls<'_>) -> Self {
        let html = r
            .html
            .map(|h| urls.sign_html(&h, r.attachments.iter().map(|a| a.id.as_str())));
        let html_url = html.as_ref().map(|_| urls.message_html(&r.id));
        Self {
            id: r.id,
            conversation_id: r.conversation_id,
            channel_id: r.channel_id,
            direction: r.direction,
            sender_kind: r.sender_kind,
            sender: r.sender,
            recipients: r.recipients,
            subject: r.subject,
            text: r.text,
            html,
            html_url,
            urls_expire_at: urls.expires_at(),
            provider_message_id: r.provider_message_id,
            delivery_status: r.delivery_status,
            error_code: r.error_code,
            error_message: r.error_message,
            flags: r.flags,
            spam: r.spam,
            attachments: r
                .attachments
                .into_iter()
                .map(|a| AttachmentView::new(a, urls))
                .collect(),
            reactions: r.reactions.into_iter().map(Into::into).collect(),
            external: r.external,
            sent_at: r.sent_at,
            created_at: r.created_at,
            erased: r.erased,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReactionView {
    #[serde(skip)]
    pub message_id: String,
    pub sender: String,
    pub emoji: String,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: Millis,
}

impl From<ReactionRow> for ReactionView {
    fn from(r: ReactionRow) -> Self {
        Self {
            message_id: r.message_id,
            sender: r.sender,
            emoji: r.emoji,
            updated_at: r.updated_at,
        }
    }
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
    /// `pending` (being fetched), `stored`, `failed`, `too_large` or `erased`.
    #[schema(value_type = AttachmentState)]
    pub state: String,
    pub error: Option<String>,
    /// A signed URL (API origin) of the bytes, for `<img>` and downloads without headers.
    #[schema(
        example = "/api/v1/attachments/0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b?tenant=acme&expires=1777777200&sig=q5y0bnfBZUpeE6qHWVgVwdJSqXt3v6Hh2sX0Yy3eOkA"
    )]
    pub url: String,
    #[serde(skip)]
    pub storage_key: Option<String>,
}

impl AttachmentView {
    /// The view of an attachment, its URL signed by `urls`.
    pub fn new(r: AttachmentRow, urls: &MediaUrls<'_>) -> Self {
        Self {
            url: urls.attachment(&r.id),
            id: r.id,
            message_id: r.message_id,
            filename: r.filename,
            content_type: r.content_type,
            size: r.size,
            sha256: r.sha256,
            content_id: r.content_id,
            state: r.state,
            error: r.error,
            storage_key: r.storage_key,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnreadSummary {
    /// Conversations (open) with messages no staff member has read.
    pub conversations: i64,
    pub messages: i64,
    /// Unread messages in the conversations the caller takes part in.
    pub mine: i64,
}

impl From<UnreadRow> for UnreadSummary {
    fn from(r: UnreadRow) -> Self {
        Self {
            conversations: r.conversations,
            messages: r.messages,
            mine: r.mine,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub id: String,
    #[schema(value_type = crate::domain::model::ChannelKind)]
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

impl From<ChannelRow> for ChannelView {
    fn from(r: ChannelRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            address: r.address,
            status: r.status,
            last_error: r.last_error,
            updated_at: r.updated_at,
            outbox_pending: r.outbox_pending,
            sync: r.sync.into_iter().map(Into::into).collect(),
        }
    }
}

/// One event as live clients (SSE, WebSocket) and outgoing webhooks receive it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
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
    /// Live streams: with a `message.*` event, the message as it is now (what
    /// `GET /api/v1/messages/{id}` gives); absent when it is gone.
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<MessageView>>,
    /// Live streams: with a `conversation.*` event, the conversation as it is now; absent
    /// when it is gone.
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Box<ConversationView>>,
}

impl From<EventRow> for EventView {
    fn from(r: EventRow) -> Self {
        Self {
            seq: r.seq,
            kind: r.kind,
            payload: r.payload,
            created_at: r.created_at,
            message: None,
            conversation: None,
        }
    }
}

/// One staff action on a conversation or a contact.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    /// The staff identity: API token name or JWT `sub`.
    pub actor: String,
    /// On a conversation: `reply`, `read`, `status`, `assign`, `contact_merged` or
    /// `contact_erased`; on a contact: `update`, `merge` or `erase`.
    #[schema(example = "assign")]
    pub action: String,
    /// What changed, e.g. `{"assignee": "bob"}`, `{"status": "closed"}`, `{"message_id": "..."}`,
    /// `{"fields": ["notes"]}`, `{"from": "...", "identities": 1, "conversations": 2}`.
    #[schema(value_type = Object)]
    pub detail: sqlx::types::Json<Value>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            actor: r.actor,
            action: r.action,
            detail: r.detail,
            created_at: r.created_at,
        }
    }
}

/// The sync state of one mailbox folder.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

impl From<SyncStateRow> for SyncState {
    fn from(r: SyncStateRow) -> Self {
        Self {
            channel_id: r.channel_id,
            folder: r.folder,
            uidvalidity: r.uidvalidity,
            last_uid: r.last_uid,
            highestmodseq: r.highestmodseq,
            last_run_at: r.last_run_at,
            last_success_at: r.last_success_at,
            last_error: r.last_error,
            seen: r.seen,
            stored: r.stored,
            backlog_total: r.backlog_total,
            backlog_done: r.backlog_done,
        }
    }
}
