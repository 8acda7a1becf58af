//! Unit tests of the flag decisions, on small hand-written messages.

use mail_parser::MessageParser;
use switchboard_core::domain::model::Flag;

use super::{AutoKind, OwnMail, auto_reply, classify, looped, spam};
use crate::message::headers::NamedAddress;

fn never(_: &str) -> bool {
    false
}

fn with_headers(headers: &str) -> Vec<u8> {
    format!("{headers}From: a@example.com\nSubject: hello\n\nbody\n").into_bytes()
}

fn spam_of(headers: &str) -> bool {
    let raw = with_headers(headers);
    let msg = MessageParser::default().parse(&raw).expect("parses");
    spam(&msg, false).is_some()
}

fn auto_of(headers: &str) -> Option<AutoKind> {
    let raw = with_headers(headers);
    let msg = MessageParser::default().parse(&raw).expect("parses");
    auto_reply(&msg, false, false).map(|a| a.kind)
}

#[test]
fn upstream_spam_verdicts() {
    assert!(spam_of("X-Spam-Flag: YES\n"));
    assert!(spam_of("X-Spam-Flag: yes\n"));
    assert!(!spam_of("X-Spam-Flag: NO\n"));
    assert!(spam_of("X-Spam-Status: Yes, score=6.1 required=5.0\n"));
    assert!(!spam_of("X-Spam-Status: No, score=-0.1 required=5.0\n"));
    assert!(spam_of("X-Spam: Yes\n"));
    assert!(spam_of("X-Rspamd-Action: reject\n"));
    assert!(spam_of("X-Rspamd-Action: rewrite subject\n"));
    assert!(!spam_of("X-Rspamd-Action: no action\n"));
    assert!(!spam_of("X-Rspamd-Action: greylist\n"));
    assert!(spam_of("X-Spamd-Result: default: True [15.1 / 15.0]\n"));
    assert!(!spam_of("X-Spamd-Result: default: False [1.0 / 15.0]\n"));
    assert!(spam_of("X-MS-Exchange-Organization-SCL: 9\n"));
    assert!(!spam_of("X-MS-Exchange-Organization-SCL: -1\n"));
    assert!(!spam_of(""));
}

#[test]
fn spam_folder_is_a_verdict() {
    let raw = with_headers("");
    let msg = MessageParser::default().parse(&raw).expect("parses");
    let verdict = spam(&msg, true).expect("spam");
    assert_eq!(verdict.signals, ["folder: spam"]);
}

#[test]
fn spam_score_is_read() {
    let raw = with_headers("X-Spam-Status: Yes, hits=7.5 required=5\n");
    let msg = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(spam(&msg, false).and_then(|s| s.score), Some(7.5));
}

#[test]
fn auto_reply_grades() {
    assert_eq!(
        auto_of("Auto-Submitted: auto-replied\n"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(
        auto_of("Auto-Submitted: auto-generated\n"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(auto_of("Auto-Submitted: no\n"), None);
    assert_eq!(auto_of("X-Autoreply: yes\n"), Some(AutoKind::AutoReply));
    assert_eq!(
        auto_of("X-Autorespond: vacation\n"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(
        auto_of("X-Apple-Action: VACATION\n"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(auto_of("Precedence: bulk\n"), Some(AutoKind::Bulk));
    assert_eq!(auto_of("Precedence: list\n"), Some(AutoKind::Bulk));
    assert_eq!(auto_of("Precedence: junk\n"), Some(AutoKind::Bulk));
    assert_eq!(auto_of("Precedence: first-class\n"), None);
    assert_eq!(
        auto_of("X-Auto-Response-Suppress: All\n"),
        Some(AutoKind::Bulk)
    );
    assert_eq!(auto_of("Return-Path: <>\n"), Some(AutoKind::Suspected));
    assert_eq!(auto_of(""), None);
}

#[test]
fn auto_reply_subjects_are_weak_unless_backed() {
    let subject = |s: &str, extra: &str| {
        let raw = format!("{extra}From: a@example.com\nSubject: {s}\n\nbody\n").into_bytes();
        let msg = MessageParser::default().parse(&raw).expect("parses");
        auto_reply(&msg, false, false).map(|a| a.kind)
    };
    assert_eq!(
        subject("Out of Office: back Monday", ""),
        Some(AutoKind::Suspected)
    );
    assert_eq!(
        subject("Abwesenheitsnotiz: Ihre Anfrage", ""),
        Some(AutoKind::Suspected)
    );
    assert_eq!(
        subject("Automatic reply: Ticket", "X-Auto-Response-Suppress: All\n"),
        Some(AutoKind::AutoReply)
    );
    assert_eq!(subject("Re: out of office plans", ""), None);
    assert_eq!(subject("Question", ""), None);
}

#[test]
fn loops_come_from_the_callers_knowledge() {
    let raw = b"Message-ID: <m1@switchboard.acme.example>\nFrom: Someone <x@example.com>\nX-Loop: support@acme.example\nSubject: s\n\nb\n";
    let msg = MessageParser::default().parse(&raw[..]).expect("parses");
    let from = NamedAddress {
        name: None,
        address: "x@example.com".into(),
    };
    let own_id = |id: &str| id.ends_with("@switchboard.acme.example");
    let own_addr = |a: &str| a == "support@acme.example";
    let none = OwnMail {
        is_own_message_id: &never,
        is_own_address: &never,
    };
    assert_eq!(
        looped(&msg, Some(&from), "m1@switchboard.acme.example", &none),
        None
    );
    let by_id = OwnMail {
        is_own_message_id: &own_id,
        is_own_address: &never,
    };
    assert!(looped(&msg, Some(&from), "m1@switchboard.acme.example", &by_id).is_some());
    let by_loop_header = OwnMail {
        is_own_message_id: &never,
        is_own_address: &own_addr,
    };
    let reason = looped(
        &msg,
        Some(&from),
        "m1@switchboard.acme.example",
        &by_loop_header,
    );
    assert!(reason.is_some_and(|r| r.contains("x-loop")));
}

#[test]
fn classify_sums_up_the_flags() {
    let raw = b"From: MAILER-DAEMON@mx.example.org\nReturn-Path: <>\nX-Spam-Flag: YES\nSubject: Undelivered Mail Returned to Sender\n\nThis is the mail system at host mx.example.org.\n\n<gone@example.org>: 550 5.1.1 unknown user\n";
    let msg = MessageParser::default().parse(&raw[..]).expect("parses");
    let from = NamedAddress {
        name: None,
        address: "mailer-daemon@mx.example.org".into(),
    };
    let own = OwnMail {
        is_own_message_id: &never,
        is_own_address: &never,
    };
    let text = "This is the mail system at host mx.example.org.\n\n<gone@example.org>: 550 5.1.1 unknown user\n";
    let v = classify(&msg, text, Some(&from), "x@y", false, &own);
    // The null sender of a bounce is not counted as an auto-reply signal.
    assert!(v.auto_reply.is_none());
    assert_eq!(v.flags(), [Flag::Spam, Flag::Bounce]);
    let bounce = v.bounce.expect("bounce");
    assert_eq!(bounce.recipients[0].address, "gone@example.org");
    assert_eq!(bounce.recipients[0].status.as_deref(), Some("5.1.1"));
}
