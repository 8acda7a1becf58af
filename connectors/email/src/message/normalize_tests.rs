//! Unit tests of [`super::normalize`] on small hand-written messages.

use super::{CidTarget, NormalizeOptions, cid_template, normalize};
use crate::message::parsed::Problem;

fn parse(raw: &str) -> crate::message::parsed::ParsedEmail {
    normalize(raw.as_bytes(), &NormalizeOptions::default())
}

#[test]
fn mbox_envelope_line_is_not_a_header() {
    let p = parse(
        "From sender@example.com Mon Jun  3 09:00:00 2024\nFrom: Sender <sender@example.com>\nMessage-ID: <a@b>\nSubject: hi\n\nbody\n",
    );
    assert_eq!(p.message.from.value, "sender@example.com");
    assert_eq!(p.message.provider_message_id, "a@b");
}

#[test]
fn sender_falls_back_to_sender_then_return_path() {
    let p = parse("Sender: Bot <BOT@Example.com>\nSubject: s\n\nb\n");
    assert_eq!(p.message.from.value, "bot@example.com");
    assert_eq!(p.message.from_name.as_deref(), Some("Bot"));
    let p = parse("Return-Path: <bounce@example.com>\nSubject: s\n\nb\n");
    assert_eq!(p.message.from.value, "bounce@example.com");
    let p = parse("Subject: s\n\nb\n");
    assert_eq!(p.message.from.value, "unknown@switchboard.invalid");
    assert!(p.problems.contains(&Problem::MissingFrom));
}

#[test]
fn groups_and_duplicates_in_recipients() {
    let p = parse(
        "From: a@example.com\nTo: Team: x@example.com, \"Y\" <Y@example.com>;, x@example.com\nCc: undisclosed-recipients:;\nSubject: s\n\nb\n",
    );
    assert_eq!(p.message.to, ["x@example.com", "y@example.com"]);
    assert!(p.message.cc.is_empty());
}

#[test]
fn unusable_dates_and_ids() {
    let p = parse("From: a@example.com\nDate: yesterday-ish\nMessage-ID: <>\nSubject: s\n\nb\n");
    assert_eq!(p.message.sent_at, None);
    assert!(p.problems.contains(&Problem::BadDate));
    assert!(p.message_id_synthetic);
    let p = parse("From: a@example.com\nDate: Mon, 1 Jan 1900 00:00:00 +0000\nSubject: s\n\nb\n");
    assert_eq!(p.message.sent_at, None);
}

#[test]
fn references_newest_first_after_in_reply_to() {
    let p = parse(
        "From: a@example.com\nMessage-ID: <c@x>\nIn-Reply-To: <b@x>\nReferences: <a@x> <b@x>\nSubject: Re: s\n\nb\n",
    );
    assert_eq!(p.message.reply_to, ["b@x", "a@x"]);
    assert_eq!(p.references, ["b@x", "a@x"]);
}

#[test]
fn empty_and_garbage_input_still_yield_a_message() {
    for raw in [
        &b""[..],
        b"\n\n\n",
        b"\xff\xfe\x00garbage",
        b"no headers here\n",
    ] {
        let p = normalize(raw, &NormalizeOptions::default());
        assert!(
            p.message
                .provider_message_id
                .ends_with("@switchboard.invalid")
        );
        assert!(!p.problems.is_empty());
        assert!(serde_json::to_string(&p).is_ok());
    }
}

#[test]
fn nul_characters_never_reach_the_output() {
    let p = parse("From: a@example.com\nSubject: a\0b\n\nbody\0text\n");
    let json = serde_json::to_string(&p).expect("json");
    assert!(!json.contains("\\u0000"), "{json}");
    assert_eq!(p.message.subject.as_deref(), Some("ab"));
}

#[test]
fn cid_templates_and_closures() {
    let target = CidTarget {
        content_id: "img 1@x",
        index: 3,
    };
    let template = cid_template("/a/{index}/{cid}");
    assert_eq!(template(&target).as_deref(), Some("/a/3/img%201%40x"));

    let raw = "From: a@example.com\nSubject: s\nContent-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/html\n\n<img src=\"cid:img@x\">\n--b\nContent-Type: image/png\nContent-ID: <img@x>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b--\n";
    let drop_all = |_: &CidTarget<'_>| None;
    let options = NormalizeOptions {
        cid_url: &drop_all,
        ..NormalizeOptions::default()
    };
    let p = normalize(raw.as_bytes(), &options);
    assert_eq!(p.message.html.as_deref(), Some("<img>"));
    assert!(!p.parts[0].referenced_by_html);
    let p = normalize(raw.as_bytes(), &NormalizeOptions::default());
    assert_eq!(p.message.html.as_deref(), Some("<img src=\"cid:img%40x\">"));
    assert!(p.parts[0].referenced_by_html);
}

#[test]
fn html_only_messages_get_text_and_reply_text() {
    let raw = "From: a@example.com\nSubject: Re: s\nContent-Type: text/html; charset=utf-8\n\n<div>Yes please.</div><div>On Mon, Bob wrote:</div><blockquote>Shall I?</blockquote>";
    let p = parse(raw);
    assert_eq!(
        p.message.text.as_deref(),
        Some("Yes please.\nOn Mon, Bob wrote:\n\n> Shall I?")
    );
    assert_eq!(p.reply_text.as_deref(), Some("Yes please."));
}

#[test]
fn ids_with_control_characters_are_not_ids() {
    let raw = "From: a@example.com\nMessage-ID: <a\u{0}b@x>\nSubject: s\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nundelivered\n--b\nContent-Type: image/png\nContent-ID: <c\u{0}d@x>\n\npng\n--b\nContent-Type: message/rfc822\n\nMessage-ID: <e\u{0}f@x>\nFrom: b@example.com\n\nbody\n--b--\n";
    let p = parse(raw);
    assert!(p.message_id_synthetic);
    assert!(p.parts.iter().all(|part| part.content_id.is_none()));
    let json = serde_json::to_string(&p).expect("json");
    assert!(!json.contains("\\u0000"), "{json}");
}

#[test]
fn header_names_with_control_characters_are_not_kept() {
    let p = parse("From: a@example.com\nX-Spam\u{0}d: yes\nX-Spam-Flag: YES\nSubject: s\n\nb\n");
    let json = serde_json::to_string(&p).expect("json");
    assert!(!json.contains("\\u0000"), "{json}");
    assert_eq!(
        p.message.flags,
        [switchboard_core::domain::model::Flag::Spam]
    );
}

#[test]
fn a_bounce_is_of_our_own_mail_only_when_is_own_message_id_says_so() {
    let raw = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\nTo: support@acme.example\n\
Subject: Undelivered Mail Returned to Sender\nMessage-ID: <b1@mx.example.com>\n\n\
This is the mail system at host mx.example.com.\n\n\
<gone@remote.example>: host said: 550 5.1.1 User unknown\n\n\
Message-ID: <ours@acme.example>\nSubject: hello\n";
    let own = |id: &str| id == "ours@acme.example";
    let options = NormalizeOptions {
        is_own_message_id: &own,
        ..NormalizeOptions::default()
    };
    let p = normalize(raw.as_bytes(), &options);
    let update = p.own_bounce.expect("a bounce of our message");
    assert_eq!(update.provider_message_id, "ours@acme.example");
    assert_eq!(
        update.status,
        switchboard_core::domain::model::DeliveryStatus::Failed
    );
    // The same bounce with nothing of ours: still a bounce, but not ours to apply.
    let p = parse(raw);
    assert!(p.verdicts.bounce.is_some());
    assert_eq!(p.own_bounce, None);
}
