//! The pure half of the email connector: raw RFC 5322 bytes in, [`ParsedEmail`] out
//! ([`normalize::normalize`]).
//!
//! No I/O here: no network, no files, no database, no tokio, no clock. The same bytes and
//! options always give the same output, which the golden tests (`fixtures/email`) and the
//! corpus tests check. The I/O half ([`crate::imap`], [`crate::smtp`], [`crate::sync`])
//! uses this module; nothing here uses it.
//!
//! The modules form layers, each using only the ones listed before it (no circles):
//! 1. [`charset`]: repair of wrong charset declarations; [`headers`]: header values,
//!    message ids, addresses ([`headers::NamedAddress`]); [`mbox`]: splitting mbox files.
//! 2. [`html_text`]: text from HTML-only bodies; [`html`]: HTML sanitizing (ammonia), `cid:`
//!    rewriting, remote content blocking; [`quote`]: the reply text without quoted history
//!    and signature; [`attachments`]: attachment, inline and attached-message parts
//!    ([`attachments::AttachmentPart`]), safe file names.
//! 3. [`report`]: what bounces and feedback reports say (plain data); [`dsn_text`]: their
//!    text-level parsing; [`bounce`]: finding them in a message.
//! 4. [`flags`]: spam, auto-reply, bounce, feedback and loop verdicts.
//! 5. [`parsed`]: the output, [`ParsedEmail`]; [`normalize`]: MIME parsing (mail-parser),
//!    addresses, ids, dates, bodies, and everything above put together.

pub mod attachments;
pub mod bounce;
pub mod charset;
pub mod dsn_text;
pub mod flags;
pub mod headers;
pub mod html;
pub mod html_text;
pub mod mbox;
pub mod normalize;
pub mod parsed;
pub mod quote;
pub mod report;

pub use parsed::ParsedEmail;
