//! Switchboard's email connector.
//!
//! This crate currently holds the pure half of the connector: raw RFC 5322 bytes in,
//! [`ParsedEmail`] out ([`normalize()`]), tested from `fixtures/email` with golden outputs and
//! over the shared mail corpora. IMAP sync and SMTP sending build on it.
//!
//! - [`normalize`]: MIME parsing (mail-parser), addresses, ids, dates, bodies, attachments.
//! - [`html`]: HTML sanitizing (ammonia), `cid:` rewriting, remote content blocking;
//!   [`html_text`]: text from HTML-only bodies.
//! - [`charset`]: repair of wrong charset declarations.
//! - [`attachments`]: attachment, inline and attached-message parts, safe file names.
//! - [`quote`]: the reply text without quoted history and signature.
//! - [`flags`]: spam, auto-reply, bounce, feedback and loop verdicts; [`bounce`] and
//!   [`dsn_text`] read delivery status reports.
//! - [`mbox`]: splitting mbox files.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod attachments;
pub mod bounce;
pub mod charset;
pub mod dsn_text;
pub mod flags;
pub mod headers;
pub mod html;
pub mod html_text;
pub mod imap;
pub mod mbox;
pub mod normalize;
pub mod parsed;
pub mod quote;
pub mod smtp;

pub use bounce::{BounceOutcome, BounceRecipient, BounceReport, FeedbackReport};
pub use flags::{AutoKind, AutoReplyVerdict, OwnMail, SpamVerdict, Verdicts};
pub use normalize::{CidTarget, NormalizeOptions, SYNTHETIC_DOMAIN, cid_template, normalize};
pub use parsed::{AttachmentPart, Disposition, Mailbox, ParsedEmail, PartKind, Problem};
