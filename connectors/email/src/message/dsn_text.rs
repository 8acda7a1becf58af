//! Text-level parsing for delivery reports: RFC 3464 `message/delivery-status` fields, and
//! the human-readable bounces MTAs write without one (recipient lines, diagnostics, the
//! returned message's Message-ID, the phrases that identify each MTA).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::headers;
use super::report::BounceRecipient;

/// Body phrases (lower-case) that identify a bounce, with the format they name.
pub const BODY_MARKERS: [(&str, &str); 36] = [
    ("this is the qmail-send program", "qmail"),
    ("i'm afraid i wasn't able to deliver your message", "qmail"),
    (
        "this message was created automatically by mail delivery software",
        "exim",
    ),
    (
        "a message that you sent could not be delivered to one or more of",
        "exim",
    ),
    (
        "i'm sorry to have to inform you that your message could not",
        "postfix",
    ),
    ("this is the mail system at host", "postfix"),
    (
        "the following addresses had permanent fatal errors",
        "sendmail",
    ),
    ("the original message was received at", "sendmail"),
    (
        "your message did not reach some or all of the intended recipients",
        "exchange",
    ),
    (
        "delivery has failed to these recipients or groups",
        "exchange",
    ),
    ("your message couldn't be delivered", "exchange"),
    ("your message wasn't delivered", "exchange"),
    ("did not reach the following recipient", "exchange"),
    (
        "delivery to the following recipient failed permanently",
        "gmail",
    ),
    ("delivery to the following recipients failed", "lotus"),
    ("your message was not delivered to", "lotus"),
    ("was not delivered to:", "lotus"),
    (
        "delivery to the following recipient has been delayed",
        "gmail",
    ),
    (
        "this is an automatically generated delivery status notification",
        "dsn-text",
    ),
    ("sorry, we were unable to deliver your message", "yahoo"),
    (
        "message could not be delivered to the following recipients",
        "generic",
    ),
    (
        "could not be delivered to one or more recipients",
        "generic",
    ),
    ("unable to deliver your message to the following", "generic"),
    ("the following recipient(s) could not be reached", "generic"),
    (
        "message delivery to the following recipient(s) failed",
        "generic",
    ),
    ("the following message to", "generic"),
    ("was undeliverable", "generic"),
    ("unable to deliver to the following recipients", "generic"),
    ("delivery failed for the following recipient", "generic"),
    ("mail delivery failed", "generic"),
    ("permanent delivery failure", "generic"),
    ("this is a delivery failure notification message", "generic"),
    ("could not be delivered because", "generic"),
    ("550 5.", "generic"),
    ("could not be delivered to:", "kddi"),
    ("requested action not taken: no such user", "generic"),
];

/// Subject phrases (lower-case) of bounces.
pub const SUBJECT_MARKERS: [&str; 43] = [
    "undelivered mail",
    "undeliverable",
    "undeliverd",
    "undelivered message",
    "delivery status notification",
    "returned mail",
    "return mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "failure notice",
    "failure delivery",
    "non-delivery",
    "nondeliverable",
    "non delivery",
    "not delivered",
    "could not be delivered",
    "couldn't be delivered",
    "mail system error",
    "returned to sender",
    "delivery problem",
    "delivery notification",
    "delivery report",
    "warning: could not send message",
    "delivery final failure",
    "mail could not be delivered",
    "unzustellbar",
    "non remis",
    "non recapitabile",
    "onbestelbaar",
    "bounce notification",
    "message rejected",
    "mail failure",
    "failed delivery",
    "error sending your mail",
    "mail failed",
    "returning to sender",
    "delivery error",
    "mail error",
    "error mail report",
    "see transcript for details",
];

/// All body markers in one automaton: one pass over a text instead of one per phrase.
/// (`None` only if the automaton cannot be built; the phrase-by-phrase scan stands in.)
static BODY_FINDER: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| AhoCorasick::new(BODY_MARKERS.iter().map(|(m, _)| m)).ok());

static SUBJECT_FINDER: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| AhoCorasick::new(SUBJECT_MARKERS).ok());

/// The first body marker, in [`BODY_MARKERS`] order, that occurs anywhere in `lower`
/// (lower-cased text), with the format it names.
pub fn body_marker(lower: &str) -> Option<&'static (&'static str, &'static str)> {
    match &*BODY_FINDER {
        Some(finder) => finder
            .find_overlapping_iter(lower)
            .map(|m| m.pattern().as_usize())
            .min()
            .and_then(|i| BODY_MARKERS.get(i)),
        None => BODY_MARKERS.iter().find(|(m, _)| lower.contains(m)),
    }
}

/// Whether any body marker occurs in `lower` (lower-cased text).
pub fn has_body_marker(lower: &str) -> bool {
    match &*BODY_FINDER {
        Some(finder) => finder.is_match(lower),
        None => BODY_MARKERS.iter().any(|(m, _)| lower.contains(m)),
    }
}

/// Whether a (lower-cased) subject holds a bounce phrase.
pub fn has_subject_marker(lower: &str) -> bool {
    match &*SUBJECT_FINDER {
        Some(finder) => finder.is_match(lower),
        None => SUBJECT_MARKERS.iter().any(|m| lower.contains(m)),
    }
}

/// Phrases of delay warnings (delivery still retried), lower-case.
const DELAY_MARKERS: [&str; 6] = [
    "delivery delayed",
    "has been delayed",
    "will continue trying",
    "still trying",
    "delivery status notification (delay)",
    "warning: could not send message for past",
];

/// Parses a `message/delivery-status` body: the reporting MTA and one entry per recipient
/// block (a block naming a Final-Recipient or Original-Recipient).
pub fn parse_delivery_status(body: &str) -> (Option<String>, Vec<BounceRecipient>) {
    let body = body.replace("\r\n", "\n");
    let mut reporting_mta = None;
    let mut recipients = Vec::new();
    for block in body.split("\n\n") {
        let fields = headers::parse_fields(block);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if reporting_mta.is_none() {
            reporting_mta = get("reporting-mta").map(|v| typed_value(&v));
        }
        let Some(recipient) = get("final-recipient").or_else(|| get("original-recipient")) else {
            continue;
        };
        let address = clean_address(&typed_value(&recipient));
        if address.is_empty() {
            continue;
        }
        let diagnostic = get("diagnostic-code").map(|v| typed_value(&v));
        let status = get("status")
            .and_then(|s| status_code(&s))
            .or_else(|| diagnostic.as_deref().and_then(status_code));
        recipients.push(BounceRecipient {
            address,
            action: get("action").map(|a| a.to_ascii_lowercase()),
            status,
            diagnostic,
            remote_mta: get("remote-mta").map(|v| typed_value(&v)),
        });
    }
    (reporting_mta, recipients)
}

/// `rfc822; user@example.com` → `user@example.com` (the value after its type, if typed).
fn typed_value(v: &str) -> String {
    match v.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') && kind.len() < 20 => rest.trim().to_string(),
        _ => v.trim().to_string(),
    }
}

fn clean_address(v: &str) -> String {
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}

/// The first enhanced status code (`X.Y.Z`, class 2, 4 or 5) in a text.
pub fn status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_matches('.'))
        .find(|token| {
            let parts: Vec<&str> = token.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..].iter().all(|p| (1..=3).contains(&p.len()))
        })
        .map(str::to_string)
}

/// The first `Message-ID:` header line in a bounce's text (the returned message's headers).
pub fn message_id_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim_start)
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("message-id")
                .then_some(value)
        })
        .find_map(headers::first_id)
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn leading_text(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The marker appears within the first `n` non-blank, unquoted lines.
pub fn in_first_lines(text: &str, marker: &str, n: usize) -> bool {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(n)
        .any(|l| !l.starts_with('>') && l.contains(marker))
}

/// A delay warning rather than a final failure.
pub fn is_delay_notice(head: &str, subject: &str) -> bool {
    DELAY_MARKERS
        .iter()
        .any(|m| subject.contains(m) || in_first_lines(head, m, 15))
}

/// Recipients named in a human-readable bounce, up to the returned message: lines that
/// start with an address (`<user@host>: diagnostic` from qmail and Postfix, `user@host` with
/// indented diagnostics from Exim, Sendmail's `>>> user@host`, Exchange's `user@host on
/// <date>`), else `<user@host>` inside a line that says delivery failed.
pub fn recipients_from_text(text: &str) -> Vec<BounceRecipient> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| !is_returned_message_start(l.trim()))
        .collect();
    let mut out: Vec<BounceRecipient> = Vec::new();
    let mut i = 0;
    while i < lines.len() && out.len() < 50 {
        let Some((address, rest)) = address_line(lines[i].trim()) else {
            i += 1;
            continue;
        };
        let mut diagnostic = rest.to_string();
        let mut j = i + 1;
        while j < lines.len() && j <= i + 4 {
            let next = lines[j].trim();
            if next.is_empty() || address_line(next).is_some() {
                break;
            }
            if !diagnostic.is_empty() {
                diagnostic.push(' ');
            }
            diagnostic.push_str(next);
            j += 1;
        }
        push_recipient(&mut out, address, &diagnostic);
        i = j;
    }
    if out.is_empty() {
        for line in &lines {
            let lower = line.to_lowercase();
            if !FAILURE_WORDS.iter().any(|w| lower.contains(w)) {
                continue;
            }
            for candidate in line.split('<').skip(1) {
                if let Some((addr, _)) = candidate.split_once('>')
                    && is_address(addr)
                {
                    push_recipient(&mut out, addr.to_lowercase(), line.trim());
                }
            }
        }
    }
    out
}

/// Words of a line that reports a failed delivery (for addresses inside the line).
const FAILURE_WORDS: [&str; 8] = [
    "error",
    "fail",
    "could not",
    "couldn't",
    "undeliver",
    "unknown",
    "rejected",
    "not delivered",
];

/// Adds a recipient; a recipient named again (Exchange repeats it for administrators) keeps
/// the diagnostic that carries a status code.
fn push_recipient(out: &mut Vec<BounceRecipient>, address: String, diagnostic: &str) {
    let diagnostic = diagnostic
        .trim()
        .trim_start_matches([':', '.', ','])
        .trim()
        .to_string();
    let status = status_code(&diagnostic);
    let diagnostic = (!diagnostic.is_empty()).then_some(diagnostic);
    if let Some(existing) = out.iter_mut().find(|r| r.address == address) {
        if existing.status.is_none() && status.is_some() {
            existing.status = status;
            existing.diagnostic = diagnostic;
        }
        return;
    }
    out.push(BounceRecipient {
        status,
        diagnostic,
        address,
        action: Some("failed".into()),
        remote_mta: None,
    });
}

/// A line that starts with an address (after Sendmail's `>>>`), with the rest of the line:
/// `<user@host>: rest`, `user@host... rest`, `user@host (expanded from <x>): rest`.
fn address_line(line: &str) -> Option<(String, &str)> {
    let line = line.trim_start_matches(">>>").trim_start();
    let (first, rest) = match line.split_once(char::is_whitespace) {
        Some((f, r)) => (f, r),
        None => (line, ""),
    };
    let addr = first
        .trim_start_matches('<')
        .trim_end_matches([':', ',', '.'])
        .trim_end_matches('>');
    if !is_address(addr) {
        return None;
    }
    let rest = rest.trim();
    let rest = match rest.strip_prefix("(expanded from") {
        Some(r) => r.split_once("):").map_or("", |(_, d)| d),
        None => rest,
    };
    Some((addr.to_lowercase(), rest))
}

fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !s.contains(char::is_whitespace)
        && !s.contains(['<', '>', '(', ')', ',', ';', '"'])
        && s.len() <= 254
}

/// Lines that introduce the returned copy of the message.
fn is_returned_message_start(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    if lower.contains("headers follow") || lower.starts_with("original message headers") {
        return true;
    }
    lower.starts_with("--- below this line is a copy of the message")
        || lower.contains("original message follows")
        || lower.contains("this is a copy of the message")
        || lower.starts_with("------ this is a copy")
        || lower.starts_with("----- original message")
        || lower.starts_with("received:")
        || lower.starts_with("return-path:")
}

#[cfg(test)]
mod tests {
    use super::{message_id_line, parse_delivery_status, recipients_from_text, status_code};

    #[test]
    fn delivery_status_blocks() {
        let body = "Reporting-MTA: dns; mx.example.org\nArrival-Date: Mon, 3 Jun 2024\n\n\
                    Final-Recipient: rfc822; A@Example.org\nAction: failed\nStatus: 5.1.1\n\
                    Remote-MTA: dns; mx.b.example\nDiagnostic-Code: smtp; 550 5.1.1 user\n  unknown\n\n\
                    Original-Recipient: rfc822;c@example.org\nAction: delayed\nStatus: 4.4.1\n";
        let (mta, recipients) = parse_delivery_status(body);
        assert_eq!(mta.as_deref(), Some("mx.example.org"));
        assert_eq!(recipients.len(), 2);
        assert_eq!(recipients[0].address, "a@example.org");
        assert_eq!(recipients[0].action.as_deref(), Some("failed"));
        assert_eq!(recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            recipients[0].diagnostic.as_deref(),
            Some("550 5.1.1 user unknown")
        );
        assert_eq!(recipients[0].remote_mta.as_deref(), Some("mx.b.example"));
        assert_eq!(recipients[1].address, "c@example.org");
        assert_eq!(recipients[1].status.as_deref(), Some("4.4.1"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(
            status_code("550 5.1.1 <x@y>: unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(status_code("(#5.1.1)").as_deref(), Some("5.1.1"));
        assert_eq!(
            status_code("421 4.7.0 try later.").as_deref(),
            Some("4.7.0")
        );
        assert_eq!(status_code("5.1.10 RESOLVER").as_deref(), Some("5.1.10"));
        assert_eq!(status_code("version 1.2.3"), None);
        assert_eq!(status_code("192.0.2.1 said"), None);
    }

    #[test]
    fn recipients_of_text_bounces() {
        let exim = "This message was created automatically by mail delivery software.\n\n\
                    A message that you sent could not be delivered to one or more of its\n\
                    recipients. This is a permanent error. The following address(es) failed:\n\n  \
                    gone@example.org\n    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\n    \
                    550 5.1.1 User unknown\n\n------ This is a copy of the message, including all the headers. ------\n\
                    To: other@example.org\n";
        let r = recipients_from_text(exim);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].address, "gone@example.org");
        assert_eq!(r[0].status.as_deref(), Some("5.1.1"));

        let sendmail = "   ----- The following addresses had permanent fatal errors -----\n\
                        >>> x@example.jp <x@example.jp>\n\n   ----- Transcript of session follows -----\n";
        assert_eq!(recipients_from_text(sendmail)[0].address, "x@example.jp");

        let prose = "There was an error delivering your mail to <y@example.com>.\n";
        assert_eq!(recipients_from_text(prose)[0].address, "y@example.com");

        // Addresses in the returned copy are not recipients of the bounce.
        let copy = "Sorry.\n\n--- Below this line is a copy of the message.\n\nz@example.com\n";
        assert!(recipients_from_text(copy).is_empty());
    }

    #[test]
    fn message_id_lines() {
        let text = "blah\nMessage-Id: <abc@example.org>\nmessage-id: <later@example.org>\n";
        assert_eq!(message_id_line(text).as_deref(), Some("abc@example.org"));
        assert_eq!(message_id_line("no ids here"), None);
    }
}
