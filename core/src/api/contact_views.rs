//! The contact API's wire format: the contact as the directory shows it, the record of an
//! erasure, and the request bodies of a change and a merge with their validation (a body
//! that breaks a rule is a 422 naming the field).

use super::error::ApiError;
use super::validate::{self, MAX_NAME_CHARS, MAX_TEXT_CHARS};
use super::views::{IdentityView, rfc3339, rfc3339_opt};
use crate::domain::model::Millis;
use crate::store::{ContactDetailRow, ContactPatch, Erasure};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Notes are free text up to this many characters.
pub const MAX_NOTES_CHARS: usize = MAX_TEXT_CHARS;
/// Custom attributes, as compact JSON, up to this many bytes.
pub const MAX_ATTRIBUTES_BYTES: usize = 16_384;
/// An attribute's name is 1 to this many characters.
pub const MAX_ATTRIBUTE_NAME_CHARS: usize = 128;
/// Contact ids (UUIDs) are shorter; anything longer names no contact.
const MAX_ID_CHARS: usize = 64;

/// A contact as the directory shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b",
    "name": "Ann Lee",
    "notes": "Prefers SMS after 5 pm.",
    "attributes": {"tier": "gold", "customer_id": 4711},
    "identities": [
        {"kind": "email", "value": "ann@example.com", "opted_out": false},
        {"kind": "phone", "value": "+14155550123", "opted_out": false}
    ],
    "conversation_count": 3,
    "last_activity_at": "2026-05-01T12:34:56.789Z",
    "created_at": "2026-04-02T09:00:00Z",
    "updated_at": "2026-05-01T12:40:00Z"
}))]
pub struct ContactDetailView {
    pub id: String,
    pub name: Option<String>,
    /// Staff notes about the person.
    pub notes: Option<String>,
    /// Custom attributes: a JSON object, whatever the frontend keeps there.
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// Every address of the person, on every channel.
    pub identities: Vec<IdentityView>,
    /// Conversations with the person, on every channel.
    pub conversation_count: i64,
    /// The newest activity of those conversations (null without conversations).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_activity_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "rfc3339")]
    pub created_at: Millis,
    /// When staff last changed or merged the contact.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "rfc3339_opt")]
    pub updated_at: Option<Millis>,
}

impl From<ContactDetailRow> for ContactDetailView {
    fn from(r: ContactDetailRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            notes: r.notes,
            attributes: r.attributes,
            identities: r.identities.into_iter().map(Into::into).collect(),
            conversation_count: r.conversation_count,
            last_activity_at: r.last_activity_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "contact_id": "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b",
    "conversations": 2, "messages": 14, "attachments": 3,
    "journal_entries": 11, "blobs_deleted": 2, "blobs_shared": 1
}))]
pub struct ErasureView {
    pub contact_id: String,
    /// Conversations kept, their messages erased.
    pub conversations: i64,
    /// Messages emptied (content, addresses, provider data).
    pub messages: i64,
    /// Attachments marked erased.
    pub attachments: i64,
    /// Raw deliveries deleted from the journal.
    pub journal_entries: i64,
    /// Stored files deleted.
    pub blobs_deleted: i64,
    /// Stored files kept because other attachments hold the same bytes.
    pub blobs_shared: i64,
}

impl ErasureView {
    pub fn new(e: &Erasure, blobs_deleted: i64, blobs_shared: i64) -> Self {
        Self {
            contact_id: e.contact_id.clone(),
            conversations: e.conversations,
            messages: e.messages,
            attachments: e.attachments,
            journal_entries: e.journal_entries,
            blobs_deleted,
            blobs_shared,
        }
    }
}

/// A change of a contact: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"notes": "Prefers SMS after 5 pm.", "attributes": {"tier": "gold"}}))]
pub struct ContactPatchBody {
    /// One non-blank line without control characters, at most 255 characters; null
    /// removes the name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    name: Option<Option<String>>,
    /// Free text (lines allowed, no NUL), at most 10,000 characters; null or "" removes
    /// the notes.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    notes: Option<Option<String>>,
    /// Replaces every custom attribute: a JSON object of at most 16,384 bytes (as compact
    /// JSON) whose names are 1 to 128 characters, without NUL characters; null removes them all.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
}

/// Distinguishes an explicit `null` (`Some` of the null value) from a missing field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl ContactPatchBody {
    /// The validated change (422 naming the field otherwise).
    pub fn into_patch(self) -> Result<ContactPatch, ApiError> {
        if let Some(Some(name)) = &self.name {
            validate::single_line("name", name, MAX_NAME_CHARS)?;
        }
        let notes = match self.notes {
            Some(Some(notes)) => Some(notes_value(notes)?),
            other => other,
        };
        let attributes = self.attributes.map(attributes).transpose()?;
        Ok(ContactPatch {
            name: self.name,
            notes,
            attributes,
        })
    }
}

/// Notes as stored: `None` for blank ones.
fn notes_value(notes: String) -> Result<Option<String>, ApiError> {
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(ApiError::validation(format!(
            "notes is longer than {MAX_NOTES_CHARS} characters"
        )));
    }
    if notes.contains('\0') {
        return Err(ApiError::validation(
            "notes must not contain NUL characters",
        ));
    }
    Ok(Some(notes).filter(|n| !n.trim().is_empty()))
}

/// Custom attributes as stored: an object (`{}` for null), bounded.
fn attributes(value: Value) -> Result<Value, ApiError> {
    let map = match value {
        Value::Null => return Ok(Value::Object(Default::default())),
        Value::Object(map) => map,
        _ => return Err(ApiError::validation("attributes must be a JSON object")),
    };
    if map
        .keys()
        .any(|k| k.is_empty() || k.chars().count() > MAX_ATTRIBUTE_NAME_CHARS)
    {
        return Err(ApiError::validation(format!(
            "attributes names must be 1 to {MAX_ATTRIBUTE_NAME_CHARS} characters"
        )));
    }
    let value = Value::Object(map);
    if value.to_string().len() > MAX_ATTRIBUTES_BYTES {
        return Err(ApiError::validation(format!(
            "attributes is larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON"
        )));
    }
    if contains_nul(&value) {
        return Err(ApiError::validation(
            "attributes must not contain NUL characters",
        ));
    }
    Ok(value)
}

/// Whether any string or name in the JSON holds a NUL (PostgreSQL's JSON cannot store it).
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// Which contact to merge into the one in the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9c"}))]
pub struct MergeBody {
    /// The id of the contact whose identities and conversations move to this one; it is
    /// then a tombstone whose id answers 308 to this contact. Required.
    #[schema(min_length = 1, max_length = 64)]
    pub from: String,
}

impl MergeBody {
    /// The validated `from` (422 naming the field otherwise).
    pub fn source(&self, into: &str) -> Result<&str, ApiError> {
        let from = self.from.as_str();
        if from.is_empty()
            || from.chars().count() > MAX_ID_CHARS
            || from.chars().any(char::is_control)
        {
            return Err(ApiError::validation(format!(
                "from must be a contact id (1 to {MAX_ID_CHARS} characters)"
            )));
        }
        if from == into {
            return Err(ApiError::validation(
                "from must name another contact than the one merged into",
            ));
        }
        Ok(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(body: Value) -> Result<ContactPatch, ApiError> {
        serde_json::from_value::<ContactPatchBody>(body)
            .map_err(|e| ApiError::validation(e.to_string()))?
            .into_patch()
    }

    fn message(r: Result<ContactPatch, ApiError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(p) => panic!("accepted: {p:?}"),
        }
    }

    #[test]
    fn absent_null_and_values_are_told_apart() {
        let p = patch(json!({})).expect("empty");
        assert!(p.fields().is_empty());
        let p = patch(json!({"name": null, "notes": "  ", "attributes": null})).expect("nulls");
        assert_eq!(p.name, Some(None));
        assert_eq!(p.notes, Some(None), "blank notes are removed");
        assert_eq!(p.attributes, Some(json!({})));
        let p = patch(json!({"name": "Ann", "attributes": {"tier": "gold"}})).expect("values");
        assert_eq!(p.name, Some(Some("Ann".into())));
        assert_eq!(p.notes, None);
        assert_eq!(p.fields(), vec!["name", "attributes"]);
    }

    #[test]
    fn invalid_fields_are_named() {
        assert!(message(patch(json!({"attributes": [1]}))).starts_with("attributes"));
        assert!(message(patch(json!({"attributes": "x"}))).starts_with("attributes"));
        let big = "x".repeat(MAX_ATTRIBUTES_BYTES);
        assert!(message(patch(json!({"attributes": {"a": big}}))).contains("16384"));
        assert!(message(patch(json!({"attributes": {"": 1}}))).starts_with("attributes"));
        assert!(message(patch(json!({"attributes": {"a": ["\u{0}"]}}))).contains("NUL"));
        assert!(message(patch(json!({"name": "a\nb"}))).starts_with("name"));
        assert!(message(patch(json!({"name": " "}))).starts_with("name"));
        let long = "n".repeat(MAX_NOTES_CHARS + 1);
        assert!(message(patch(json!({"notes": long}))).starts_with("notes"));
        assert!(message(patch(json!({"notes": "a\u{0}"}))).starts_with("notes"));
        assert!(serde_json::from_value::<ContactPatchBody>(json!({"email": "x"})).is_err());
    }

    #[test]
    fn merge_sources_are_other_contact_ids() {
        let body = |from: &str| MergeBody { from: from.into() };
        assert_eq!(body("b").source("a").ok(), Some("b"));
        assert!(body("a").source("a").is_err());
        assert!(body("").source("a").is_err());
        assert!(body("a\0").source("b").is_err());
        assert!(body(&"x".repeat(65)).source("a").is_err());
    }
}
