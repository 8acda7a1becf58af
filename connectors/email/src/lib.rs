//! Switchboard's email connector, in two halves.
//!
//! [`EmailConnector`] is one `type = "email"` channel.
//!
//! The pure half, [`message`]: raw RFC 5322 bytes in, [`ParsedEmail`] out ([`normalize()`]),
//! with no I/O of any kind; tested from `fixtures/email` with golden outputs and over the
//! shared mail corpora. See its documentation for its modules and their order.
//!
//! The I/O half, which uses the pure one and never the other way round:
//! - [`imap`]: the IMAP client (connections, folders, fetching, IDLE).
//! - [`sync`]: IMAP sync into core (cursor per folder moved with the messages it covers,
//!   IDLE plus a cron safety net, one replica per mailbox).
//! - [`smtp`], [`outbound`]: SMTP out, threaded replies with a reply token.
//! - [`connector`]: the channel as core sees it; [`settings`]: its configuration and its
//!   start-up validation.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod connector;
pub mod imap;
pub mod message;
pub mod outbound;
pub mod settings;
pub mod smtp;
pub mod sync;

pub use connector::{EmailConnector, TYPE};
pub use message::attachments::{AttachmentPart, Disposition, PartKind};
pub use message::flags::{AutoKind, AutoReplyVerdict, OwnMail, SpamVerdict, Verdicts};
pub use message::headers::NamedAddress;
pub use message::normalize::{
    CidTarget, NormalizeOptions, SYNTHETIC_DOMAIN, cid_template, normalize,
};
pub use message::parsed::{ParsedEmail, Problem};
pub use message::report::{BounceOutcome, BounceRecipient, BounceReport, FeedbackReport};
pub use settings::{EmailSettings, validate};
