//! The readable text and the attachment of each WhatsApp message type.
//!
//! Text and captions are the contact's words; media become one attachment whose `source` is
//! the media id (fetched later by the media job); structured types (location, contacts,
//! interactive replies, orders) get a plain-text rendering for staff, while the raw object
//! stays in the message's `external`. Types this code does not know get a short description
//! instead of being dropped.

use serde_json::Value;
use switchboard_core::domain::model::InboundAttachment;

/// What a message shows: its text and at most one attachment.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Content {
    pub text: Option<String>,
    pub attachment: Option<InboundAttachment>,
}

impl Content {
    fn text(text: Option<String>) -> Self {
        Self {
            text: text.filter(|t| !t.trim().is_empty()),
            attachment: None,
        }
    }
}

/// The content of a message of type `kind`.
pub(crate) fn content(kind: &str, msg: &Value) -> Content {
    let body = msg.get(kind).unwrap_or(&Value::Null);
    match kind {
        "text" => Content::text(words_of(body, "body")),
        "image" | "video" | "document" | "audio" | "sticker" => media(kind, body),
        "location" => Content::text(Some(location(body))),
        "contacts" => Content::text(Some(contacts(body))),
        "interactive" => Content::text(Some(interactive(body))),
        "button" => Content::text(
            str_of(body, "text")
                .or_else(|| str_of(body, "payload"))
                .map(str::to_string),
        ),
        "order" => Content::text(Some(order(body))),
        "system" => Content::text(Some(str_of(body, "body").map_or_else(
            || {
                format!(
                    "(system notice: {})",
                    str_of(body, "type").unwrap_or("unknown")
                )
            },
            str::to_string,
        ))),
        "unsupported" => Content::text(Some(unsupported(msg, body))),
        other => Content::text(Some(format!("(WhatsApp message of type {other})"))),
    }
}

/// A media message: one attachment fetched by media id (or by URL when Meta gives only one),
/// the caption as text.
fn media(kind: &str, body: &Value) -> Content {
    let source = str_of(body, "id")
        .or_else(|| str_of(body, "url"))
        .map(str::to_string);
    let filename = (kind == "document")
        .then(|| str_of(body, "filename").map(str::to_string))
        .flatten();
    Content {
        text: words_of(body, "caption"),
        attachment: Some(InboundAttachment {
            filename,
            content_type: str_of(body, "mime_type").map(str::to_string),
            source,
            content_id: None,
            ..Default::default()
        }),
    }
}

/// `Location: name` / address / `lat, long` / url, each line only when present.
fn location(body: &Value) -> String {
    let mut lines = vec![match str_of(body, "name") {
        Some(name) => format!("Location: {name}"),
        None => "Location".to_string(),
    }];
    lines.extend(str_of(body, "address").map(str::to_string));
    if let (Some(lat), Some(long)) = (number_of(body, "latitude"), number_of(body, "longitude")) {
        lines.push(format!("{lat}, {long}"));
    }
    lines.extend(str_of(body, "url").map(str::to_string));
    lines.join("\n")
}

/// Each shared contact card: name, then phones, emails, organization.
fn contacts(body: &Value) -> String {
    let cards: Vec<String> = body
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|card| {
            let name = card.get("name").unwrap_or(&Value::Null);
            let display = str_of(name, "formatted_name")
                .map(str::to_string)
                .or_else(|| {
                    let parts: Vec<&str> = ["first_name", "last_name"]
                        .iter()
                        .filter_map(|k| str_of(name, k))
                        .collect();
                    (!parts.is_empty()).then(|| parts.join(" "))
                })
                .unwrap_or_else(|| "(no name)".to_string());
            let mut lines = vec![format!("Contact: {display}")];
            for (list, key, label) in [("phones", "phone", "Phone"), ("emails", "email", "Email")] {
                for item in card
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = str_of(item, key) {
                        match str_of(item, "type") {
                            Some(t) => lines.push(format!("{label} ({t}): {v}")),
                            None => lines.push(format!("{label}: {v}")),
                        }
                    }
                }
            }
            if let Some(company) = card.get("org").and_then(|o| str_of(o, "company")) {
                lines.push(format!("Organization: {company}"));
            }
            lines.join("\n")
        })
        .collect();
    if cards.is_empty() {
        "(shared contacts)".to_string()
    } else {
        cards.join("\n\n")
    }
}

/// A reply to an interactive message: what the contact tapped.
fn interactive(body: &Value) -> String {
    let kind = str_of(body, "type").unwrap_or("unknown");
    let reply = body.get(kind).unwrap_or(&Value::Null);
    match kind {
        "button_reply" => str_of(reply, "title")
            .or_else(|| str_of(reply, "id"))
            .unwrap_or("(button reply)")
            .to_string(),
        "list_reply" => {
            let title = str_of(reply, "title")
                .or_else(|| str_of(reply, "id"))
                .unwrap_or("(list reply)");
            match str_of(reply, "description") {
                Some(d) => format!("{title}\n{d}"),
                None => title.to_string(),
            }
        }
        "nfm_reply" => match str_of(reply, "body") {
            Some(b) => format!("(form response) {b}"),
            None => "(form response)".to_string(),
        },
        other => format!("(interactive reply: {other})"),
    }
}

/// `Order (catalog ...)`, one line per item, then the contact's note.
fn order(body: &Value) -> String {
    let items = body
        .get("product_items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut lines = vec![match str_of(body, "catalog_id") {
        Some(c) => format!("Order (catalog {c}): {} item(s)", items.len()),
        None => format!("Order: {} item(s)", items.len()),
    }];
    for item in items {
        let product = str_of(item, "product_retailer_id").unwrap_or("?");
        let quantity = number_of(item, "quantity").unwrap_or_else(|| "?".into());
        let mut line = format!("- {quantity} x {product}");
        if let Some(price) = number_of(item, "item_price") {
            line.push_str(&format!(" @ {price}"));
            if let Some(currency) = str_of(item, "currency") {
                line.push_str(&format!(" {currency}"));
            }
        }
        lines.push(line);
    }
    lines.extend(str_of(body, "text").map(str::to_string));
    lines.join("\n")
}

/// `(unsupported WhatsApp message: <type>)`, with Meta's error title when it gives one.
fn unsupported(msg: &Value, body: &Value) -> String {
    let kind = str_of(body, "type");
    let title = msg
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .and_then(|e| str_of(e, "title").or_else(|| str_of(e, "message")));
    match (kind, title) {
        (Some(k), Some(t)) => format!("(unsupported WhatsApp message: {k}; {t})"),
        (Some(k), None) => format!("(unsupported WhatsApp message: {k})"),
        (None, Some(t)) => format!("(unsupported WhatsApp message; {t})"),
        (None, None) => "(unsupported WhatsApp message)".to_string(),
    }
}

/// The contact's own words, untouched (only whitespace-only text counts as none).
fn words_of(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A number (or a numeric string) as written.
fn number_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}
