//! Header access over mail-parser's message: raw values (unfolded, RFC 2047 decoded, 8-bit
//! bytes repaired), message ids, addresses with display names, and the selection of headers
//! kept in `external`.
//!
//! Header bytes that are not UTF-8 (raw 8-bit headers, common in old and in spam mail) are
//! decoded as windows-1252 before parsing, so they become readable text instead of U+FFFD.

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, Header, HeaderValue, Message};
use serde::Serialize;
use serde_json::{Map, Value};

/// An address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedAddress {
    pub name: Option<String>,
    /// Lower-cased.
    pub address: String,
}

/// Headers copied into `external.headers` (lower-case names), besides the prefixes below.
const KEPT: [&str; 28] = [
    "message-id",
    "in-reply-to",
    "references",
    "date",
    "return-path",
    "sender",
    "reply-to",
    "delivered-to",
    "x-original-to",
    "list-id",
    "list-unsubscribe",
    "list-post",
    "precedence",
    "auto-submitted",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "x-loop",
    "authentication-results",
    "arc-authentication-results",
    "received-spf",
    "x-mailer",
    "user-agent",
    "x-failed-recipients",
    "feedback-id",
    "thread-topic",
    "thread-index",
    "x-apple-action",
];
/// Header name prefixes copied into `external.headers` (spam filters' verdicts).
const KEPT_PREFIXES: [&str; 4] = [
    "x-spam",
    "x-rspamd",
    "x-spamd",
    "x-ms-exchange-organization-scl",
];

/// The raw bytes of a header's value (after the colon, folding included).
pub fn raw_value<'m>(msg: &'m Message<'_>, header: &Header<'_>) -> &'m [u8] {
    msg.raw_message
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default()
}

/// Header bytes as UTF-8: valid UTF-8 is kept, anything else is read as windows-1252.
pub fn repair_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Cow::Borrowed(bytes),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            Cow::Owned(text.into_owned().into_bytes())
        }
    }
}

/// Text without NUL characters: PostgreSQL can store neither them in text columns nor
/// `\u0000` in JSON, and no mail text needs them.
pub fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', ""))
    } else {
        Cow::Borrowed(text)
    }
}

/// An unstructured header value: unfolded, RFC 2047 words decoded, NUL-free, trimmed.
pub fn text_value(raw: &[u8]) -> String {
    let bytes = repair_bytes(raw);
    // The parser stops at the end of the header, i.e. at a line break not followed by
    // whitespace; make sure there is one.
    let mut owned = bytes.into_owned();
    owned.extend_from_slice(b"\n");
    let text = match MessageStream::new(&owned).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        HeaderValue::TextList(list) => list.join(" "),
        _ => String::new(),
    };
    without_nul(text.trim()).into_owned()
}

/// All values of the named top-level header (case-insensitive), in message order, decoded.
pub fn all_text(msg: &Message<'_>, name: &str) -> Vec<String> {
    msg.headers()
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| text_value(raw_value(msg, h)))
        .collect()
}

/// The first value of the named top-level header, decoded; `None` when absent.
pub fn first_text(msg: &Message<'_>, name: &str) -> Option<String> {
    msg.headers()
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| text_value(raw_value(msg, h)))
}

/// Message ids of every header with that name, in order, without angle brackets.
pub fn ids(msg: &Message<'_>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for h in msg.headers() {
        if !h.name.as_str().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut owned = repair_bytes(raw_value(msg, h)).into_owned();
        owned.extend_from_slice(b"\n");
        match MessageStream::new(&owned).parse_id() {
            HeaderValue::Text(t) => push_id(&mut out, &t),
            HeaderValue::TextList(list) => list.iter().for_each(|t| push_id(&mut out, t)),
            _ => {}
        }
    }
    out
}

fn push_id(out: &mut Vec<String>, id: &str) {
    if let Some(id) = clean_id(id)
        && !out.contains(&id)
    {
        out.push(id);
    }
}

/// A message or content id without angle brackets; `None` when empty or when it contains
/// whitespace or control characters (no valid id does).
pub fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let valid = !id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then(|| id.to_string())
}

/// The addresses of every header with that name (groups flattened), lower-cased, with names.
pub fn mailboxes(msg: &Message<'_>, name: &str) -> Vec<NamedAddress> {
    let mut out: Vec<NamedAddress> = Vec::new();
    for h in msg.headers() {
        if !h.name.as_str().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut owned = repair_bytes(raw_value(msg, h)).into_owned();
        owned.extend_from_slice(b"\n");
        let value = MessageStream::new(&owned).parse_address();
        let Some(address) = value.as_address() else {
            continue;
        };
        let addrs: Vec<_> = match address {
            Address::List(list) => list.iter().collect(),
            Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
        };
        for a in addrs {
            let Some(mailbox) = mailbox(a.name.as_deref(), a.address.as_deref()) else {
                continue;
            };
            if !out.iter().any(|m| m.address == mailbox.address) {
                out.push(mailbox);
            }
        }
    }
    out
}

fn mailbox(name: Option<&str>, address: Option<&str>) -> Option<NamedAddress> {
    let address = address?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase();
    if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let name = name
        .map(|n| n.trim().trim_matches(|c| c == '"' || c == '\'').trim())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&address))
        .map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>());
    Some(NamedAddress { name, address })
}

/// Number of Received headers: how many hops the message took.
pub fn received_count(msg: &Message<'_>) -> usize {
    msg.headers()
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case("received"))
        .count()
}

/// The selected headers as a JSON object: lower-case names; a header seen once maps to a
/// string, a repeated one to an array in message order.
pub fn selected(msg: &Message<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    for h in msg.headers() {
        let name = h.name.as_str().to_ascii_lowercase();
        // RFC 5322 field names are printable ASCII; anything else is not a header.
        let well_formed = name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        let wanted =
            KEPT.contains(&name.as_str()) || KEPT_PREFIXES.iter().any(|p| name.starts_with(p));
        if !well_formed || !wanted {
            continue;
        }
        let value = Value::String(text_value(raw_value(msg, h)));
        match out.get_mut(&name) {
            None => {
                out.insert(name, value);
            }
            Some(Value::Array(list)) => list.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        }
    }
    out
}

/// Parses a block of header lines (a `text/rfc822-headers` part, a delivery-status block)
/// into (lower-case name, unfolded value) pairs. Lines that are not headers are skipped.
pub fn parse_fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
            continue;
        }
        out.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    out
}

/// The first message id found in a header value (`<id>` or a bare `id@host`).
pub fn first_id(value: &str) -> Option<String> {
    let mut owned = value.as_bytes().to_vec();
    owned.extend_from_slice(b"\n");
    let mut ids = Vec::new();
    match MessageStream::new(&owned).parse_id() {
        HeaderValue::Text(t) => push_id(&mut ids, &t),
        HeaderValue::TextList(list) => list.iter().for_each(|t| push_id(&mut ids, t)),
        _ => {}
    }
    ids.into_iter().next()
}
