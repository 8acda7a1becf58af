//! Attachments, inline parts and attached messages of a parsed message, with their bytes and
//! safe file names.
//!
//! A part is *inline* when it says so (`Content-Disposition: inline`, Apple Mail), when it has
//! a Content-ID and no disposition at all (Outlook), or when mail-parser placed it between
//! body parts; everything else is an attachment. An attached message (`message/rfc822`) is one
//! part holding its raw bytes: it is not flattened into the outer message.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchboard_core::domain::text::is_format_char;

use super::headers;

/// How a part was presented in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Shown in the body: `Content-Disposition: inline`, or a Content-ID without any
    /// disposition (Outlook), or an image placed between body parts.
    Inline,
    Attachment,
}

/// What a part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// Any file (images, documents, calendar invitations, delivery-status reports...).
    File,
    /// An attached email (`message/rfc822`), stored as its raw `.eml` bytes.
    Message,
}

/// One attachment, inline part or attached message, with its decoded bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachmentPart {
    /// Safe to use as a file name: no path, no control characters, no reserved device names,
    /// length-capped. Synthesized (`part-N.ext`) when the message gave none.
    pub filename: String,
    /// The name the message declared, decoded, before sanitizing (`None` if it gave none).
    pub declared_filename: Option<String>,
    /// `type/subtype`, lower-cased.
    pub content_type: String,
    /// The Content-ID without angle brackets.
    pub content_id: Option<String>,
    pub disposition: Disposition,
    pub kind: PartKind,
    /// True when the HTML body shows this part through a `cid:` reference.
    pub referenced_by_html: bool,
    pub size: usize,
    /// sha256 of `bytes`, hex.
    pub sha256: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// Longest file name kept, in bytes (the extension survives the cut).
pub const MAX_FILENAME_BYTES: usize = 180;

/// Names Windows reserves for devices, whatever the extension.
const RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// The attachment parts of `msg` (top level only), in MIME order. Parts that are body text
/// are skipped.
pub fn collect(msg: &Message<'_>) -> Vec<AttachmentPart> {
    let mut out = Vec::new();
    for &id in &msg.attachments {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        let is_body_text = matches!(part.body, PartType::Text(_) | PartType::Html(_))
            && (msg.text_body.contains(&id) || msg.html_body.contains(&id));
        if is_body_text || matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        out.push(part_of(part, out.len()));
    }
    out
}

fn part_of(part: &MessagePart<'_>, index: usize) -> AttachmentPart {
    let kind = if matches!(part.body, PartType::Message(_)) {
        PartKind::Message
    } else {
        PartKind::File
    };
    let content_type = content_type(part, kind);
    let content_id = part.content_id().and_then(headers::clean_id);
    let disposition = match part.content_disposition() {
        Some(d) if d.is_inline() => Disposition::Inline,
        Some(d) if d.is_attachment() => Disposition::Attachment,
        _ if content_id.is_some() || matches!(part.body, PartType::InlineBinary(_)) => {
            Disposition::Inline
        }
        _ => Disposition::Attachment,
    };
    // Kept for display and audit, with control characters made visible as U+FFFD.
    let declared = part
        .attachment_name()
        .map(|n| {
            n.trim()
                .chars()
                .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                .collect::<String>()
        })
        .filter(|n| !n.is_empty());
    let fallback_stem = match (&part.body, kind) {
        (PartType::Message(m), _) => m.subject().map(str::to_string),
        _ => None,
    };
    let filename = part
        .attachment_name()
        .and_then(sanitize_filename)
        .or_else(|| {
            fallback_stem
                .as_deref()
                .and_then(|s| sanitize_filename(&format!("{s}.eml")))
        })
        .unwrap_or_else(|| format!("part-{}.{}", index + 1, extension_for(&content_type)));
    let bytes = part.contents().to_vec();
    AttachmentPart {
        filename,
        declared_filename: declared,
        content_type,
        content_id,
        disposition,
        kind,
        referenced_by_html: false,
        size: bytes.len(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
    }
}

fn content_type(part: &MessagePart<'_>, kind: PartKind) -> String {
    let declared = part.content_type().map(|ct| {
        let sub = ct.subtype().unwrap_or("octet-stream");
        format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
    });
    match (declared, kind) {
        (Some(ct), _) if is_token_pair(&ct) => ct,
        (_, PartKind::Message) => "message/rfc822".into(),
        (_, PartKind::File) if matches!(part.body, PartType::Text(_)) => "text/plain".into(),
        (_, PartKind::File) if matches!(part.body, PartType::Html(_)) => "text/html".into(),
        _ => "application/octet-stream".into(),
    }
}

/// `type/subtype` made of MIME token characters only.
fn is_token_pair(ct: &str) -> bool {
    let Some((t, s)) = ct.split_once('/') else {
        return false;
    };
    let token = |x: &str| {
        !x.is_empty()
            && x.len() <= 100
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    token(t) && token(s)
}

/// A file name safe to store and to offer for download: the last path component only, no
/// control characters (NUL included: `con.txt\0.exe` cannot pass for a `.txt`), no format
/// characters (a right-to-left override can make `.exe` look like `.pdf`), none of
/// `<>:"/\|?*`, no leading dots or trailing dots/spaces, no Windows device names, at most
/// [`MAX_FILENAME_BYTES`] bytes with the extension kept. `None` when nothing usable remains.
pub fn sanitize_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut cleaned: String = last
        .chars()
        // Format characters (bidi overrides, zero-width) are invisible: removed, not shown
        // as `_`, so `invoice\u{202E}fdp.exe` is stored as `invoicefdp.exe`.
        .filter(|c| !is_format_char(*c))
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    cleaned = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_string();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '_') {
        return None;
    }
    let stem = cleaned.split('.').next().unwrap_or("").to_ascii_lowercase();
    if RESERVED.contains(&stem.trim()) {
        cleaned.insert(0, '_');
    }
    Some(cap_length(&cleaned))
}

fn cap_length(name: &str) -> String {
    if name.len() <= MAX_FILENAME_BYTES {
        return name.to_string();
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 16)
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let mut stem_budget = MAX_FILENAME_BYTES - ext.len();
    while !name.is_char_boundary(stem_budget) {
        stem_budget -= 1;
    }
    format!("{}{ext}", &name[..stem_budget])
}

/// A file extension for a content type, for parts without a name.
fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "message/rfc822" | "message/global" => "eml",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "text/rfc822-headers" | "message/rfc822-headers" => "txt",
        "message/delivery-status" | "message/global-delivery-status" => "txt",
        "message/feedback-report" => "txt",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_FILENAME_BYTES, sanitize_filename};

    #[test]
    fn paths_control_characters_and_device_names() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename("C:\\Users\\x\\evil.dll").as_deref(),
            Some("evil.dll")
        );
        assert_eq!(
            sanitize_filename("con.txt\0.exe").as_deref(),
            Some("_con.txt_.exe")
        );
        assert_eq!(sanitize_filename("a\r\nb.txt").as_deref(), Some("a__b.txt"));
        assert_eq!(sanitize_filename("NUL").as_deref(), Some("_NUL"));
        assert_eq!(sanitize_filename("lpt1.pdf").as_deref(), Some("_lpt1.pdf"));
        assert_eq!(
            sanitize_filename("what?<>|*.txt").as_deref(),
            Some("what_____.txt")
        );
        assert_eq!(sanitize_filename(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(
            sanitize_filename("invoice\u{202E}fdp.exe").as_deref(),
            Some("invoicefdp.exe")
        );
        assert_eq!(
            sanitize_filename("\u{2067}a\u{200D}b.txt\u{2069}").as_deref(),
            Some("ab.txt")
        );
        assert_eq!(sanitize_filename("report. ").as_deref(), Some("report"));
        assert_eq!(sanitize_filename(".."), None);
        assert_eq!(sanitize_filename("/"), None);
        assert_eq!(sanitize_filename("\0\0"), None);
        assert_eq!(
            sanitize_filename("Übersicht – März.pdf").as_deref(),
            Some("Übersicht – März.pdf")
        );
    }

    #[test]
    fn long_names_keep_their_extension_and_char_boundaries() {
        let long = format!("{}.pdf", "ä".repeat(200));
        let cut = sanitize_filename(&long).expect("name");
        assert!(cut.len() <= MAX_FILENAME_BYTES, "{}", cut.len());
        assert!(cut.ends_with(".pdf"));
        assert!(cut.starts_with("ää"));
    }
}
