//! One entry of a `messages` change → an [`Event`]: an inbound message or a reaction.
//!
//! Every message keeps the provider's full object in `external` (with the change's
//! `metadata`, the sender's `contacts` entry and the WhatsApp Business Account id), so types
//! this code renders only briefly (orders, system notices, unsupported types) lose nothing.
//! The readable text of each type comes from [`crate::render`].

use crate::normalize::{ChangeContext, Event, content_key};
use crate::render;
use serde_json::{Value, json};
use switchboard_core::domain::model::{Identity, IdentityKind, InboundMessage, ReactionUpdate};

/// Normalizes one message object of a change.
pub(crate) fn message_event(msg: &Value, cx: &ChangeContext<'_>) -> Event {
    let text = |k: &str| {
        msg.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let (Some(id), Some(from)) = (text("id"), text("from").map(wa_id)) else {
        // Without an id there is nothing to dedupe on and nobody to thread with: keep it.
        return Event::Other {
            key: content_key("messages", "invalid-message", msg),
            field: "messages".into(),
        };
    };
    let from = Identity {
        kind: IdentityKind::WHATSAPP,
        value: from,
    };
    let kind = text("type").unwrap_or("unknown");
    if kind == "reaction" {
        return reaction_event(id, from, msg, cx);
    }
    let content = render::content(kind, msg);
    let context = msg.get("context");
    let flag = |k: &str| {
        context
            .and_then(|c| c.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut external = external(msg, cx, &from.value);
    external.insert("forwarded".into(), Value::Bool(flag("forwarded")));
    external.insert(
        "frequently_forwarded".into(),
        Value::Bool(flag("frequently_forwarded")),
    );
    Event::Message(Box::new(InboundMessage {
        provider_message_id: id.to_string(),
        from_name: profile_name(cx, &from.value),
        from,
        to: our_address(cx).into_iter().collect(),
        cc: Vec::new(),
        subject: None,
        text: content.text,
        html: None,
        attachments: content.attachment.into_iter().collect(),
        reply_to: context
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .into_iter()
            .collect(),
        thread_token: None,
        consent: None,
        flags: Vec::new(),
        sent_at: sent_at(msg),
        external: Value::Object(external),
    }))
}

/// A reaction, or its removal (no emoji, or an empty one).
fn reaction_event(id: &str, from: Identity, msg: &Value, cx: &ChangeContext<'_>) -> Event {
    let reaction = msg.get("reaction");
    let target = reaction
        .and_then(|r| r.get("message_id"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    let Some(target) = target else {
        return Event::Other {
            key: content_key("messages", "invalid-reaction", msg),
            field: "messages".into(),
        };
    };
    let emoji = reaction
        .and_then(|r| r.get("emoji"))
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty())
        .map(str::to_string);
    let external = external(msg, cx, &from.value);
    Event::Reaction(ReactionUpdate {
        provider_message_id: id.to_string(),
        target_provider_id: target.to_string(),
        from,
        emoji,
        external: Value::Object(external),
    })
}

/// A WhatsApp id as the model stores it: trimmed, without a leading `+`.
fn wa_id(raw: &str) -> String {
    raw.trim().trim_start_matches('+').to_string()
}

/// The sender's entry of the change's `contacts`: the one with their wa_id, else the only one.
fn contact<'a>(cx: &ChangeContext<'a>, from: &str) -> Option<&'a Value> {
    cx.contacts
        .iter()
        .find(|c| c.get("wa_id").and_then(Value::as_str).map(wa_id).as_deref() == Some(from))
        .or(match cx.contacts {
            [only] => Some(only),
            _ => None,
        })
}

fn profile_name(cx: &ChangeContext<'_>, from: &str) -> Option<String> {
    contact(cx, from)
        .and_then(|c| c.get("profile"))
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// Our number as WhatsApp displays it, else the phone-number id.
fn our_address(cx: &ChangeContext<'_>) -> Option<String> {
    ["display_phone_number", "phone_number_id"]
        .iter()
        .find_map(|k| cx.metadata.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// The `timestamp` (Unix seconds, a string in practice) in milliseconds.
fn sent_at(msg: &Value) -> Option<i64> {
    let secs = match msg.get("timestamp")? {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    secs.checked_mul(1000).filter(|ms| *ms > 0)
}

fn external(msg: &Value, cx: &ChangeContext<'_>, from: &str) -> serde_json::Map<String, Value> {
    let mut ext = serde_json::Map::new();
    ext.insert("channel".into(), json!("whatsapp"));
    ext.insert(
        "waba_id".into(),
        cx.waba_id.map_or(Value::Null, |w| json!(w)),
    );
    ext.insert("metadata".into(), cx.metadata.clone());
    ext.insert(
        "contact".into(),
        contact(cx, from).cloned().unwrap_or(Value::Null),
    );
    ext.insert("message".into(), msg.clone());
    ext
}
