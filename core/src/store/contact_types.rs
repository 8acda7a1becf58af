//! Values passed into and returned from the contact operations: the list filter, a
//! contact with what the directory shows of it, a change, and the record of an erasure.

use crate::domain::model::Millis;
use serde_json::Value;

/// The contact list's search.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Matches contacts whose name or any identity value contains it, ignoring case.
    pub q: Option<String>,
}

/// A live contact with its identities and activity.
#[derive(Debug, Clone)]
pub struct ContactDetailRow {
    pub id: String,
    pub name: Option<String>,
    pub notes: Option<String>,
    /// A JSON object.
    pub attributes: Value,
    pub identities: Vec<super::IdentityRow>,
    /// Conversations with this contact, on every channel.
    pub conversation_count: i64,
    /// The newest `last_message_at` of those conversations.
    pub last_activity_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Option<Millis>,
}

/// A change of a contact: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ContactPatch {
    /// `Some(None)` removes the name.
    pub name: Option<Option<String>>,
    /// `Some(None)` removes the notes.
    pub notes: Option<Option<String>>,
    /// Replaces every attribute (a JSON object).
    pub attributes: Option<Value>,
}

impl ContactPatch {
    /// The names of the fields it changes, for the audit trail and the event.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.name.is_some() {
            fields.push("name");
        }
        if self.notes.is_some() {
            fields.push("notes");
        }
        if self.attributes.is_some() {
            fields.push("attributes");
        }
        fields
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Default)]
pub struct Erasure {
    pub contact_id: String,
    /// Conversations kept, their messages erased.
    pub conversations: i64,
    pub messages: i64,
    pub attachments: i64,
    /// Raw deliveries deleted from the journal.
    pub journal_entries: i64,
    /// Storage keys of the erased attachments' bytes: delete each one no other attachment
    /// names ([`super::ContactStore::blob_in_use`]) once the erasure is committed.
    pub blob_keys: Vec<String>,
}
