//! Streaming the messages of the selected folder in bounded UID batches.
//!
//! The UIDs to fetch come from one `UID SEARCH` (4 bytes each); messages are then fetched
//! `batch_size` at a time and no more than `max_batch_bytes` (by RFC822.SIZE, asked first)
//! per round trip, so at most one batch is held in memory whatever the folder's size. The
//! stream yields messages in ascending UID order, each exactly once; an error ends it (the
//! caller keeps its cursor at the last message it stored and retries later).

use super::error::ImapError;
use super::mailbox::Mailbox;
use async_imap::imap_proto::{AttributeValue, Response};
use futures::Stream;
use std::collections::{HashMap, VecDeque};
use time::OffsetDateTime;

/// One fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    /// The whole message as stored (RFC 5322 bytes).
    pub raw: Vec<u8>,
    /// The server's INTERNALDATE (arrival time).
    pub internal_date: Option<OffsetDateTime>,
    /// Flags such as `\Seen`, `\Flagged`, `$Junk`.
    pub flags: Vec<String>,
    pub size: Option<u32>,
    /// The message's MODSEQ when the server has CONDSTORE enabled.
    pub modseq: Option<u64>,
}

/// Formats ascending UIDs as a compact IMAP sequence set: `1:5,7,9:12`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.saturating_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Parses an IMAP date-time: `21-Nov-2026 09:35:58 +0000` (day may be space-padded).
pub fn parse_internal_date(s: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[day padding:none]-[month repr:short case_sensitive:false]-[year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s.trim(), &format).ok()
}

fn flag_names(flags: &[std::borrow::Cow<'_, str>]) -> Vec<String> {
    flags.iter().map(|f| f.to_string()).collect()
}

/// Builds a message from one FETCH response, if it carries a body.
fn to_message(attrs: &[AttributeValue<'_>]) -> (Option<u32>, Option<FetchedMessage>) {
    let mut uid = None;
    let mut raw = None;
    let mut internal_date = None;
    let mut flags = Vec::new();
    let mut size = None;
    let mut modseq = None;
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::BodySection {
                section: None,
                data: Some(d),
                ..
            }
            | AttributeValue::Rfc822(Some(d)) => raw = Some(d.to_vec()),
            AttributeValue::InternalDate(d) => internal_date = parse_internal_date(d),
            AttributeValue::Flags(f) => flags = flag_names(f),
            AttributeValue::Rfc822Size(s) => size = Some(*s),
            AttributeValue::ModSeq(m) => modseq = Some(*m),
            _ => {}
        }
    }
    let msg = match (uid, raw) {
        (Some(uid), Some(raw)) => Some(FetchedMessage {
            uid,
            raw,
            internal_date,
            flags,
            size,
            modseq,
        }),
        _ => None,
    };
    (uid, msg)
}

struct FetchState<'a> {
    mailbox: &'a mut Mailbox,
    /// None until the UID SEARCH ran (for `fetch_batches`).
    pending: Option<VecDeque<u32>>,
    after_uid: u32,
    batch: usize,
    max_bytes: u64,
    ready: VecDeque<FetchedMessage>,
    sizes: HashMap<u32, u32>,
    done: bool,
}

impl FetchState<'_> {
    /// Fetches the next batch into `ready`.
    async fn refill(&mut self) -> Result<(), ImapError> {
        if self.pending.is_none() {
            let uids = self.mailbox.uids_after(self.after_uid).await?;
            self.pending = Some(uids.into());
        }
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        let chunk: Vec<u32> = pending.iter().take(self.batch).copied().collect();
        if chunk.is_empty() {
            return Ok(());
        }
        // Sizes first, for the byte budget (remembered for the UIDs left for later).
        let unknown: Vec<u32> = chunk
            .iter()
            .copied()
            .filter(|u| !self.sizes.contains_key(u))
            .collect();
        if !unknown.is_empty() {
            let sizes = &mut self.sizes;
            let cmd = format!("UID FETCH {} (UID RFC822.SIZE)", uid_set(&unknown));
            self.mailbox
                .run("fetching sizes", &cmd, |resp| {
                    if let Response::Fetch(_, attrs) = resp {
                        let mut uid = None;
                        let mut size = None;
                        for a in attrs {
                            match a {
                                AttributeValue::Uid(u) => uid = Some(*u),
                                AttributeValue::Rfc822Size(s) => size = Some(*s),
                                _ => {}
                            }
                        }
                        if let (Some(u), Some(s)) = (uid, size) {
                            sizes.insert(u, s);
                        }
                        return Ok(true);
                    }
                    Ok(false)
                })
                .await?;
        }
        let mut take = 0;
        let mut bytes = 0u64;
        for uid in &chunk {
            let size = u64::from(self.sizes.get(uid).copied().unwrap_or(0));
            if take > 0 && bytes + size > self.max_bytes {
                break;
            }
            bytes += size;
            take += 1;
        }
        let wanted = &chunk[..take];
        let modseq = if self.mailbox.has_capability("CONDSTORE") {
            " MODSEQ"
        } else {
            ""
        };
        let cmd = format!(
            "UID FETCH {} (UID RFC822.SIZE INTERNALDATE FLAGS{modseq} BODY.PEEK[])",
            uid_set(wanted)
        );
        let mut got: HashMap<u32, FetchedMessage> = HashMap::with_capacity(wanted.len());
        self.mailbox
            .run("fetching messages", &cmd, |resp| {
                if let Response::Fetch(_, attrs) = resp {
                    match to_message(attrs) {
                        (Some(uid), Some(msg)) if wanted.binary_search(&uid).is_ok() => {
                            got.insert(uid, msg);
                            Ok(true)
                        }
                        // A flag update for another message: unsolicited.
                        _ => Ok(false),
                    }
                } else {
                    Ok(false)
                }
            })
            .await?;
        self.mailbox
            .record_batch(got.len(), got.values().map(|m| m.raw.len() as u64).sum());
        // A UID the server did not return must have been expunged in between; if it still
        // exists, the server failed to give it to us: an error, never a silent skip.
        let missing: Vec<u32> = wanted
            .iter()
            .copied()
            .filter(|u| !got.contains_key(u))
            .collect();
        if !missing.is_empty() {
            let still = self
                .mailbox
                .uid_search(&format!("UID {}", uid_set(&missing)))
                .await?;
            let still: Vec<u32> = still.into_iter().filter(|u| missing.contains(u)).collect();
            if !still.is_empty() {
                return Err(ImapError::Protocol(format!(
                    "the server returned no body for UIDs {}",
                    uid_set(&still)
                )));
            }
        }
        // Only now, with the batch complete, are its UIDs consumed.
        for uid in wanted {
            pending.pop_front();
            self.sizes.remove(uid);
            if let Some(msg) = got.remove(uid) {
                self.ready.push_back(msg);
            }
        }
        Ok(())
    }
}

impl Mailbox {
    /// Every message of the selected folder with a UID above `after_uid`, ascending, fetched
    /// `batch` at a time (and within `max_batch_bytes`). The UID list is taken when the
    /// stream starts; mail arriving later is left for the next call.
    pub fn fetch_batches(
        &mut self,
        after_uid: u32,
        batch: u32,
    ) -> impl Stream<Item = Result<FetchedMessage, ImapError>> + '_ {
        let (batch, max_bytes) = self.batch_limits(batch);
        Self::stream(FetchState {
            mailbox: self,
            pending: None,
            after_uid,
            batch,
            max_bytes,
            ready: VecDeque::new(),
            sizes: HashMap::new(),
            done: false,
        })
    }

    /// The messages with the given UIDs (e.g. from [`Mailbox::uid_search_since`]),
    /// ascending, in bounded batches like [`Mailbox::fetch_batches`].
    pub fn fetch_uids(
        &mut self,
        mut uids: Vec<u32>,
        batch: u32,
    ) -> impl Stream<Item = Result<FetchedMessage, ImapError>> + '_ {
        uids.sort_unstable();
        uids.dedup();
        let (batch, max_bytes) = self.batch_limits(batch);
        Self::stream(FetchState {
            mailbox: self,
            pending: Some(uids.into()),
            after_uid: 0,
            batch,
            max_bytes,
            ready: VecDeque::new(),
            sizes: HashMap::new(),
            done: false,
        })
    }

    fn stream(state: FetchState<'_>) -> impl Stream<Item = Result<FetchedMessage, ImapError>> + '_ {
        futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(msg) = st.ready.pop_front() {
                    return Some((Ok(msg), st));
                }
                if st.done {
                    return None;
                }
                if let Err(e) = st.refill().await {
                    st.done = true;
                    return Some((Err(e), st));
                }
                if st.ready.is_empty() && st.pending.as_ref().is_none_or(|p| p.is_empty()) {
                    st.done = true;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_dates() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8, 10]), "1:3,5,7:8,10");
        assert_eq!(uid_set(&[42]), "42");
        assert_eq!(uid_set(&[]), "");
        let d = parse_internal_date("21-Nov-2026 09:35:58 +0130").unwrap();
        assert_eq!(d.unix_timestamp(), 1_795_248_358);
        assert!(parse_internal_date(" 1-Jan-2024 00:00:00 -0500").is_some());
        assert!(parse_internal_date("garbage").is_none());
    }
}
