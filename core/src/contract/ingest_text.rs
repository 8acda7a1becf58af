//! Text that every database can store: inbound content with NUL characters made storable.
//!
//! PostgreSQL's `TEXT` and `JSONB` refuse U+0000 (`invalid byte sequence for encoding
//! "UTF8": 0x00`), SQLite accepts it. A delivery carrying a NUL (an SMS body `a%00b`, a
//! WhatsApp text `"a\u0000b"`, a form parameter name) would then be refused on every retry
//! and lost on PostgreSQL only. Ingest therefore replaces each NUL in the *model* (text,
//! subject, names, addresses, ids, the external JSON's keys and strings) with U+FFFD, the
//! replacement character, the same way on both databases. The journal keeps the raw bytes
//! (`BYTEA`/`BLOB`), so nothing the provider sent is lost. Attachment names also lose their
//! Unicode format characters ([`crate::domain::text`]): a bidi override can disguise `.exe`.

use super::journal::JournalEntry;
use crate::domain::model::{InboundMessage, ReactionUpdate, StatusUpdate};
use crate::domain::text::{is_format_char, strip_format_chars};
use serde_json::Value;

/// What a NUL becomes in stored text.
const REPLACEMENT: char = '\u{FFFD}';

/// Replaces every NUL of `s` with U+FFFD (no allocation when there is none).
pub(crate) fn clean(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', &REPLACEMENT.to_string());
    }
}

fn clean_opt(s: &mut Option<String>) {
    if let Some(s) = s {
        clean(s);
    }
}

fn clean_all(v: &mut [String]) {
    v.iter_mut().for_each(clean);
}

/// Cleans every key and string of a JSON value.
pub(crate) fn clean_json(v: &mut Value) {
    match v {
        Value::String(s) => clean(s),
        Value::Array(items) => items.iter_mut().for_each(clean_json),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                // Keys cannot be changed in place: rebuild the map (rare).
                let old = std::mem::take(map);
                for (mut k, mut val) in old {
                    clean(&mut k);
                    clean_json(&mut val);
                    map.insert(k, val);
                }
            } else {
                map.values_mut().for_each(clean_json);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The journal's text columns (its payload stays as received).
pub(crate) fn clean_journal(j: &mut JournalEntry) {
    clean(&mut j.idempotency_key);
    clean(&mut j.kind);
    clean(&mut j.content_type);
}

pub(crate) fn clean_message(m: &mut InboundMessage) {
    clean(&mut m.provider_message_id);
    clean(&mut m.from.value);
    clean_opt(&mut m.from_name);
    clean_all(&mut m.to);
    clean_all(&mut m.cc);
    clean_opt(&mut m.subject);
    clean_opt(&mut m.text);
    clean_opt(&mut m.html);
    for a in &mut m.attachments {
        clean_opt(&mut a.filename);
        // A stored name never hides its real extension behind a bidi override.
        if let Some(name) = &mut a.filename
            && name.chars().any(is_format_char)
        {
            *name = strip_format_chars(name);
        }
        clean_opt(&mut a.content_type);
        clean_opt(&mut a.source);
        clean_opt(&mut a.content_id);
        clean_opt(&mut a.id);
    }
    clean_all(&mut m.reply_to);
    clean_opt(&mut m.thread_token);
    clean_json(&mut m.external);
}

pub(crate) fn clean_status(u: &mut StatusUpdate) {
    clean(&mut u.provider_message_id);
    clean_opt(&mut u.error_code);
    clean_opt(&mut u.error_message);
    clean_json(&mut u.external);
}

pub(crate) fn clean_reaction(r: &mut ReactionUpdate) {
    clean(&mut r.provider_message_id);
    clean(&mut r.target_provider_id);
    clean(&mut r.from.value);
    clean_opt(&mut r.emoji);
    clean_json(&mut r.external);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_becomes_the_replacement_character_in_strings_and_json_keys() {
        let mut s = "a\0b".to_string();
        clean(&mut s);
        assert_eq!(s, "a\u{FFFD}b");
        let mut v = json!({"Bo\u{0}dy": ["x\u{0}", {"k": "\u{0}"}], "n": 1});
        clean_json(&mut v);
        assert_eq!(
            v,
            json!({"Bo\u{FFFD}dy": ["x\u{FFFD}", {"k": "\u{FFFD}"}], "n": 1})
        );
    }
}
