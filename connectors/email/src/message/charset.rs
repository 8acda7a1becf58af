//! Repairs text parts whose declared charset is wrong.
//!
//! mail-parser decodes every text part with its declared charset (encoding_rs behind it) and
//! falls back to lossy UTF-8. Two lies are common in real mail and both are repaired here from
//! the part's transfer-decoded bytes:
//! - declared UTF-8 (or an unknown charset, or none) but the bytes are not UTF-8: read as
//!   windows-1252, the superset of Latin-1 that such mail is almost always written in;
//! - declared US-ASCII / ISO-8859-1 / windows-1252 but the bytes are valid UTF-8 with
//!   non-ASCII sequences: read as UTF-8 (8-bit Latin-1 text is practically never valid UTF-8).

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessagePart, MimeHeaders};

/// Latin charsets whose declaration is often a lie for UTF-8 bytes.
const LATIN: [&str; 11] = [
    "us-ascii",
    "ascii",
    "iso-8859-1",
    "iso8859-1",
    "iso_8859-1",
    "latin1",
    "latin-1",
    "windows-1252",
    "cp1252",
    "iso-8859-15",
    "ansi_x3.4-1968",
];

/// The part's text, repaired when the declared charset evidently does not match the bytes.
/// Returns the text and, when it was repaired, the charset actually used.
pub fn repaired<'a>(
    msg: &Message<'_>,
    part: &MessagePart<'_>,
    decoded: &'a str,
) -> (Cow<'a, str>, Option<&'static str>) {
    let declared = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(|c| c.trim().to_ascii_lowercase());
    let is_latin = declared.as_deref().is_some_and(|c| LATIN.contains(&c));
    let has_replacement = decoded.contains('\u{FFFD}');
    if !has_replacement && !is_latin {
        return (Cow::Borrowed(decoded), None);
    }
    let Some(bytes) = transfer_decoded(msg, part) else {
        return (Cow::Borrowed(decoded), None);
    };
    match std::str::from_utf8(&bytes) {
        Ok(utf8) if is_latin && !utf8.is_ascii() => (Cow::Owned(utf8.to_string()), Some("utf-8")),
        // Only a sequence cut off at the very end: UTF-8 truncated in transit.
        Err(e) if e.error_len().is_none() => (Cow::Borrowed(decoded), None),
        Err(_)
            if has_replacement
                && !has_own_decoder(declared.as_deref())
                && !has_valid_multibyte(&bytes) =>
        {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&bytes);
            (Cow::Owned(text.into_owned()), Some("windows-1252"))
        }
        _ => (Cow::Borrowed(decoded), None),
    }
}

/// Bytes with at least one well-formed non-ASCII UTF-8 sequence are UTF-8 with some damage
/// (a truncated tail, a stray byte), not Latin-1: keep the lossy UTF-8 reading.
fn has_valid_multibyte(bytes: &[u8]) -> bool {
    bytes.utf8_chunks().any(|chunk| !chunk.valid().is_ascii())
}

/// Declared charsets (other than UTF-8) that have a decoder of their own: their U+FFFD are
/// genuine decoding errors of that charset, not a Latin-1 body in disguise.
fn has_own_decoder(declared: Option<&str>) -> bool {
    let Some(c) = declared else {
        return false;
    };
    !(c.starts_with("utf")
        || c == "unicode-1-1-utf-8"
        || encoding_rs::Encoding::for_label(c.as_bytes()).is_none())
}

/// The part's body bytes with the transfer encoding undone (no charset decoding).
fn transfer_decoded(msg: &Message<'_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let start = part.offset_body as usize;
    let end = (part.offset_end as usize).max(start);
    let raw = msg.raw_message.get(start..end)?;
    match part.encoding {
        Encoding::None => Some(raw.to_vec()),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::Base64 => base64_decode(raw),
    }
}
