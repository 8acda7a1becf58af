//! The conversation as the API shows it: everything a list row needs in one object (the
//! contact, the channel's kind, triage fields, the latest message and the viewer's unread
//! count), so an inbox list is one request.

use super::views::{ContactView, Page, rfc3339, rfc3339_opt};
use crate::domain::model::Millis;
use crate::store::{ConversationRow, LastMessageRow, RowPage};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    pub id: String,
    #[schema(example = "acme-sms")]
    pub channel_id: String,
    /// The channel's connector type (`email`, `twilio`, `whatsapp`, ...).
    #[schema(example = "twilio")]
    pub channel_kind: String,
    pub contact: ContactView,
    pub subject: Option<String>,
    #[schema(value_type = crate::domain::model::ConversationStatus)]
    pub status: String,
    pub assignee: Option<String>,
    /// `low`, `normal`, `high` or `urgent`; null: none set.
    #[schema(value_type = Option<Priority>)]
    pub priority: Option<String>,
    #[schema(example = json!(["billing", "vip"]))]
    pub tags: Vec<String>,
    pub message_count: i64,
    /// Unread inbound messages (since any staff member last read the conversation).
    pub unread_count: i64,
    /// The caller's own unread count: since they last read it (everything unread when they
    /// never opened it). Present in lists and live events addressed to a caller.
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_unread_count: Option<i64>,
    /// The latest message, as a list shows it; null for a conversation without messages.
    pub last_message: Option<LastMessageView>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub last_message_at: Millis,
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_inbound_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
    /// When anything about the conversation last changed (messages, status, triage).
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: Millis,
    #[schema(value_type = Object)]
    pub external: Value,
}

/// A conversation's priority.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [&'static str; 4] = ["low", "normal", "high", "urgent"];
}

/// The latest message of a conversation, as a list row shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastMessageView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9c")]
    pub id: String,
    /// `inbound` or `outbound`.
    #[schema(example = "inbound")]
    pub direction: String,
    #[schema(example = "+14155550123")]
    pub sender: String,
    /// The start of the text (or the subject), on one line, at most 140 characters and an
    /// ellipsis.
    #[schema(example = "Hi! Is my order on its way?")]
    pub snippet: String,
    #[schema(value_type = crate::domain::model::DeliveryStatus)]
    pub delivery_status: String,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
}

impl From<LastMessageRow> for LastMessageView {
    fn from(r: LastMessageRow) -> Self {
        Self {
            id: r.id,
            direction: r.direction,
            sender: r.sender,
            snippet: r.snippet,
            delivery_status: r.delivery_status,
            created_at: r.created_at,
        }
    }
}

impl From<ConversationRow> for ConversationView {
    fn from(r: ConversationRow) -> Self {
        Self {
            id: r.id,
            channel_id: r.channel_id,
            channel_kind: r.channel_kind,
            contact: r.contact.into(),
            subject: r.subject,
            status: r.status,
            assignee: r.assignee,
            priority: r.priority,
            tags: r.tags,
            message_count: r.message_count,
            unread_count: r.unread_count,
            my_unread_count: r.my_unread_count,
            last_message: r.last_message.map(Into::into),
            last_message_at: r.last_message_at,
            last_inbound_at: r.last_inbound_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            external: r.external,
        }
    }
}

/// A page of conversations, with the number of all matching ones when asked for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(example = "MTcxNDU2Nzg5MDEyMzowMTkwYWJjZC0wMDAw")]
    pub next_cursor: Option<String>,
    /// How many conversations match the filters (all pages); only with `total=true`.
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

impl ConversationPage {
    pub fn new(rows: RowPage<ConversationRow>, total: Option<i64>) -> Self {
        let page: Page<ConversationView> = rows.into();
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
            total,
        }
    }
}
