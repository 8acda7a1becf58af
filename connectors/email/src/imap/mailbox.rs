//! [`Mailbox`]: one authenticated IMAP connection, the API the sync engine drives:
//! connect → [`Mailbox::select`] → [`FolderState`] (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) →
//! [`Mailbox::fetch_batches`] after the cursor's UID → [`Mailbox::idle_wait`].
//!
//! Commands whose outcome matters (UID FETCH, UID SEARCH) are read here, response by
//! response, so that a `NO`, a `BYE` or a dropped connection is an error, never a silently
//! short answer. Unsolicited responses are consumed as they come (EXISTS is remembered as
//! "new mail"), so async-imap's bounded channel never fills up and drops any.

use super::config::ImapConfig;
use super::connect::{self, ImapSession, timed};
use super::error::ImapError;
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use async_imap::types::{Capability, UnsolicitedResponse};
use std::collections::HashSet;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A mailbox name as an IMAP quoted string (ASCII names; no CR or LF).
fn quote(name: &str) -> Result<String, ImapError> {
    if name.contains(['\r', '\n']) {
        return Err(ImapError::Config(format!("invalid folder name {name:?}")));
    }
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// What SELECT/EXAMINE told us about a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderState {
    pub folder: String,
    pub uid_validity: u32,
    pub uid_next: Option<u32>,
    /// Present when the server has CONDSTORE.
    pub highest_modseq: Option<u64>,
    /// Messages in the folder.
    pub exists: u32,
}

/// Why [`Mailbox::idle_wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEvent {
    /// New mail (EXISTS) in the selected folder.
    NewMail,
    /// Something else changed (flags, expunges); the folder may be worth a look.
    Changed,
    /// The wait time passed without news.
    Timeout,
    /// The stop future completed.
    Stopped,
}

/// Counters of the fetches made on a connection (progress, metrics, and proof that
/// batches stay bounded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// UID FETCH round trips for message bodies.
    pub batches: u64,
    pub messages: u64,
    pub bytes: u64,
    /// The most messages one batch held.
    pub largest_batch: usize,
    /// The most bytes (by RFC822.SIZE) one batch held.
    pub largest_batch_bytes: u64,
}

/// An authenticated connection to one IMAP account.
#[derive(Debug)]
pub struct Mailbox {
    session: ImapSession,
    /// Upper-cased capability atoms (`IMAP4REV1`, `IDLE`, `AUTH=PLAIN`, ...).
    capabilities: HashSet<String>,
    config: ImapConfig,
    selected: Option<String>,
    exists: u32,
    new_mail: bool,
    stats: FetchStats,
}

impl Mailbox {
    /// Connects, authenticates, reads the capabilities and enables CONDSTORE when offered.
    pub async fn connect(config: &ImapConfig) -> Result<Self, ImapError> {
        let mut session = connect::connect(config).await?;
        let caps = timed(config.timeout(), "reading capabilities", async {
            session
                .capabilities()
                .await
                .map_err(|e| ImapError::from_imap("CAPABILITY", e))
        })
        .await?;
        let capabilities = caps
            .iter()
            .map(|c| match c {
                Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
                Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect();
        let mut mailbox = Mailbox {
            session,
            capabilities,
            config: config.clone(),
            selected: None,
            exists: 0,
            new_mail: false,
            stats: FetchStats::default(),
        };
        mailbox.drain_unsolicited();
        if mailbox.has_capability("CONDSTORE") && mailbox.has_capability("ENABLE") {
            // Makes every SELECT and EXAMINE report HIGHESTMODSEQ.
            mailbox
                .run("enabling CONDSTORE", "ENABLE CONDSTORE", |_| Ok(false))
                .await?;
        }
        Ok(mailbox)
    }

    /// Whether the server announced `cap` (e.g. `IDLE`, `CONDSTORE`, `UIDPLUS`).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities.contains(&cap.to_ascii_uppercase())
    }

    /// The configuration this connection was opened with.
    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    /// The selected folder, if any.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// Messages in the selected folder as last reported by the server.
    pub fn exists(&self) -> u32 {
        self.exists
    }

    /// Whether EXISTS arrived since the last call (and clears it).
    pub fn take_new_mail(&mut self) -> bool {
        self.drain_unsolicited();
        std::mem::take(&mut self.new_mail)
    }

    /// Selects `folder` read-write.
    pub async fn select(&mut self, folder: &str) -> Result<FolderState, ImapError> {
        self.open(folder, false).await
    }

    /// Opens `folder` read-only (EXAMINE): fetching with `BODY.PEEK` changes nothing either way.
    pub async fn examine(&mut self, folder: &str) -> Result<FolderState, ImapError> {
        self.open(folder, true).await
    }

    async fn open(&mut self, folder: &str, read_only: bool) -> Result<FolderState, ImapError> {
        let command = if read_only { "EXAMINE" } else { "SELECT" };
        self.selected = None;
        let session = &mut self.session;
        let mbox = timed(self.config.timeout(), "opening a folder", async {
            let r = if read_only {
                session.examine(folder).await
            } else {
                session.select(folder).await
            };
            r.map_err(|e| ImapError::from_imap(command, e))
        })
        .await?;
        self.drain_unsolicited();
        let uid_validity = mbox.uid_validity.ok_or_else(|| {
            ImapError::Protocol(format!("{command} {folder}: no UIDVALIDITY in the answer"))
        })?;
        self.selected = Some(folder.to_owned());
        self.exists = mbox.exists;
        self.new_mail = false;
        Ok(FolderState {
            folder: folder.to_owned(),
            uid_validity,
            uid_next: mbox.uid_next,
            highest_modseq: mbox.highest_modseq,
            exists: mbox.exists,
        })
    }

    /// Creates `folder`; an existing one is fine.
    pub async fn create_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        let session = &mut self.session;
        let r = timed(self.config.timeout(), "creating a folder", async {
            Ok(session.create(folder).await)
        })
        .await?;
        self.drain_unsolicited();
        match r {
            Ok(()) => Ok(()),
            Err(async_imap::error::Error::No(m)) if m.to_ascii_uppercase().contains("EXISTS") => {
                Ok(())
            }
            Err(e) => Err(ImapError::from_imap("CREATE", e)),
        }
    }

    /// Appends a message to `folder` (e.g. sent mail to `Sent`) with `flags` such as `\Seen`.
    pub async fn append(
        &mut self,
        folder: &str,
        message: &[u8],
        flags: &[&str],
    ) -> Result<(), ImapError> {
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("({}) ", flags.join(" "))
        };
        let command = format!("APPEND {} {flags}{{{}}}", quote(folder)?, message.len());
        self.run_literal("appending", &command, Some(message), |_| Ok(false))
            .await
    }

    /// Sends NOOP: keeps the connection alive and collects pending EXISTS.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.run("NOOP", "NOOP", |_| Ok(false)).await
    }

    /// Logs out politely; errors are irrelevant at that point.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }

    /// UIDs of the selected folder greater than `after_uid`, ascending.
    pub async fn uids_after(&mut self, after_uid: u32) -> Result<Vec<u32>, ImapError> {
        let start = after_uid.saturating_add(1);
        // `n:*` always includes the highest UID, even below n: filter it out.
        let mut uids = self.uid_search(&format!("UID {start}:*")).await?;
        uids.retain(|&u| u > after_uid);
        Ok(uids)
    }

    /// UIDs of messages of the selected folder received in the last `days` days (by
    /// INTERNALDATE, whole days as IMAP's SINCE counts them), ascending: the first-sync window.
    pub async fn uid_search_since(&mut self, days: u32) -> Result<Vec<u32>, ImapError> {
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
        let format =
            time::macros::format_description!("[day padding:none]-[month repr:short]-[year]");
        let date = since
            .format(&format)
            .map_err(|e| ImapError::Protocol(format!("formatting a date: {e}")))?;
        self.uid_search(&format!("SINCE {date}")).await
    }

    /// `UID SEARCH criteria`, ascending.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let mut uids = Vec::new();
        self.run("searching", &format!("UID SEARCH {criteria}"), |resp| {
            if let Response::MailboxData(MailboxDatum::Search(ids)) = resp {
                uids.extend_from_slice(ids);
                return Ok(true);
            }
            Ok(false)
        })
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// Runs one tagged command, handing each untagged response to `on_data` (which returns
    /// whether it used it; unused ones are treated as unsolicited), and checks the tagged
    /// status. Each response must arrive within the configured timeout.
    pub(crate) async fn run<F>(
        &mut self,
        what: &'static str,
        command: &str,
        on_data: F,
    ) -> Result<(), ImapError>
    where
        F: FnMut(&Response<'_>) -> Result<bool, ImapError>,
    {
        self.run_literal(what, command, None, on_data).await
    }

    /// [`Mailbox::run`] for a command ending in a synchronizing literal `{n}`: `literal`
    /// is sent when the server asks for it with a continuation.
    async fn run_literal<F>(
        &mut self,
        what: &'static str,
        command: &str,
        mut literal: Option<&[u8]>,
        mut on_data: F,
    ) -> Result<(), ImapError>
    where
        F: FnMut(&Response<'_>) -> Result<bool, ImapError>,
    {
        let limit = self.config.timeout();
        let verb = command.split(' ').take(2).collect::<Vec<_>>().join(" ");
        let session = &mut self.session;
        let id = timed(limit, what, async {
            session
                .run_command(command)
                .await
                .map_err(|e| ImapError::from_imap(&verb, e))
        })
        .await?;
        loop {
            let session = &mut self.session;
            let resp = timed(limit, what, async {
                session.read_response().await.map_err(ImapError::Io)
            })
            .await?
            .ok_or(ImapError::ConnectionLost)?;
            match resp.parsed() {
                Response::Done {
                    tag,
                    status,
                    outcome,
                } if *tag == id => {
                    self.drain_unsolicited();
                    let message = format!(
                        "{}{}",
                        outcome
                            .code
                            .as_ref()
                            .map(|c| format!("[{c:?}] "))
                            .unwrap_or_default(),
                        outcome.information.as_deref().unwrap_or_default()
                    );
                    return match status {
                        Status::Ok => Ok(()),
                        Status::No => Err(ImapError::from_imap(
                            &verb,
                            async_imap::error::Error::No(message),
                        )),
                        Status::Bad => Err(ImapError::Bad {
                            command: verb,
                            message,
                        }),
                        _ => Err(ImapError::Protocol(format!("{verb}: {status:?} {message}"))),
                    };
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(ImapError::Bye(
                        outcome.information.as_deref().unwrap_or("").to_owned(),
                    ));
                }
                Response::Continue { .. } if literal.is_some() => {
                    let bytes = literal.take().unwrap_or_default();
                    let stream = self.session.get_mut();
                    timed(limit, what, async {
                        stream.write_all(bytes).await?;
                        stream.write_all(b"\r\n").await?;
                        stream.flush().await.map_err(ImapError::Io)
                    })
                    .await?;
                }
                other => {
                    if !on_data(other)? {
                        self.note(other);
                    }
                }
            }
        }
    }

    /// Records an unsolicited response that matters to us.
    fn note(&mut self, resp: &Response<'_>) {
        match resp {
            Response::MailboxData(MailboxDatum::Exists(n)) => {
                if *n > self.exists {
                    self.new_mail = true;
                }
                self.exists = *n;
            }
            Response::Expunge(_) => self.exists = self.exists.saturating_sub(1),
            _ => {}
        }
    }

    /// Empties async-imap's bounded unsolicited-response channel (it drops when full).
    fn drain_unsolicited(&mut self) {
        while let Ok(resp) = self.session.unsolicited_responses.try_recv() {
            match resp {
                UnsolicitedResponse::Exists(n) => {
                    if n > self.exists {
                        self.new_mail = true;
                    }
                    self.exists = n;
                }
                UnsolicitedResponse::Expunge(_) => self.exists = self.exists.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Waits in IDLE on the selected folder until new mail, another change, `timeout`, or
    /// `stop` completes. Returns at once with [`IdleEvent::NewMail`] if EXISTS already came
    /// during earlier commands. The session is taken by IDLE and given back by DONE, hence
    /// `self` by value.
    pub async fn idle_wait<S>(
        mut self,
        timeout: Duration,
        stop: S,
    ) -> Result<(Self, IdleEvent), ImapError>
    where
        S: Future<Output = ()>,
    {
        if self.take_new_mail() {
            return Ok((self, IdleEvent::NewMail));
        }
        if !self.has_capability("IDLE") {
            return Err(ImapError::Unsupported("IDLE".into()));
        }
        let limit = self.config.timeout();
        let Mailbox {
            session,
            capabilities,
            config,
            selected,
            exists,
            stats,
            ..
        } = self;
        let mut handle = session.idle();
        timed(limit, "starting IDLE", async {
            handle
                .init()
                .await
                .map_err(|e| ImapError::from_imap("IDLE", e))
        })
        .await?;
        let (wait, _interrupt) = handle.wait_with_timeout(timeout);
        let outcome = tokio::select! {
            r = wait => Some(r.map_err(|e| ImapError::from_imap("IDLE", e))?),
            () = stop => None,
        };
        let mut event = match &outcome {
            None => IdleEvent::Stopped,
            Some(IdleResponse::Timeout | IdleResponse::ManualInterrupt) => IdleEvent::Timeout,
            Some(IdleResponse::NewData(data)) => match data.parsed() {
                Response::MailboxData(MailboxDatum::Exists(_)) => IdleEvent::NewMail,
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(ImapError::Bye(
                        outcome
                            .information
                            .as_deref()
                            .unwrap_or("during IDLE")
                            .to_owned(),
                    ));
                }
                _ => IdleEvent::Changed,
            },
        };
        let session = timed(limit, "ending IDLE", async {
            handle
                .done()
                .await
                .map_err(|e| ImapError::from_imap("DONE", e))
        })
        .await?;
        let mut me = Mailbox {
            session,
            capabilities,
            config,
            selected,
            exists,
            new_mail: false,
            stats,
        };
        if let Some(IdleResponse::NewData(data)) = &outcome {
            me.note(data.parsed());
        }
        // EXISTS that came with the DONE answer counts too.
        if me.take_new_mail() && event != IdleEvent::Stopped {
            event = IdleEvent::NewMail;
        }
        Ok((me, event))
    }

    /// What the fetches on this connection amounted to so far.
    pub fn fetch_stats(&self) -> FetchStats {
        self.stats
    }

    pub(crate) fn record_batch(&mut self, messages: usize, bytes: u64) {
        let s = &mut self.stats;
        s.batches += 1;
        s.messages += messages as u64;
        s.bytes += bytes;
        s.largest_batch = s.largest_batch.max(messages);
        s.largest_batch_bytes = s.largest_batch_bytes.max(bytes);
    }

    pub(crate) fn batch_limits(&self, batch: u32) -> (usize, u64) {
        (batch.max(1) as usize, self.config.max_batch_bytes.max(1))
    }
}
