//! Writing a threaded reply: Message-ID on our domain, In-Reply-To and References from
//! the thread, a `Re:` subject that is never doubled, the reply token in Reply-To
//! (`local+TOKEN@domain`), text, optional HTML with inline parts, attachments.

use super::error::SmtpError;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox as Address, MultiPart, SinglePart};
use std::fmt;

/// `Re: subject`, unless it already starts with `Re:` (any case, also `Re[2]:`).
pub fn reply_subject(subject: &str) -> String {
    let s = subject.trim();
    let lower = s.to_ascii_lowercase();
    let already = lower.starts_with("re:")
        || (lower.starts_with("re[")
            && lower
                .find("]:")
                .is_some_and(|i| lower[3..i].chars().all(|c| c.is_ascii_digit())));
    if already {
        s.to_owned()
    } else {
        format!("Re: {s}").trim_end().to_owned()
    }
}

/// A new Message-ID on `domain`: `<uuid@domain>`.
pub fn new_message_id(domain: &str) -> String {
    format!("<{}@{}>", uuid::Uuid::new_v4().simple(), domain)
}

/// The reply address carrying a token: `local+TOKEN@domain` (any `+detail` of the channel
/// address replaced). Tokens are limited to `[A-Za-z0-9._-]`.
pub fn reply_address(address: &str, token: &str) -> Result<String, SmtpError> {
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| SmtpError::Build(format!("not an address: {address:?}")))?;
    if token.is_empty()
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(SmtpError::Build(format!(
            "reply token {token:?} is not address-safe"
        )));
    }
    let base = local.split('+').next().unwrap_or(local);
    Ok(format!("{base}+{token}@{domain}"))
}

/// A file to attach; with `content_id` it is an inline part (referenced as `cid:` from HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub bytes: Vec<u8>,
}

/// What a reply (or a first outbound message) is made of.
#[derive(Debug, Clone, Default)]
pub struct MailReply {
    /// The channel's address, optionally with a display name.
    pub from_address: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// The thread's subject; `Re:` is added unless present (see `is_reply`).
    pub subject: String,
    /// Whether this answers an earlier message: adds `Re:` and the threading headers.
    pub is_reply: bool,
    /// The Message-ID being answered (with angle brackets).
    pub in_reply_to: Option<String>,
    /// The References of the message being answered; `in_reply_to` is appended to them.
    pub references: Vec<String>,
    /// Puts `local+TOKEN@domain` in Reply-To.
    pub reply_token: Option<String>,
    /// Domain of the Message-ID; the From domain by default.
    pub message_id_domain: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<OutgoingAttachment>,
}

/// A message ready to send (and to APPEND to Sent).
#[derive(Debug, Clone)]
pub struct BuiltMessage {
    pub message: Message,
    /// With angle brackets: `<uuid@domain>`.
    pub message_id: String,
    pub references: Vec<String>,
}

impl BuiltMessage {
    /// The RFC 5322 bytes.
    pub fn raw(&self) -> Vec<u8> {
        self.message.formatted()
    }
}

fn bracketed(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') {
        id.to_owned()
    } else {
        format!("<{id}>")
    }
}

/// Writes the message: From, To/Cc/Bcc, Subject, Date, Message-ID, In-Reply-To, References,
/// Reply-To with the token, text and optional HTML, inline parts and attachments.
pub fn build_reply(draft: &MailReply) -> Result<BuiltMessage, SmtpError> {
    let build_err = |what: &str, e: &dyn fmt::Display| SmtpError::Build(format!("{what}: {e}"));
    let addr = |a: &str| -> Result<Address, SmtpError> {
        a.parse()
            .map_err(|e| build_err(&format!("address {a:?}"), &e))
    };
    let from_email: lettre::Address = draft
        .from_address
        .parse()
        .map_err(|e| build_err("from address", &e))?;
    let from = Address::new(draft.from_name.clone(), from_email.clone());
    let domain = draft
        .message_id_domain
        .clone()
        .unwrap_or_else(|| from_email.domain().to_owned());
    let message_id = new_message_id(&domain);
    let mut b = Message::builder()
        .from(from)
        .message_id(Some(message_id.clone()))
        .date_now();
    if draft.to.is_empty() && draft.cc.is_empty() && draft.bcc.is_empty() {
        return Err(SmtpError::Build("no recipient".into()));
    }
    for a in &draft.to {
        b = b.to(addr(a)?);
    }
    for a in &draft.cc {
        b = b.cc(addr(a)?);
    }
    for a in &draft.bcc {
        b = b.bcc(addr(a)?);
    }
    if let Some(token) = &draft.reply_token {
        let reply_to: lettre::Address = reply_address(&draft.from_address, token)?
            .parse()
            .map_err(|e| build_err("reply-to", &e))?;
        b = b.reply_to(Address::new(draft.from_name.clone(), reply_to));
    }
    let mut references: Vec<String> = draft.references.iter().map(|r| bracketed(r)).collect();
    if draft.is_reply {
        b = b.subject(reply_subject(&draft.subject));
        if let Some(parent) = &draft.in_reply_to {
            let parent = bracketed(parent);
            b = b.in_reply_to(parent.clone());
            if references.last() != Some(&parent) {
                references.retain(|r| r != &parent);
                references.push(parent);
            }
        }
        if !references.is_empty() {
            b = b.references(references.join(" "));
        }
    } else {
        b = b.subject(draft.subject.trim().to_owned());
    }

    let message = match body(draft)? {
        Body::Single(part) => b.singlepart(part),
        Body::Multi(parts) => b.multipart(parts),
    }
    .map_err(|e| build_err("message", &e))?;
    Ok(BuiltMessage {
        message,
        message_id,
        references,
    })
}

enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

/// text | alternative(text, html) | alternative(text, related(html, inline...)),
/// wrapped in mixed(..., attachments...) when there are attachments.
fn body(draft: &MailReply) -> Result<Body, SmtpError> {
    let ctype = |t: &str| {
        ContentType::parse(t).map_err(|e| SmtpError::Build(format!("content type {t:?}: {e}")))
    };
    let (inline, attached): (Vec<_>, Vec<_>) = draft
        .attachments
        .iter()
        .partition(|a| a.content_id.is_some() && draft.html.is_some());
    let plain = SinglePart::plain(draft.text.clone());
    let main = match &draft.html {
        None => Body::Single(plain),
        Some(html) => {
            let html = SinglePart::html(html.clone());
            let alternative = MultiPart::alternative().singlepart(plain);
            if inline.is_empty() {
                Body::Multi(alternative.singlepart(html))
            } else {
                let mut related = MultiPart::related().singlepart(html);
                for a in &inline {
                    let cid = a.content_id.as_deref().unwrap_or_default();
                    let cid = cid.trim_matches(|c| c == '<' || c == '>').to_owned();
                    related = related.singlepart(
                        Attachment::new_inline(cid).body(a.bytes.clone(), ctype(&a.content_type)?),
                    );
                }
                Body::Multi(alternative.multipart(related))
            }
        }
    };
    if attached.is_empty() {
        return Ok(main);
    }
    let mut mixed = match main {
        Body::Single(p) => MultiPart::mixed().singlepart(p),
        Body::Multi(m) => MultiPart::mixed().multipart(m),
    };
    for a in &attached {
        mixed = mixed.singlepart(
            Attachment::new(a.filename.clone()).body(a.bytes.clone(), ctype(&a.content_type)?),
        );
    }
    Ok(Body::Multi(mixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_tokens_ids() {
        assert_eq!(reply_subject("Order 42"), "Re: Order 42");
        assert_eq!(reply_subject("RE: Order 42"), "RE: Order 42");
        assert_eq!(reply_subject("re[2]: x"), "re[2]: x");
        assert_eq!(reply_subject("Re:x"), "Re:x");
        assert_eq!(reply_subject("Regarding x"), "Re: Regarding x");
        assert_eq!(reply_subject(""), "Re:");
        assert_eq!(
            reply_address("support+old@acme.example", "T0k-1").unwrap(),
            "support+T0k-1@acme.example"
        );
        assert!(reply_address("support@acme.example", "a b").is_err());
        let id = new_message_id("acme.example");
        assert!(id.starts_with('<') && id.ends_with("@acme.example>") && id.len() > 40);
    }

    #[test]
    fn reply_headers_and_parts() {
        let draft = MailReply {
            from_address: "support@acme.example".into(),
            from_name: Some("Acme Support".into()),
            to: vec!["Jane <jane@example.org>".into()],
            subject: "Where is my order?".into(),
            is_reply: true,
            in_reply_to: Some("<p2@example.org>".into()),
            references: vec!["<p1@example.org>".into(), "p2@example.org".into()],
            reply_token: Some("tok123".into()),
            text: "Hello Jane".into(),
            html: Some("<p>Hello <img src=\"cid:logo\"></p>".into()),
            attachments: vec![
                OutgoingAttachment {
                    filename: "logo.png".into(),
                    content_type: "image/png".into(),
                    content_id: Some("<logo>".into()),
                    bytes: vec![1, 2, 3],
                },
                OutgoingAttachment {
                    filename: "invoice.pdf".into(),
                    content_type: "application/pdf".into(),
                    content_id: None,
                    bytes: b"%PDF".to_vec(),
                },
            ],
            ..MailReply::default()
        };
        let built = build_reply(&draft).unwrap();
        let raw = String::from_utf8(built.raw()).unwrap();
        assert!(raw.contains(&format!("Message-ID: {}", built.message_id)));
        assert!(raw.contains("In-Reply-To: <p2@example.org>"));
        assert!(raw.contains("References: <p1@example.org> <p2@example.org>"));
        assert_eq!(
            built.references,
            vec!["<p1@example.org>", "<p2@example.org>"]
        );
        assert!(raw.contains("Subject: Re: Where is my order?"));
        assert!(raw.contains("support+tok123@acme.example"));
        assert!(raw.contains("multipart/mixed") && raw.contains("multipart/related"));
        assert!(raw.contains("multipart/alternative") && raw.contains("Content-ID: <logo>"));
        assert!(raw.contains("filename=\"invoice.pdf\""));
        let plain = build_reply(&MailReply {
            from_address: "support@acme.example".into(),
            to: vec!["jane@example.org".into()],
            subject: "Hi".into(),
            text: "x".into(),
            ..MailReply::default()
        })
        .unwrap();
        let raw = String::from_utf8(plain.raw()).unwrap();
        assert!(
            raw.contains("Subject: Hi")
                && !raw.contains("In-Reply-To")
                && !raw.contains("multipart")
        );
        assert!(
            build_reply(&MailReply {
                from_address: "a@b.c".into(),
                ..MailReply::default()
            })
            .is_err()
        );
    }
}
