//! Row shapes shared by both databases, and their conversion into API views.
//!
//! Only types both drivers decode the same way are used: text, i64, bool and JSON.

use super::contact_types::ContactDetailRow;
use super::types::*;
use crate::domain::model::Millis;
use serde_json::Value;
use sqlx::types::Json;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ConversationSql {
    pub id: String,
    pub channel_id: String,
    pub channel_kind: String,
    pub priority: Option<String>,
    pub updated_at: Millis,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub contact_erased_at: Option<Millis>,
    pub subject: Option<String>,
    pub status: String,
    pub assignee: Option<String>,
    pub message_count: i64,
    pub unread_count: i64,
    pub last_message_at: Millis,
    pub last_inbound_at: Option<Millis>,
    pub created_at: Millis,
    pub external: Json<Value>,
}

/// The select list of [`ConversationSql`] (a macro so that `concat!` can extend it: sqlx
/// wants `&'static str` queries).
macro_rules! conversation_select {
    () => {
        "SELECT c.id, c.channel_id, ch.kind AS channel_kind, c.contact_id, k.name AS contact_name,
        k.erased_at AS contact_erased_at, c.subject, c.status, c.assignee, c.priority,
        c.message_count, c.unread_count, c.last_message_at, c.last_inbound_at, c.created_at,
        c.updated_at, c.external
   FROM conversations c
   JOIN contacts k ON k.id = c.contact_id
   JOIN channels ch ON ch.id = c.channel_id "
    };
}
pub(crate) use conversation_select;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct IdentitySql {
    pub contact_id: String,
    pub kind: String,
    pub value: String,
    pub opted_out_at: Option<Millis>,
}

impl ConversationSql {
    pub fn into_view(self, identities: &[IdentitySql]) -> ConversationRow {
        ConversationRow {
            contact: ContactRow {
                identities: identities
                    .iter()
                    .filter(|i| i.contact_id == self.contact_id)
                    .map(|i| IdentityRow {
                        kind: i.kind.clone(),
                        value: i.value.clone(),
                        opted_out: i.opted_out_at.is_some(),
                    })
                    .collect(),
                id: self.contact_id,
                name: self.contact_name,
                erased: self.contact_erased_at.is_some(),
            },
            id: self.id,
            channel_id: self.channel_id,
            channel_kind: self.channel_kind,
            subject: self.subject,
            status: self.status,
            assignee: self.assignee,
            priority: self.priority,
            // Filled in by the store's list enrichment (one query per page each).
            tags: Vec::new(),
            message_count: self.message_count,
            unread_count: self.unread_count,
            my_unread_count: None,
            last_message: None,
            last_message_at: self.last_message_at,
            last_inbound_at: self.last_inbound_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            external: self.external.0,
        }
    }
}

/// A contact as the directory loads it, with its tombstone state.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ContactSql {
    pub id: String,
    pub name: Option<String>,
    pub notes: Option<String>,
    pub attributes: Json<Value>,
    pub merged_into: Option<String>,
    pub erased_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Option<Millis>,
    pub conversation_count: i64,
    pub last_activity_at: Option<Millis>,
}

/// The select list of [`ContactSql`] (`k` is the contact).
macro_rules! contact_select {
    () => {
        "SELECT k.id, k.name, k.notes, k.attributes, k.merged_into, k.erased_at, k.created_at, k.updated_at,
        (SELECT COUNT(*) FROM conversations c WHERE c.contact_id = k.id) AS conversation_count,
        (SELECT MAX(c.last_message_at) FROM conversations c WHERE c.contact_id = k.id) AS last_activity_at
   FROM contacts k "
    };
}
pub(crate) use contact_select;

impl ContactSql {
    /// The row as the directory shows it, or why it cannot be shown (merged, erased).
    pub fn live(self) -> Result<Self, super::StoreError> {
        match (&self.merged_into, self.erased_at) {
            (Some(into), _) => Err(super::StoreError::Refused(super::Refusal::ContactMerged {
                contact: self.id,
                into: into.clone(),
            })),
            (None, Some(_)) => Err(super::StoreError::Refused(super::Refusal::ContactErased {
                contact: self.id,
            })),
            (None, None) => Ok(self),
        }
    }

    pub fn into_detail(self, identities: &[IdentitySql]) -> ContactDetailRow {
        ContactDetailRow {
            identities: identities
                .iter()
                .filter(|i| i.contact_id == self.id)
                .map(|i| IdentityRow {
                    kind: i.kind.clone(),
                    value: i.value.clone(),
                    opted_out: i.opted_out_at.is_some(),
                })
                .collect(),
            id: self.id,
            name: self.name,
            notes: self.notes,
            attributes: self.attributes.0,
            conversation_count: self.conversation_count,
            last_activity_at: self.last_activity_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MessageSql {
    pub id: String,
    pub conversation_id: String,
    pub channel_id: String,
    pub direction: String,
    pub sender_kind: String,
    pub sender: String,
    pub recipients: Json<Value>,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
    pub provider_message_id: Option<String>,
    pub delivery_status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub flags: Json<Vec<String>>,
    pub spam: bool,
    pub external: Json<Value>,
    pub sent_at: Option<Millis>,
    pub created_at: Millis,
    pub erased_at: Option<Millis>,
}

macro_rules! message_select {
    () => {
        "SELECT id, conversation_id, channel_id, direction, sender_kind, sender, recipients, subject,
        text_body, html_body, provider_message_id, delivery_status, error_code, error_message,
        flags, spam, external, sent_at, created_at, erased_at
   FROM messages "
    };
}
pub(crate) use message_select;

impl MessageSql {
    pub fn into_view(self, attachments: &[AttachmentRow], reactions: &[ReactionRow]) -> MessageRow {
        MessageRow {
            reactions: reactions
                .iter()
                .filter(|r| r.message_id == self.id)
                .cloned()
                .collect(),
            attachments: attachments
                .iter()
                .filter(|a| a.message_id == self.id)
                .cloned()
                .collect(),
            id: self.id,
            conversation_id: self.conversation_id,
            channel_id: self.channel_id,
            direction: self.direction,
            sender_kind: self.sender_kind,
            sender: self.sender,
            recipients: self.recipients.0,
            subject: self.subject,
            text: self.text_body,
            html: self.html_body,
            provider_message_id: self.provider_message_id,
            delivery_status: self.delivery_status,
            error_code: self.error_code,
            error_message: self.error_message,
            flags: self.flags.0,
            spam: self.spam,
            external: self.external.0,
            sent_at: self.sent_at,
            created_at: self.created_at,
            erased: self.erased_at.is_some(),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AttachmentSql {
    pub id: String,
    pub message_id: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub content_id: Option<String>,
    pub state: String,
    pub error: Option<String>,
    pub storage_key: Option<String>,
}

macro_rules! attachment_select {
    () => {
        "SELECT id, message_id, filename, content_type, size, sha256, content_id, state, error, storage_key FROM attachments "
    };
}
pub(crate) use attachment_select;

impl From<AttachmentSql> for AttachmentRow {
    fn from(r: AttachmentSql) -> Self {
        AttachmentRow {
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

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobSql {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub ref_id: String,
    pub channel_id: String,
    pub attempts: i64,
    pub locked_until: Option<Millis>,
    pub send_started_at: Option<Millis>,
}

impl JobSql {
    pub fn into_job(self) -> Result<Job, super::StoreError> {
        let kind = JobKind::parse(&self.kind)
            .ok_or_else(|| super::StoreError::Corrupt(format!("job kind {:?}", self.kind)))?;
        Ok(Job {
            id: self.id,
            tenant_id: self.tenant_id,
            kind,
            ref_id: self.ref_id,
            channel_id: self.channel_id,
            attempts: self.attempts,
            locked_until: self.locked_until.unwrap_or_default(),
            send_started_at: self.send_started_at,
        })
    }
}

/// Pagination helper: fetch `limit + 1` rows; if the extra row exists there is a next page.
pub(crate) fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> PageCursor,
    convert: impl FnMut(R) -> T,
) -> RowPage<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| key(r).encode())
    } else {
        None
    };
    RowPage {
        items: rows.into_iter().map(convert).collect(),
        next_cursor,
    }
}

/// The latest message of a conversation, as a list shows it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LastMessageSql {
    pub conversation_id: String,
    pub id: String,
    pub direction: String,
    pub sender: String,
    pub head: Option<String>,
    pub subject: Option<String>,
    pub delivery_status: String,
    pub created_at: Millis,
}

/// Characters of a list snippet.
const SNIPPET_CHARS: usize = 140;

impl LastMessageSql {
    pub fn into_row(self) -> LastMessageRow {
        let text = self
            .head
            .filter(|t| !t.trim().is_empty())
            .or(self.subject)
            .unwrap_or_default();
        LastMessageRow {
            snippet: snippet(&text),
            id: self.id,
            direction: self.direction,
            sender: self.sender,
            delivery_status: self.delivery_status,
            created_at: self.created_at,
        }
    }
}

/// The start of `text` on one line: whitespace runs become one space, and a cut ends with
/// an ellipsis.
pub(crate) fn snippet(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippets_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(snippet("  Hello\n\n  world\t!  "), "Hello world !");
        let long = "word ".repeat(100);
        let s = snippet(&long);
        assert!(s.chars().count() <= 141, "{s}");
        assert!(s.ends_with("word…"), "{s}");
        assert_eq!(snippet(""), "");
    }
}
