//! The output of email normalization: core's [`InboundMessage`] plus everything email carries
//! that the shared model has no field for (attachment bytes, display names, Reply-To, the
//! reply text without quoted history, bounce and feedback reports, parse problems).
//!
//! Everything here serializes deterministically (attachment bytes are skipped; their size and
//! sha256 stand in for them), which is what the golden tests compare.

use serde::Serialize;
use switchboard_core::model::InboundMessage;

use crate::flags::Verdicts;

/// A normalized email: the shared-model message and the email-only extras.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedEmail {
    /// The message in core's vocabulary. `attachments[i]` describes `parts[i]`.
    pub message: InboundMessage,
    /// The sender with its display name (`message.from` holds the lower-cased address).
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// The Reply-To header: where the sender wants answers to go.
    pub reply_to: Vec<Mailbox>,
    /// In-Reply-To ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids, newest first, without angle brackets.
    pub references: Vec<String>,
    /// True when the message had no usable Message-ID and one was derived from its content.
    pub message_id_synthetic: bool,
    /// The text the sender wrote, without quoted history and signature.
    pub reply_text: Option<String>,
    /// Attachments, inline parts and attached messages, with their bytes.
    pub parts: Vec<AttachmentPart>,
    /// Remote resources removed from the HTML body (not loaded; a frontend may offer a proxy).
    pub blocked_remote_content: Vec<String>,
    /// Spam, auto-reply, bounce, feedback and loop verdicts; `message.flags` summarizes them.
    pub verdicts: Verdicts,
    /// sha256 of the raw message bytes (hex): with the Message-ID, the dedupe key of a re-fetch.
    pub raw_sha256: String,
    /// What was wrong with the message; it was normalized anyway.
    pub problems: Vec<Problem>,
}

/// An address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub name: Option<String>,
    /// Lower-cased.
    pub address: String,
}

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

/// Something wrong with a message that normalization worked around.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Problem {
    #[error("the message could not be parsed as MIME; its raw text was kept")]
    Unparseable,
    #[error("the MIME parser failed on this message; its raw text was kept")]
    ParserPanicked,
    #[error("no usable Message-ID; a synthetic one was derived from the content")]
    MissingMessageId,
    #[error("no usable From address")]
    MissingFrom,
    #[error("Date header missing or unusable")]
    BadDate,
    #[error("text decoded with a different charset than declared: {0}")]
    CharsetRepaired(String),
    #[error("a MIME part could not be decoded as declared")]
    MalformedPart,
}
