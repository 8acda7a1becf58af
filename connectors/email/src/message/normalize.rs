//! Raw RFC 5322 bytes → [`ParsedEmail`]. Pure: no I/O, no clock, no randomness; the same
//! bytes and options always give the same output.
//!
//! - Addresses (From, To, Cc, Reply-To) keep their display names; addresses are lower-cased.
//!   Without a usable From, Sender and then Return-Path stand in.
//! - Message ids are kept without angle brackets. A message without a usable Message-ID gets
//!   a stable synthetic one, `<sha256 of date, from, subject and body>@switchboard.invalid`,
//!   so a re-fetch of the same message dedupes.
//! - `reply_to` of the shared model lists In-Reply-To, then References newest first.
//! - Text: the text/plain body parts (or text derived from the HTML); HTML: the text/html
//!   body parts, sanitized ([`super::html`]), with `cid:` images pointing at the URLs the
//!   caller's [`NormalizeOptions::cid_url`] gives; charsets repaired ([`super::charset`]).
//! - Attachments, inline parts and attached messages with their bytes ([`super::attachments`]).
//! - Flags before effects ([`super::flags`]).
//! - `message.external` holds what core has no field for yet: `message_id`,
//!   `message_id_synthetic`, `headers` (selected headers, lower-case names: threading, list,
//!   auto-reply, spam filter and authentication headers), `received_count`, `reply_to`
//!   (addresses with names), `reply_text`, `verdicts`, `raw_sha256` and `problems`.
//!
//! Normalization never fails: a message mail-parser cannot read at all (or that makes it
//! panic) becomes a fallback message holding the raw text, with the problem recorded, so that
//! nothing fetched is ever lost.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchboard_core::domain::model::{
    Identity, IdentityKind, InboundAttachment, InboundMessage, Millis,
};

use super::attachments::AttachmentPart;
use super::flags::{self, OwnMail, Verdicts};
use super::headers::NamedAddress;
use super::parsed::{ParsedEmail, Problem};
use super::{attachments, charset, headers, html, quote};

/// Domain of synthetic Message-IDs and of the placeholder sender of unreadable mail.
pub const SYNTHETIC_DOMAIN: &str = "switchboard.invalid";

/// The part a `cid:` reference in the HTML body resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidTarget<'a> {
    /// The Content-ID, without angle brackets, as the part declared it.
    pub content_id: &'a str,
    /// Index of the part in [`ParsedEmail::parts`] (and `message.attachments`).
    pub index: usize,
}

/// What the caller decides for a message: how inline images are served, whether remote images
/// may load, whether it came from a spam folder, and which mail is our own.
pub struct NormalizeOptions<'a> {
    /// The URL an inline (`cid:`) image is served from; `None` removes the image.
    pub cid_url: &'a dyn Fn(&CidTarget<'_>) -> Option<String>,
    /// Keep remote `<img>` sources (off by default: they track the reader).
    pub allow_remote_images: bool,
    /// The message was fetched from a folder marked as spam (Junk).
    pub spam_folder: bool,
    /// Is this Message-ID one of our outbound messages? Decides loops (our mail coming back)
    /// and [`ParsedEmail::own_bounce`] (a bounce of our mail).
    pub is_own_message_id: &'a dyn Fn(&str) -> bool,
    /// Loop detection: is this lower-cased address one of our own mailboxes?
    pub is_own_address: &'a dyn Fn(&str) -> bool,
}

fn keep_cid(target: &CidTarget<'_>) -> Option<String> {
    Some(format!("cid:{}", html::percent_encode(target.content_id)))
}

fn never(_: &str) -> bool {
    false
}

impl Default for NormalizeOptions<'static> {
    /// `cid:` references stay `cid:` URLs, remote images are blocked, nothing is our own.
    fn default() -> Self {
        Self {
            cid_url: &keep_cid,
            allow_remote_images: false,
            spam_folder: false,
            is_own_message_id: &never,
            is_own_address: &never,
        }
    }
}

/// A `cid_url` from a template: `{index}` becomes the part's index, `{cid}` its
/// percent-encoded Content-ID (e.g. `/api/v1/messages/42/parts/{index}`).
pub fn cid_template(template: &str) -> impl Fn(&CidTarget<'_>) -> Option<String> + '_ {
    move |t| {
        Some(
            template
                .replace("{index}", &t.index.to_string())
                .replace("{cid}", &html::percent_encode(t.content_id)),
        )
    }
}

/// Normalizes one raw message (an `.eml`, an IMAP `BODY[]`, one mbox entry with or without
/// its `From ` line). Never fails; see the module documentation.
pub fn normalize(raw: &[u8], options: &NormalizeOptions<'_>) -> ParsedEmail {
    let body = strip_envelope_line(raw);
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let msg = PARSER.parse(body)?;
        // Without a single header, what the parser skipped as "headers" was content.
        if msg.headers().is_empty() {
            return None;
        }
        Some(from_message(&msg, raw, options))
    }));
    match parsed {
        Ok(Some(email)) => email,
        Ok(None) => fallback(raw, Problem::Unparseable),
        Err(_) => fallback(raw, Problem::ParserPanicked),
    }
}

/// mail-parser's default header parsers, except `Received`: kept raw (we only count those
/// headers; parsing every hop's clauses was a twentieth of normalization's time).
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    use mail_parser::HeaderName as H;
    let mut parser = MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_id(H::ReturnPath)
        .header_text(H::Subject)
        .header_text(H::Comments)
        .header_comma_separated(H::Keywords)
        .header_comma_separated(H::ContentLanguage)
        .header_raw(H::MimeVersion)
        .header_raw(H::Received)
        .default_header_raw();
    for list in [
        H::ListArchive,
        H::ListHelp,
        H::ListId,
        H::ListOwner,
        H::ListPost,
        H::ListSubscribe,
        H::ListUnsubscribe,
    ] {
        parser = parser.header_address(list);
    }
    parser
});

/// Drops an mbox `From sender date` envelope line at the very start.
fn strip_envelope_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        let end = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| p + 1);
        let first = &raw[..end];
        // A header line would be `From: ...`; an envelope line has no colon right after From.
        if !first.starts_with(b"From:") {
            return &raw[end..];
        }
    }
    raw
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn from_message(msg: &Message<'_>, raw: &[u8], options: &NormalizeOptions<'_>) -> ParsedEmail {
    let mut problems = Vec::new();

    let from = headers::mailboxes(msg, "from")
        .into_iter()
        .next()
        .or_else(|| headers::mailboxes(msg, "sender").into_iter().next())
        .or_else(|| headers::mailboxes(msg, "return-path").into_iter().next());
    if from.is_none() {
        problems.push(Problem::MissingFrom);
    }
    let to = headers::mailboxes(msg, "to");
    let cc = headers::mailboxes(msg, "cc");
    let reply_to = headers::mailboxes(msg, "reply-to");
    let subject = headers::first_text(msg, "subject").filter(|s| !s.is_empty());

    let sent_at = sent_at(msg);
    if sent_at.is_none() {
        problems.push(Problem::BadDate);
    }

    // Referenced ids without `@` are dropped: real Message-IDs have one, and the ones seen
    // in the wild (`In-Reply-To: <yes>` from a git-send-email prompt) would tie unrelated
    // threads together.
    let mut in_reply_to = headers::ids(msg, "in-reply-to");
    in_reply_to.retain(|id| id.contains('@'));
    let mut references = headers::ids(msg, "references");
    references.retain(|id| id.contains('@'));
    references.reverse();

    let (text, html_raw) = bodies(msg, &mut problems);
    if msg.parts.iter().any(|p| p.is_encoding_problem) {
        problems.push(Problem::MalformedPart);
    }

    let message_id = headers::ids(msg, "message-id").into_iter().next();
    let message_id_synthetic = message_id.is_none();
    let message_id = message_id.unwrap_or_else(|| {
        problems.push(Problem::MissingMessageId);
        synthetic_id(msg)
    });

    let mut parts = attachments::collect(msg);
    let (html, blocked) = match html_raw {
        Some(raw_html) => {
            let sanitized = sanitize_with_cids(&raw_html, &mut parts, options);
            (
                Some(sanitized.html.trim().to_string()),
                sanitized.blocked_remote,
            )
        }
        None => (None, Vec::new()),
    };
    let text = text.or_else(|| {
        html.as_deref()
            .map(html::to_text)
            .filter(|t| !t.trim().is_empty())
    });
    let reply_text = text.as_deref().map(quote::reply_text);

    let own = OwnMail {
        is_own_message_id: options.is_own_message_id,
        is_own_address: options.is_own_address,
    };
    let verdicts = flags::classify(
        msg,
        text.as_deref().unwrap_or(""),
        from.as_ref(),
        &message_id,
        options.spam_folder,
        &own,
    );
    let own_bounce = verdicts
        .bounce
        .as_ref()
        .and_then(|b| b.own_status_update(options.is_own_message_id));

    let mut reply_ids = in_reply_to.clone();
    for r in &references {
        if !reply_ids.contains(r) {
            reply_ids.push(r.clone());
        }
    }
    let raw_sha256 = sha256_hex(raw);
    let external = external(
        msg,
        &message_id,
        message_id_synthetic,
        &reply_to,
        reply_text.as_deref(),
        &verdicts,
        &raw_sha256,
        &problems,
    );

    let message = InboundMessage {
        provider_message_id: message_id,
        from: identity(from.as_ref()),
        from_name: from.as_ref().and_then(|f| f.name.clone()),
        to: to.iter().map(|m| m.address.clone()).collect(),
        cc: cc.iter().map(|m| m.address.clone()).collect(),
        subject,
        text,
        html,
        attachments: parts.iter().map(inbound_attachment).collect(),
        reply_to: reply_ids,
        thread_token: None,
        consent: None,
        flags: verdicts.flags(),
        sent_at,
        external,
    };
    ParsedEmail {
        message,
        from,
        to,
        cc,
        reply_to,
        in_reply_to,
        references,
        message_id_synthetic,
        reply_text,
        parts,
        blocked_remote_content: blocked,
        verdicts,
        own_bounce,
        raw_sha256,
        problems,
    }
}

fn identity(from: Option<&NamedAddress>) -> Identity {
    Identity {
        kind: IdentityKind::EMAIL,
        value: from.map_or_else(
            || format!("unknown@{SYNTHETIC_DOMAIN}"),
            |f| f.address.clone(),
        ),
    }
}

fn inbound_attachment(part: &AttachmentPart) -> InboundAttachment {
    InboundAttachment {
        filename: Some(part.filename.clone()),
        content_type: Some(part.content_type.clone()),
        source: None,
        content_id: part.content_id.clone(),
        ..Default::default()
    }
}

/// The Date header as milliseconds, if present and plausible (1971..=2200).
fn sent_at(msg: &Message<'_>) -> Option<Millis> {
    let date = msg.date()?;
    if !date.is_valid() || !(1971..=2200).contains(&date.year) {
        return None;
    }
    date.to_timestamp().checked_mul(1000)
}

/// The text and (unsanitized) HTML bodies: every text/plain body part joined, every
/// text/html body part joined. Text derived from HTML only when there is no text part.
fn bodies(msg: &Message<'_>, problems: &mut Vec<Problem>) -> (Option<String>, Option<String>) {
    let mut texts = Vec::new();
    let mut htmls = Vec::new();
    let mut repair = |part: &mail_parser::MessagePart<'_>, decoded: &str| {
        let (text, used) = charset::repaired(msg, part, decoded);
        if let Some(used) = used {
            let p = Problem::CharsetRepaired(used.to_string());
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        headers::without_nul(&text).into_owned()
    };
    for &id in &msg.text_body {
        if let Some(part) = msg.parts.get(id as usize)
            && let PartType::Text(t) = &part.body
        {
            texts.push(repair(part, t));
        }
    }
    for &id in &msg.html_body {
        if let Some(part) = msg.parts.get(id as usize)
            && let PartType::Html(h) = &part.body
        {
            htmls.push(repair(part, h));
        }
    }
    let mut text = texts.join("\n").replace("\r\n", "\n");
    let html = htmls.join("\n");
    if text.trim().is_empty() && html.trim().is_empty() {
        // A multipart whose boundary never matched is kept by the parser as one opaque part:
        // show its raw text rather than nothing (its bytes also stay a part).
        if let Some(broken) = msg.parts.iter().find(|p| {
            !matches!(p.body, PartType::Multipart(_) | PartType::Message(_))
                && p.content_type()
                    .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        }) {
            text = headers::without_nul(&String::from_utf8_lossy(broken.contents()))
                .replace("\r\n", "\n");
            if !problems.contains(&Problem::MalformedPart) {
                problems.push(Problem::MalformedPart);
            }
        }
    }
    (
        (!text.trim().is_empty()).then_some(text),
        (!html.trim().is_empty()).then_some(html),
    )
}

/// Sanitizes the HTML with the caller's `cid:` URLs and marks the parts it shows.
fn sanitize_with_cids(
    raw_html: &str,
    parts: &mut [AttachmentPart],
    options: &NormalizeOptions<'_>,
) -> html::Sanitized {
    let mut cid_urls = HashMap::new();
    for (index, part) in parts.iter().enumerate() {
        let Some(cid) = part.content_id.as_deref() else {
            continue;
        };
        if let Some(url) = (options.cid_url)(&CidTarget {
            content_id: cid,
            index,
        }) {
            cid_urls.entry(cid.to_lowercase()).or_insert(url);
        }
    }
    let sanitized = html::sanitize(raw_html, cid_urls, options.allow_remote_images);
    for part in parts.iter_mut() {
        if let Some(cid) = &part.content_id {
            part.referenced_by_html = sanitized.cids_used.contains(&cid.to_lowercase());
        }
    }
    sanitized
}

/// `<sha256(date, from, subject, body)>@switchboard.invalid`: the same message always gets
/// the same id, whatever its line endings.
fn synthetic_id(msg: &Message<'_>) -> String {
    let mut hasher = Sha256::new();
    for name in ["date", "from", "subject"] {
        let value = headers::first_text(msg, name).unwrap_or_default();
        hasher.update(value.as_bytes());
        hasher.update(b"\n");
    }
    let root = msg.root_part();
    let body = msg
        .raw_message
        .get(root.offset_body as usize..)
        .unwrap_or_default();
    let normalized: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    hasher.update(normalized.trim_ascii_end());
    format!("{}@{SYNTHETIC_DOMAIN}", hex::encode(hasher.finalize()))
}

#[allow(clippy::too_many_arguments)]
fn external(
    msg: &Message<'_>,
    message_id: &str,
    synthetic: bool,
    reply_to: &[NamedAddress],
    reply_text: Option<&str>,
    verdicts: &Verdicts,
    raw_sha256: &str,
    problems: &[Problem],
) -> Value {
    let mut email = Map::new();
    email.insert("message_id".into(), json!(message_id));
    email.insert("message_id_synthetic".into(), json!(synthetic));
    email.insert("headers".into(), Value::Object(headers::selected(msg)));
    email.insert("received_count".into(), json!(headers::received_count(msg)));
    email.insert("reply_to".into(), json!(reply_to));
    email.insert("reply_text".into(), json!(reply_text));
    email.insert("verdicts".into(), json!(verdicts));
    email.insert("raw_sha256".into(), json!(raw_sha256));
    email.insert("problems".into(), json!(problems));
    Value::Object(email)
}

/// The fallback for a message that cannot be parsed: its bytes as (lossy) text, a synthetic
/// id from the raw bytes, a placeholder sender.
fn fallback(raw: &[u8], problem: Problem) -> ParsedEmail {
    let raw_sha256 = sha256_hex(raw);
    let text = headers::without_nul(&String::from_utf8_lossy(raw)).replace("\r\n", "\n");
    let problems = vec![problem, Problem::MissingMessageId, Problem::MissingFrom];
    let message_id = format!("{raw_sha256}@{SYNTHETIC_DOMAIN}");
    let external = json!({
        "message_id": message_id,
        "message_id_synthetic": true,
        "raw_sha256": raw_sha256,
        "problems": problems,
    });
    let text = (!text.trim().is_empty()).then_some(text);
    ParsedEmail {
        message: InboundMessage {
            provider_message_id: message_id,
            from: identity(None),
            from_name: None,
            to: Vec::new(),
            cc: Vec::new(),
            subject: None,
            text: text.clone(),
            html: None,
            attachments: Vec::new(),
            reply_to: Vec::new(),
            thread_token: None,
            consent: None,
            flags: Vec::new(),
            sent_at: None,
            external,
        },
        from: None,
        to: Vec::new(),
        cc: Vec::new(),
        reply_to: Vec::new(),
        in_reply_to: Vec::new(),
        references: Vec::new(),
        message_id_synthetic: true,
        reply_text: text,
        parts: Vec::new(),
        blocked_remote_content: Vec::new(),
        verdicts: Verdicts::default(),
        own_bounce: None,
        raw_sha256,
        problems,
    }
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
