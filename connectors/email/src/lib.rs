//! Switchboard's email connector.
//!
//! [`EmailConnector`] is one `type = "email"` channel: IMAP sync in ([`sync`]: cursor per
//! folder moved with the messages it covers, IDLE plus a cron safety net, one replica per
//! mailbox), SMTP out ([`smtp`], [`outbound`]: threaded replies with a reply token). The
//! pure half — raw RFC 5322 bytes in, [`ParsedEmail`] out ([`normalize()`]) — is tested from
//! `fixtures/email` with golden outputs and over the shared mail corpora.
//!
//! - [`settings`]: the channel's configuration and its start-up validation.
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
pub mod connector;
pub mod dsn_text;
pub mod flags;
pub mod headers;
pub mod html;
pub mod html_text;
pub mod imap;
pub mod mbox;
pub mod normalize;
pub mod outbound;
pub mod parsed;
pub mod quote;
pub mod settings;
pub mod smtp;
pub mod sync;

pub use bounce::{BounceOutcome, BounceRecipient, BounceReport, FeedbackReport};
pub use connector::EmailConnector;
pub use flags::{AutoKind, AutoReplyVerdict, OwnMail, SpamVerdict, Verdicts};
pub use normalize::{CidTarget, NormalizeOptions, SYNTHETIC_DOMAIN, cid_template, normalize};
pub use parsed::{AttachmentPart, Disposition, Mailbox, ParsedEmail, PartKind, Problem};
pub use settings::{EmailSettings, validate};
