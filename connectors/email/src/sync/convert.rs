//! From a fetched IMAP message to what core ingests (pure): the normalized message with its
//! parts' bytes handed over as attachments (ids chosen up front so the sanitized HTML can
//! point its `cid:` images at them), the journal entry keyed by Message-ID plus content
//! hash, and — for a bounce of one of our messages — the delivery status update.

use crate::imap::FetchedMessage;
use crate::message::normalize::{CidTarget, NormalizeOptions, normalize};
use std::cell::RefCell;
use switchboard_core::contract::journal::JournalEntry;
use switchboard_core::domain::model::{InboundMessage, StatusUpdate};

/// What one fetched message becomes.
#[derive(Debug)]
pub struct Converted {
    pub uid: u32,
    /// The message to store (for a bounce of ours: only if the status finds no message).
    pub journal: JournalEntry,
    pub message: InboundMessage,
    /// A delivery report on one of our outbound messages (by its Message-ID).
    pub status: Option<(JournalEntry, StatusUpdate)>,
}

/// What conversion needs to know about the channel and folder.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub folder: String,
    pub uid_validity: u32,
    pub spam_folder: bool,
    pub allow_remote_images: bool,
    /// Attachments larger than this are not kept (marked `too_large` with their size).
    pub max_attachment_bytes: u64,
    /// Our own mailbox address, lower-cased (loop detection).
    pub own_address: String,
    /// The domain of our Message-IDs (loop detection).
    pub message_id_domain: String,
}

/// The journal key of a fetched message: the same Message-ID with the same bytes is the
/// same message, wherever and however often it is fetched (a UIDVALIDITY resync, a copy in
/// two folders); a different message reusing a Message-ID still gets its own key.
pub fn journal_key(message_id: &str, raw_sha256: &str) -> String {
    // Keys are bounded (512); Message-IDs are not.
    let id: String = message_id.chars().take(300).collect();
    format!("mail:{id}:{raw_sha256}")
}

/// Whether a Message-ID is one we wrote: `uuid@our-domain` (see `smtp::new_message_id`).
pub fn is_own_message_id(id: &str, domain: &str) -> bool {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    match id.rsplit_once('@') {
        Some((local, d)) => {
            d.eq_ignore_ascii_case(domain)
                && local.len() == 32
                && local.chars().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Whether an address is our mailbox, with or without a `+detail` (reply tokens).
pub fn is_own_address(address: &str, own: &str) -> bool {
    let strip = |a: &str| -> String {
        match a.rsplit_once('@') {
            Some((local, domain)) => format!(
                "{}@{}",
                local.split('+').next().unwrap_or(local),
                domain.to_ascii_lowercase()
            ),
            None => a.to_owned(),
        }
    };
    !own.is_empty() && strip(&address.to_ascii_lowercase()) == strip(&own.to_ascii_lowercase())
}

/// The reply token in a recipient address `local+TOKEN@domain` of our own mailbox.
pub fn thread_token(recipients: &[String], own: &str) -> Option<String> {
    let (own_local, own_domain) = own.rsplit_once('@')?;
    recipients.iter().find_map(|r| {
        let (local, domain) = r.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(own_domain) {
            return None;
        }
        let (base, token) = local.split_once('+')?;
        (base.eq_ignore_ascii_case(own_local)
            && !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        .then(|| token.to_owned())
    })
}

/// Normalizes one fetched message and prepares it for ingest. `new_id` makes attachment ids;
/// `attachment_url` is where core serves an attachment by id (`cid:` images point there:
/// [`switchboard_core::contract::connector::ConnectorContext::attachment_url`]).
pub fn convert(
    fetched: FetchedMessage,
    options: &ConvertOptions,
    new_id: &dyn Fn() -> String,
    attachment_url: &dyn Fn(&str) -> String,
) -> Converted {
    let ids: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let id_for = |index: usize| -> String {
        let mut ids = ids.borrow_mut();
        while ids.len() <= index {
            ids.push(new_id());
        }
        ids[index].clone()
    };
    let cid_url = |t: &CidTarget<'_>| -> Option<String> { Some(attachment_url(&id_for(t.index))) };
    let own_id = |id: &str| is_own_message_id(id, &options.message_id_domain);
    let own_addr = |a: &str| is_own_address(a, &options.own_address);
    let normalize_options = NormalizeOptions {
        cid_url: &cid_url,
        allow_remote_images: options.allow_remote_images,
        spam_folder: options.spam_folder,
        is_own_message_id: &own_id,
        is_own_address: &own_addr,
    };
    let parsed = normalize(&fetched.raw, &normalize_options);
    let crate::message::parsed::ParsedEmail {
        mut message,
        mut parts,
        own_bounce,
        raw_sha256,
        ..
    } = parsed;
    for (index, (attachment, part)) in message
        .attachments
        .iter_mut()
        .zip(parts.iter_mut())
        .enumerate()
    {
        attachment.id = Some(id_for(index));
        let bytes = std::mem::take(&mut part.bytes);
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > options.max_attachment_bytes {
            // Not stored: an unbounded attachment would fill the blob store.
            attachment.too_large = Some(size);
        } else {
            attachment.content = Some(bytes);
        }
    }
    let mut recipients = message.to.clone();
    recipients.extend(message.cc.iter().cloned());
    message.thread_token = thread_token(&recipients, &options.own_address);
    if let Some(external) = message.external.as_object_mut() {
        external.insert(
            "imap".into(),
            serde_json::json!({
                "folder": options.folder,
                "uid": fetched.uid,
                "uidvalidity": options.uid_validity,
                "flags": fetched.flags,
                "internal_date": fetched.internal_date.map(|d| d.unix_timestamp()),
            }),
        );
    }
    let key = journal_key(&message.provider_message_id, &raw_sha256);
    let status = own_bounce.map(|update| {
        let journal = JournalEntry::new(
            format!("bounce:{key}"),
            "status",
            "application/json",
            serde_json::to_vec(&update.external).unwrap_or_default(),
        );
        (journal, update)
    });
    Converted {
        uid: fetched.uid,
        // Compressed here, on the parsing threads, not on the store's path.
        journal: JournalEntry::compressed(key, "message", "message/rfc822", fetched.raw),
        message,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids_addresses_and_tokens() {
        assert!(is_own_message_id(
            "<0123456789abcdef0123456789abcdef@acme.example>",
            "acme.example"
        ));
        assert!(!is_own_message_id("CAF=abc@mail.gmail.com", "acme.example"));
        assert!(!is_own_message_id("short@acme.example", "acme.example"));
        assert!(is_own_address(
            "Support+abc@ACME.example",
            "support@acme.example"
        ));
        assert!(!is_own_address(
            "other@acme.example",
            "support@acme.example"
        ));
        let to = vec![
            "x@y.example".to_string(),
            "support+Tk_1-2.3@acme.example".to_string(),
        ];
        assert_eq!(
            thread_token(&to, "support@acme.example").as_deref(),
            Some("Tk_1-2.3")
        );
        assert_eq!(thread_token(&to[..1], "support@acme.example"), None);
        let evil = vec!["support+a b@acme.example".to_string()];
        assert_eq!(thread_token(&evil, "support@acme.example"), None);
        assert!(journal_key(&"x".repeat(1000), "ab").len() < 512);
    }

    #[test]
    fn attachments_over_the_cap_are_marked_too_large_and_not_kept() {
        let big = "A".repeat(3000);
        let raw = format!(
            "Message-ID: <big@x.example>\r\nFrom: a@x.example\r\nTo: support@acme.example\r\n\
             Subject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
             --b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=big.bin\r\n\r\n{big}\r\n\
             --b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=small.bin\r\n\r\nsmall\r\n--b--\r\n"
        );
        let fetched = FetchedMessage {
            uid: 1,
            raw: raw.into_bytes(),
            internal_date: None,
            flags: Vec::new(),
            size: None,
            modseq: None,
        };
        let options = ConvertOptions {
            folder: "INBOX".into(),
            uid_validity: 1,
            spam_folder: false,
            allow_remote_images: false,
            max_attachment_bytes: 1000,
            own_address: "support@acme.example".into(),
            message_id_domain: "acme.example".into(),
        };
        let converted = convert(fetched, &options, &|| "id".to_string(), &|id| {
            format!("/a/{id}")
        });
        let atts = &converted.message.attachments;
        assert_eq!(atts.len(), 2, "the message keeps both attachments");
        let big = atts
            .iter()
            .find(|a| a.filename.as_deref() == Some("big.bin"))
            .expect("big");
        assert!(big.content.is_none());
        assert!(
            big.too_large.is_some_and(|n| n >= 3000),
            "{:?}",
            big.too_large
        );
        let small = atts
            .iter()
            .find(|a| a.filename.as_deref() == Some("small.bin"))
            .expect("small");
        assert!(small.content.is_some());
        assert_eq!(small.too_large, None);
    }
}
