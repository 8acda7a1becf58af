//! WhatsApp Cloud API webhook bodies → the shared model. Pure functions, no I/O.
//!
//! One delivery (`{"object":"whatsapp_business_account","entry":[...]}`) may carry several
//! entries, each several changes, each several messages and statuses. [`normalize`] turns it
//! into one [`Event`] per item, each with its own idempotency key, so a retried or partially
//! stored delivery never applies anything twice:
//!
//! - a message → [`Event::Message`] (`msg:{wamid}`), see [`crate::message`];
//! - a reaction → [`Event::Reaction`] (`reaction:{wamid}`);
//! - a delivery status → [`Event::Status`] (`status:{wamid}:{status}`);
//! - anything else — other webhook fields (account updates, template reviews...), value-level
//!   `errors`, status values this code does not know, items without an id — is never dropped:
//!   it becomes [`Event::Other`], to be journaled with a key derived from its content.

use crate::message;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchboard_core::domain::model::{
    DeliveryStatus, InboundMessage, ReactionUpdate, StatusUpdate,
};

/// The only `object` the Cloud API sends.
pub const OBJECT: &str = "whatsapp_business_account";

/// The keys of a `messages` change value this module consumes; anything else is journaled.
const KNOWN_VALUE_KEYS: [&str; 5] = [
    "messaging_product",
    "metadata",
    "contacts",
    "messages",
    "statuses",
];

/// One item of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Boxed: a message is much larger than the other events.
    Message(Box<InboundMessage>),
    Status(StatusUpdate),
    Reaction(ReactionUpdate),
    /// Nothing to apply; journaled under `key` for audit and replay. `field` is the webhook
    /// field it came in (`messages`, `account_update`, ...).
    Other {
        key: String,
        field: String,
    },
}

impl Event {
    /// The journal key: stable across Meta's retries of the same item.
    pub fn idempotency_key(&self) -> String {
        match self {
            Self::Message(m) => message_key(&m.provider_message_id),
            Self::Status(s) => status_key(&s.provider_message_id, s.status.as_str()),
            Self::Reaction(r) => reaction_key(&r.provider_message_id),
            Self::Other { key, .. } => key.clone(),
        }
    }

    /// The journal entry kind.
    pub fn journal_kind(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::Status(_) => "status",
            Self::Reaction(_) => "reaction",
            Self::Other { .. } => "event",
        }
    }
}

/// Why a delivery cannot be normalized at all (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("unexpected webhook shape: {0}")]
    Shape(&'static str),
}

/// The journal key of an inbound message.
pub fn message_key(wamid: &str) -> String {
    format!("msg:{wamid}")
}

/// The journal key of a status report: one per (message, status).
pub fn status_key(wamid: &str, status: &str) -> String {
    format!("status:{wamid}:{status}")
}

/// The journal key of a reaction (each reaction or removal has its own wamid).
pub fn reaction_key(wamid: &str) -> String {
    format!("reaction:{wamid}")
}

/// Cloud API status values → the shared delivery state machine; `None` for values that
/// carry no delivery state (`deleted`, `warning`, `played`, future additions).
pub fn map_status(status: &str) -> Option<DeliveryStatus> {
    Some(match status {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// Normalizes one delivery, every item in it, in order.
pub fn normalize(body: &[u8]) -> Result<Vec<Event>, NormalizeError> {
    walk(body, None)
}

/// Like [`normalize`], for the channel of `phone_number_id`: items of another business number
/// (one Meta app can serve several) become [`Event::Other`] with a `foreign:` key, journaled
/// but never ingested into this channel.
pub fn normalize_for(body: &[u8], phone_number_id: &str) -> Result<Vec<Event>, NormalizeError> {
    walk(body, Some(phone_number_id))
}

/// What every message of one change shares.
pub(crate) struct ChangeContext<'a> {
    pub waba_id: Option<&'a str>,
    pub metadata: &'a Value,
    pub contacts: &'a [Value],
}

fn walk(body: &[u8], ours: Option<&str>) -> Result<Vec<Event>, NormalizeError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| NormalizeError::Json(e.to_string()))?;
    let root = root
        .as_object()
        .ok_or(NormalizeError::Shape("the body is not a JSON object"))?;
    let object = root.get("object").and_then(Value::as_str).unwrap_or("");
    if object != OBJECT {
        // Another product's webhook (or a shape from the future): keep it, apply nothing.
        let field = if object.is_empty() { "unknown" } else { object };
        return Ok(vec![Event::Other {
            key: content_key(field, "", &Value::Object(root.clone())),
            field: field.to_string(),
        }]);
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(NormalizeError::Shape("no entry array"))?;
    let mut events = Vec::new();
    for entry in entries {
        let waba_id = entry.get("id").and_then(Value::as_str);
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            events.push(Event::Other {
                key: content_key("entry", waba_id.unwrap_or(""), entry),
                field: "entry".into(),
            });
            continue;
        };
        for change in changes {
            change_events(waba_id, change, ours, &mut events);
        }
    }
    Ok(events)
}

fn change_events(waba_id: Option<&str>, change: &Value, ours: Option<&str>, out: &mut Vec<Event>) {
    let field = change
        .get("field")
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty())
        .unwrap_or("unknown");
    let other = |out: &mut Vec<Event>| {
        out.push(Event::Other {
            key: content_key(field, waba_id.unwrap_or(""), change),
            field: field.to_string(),
        });
    };
    let value = change.get("value").and_then(Value::as_object);
    let Some(value) = value.filter(|_| field == "messages") else {
        other(out);
        return;
    };
    let empty = Value::Object(Map::new());
    let metadata = value.get("metadata").unwrap_or(&empty);
    let phone_number_id = metadata.get("phone_number_id").and_then(Value::as_str);
    if let Some(ours) = ours
        && phone_number_id != Some(ours)
    {
        out.push(Event::Other {
            key: format!(
                "foreign:{}:{}",
                phone_number_id.unwrap_or("none"),
                digest(waba_id.unwrap_or(""), change)
            ),
            field: field.to_string(),
        });
        return;
    }
    let cx = ChangeContext {
        waba_id,
        metadata,
        contacts: value
            .get("contacts")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
    };
    let messages = value.get("messages").and_then(Value::as_array);
    let statuses = value.get("statuses").and_then(Value::as_array);
    for msg in messages.into_iter().flatten() {
        out.push(message::message_event(msg, &cx));
    }
    for status in statuses.into_iter().flatten() {
        out.push(status_event(status));
    }
    let unconsumed = value
        .keys()
        .any(|k| !KNOWN_VALUE_KEYS.contains(&k.as_str()));
    if unconsumed || (messages.is_none() && statuses.is_none()) {
        // Value-level `errors`, `user_actions` and the like: journal the whole change.
        other(out);
    }
}

/// One entry of `statuses`.
fn status_event(status: &Value) -> Event {
    let id = status
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    let raw = status
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|s| !s.trim().is_empty());
    let (Some(id), Some(raw)) = (id, raw) else {
        return Event::Other {
            key: content_key("messages", "invalid-status", status),
            field: "messages".into(),
        };
    };
    let Some(mapped) = map_status(&raw) else {
        return Event::Other {
            key: status_key(id, &raw),
            field: "messages".into(),
        };
    };
    let (error_code, error_message) = first_error(status);
    Event::Status(StatusUpdate {
        provider_message_id: id.to_string(),
        status: mapped,
        error_code,
        error_message,
        external: status.clone(),
    })
}

/// Code and readable message of `errors[0]`: `title: details` (or Meta's `message`).
pub(crate) fn first_error(item: &Value) -> (Option<String>, Option<String>) {
    let Some(error) = item
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    else {
        return (None, None);
    };
    let code = match error.get("code") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    };
    let text = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let headline = text("title").or_else(|| text("message"));
    let details = error
        .get("error_data")
        .and_then(|d| d.get("details"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let message = match (headline, details) {
        (Some(h), Some(d)) if h != d => Some(format!("{h}: {d}")),
        (Some(h), _) => Some(h.to_string()),
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => None,
    };
    (code, message)
}

/// `event:{field}:{digest}`: a key for items without an id of their own, derived from their
/// content so that Meta's retry of the same item maps to the same key.
pub(crate) fn content_key(field: &str, scope: &str, item: &Value) -> String {
    format!("event:{field}:{}", digest(scope, item))
}

fn digest(scope: &str, item: &Value) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0u8]);
    canonical(item, &mut h);
    hex::encode(h.finalize())
}

/// Feeds `v` to the hash as JSON with object keys sorted, so the key of an item does not
/// depend on how serde_json orders maps in this build.
fn canonical(v: &Value, h: &mut Sha256) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                h.update(Value::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                if let Some(inner) = map.get(k) {
                    canonical(inner, h);
                }
            }
            h.update(b"}");
        }
        Value::Array(items) => {
            h.update(b"[");
            for (i, inner) in items.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                canonical(inner, h);
            }
            h.update(b"]");
        }
        scalar => h.update(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
