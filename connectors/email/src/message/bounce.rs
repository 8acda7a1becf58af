//! Delivery status reports (bounces) and abuse feedback reports.
//!
//! - RFC 3464: a `message/delivery-status` part (normally inside `multipart/report;
//!   report-type=delivery-status`) is parsed into per-recipient action, status, diagnostic and
//!   remote MTA; the bounced message's Message-ID comes from the returned `message/rfc822` or
//!   `text/rfc822-headers` part (see [`super::dsn_text`] for the text-level parsing).
//! - Non-standard bounces (qmail, Exim, Postfix and Sendmail without DSN, Exchange/Lotus
//!   NDRs, provider-specific notices) are recognized from the sender (MAILER-DAEMON,
//!   postmaster...), the subject and well-known body phrases; recipients and the original
//!   Message-ID are then read from the text.
//! - RFC 5965 abuse reports (`message/feedback-report`) are not bounces; they are reported
//!   apart as [`FeedbackReport`].
//!
//! The reports found here are the types of [`super::report`].

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::dsn_text;
use super::headers::{self, NamedAddress};
use super::report::{BounceOutcome, BounceRecipient, BounceReport, FeedbackReport};

/// A standard or recognizable bounce in `msg`, if it is one. `text` is the message's body
/// text, `from` its sender.
pub fn detect(msg: &Message<'_>, text: &str, from: Option<&NamedAddress>) -> Option<BounceReport> {
    if let Some(report) = rfc3464(msg, text) {
        return Some(report);
    }
    if plainly_not_bounce(msg, text, from) {
        return None;
    }
    // Broken MIME can leave the notice in a part that is not a body part (a text attachment,
    // a multipart without boundary kept as bytes).
    let mut scan = text.to_string();
    for (id, part) in msg.parts.iter().enumerate() {
        if scan.len() > 64 * 1024 {
            break;
        }
        if msg.text_body.contains(&(id as u32)) {
            continue;
        }
        let textual = part.content_type().is_some_and(|ct| {
            matches!(
                ct.ctype().to_ascii_lowercase().as_str(),
                "text" | "multipart"
            )
        });
        match &part.body {
            PartType::Text(t) => scan.push_str(&headers::without_nul(t)),
            PartType::Binary(b) | PartType::InlineBinary(b) if textual => {
                scan.push_str(&headers::without_nul(&String::from_utf8_lossy(b)));
            }
            _ => continue,
        }
        scan.push('\n');
    }
    non_standard(msg, &scan, from)
}

/// An RFC 5965 feedback report in `msg`, if it is one; also Microsoft's JMRP complaints
/// (`complaint about message from <ip>` from hotmail.com/outlook.com staff, the complained
/// message attached).
pub fn detect_feedback(msg: &Message<'_>) -> Option<FeedbackReport> {
    let Some(part) = msg
        .parts
        .iter()
        .find(|p| has_type(p, "message", &["feedback-report"]))
    else {
        return jmrp(msg);
    };
    let fields = headers::parse_fields(&headers::without_nul(&String::from_utf8_lossy(
        part.contents(),
    )));
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Some(FeedbackReport {
        feedback_type: field("feedback-type").map(|v| v.to_ascii_lowercase()),
        user_agent: field("user-agent"),
        original_message_id: returned_message_id(msg, "")
            .or_else(|| field("original-message-id").and_then(|v| headers::first_id(&v))),
        original_rcpt_to: field("original-rcpt-to").map(|v| v.to_lowercase()),
        source_ip: field("source-ip"),
    })
}

fn jmrp(msg: &Message<'_>) -> Option<FeedbackReport> {
    let subject = msg.subject()?.trim().to_lowercase();
    let from = headers::first_text(msg, "from")?.to_lowercase();
    let microsoft = ["@hotmail.com", "@outlook.com", "@msn.com"]
        .iter()
        .any(|d| from.contains(d));
    if !(microsoft && subject.starts_with("complaint about message from")) {
        return None;
    }
    Some(FeedbackReport {
        feedback_type: Some("abuse".into()),
        user_agent: Some("Microsoft JMRP".into()),
        original_message_id: returned_message_id(msg, ""),
        original_rcpt_to: None,
        source_ip: subject
            .rsplit(' ')
            .next()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_string),
    })
}

fn has_type(part: &MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)))
    })
}

/// An RFC 3464 report: a `message/delivery-status` part at the top level of the message.
fn rfc3464(msg: &Message<'_>, text: &str) -> Option<BounceReport> {
    let part = msg.parts.iter().find(|p| {
        has_type(p, "message", &["delivery-status", "global-delivery-status"])
            || (has_type(p, "text", &["delivery-status"]))
    })?;
    let status = headers::without_nul(&String::from_utf8_lossy(part.contents())).into_owned();
    let (reporting_mta, recipients) = dsn_text::parse_delivery_status(&status);
    let outcome = outcome_of(&recipients);
    Some(BounceReport {
        format: "rfc3464".into(),
        outcome,
        reporting_mta,
        original_message_id: returned_message_id(msg, text),
        recipients,
    })
}

fn outcome_of(recipients: &[BounceRecipient]) -> BounceOutcome {
    let action = |a: &str| recipients.iter().any(|r| r.action.as_deref() == Some(a));
    let status = |p: &str| {
        recipients
            .iter()
            .any(|r| r.status.as_deref().is_some_and(|s| s.starts_with(p)))
    };
    if action("failed") || status("5") {
        BounceOutcome::Failed
    } else if action("delayed") || status("4") {
        BounceOutcome::Delayed
    } else if action("delivered") || action("relayed") || action("expanded") || status("2") {
        BounceOutcome::Delivered
    } else {
        BounceOutcome::Unknown
    }
}

/// The Message-ID of the message a report returns: from the attached message or headers
/// part, else from a `Message-ID:` line in the report's text.
fn returned_message_id(msg: &Message<'_>, text: &str) -> Option<String> {
    for part in &msg.parts {
        if let PartType::Message(inner) = &part.body
            && let Some(id) = inner.message_id().and_then(headers::clean_id)
        {
            return Some(id);
        }
        let headers_part = has_type(part, "text", &["rfc822-headers"])
            || has_type(
                part,
                "message",
                &["rfc822-headers", "rfc822", "global-headers"],
            );
        if headers_part {
            let fields = headers::parse_fields(&headers::without_nul(&String::from_utf8_lossy(
                part.contents(),
            )));
            if let Some(id) = fields
                .iter()
                .find(|(n, _)| n == "message-id")
                .and_then(|(_, v)| headers::first_id(v))
            {
                return Some(id);
            }
        }
    }
    dsn_text::message_id_line(text)
}

/// True when [`non_standard`] would certainly find no bounce, decided from headers and the
/// first lines only. Nearly all mail is not a bounce, and the full check copies and
/// lower-cases up to 64 KiB of every message's text; this one reads a few lines. Without a
/// daemon sender, a subject marker or `X-Failed-Recipients`, a body marker only counts within
/// the first [`EARLY_LINES`] lines, so when the text has that many lines and none holds a
/// marker, the answer is known. Shorter texts take the full path (other parts are appended
/// to the scanned text there).
fn plainly_not_bounce(msg: &Message<'_>, text: &str, from: Option<&NamedAddress>) -> bool {
    let raw_from = headers::first_text(msg, "from")
        .unwrap_or_default()
        .to_lowercase();
    let daemon = MAILER_DAEMON.iter().any(|d| raw_from.contains(d))
        || from.is_some_and(is_daemon)
        || headers::first_text(msg, "return-path").is_some_and(|r| r.trim() == "<>");
    let subject = msg.subject().unwrap_or("").to_lowercase();
    if daemon
        || dsn_text::has_subject_marker(&subject)
        || headers::first_text(msg, "x-failed-recipients").is_some()
    {
        return false;
    }
    let mut early = String::new();
    let mut lines = 0;
    for line in dsn_text::leading_text(text, 12_000)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(EARLY_LINES)
    {
        lines += 1;
        early.push_str(&line.to_lowercase());
        early.push('\n');
    }
    lines == EARLY_LINES && !dsn_text::has_body_marker(&early)
}

/// How many leading non-blank lines of a message without other bounce signs are searched
/// for a body marker.
const EARLY_LINES: usize = 8;

/// Bounces without a delivery-status part, recognized by sender, subject and body phrases.
fn non_standard(
    msg: &Message<'_>,
    text: &str,
    from: Option<&NamedAddress>,
) -> Option<BounceReport> {
    let subject = msg.subject().unwrap_or("").to_lowercase();
    let raw_from = headers::first_text(msg, "from")
        .unwrap_or_default()
        .to_lowercase();
    let mailer_daemon = MAILER_DAEMON.iter().any(|d| raw_from.contains(d));
    let daemon = mailer_daemon
        || from.is_some_and(is_daemon)
        || headers::first_text(msg, "return-path").is_some_and(|r| r.trim() == "<>");
    let head = dsn_text::leading_text(text, 12_000).to_lowercase();
    let body_marker = dsn_text::body_marker(&head);
    let subject_marker = dsn_text::has_subject_marker(&subject);
    let early_marker =
        body_marker.is_some_and(|(m, _)| dsn_text::in_first_lines(&head, m, EARLY_LINES));
    let failed_header = headers::first_text(msg, "x-failed-recipients").is_some();

    let format = match (body_marker, daemon, subject_marker) {
        (Some((_, format)), true, _) | (Some((_, format)), _, true) => *format,
        (Some((_, format)), _, _) if early_marker || failed_header => *format,
        (None, true, true) => "unrecognized",
        _ if failed_header && (daemon || subject_marker) => "unrecognized",
        // Only delivery systems write as MAILER-DAEMON.
        _ if mailer_daemon => "unrecognized",
        _ => return None,
    };
    let mut recipients = dsn_text::recipients_from_text(text);
    if let Some(failed) = headers::first_text(msg, "x-failed-recipients") {
        for address in failed.split(',').map(|a| a.trim().to_lowercase()) {
            if address.contains('@') && !recipients.iter().any(|r| r.address == address) {
                recipients.push(BounceRecipient {
                    address,
                    action: Some("failed".into()),
                    status: None,
                    diagnostic: None,
                    remote_mta: None,
                });
            }
        }
    }
    let outcome = if dsn_text::is_delay_notice(&head, &subject) {
        BounceOutcome::Delayed
    } else {
        BounceOutcome::Failed
    };
    Some(BounceReport {
        format: format.into(),
        outcome,
        reporting_mta: None,
        original_message_id: returned_message_id(msg, text),
        recipients,
    })
}

/// Sender names (in the raw From header) that only delivery systems use.
const MAILER_DAEMON: [&str; 5] = [
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail delivery system",
    "mail delivery subsystem",
];

/// MAILER-DAEMON, postmaster and the display names delivery systems use.
pub fn is_daemon(from: &NamedAddress) -> bool {
    const LOCAL_PARTS: [&str; 10] = [
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "mail-daemon",
        "postmaster",
        "post_master",
        "mdaemon",
        "maildelivery",
        "mail-delivery",
        "mail.delivery",
    ];
    const NAMES: [&str; 5] = [
        "mail delivery",
        "mailer-daemon",
        "mailer daemon",
        "postmaster",
        "mail administrator",
    ];
    let local = from.address.split('@').next().unwrap_or("");
    LOCAL_PARTS.iter().any(|l| {
        local
            .strip_prefix(l)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('+'))
    }) || from.name.as_deref().is_some_and(|n| {
        let n = n.to_lowercase();
        NAMES.iter().any(|m| n.contains(m))
    })
}
