//! The IMAP client layer of the email connector (the network half of inbound sync).
//!
//! - [`ImapConfig`]: the channel's `imap = { ... }` table (security `tls` | `starttls` |
//!   `plain`, auth `login` | `plain` | `xoauth2`, folders, spam folders, IDLE, schedule,
//!   batch size, first-sync window).
//! - [`Mailbox`]: one authenticated connection (rustls with ring, manual STARTTLS, greeting
//!   read before login). The sync engine drives it as
//!   `Mailbox::connect` → [`Mailbox::select`] → [`FolderState`] (UIDVALIDITY, UIDNEXT,
//!   HIGHESTMODSEQ) → [`Mailbox::fetch_batches`] (a stream of [`FetchedMessage`] after the
//!   cursor's UID, in bounded batches) → [`Mailbox::idle_wait`]; plus
//!   [`Mailbox::uid_search_since`] for the first-sync window and [`Mailbox::append`] for
//!   saving sent mail.
//! - [`watch_folder`]: IDLE with reconnect and backoff, waking a [`tokio::sync::Notify`].
//! - [`ImapError`]: every failure, classified transient or permanent.

mod config;
mod connect;
mod error;
mod fetch;
mod mailbox;
mod watch;

pub use config::{AuthMethod, ImapConfig, Security};
pub use connect::{ImapSession, ImapStream, bearer_token, tls_config};
pub use error::{ErrorClass, ImapError};
pub use fetch::{FetchedMessage, parse_internal_date, uid_set};
pub use mailbox::{FetchStats, FolderState, IdleEvent, Mailbox};
pub use watch::{Backoff, WatchEvent, watch_folder};
