//! The output of email normalization: core's [`InboundMessage`] plus everything email carries
//! that the shared model has no field for (attachment bytes, display names, Reply-To, the
//! reply text without quoted history, bounce and feedback reports, parse problems).
//!
//! Everything here serializes deterministically (attachment bytes are skipped; their size and
//! sha256 stand in for them), which is what the golden tests compare.

use serde::Serialize;
use switchboard_core::domain::model::{InboundMessage, StatusUpdate};

use super::attachments::AttachmentPart;
use super::flags::Verdicts;
use super::headers::NamedAddress;

/// A normalized email: the shared-model message and the email-only extras.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedEmail {
    /// The message in core's vocabulary. `attachments[i]` describes `parts[i]`.
    pub message: InboundMessage,
    /// The sender with its display name (`message.from` holds the lower-cased address).
    pub from: Option<NamedAddress>,
    pub to: Vec<NamedAddress>,
    pub cc: Vec<NamedAddress>,
    /// The Reply-To header: where the sender wants answers to go.
    pub reply_to: Vec<NamedAddress>,
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
    /// The bounce in `verdicts` as the delivery status of one of our outbound messages, when
    /// the bounced Message-ID is ours ([`super::report::BounceReport::own_status_update`]
    /// with the caller's `is_own_message_id`); `None` for everything else. A sync applies it
    /// instead of storing the message. Not serialized: `verdicts.bounce` shows the report.
    #[serde(skip)]
    pub own_bounce: Option<StatusUpdate>,
    /// sha256 of the raw message bytes (hex): with the Message-ID, the dedupe key of a re-fetch.
    pub raw_sha256: String,
    /// What was wrong with the message; it was normalized anyway.
    pub problems: Vec<Problem>,
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
