//! The email channel end to end: the real `switchboard` binary against a real Dovecot (IMAP,
//! LMTP) and a real Postfix (SMTP relaying `example.test` into Dovecot over LMTP), all
//! started by each test on free loopback ports (the test kit's `mail` harness).
//!
//! - new mail reaches the API through Postfix → LMTP → Dovecot → IDLE → sync, in seconds;
//! - a reply through the API threads in the customer's mailbox, and the customer's answer
//!   (by headers, and by the reply token alone) comes back into the same conversation;
//! - `kill -9` in the middle of a 3,000-message backfill loses and duplicates nothing;
//! - a UIDVALIDITY change (or a recreated folder) re-fetches without creating anything twice;
//! - Postfix's bounce of one of our replies marks it failed and opens no conversation;
//! - two replicas on one PostgreSQL store a mailbox exactly once, and the standby takes
//!   over when the lease holder is killed;
//! - an attachment over the channel's cap is not kept, its message is, memory stays bounded;
//! - inline images, attachments and the HTML body are served through signed URLs a browser
//!   can load without headers (and headless Chromium shows the HTML in a sandboxed iframe).
//!
//! The channel's mailbox is alice@example.test; bob@example.test plays the customer.
//!
//! [`relay`] holds the tests that go through Postfix, [`backfill`] those that sync a
//! pre-filled mailbox, [`media`] those of signed media URLs; [`support`] their shared
//! set-up and helpers.

mod backfill;
mod media;
mod oversized;
mod relay;
mod support;
