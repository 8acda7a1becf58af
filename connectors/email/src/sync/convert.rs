//! From a fetched IMAP message to what core ingests (pure): the normalized message with its
//! parts' bytes handed over as attachments (ids chosen up front so the sanitized HTML can
//! point its `cid:` images at them), the journal entry keyed by Message-ID plus content
//! hash, and — for a bounce of one of our messages — the delivery status update.

use crate::imap::FetchedMessage;
use crate::normalize::{CidTarget, NormalizeOptions, normalize};
use std::cell::RefCell;
use switchboard_core::model::{InboundMessage, StatusUpdate};
use switchboard_core::store::JournalEntry;

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

/// Normalizes one fetched message and prepares it for ingest. `new_id` makes attachment ids.
pub fn convert(
    fetched: FetchedMessage,
    options: &ConvertOptions,
    new_id: &dyn Fn() -> String,
) -> Converted {
    let ids: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let id_for = |index: usize| -> String {
        let mut ids = ids.borrow_mut();
        while ids.len() <= index {
            ids.push(new_id());
        }
        ids[index].clone()
    };
    let cid_url = |t: &CidTarget<'_>| -> Option<String> {
        Some(format!("/api/v1/attachments/{}", id_for(t.index)))
    };
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
    let crate::parsed::ParsedEmail {
        mut message,
        mut parts,
        verdicts,
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
        attachment.content = Some(std::mem::take(&mut part.bytes));
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
    let status = verdicts
        .bounce
        .as_ref()
        .and_then(|b| b.status_update())
        .map(|mut update| {
            update.provider_message_id = update
                .provider_message_id
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned();
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
}
