//! SMTP outbound with lettre: a pooled [`SmtpSender`] over implicit TLS, STARTTLS or plain
//! TCP (explicit only), with authentication; [`build_reply`] writes a threaded reply
//! (Message-ID on our domain, In-Reply-To and References from the thread, a `Re:` subject
//! that is never doubled, the reply token in Reply-To, text, optional HTML, attachments).
//! Errors are classified as lettre reports them: SMTP 4xx and connection failures are
//! transient, 5xx permanent with the code and the server's text.
//!
//! - [`SmtpConfig`] (`config.rs`): the channel's `smtp = { ... }` table.
//! - [`SmtpSender`] (`send.rs`): the pooled client; [`envelope`] for raw sends.
//! - [`build_reply`] (`reply.rs`): the reply message and its threading headers.
//! - [`SmtpError`] (`error.rs`): every failure, classified transient or permanent.
//!
//! Saving the sent copy is the IMAP side's job: `imap::Mailbox::append(sent, &raw, &["\\Seen"])`.

mod config;
mod error;
mod reply;
mod send;

pub use config::{SmtpAuth, SmtpConfig, SmtpSecurity};
pub use error::SmtpError;
pub use reply::{
    BuiltMessage, MailReply, OutgoingAttachment, build_reply, new_message_id, reply_address,
    reply_subject,
};
pub use send::{SmtpReceipt, SmtpSender, envelope};
