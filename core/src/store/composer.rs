//! What staff write besides replies: retries of failed messages, internal notes and canned
//! replies. The trait and its rows; the queries are in `sql_composer.rs`.

use super::{MessageRow, PageRequest, RowPage, StoreResult};
use crate::domain::model::Millis;
use async_trait::async_trait;

/// A staff-only note on a conversation.
#[derive(Debug, Clone)]
pub struct NoteRow {
    pub id: String,
    pub conversation_id: String,
    pub author: String,
    pub body: String,
    /// Staff identities named with `@name` in the body.
    pub mentions: Vec<String>,
    pub created_at: Millis,
}

/// A tenant's reusable reply text.
#[derive(Debug, Clone)]
pub struct CannedReplyRow {
    pub id: String,
    pub shortcut: String,
    pub title: String,
    pub body: String,
    pub created_by: String,
    pub updated_at: Millis,
}

/// The fields of a canned reply to create or replace.
#[derive(Debug, Clone)]
pub struct CannedDraft {
    pub shortcut: String,
    pub title: String,
    pub body: String,
}

#[async_trait]
pub trait ComposerStore: Send + Sync {
    /// Queues a failed (or undelivered) outbound message for sending again: status back to
    /// `queued`, error cleared, a new send job, audited, `message.updated`. Refused for any
    /// other message; the contact's opt-out still applies.
    async fn retry_message(&self, tenant: &str, id: &str, staff: &str) -> StoreResult<MessageRow>;
    /// Adds a note (never sent); `note.created`, and `staff.mentioned` per mention.
    async fn add_note(
        &self,
        tenant: &str,
        conversation: &str,
        author: &str,
        body: &str,
        mentions: &[String],
    ) -> StoreResult<NoteRow>;
    /// A conversation's notes, newest first.
    async fn list_notes(
        &self,
        tenant: &str,
        conversation: &str,
        page: &PageRequest,
    ) -> StoreResult<RowPage<NoteRow>>;
    /// The tenant's canned replies, by shortcut.
    async fn list_canned(&self, tenant: &str) -> StoreResult<Vec<CannedReplyRow>>;
    /// Creates (`id` None) or replaces a canned reply; a shortcut another reply has is
    /// refused.
    async fn put_canned(
        &self,
        tenant: &str,
        id: Option<&str>,
        draft: &CannedDraft,
        staff: &str,
    ) -> StoreResult<CannedReplyRow>;
    async fn delete_canned(&self, tenant: &str, id: &str) -> StoreResult<()>;
}
