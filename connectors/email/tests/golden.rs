//! Golden tests: every `fixtures/email/<name>.eml` is normalized and compared with
//! `<name>.json` next to it (the whole [`ParsedEmail`], attachment bytes replaced by their
//! size and sha256).
//!
//! The options are those of a channel `support@acme.example` whose outbound Message-IDs end
//! in `@switchboard.acme.example`, serving inline parts at `/api/v1/inline/{index}?cid={cid}`.
//!
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-email --test golden` rewrites the goldens;
//! review the diff by eye before committing.

use std::path::{Path, PathBuf};
use switchboard_core::domain::model::{DeliveryStatus, Flag};
use switchboard_email::{
    AutoKind, BounceOutcome, Disposition, NormalizeOptions, ParsedEmail, PartKind, Problem,
    cid_template, normalize,
};
use switchboard_testkit::Golden;

fn fixtures_dir() -> PathBuf {
    switchboard_testkit::golden::fixtures_dir("email")
}

fn is_own_message_id(id: &str) -> bool {
    id.ends_with("@switchboard.acme.example")
}

fn is_own_address(address: &str) -> bool {
    address == "support@acme.example"
}

fn parse(name: &str) -> ParsedEmail {
    let raw = std::fs::read(fixtures_dir().join(format!("{name}.eml"))).expect("fixture");
    let cid_url = cid_template("/api/v1/inline/{index}?cid={cid}");
    let options = NormalizeOptions {
        cid_url: &cid_url,
        is_own_message_id: &is_own_message_id,
        is_own_address: &is_own_address,
        ..NormalizeOptions::default()
    };
    normalize(&raw, &options)
}

#[test]
fn fixtures_match_their_goldens() {
    Golden::new(fixtures_dir(), ".eml")
        .at_least(20)
        .check(|name, _| serde_json::to_value(parse(name)).expect("serializable"));
}

#[test]
fn normalization_is_deterministic() {
    for name in [
        "inline-cid-outlook",
        "missing-message-id",
        "unparseable",
        "html-hostile",
    ] {
        let a = serde_json::to_string(&parse(name)).expect("json");
        let b = serde_json::to_string(&parse(name)).expect("json");
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn hostile_html_is_neutralized() {
    let p = parse("html-hostile");
    let html = p.message.html.expect("html body");
    let lower = html.to_lowercase();
    for needle in [
        "<script",
        "onload",
        "onerror",
        "onclick",
        "javascript:",
        "<iframe",
        "<form",
        "<input",
        "<object",
        "<svg",
        "<meta",
        "<base",
        "<link",
        "<style",
        "tracker.example",
        "evil.example",
        "url(",
        "image/svg",
        "/api/v1/conversations",
    ] {
        assert!(!lower.contains(needle), "{needle:?} survived in {html}");
    }
    assert!(html.contains("https://example.com/claim"));
    assert!(html.contains("mailto:prizes@attacker.example"));
    assert!(html.contains("data:image/png;base64"));
    assert!(html.contains("rel=\"noopener noreferrer\""));
    assert_eq!(
        p.blocked_remote_content,
        [
            "https://tracker.example/open.gif?id=42",
            "//cdn.tracker.example/pixel.png"
        ]
    );
}

#[test]
fn inline_images_point_at_the_callers_urls() {
    for (name, cid) in [
        ("inline-cid-outlook", "image001.png@01DAA83A.5F3C2B10"),
        ("inline-cid-apple", "F0E1D2C3-B4A5-4968-8776-A5B4C3D2E1F0"),
        ("nested-deep", "deep-logo@example.com"),
    ] {
        let p = parse(name);
        let (index, part) = p
            .parts
            .iter()
            .enumerate()
            .find(|(_, a)| a.content_id.as_deref() == Some(cid))
            .unwrap_or_else(|| panic!("{name}: no part with cid {cid}"));
        assert_eq!(part.disposition, Disposition::Inline, "{name}");
        assert!(part.referenced_by_html, "{name}");
        assert!(!part.bytes.is_empty(), "{name}");
        let html = p.message.html.expect("html");
        assert!(
            html.contains(&format!("/api/v1/inline/{index}?cid=")),
            "{name}: {html}"
        );
        assert!(!html.contains("cid:"), "{name}: {html}");
    }
}

#[test]
fn encoded_headers_and_bodies_decode_to_utf8() {
    for (name, subject, from_name, text) in [
        (
            "encoded-latin",
            "Réclamation „Größe 42“– dringend", // RFC 2047: no space between encoded words
            "François Dupré",
            "„Größe 42“",
        ),
        (
            "encoded-koi8r",
            "Вопрос по заказу",
            "Иван Петров",
            "Заказ 1042",
        ),
        (
            "encoded-shift-jis",
            "配送状況について",
            "山田太郎",
            "注文番号1042",
        ),
        ("encoded-gb2312", "订单查询", "王伟", "我的订单1042"),
        (
            "wrong-charset-latin1-as-utf8",
            "Colis abîmé à la livraison",
            "Hélène Dubois",
            "arrivé déchiré",
        ),
        (
            "wrong-charset-utf8-as-ascii",
            "Betalning – dubbel debitering",
            "Åsa Lindström",
            "49,99 €. 😕",
        ),
    ] {
        let p = parse(name);
        assert_eq!(p.message.subject.as_deref(), Some(subject), "{name}");
        assert_eq!(p.message.from_name.as_deref(), Some(from_name), "{name}");
        let body = p.message.text.expect("text");
        assert!(body.contains(text), "{name}: {body}");
        assert!(!body.contains('\u{FFFD}'), "{name}: {body}");
    }
    let repaired = parse("wrong-charset-latin1-as-utf8");
    assert!(
        repaired
            .problems
            .contains(&Problem::CharsetRepaired("windows-1252".into()))
    );
}

#[test]
fn rfc2231_and_hostile_filenames() {
    let p = parse("attachment-rfc2231");
    let names: Vec<&str> = p.parts.iter().map(|a| a.filename.as_str()).collect();
    assert_eq!(
        names,
        [
            "Rechnung März 2024 €.pdf",
            "Übersicht der Bestellungen – Q1 2024.csv"
        ]
    );

    let p = parse("hostile-filenames");
    for part in &p.parts {
        let f = &part.filename;
        assert!(!f.contains(['/', '\\', '\0', '\r', '\n']), "{f:?}");
        assert!(!f.starts_with('.'), "{f:?}");
        assert!(f.len() <= 180, "{f:?}");
        assert!(!f.eq_ignore_ascii_case("con.txt"), "{f:?}");
    }
    let names: Vec<&str> = p.parts.iter().map(|a| a.filename.as_str()).collect();
    assert!(names.contains(&"passwd"), "{names:?}");
    assert!(names.contains(&"evil.dll"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("_con.txt")), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with(".pdf") && n.len() <= 180),
        "{names:?}"
    );
}

#[test]
fn threading_headers_and_reply_text() {
    let p = parse("reply-gmail");
    assert_eq!(
        p.message.reply_to,
        [
            "0100018f-acme-outbound-7@switchboard.acme.example",
            "CAGm1Zq+first@mail.gmail.com"
        ]
    );
    let reply = p.reply_text.expect("reply text");
    assert_eq!(
        reply,
        "Thanks, that works for me. Please send the label to this address.\n\nOlivia"
    );

    let p = parse("reply-outlook");
    let reply = p.reply_text.expect("reply text");
    assert!(reply.ends_with("Anna Schneider"), "{reply}");
    assert!(!reply.contains("Seriennummer des"), "{reply}");

    let p = parse("reply-apple");
    assert_eq!(
        p.references,
        [
            "0100018f-acme-outbound-11@switchboard.acme.example",
            "0100018f-acme-outbound-10@switchboard.acme.example"
        ]
    );
    assert_eq!(
        p.reply_text.as_deref(),
        Some("Tuesday afternoon is fine.\n\nYes, Wednesday works too.")
    );
}

#[test]
fn missing_message_id_gets_a_stable_synthetic_one() {
    let p = parse("missing-message-id");
    assert!(p.message_id_synthetic);
    assert!(
        p.message
            .provider_message_id
            .ends_with("@switchboard.invalid")
    );
    // Line endings do not change the id.
    let raw = std::fs::read(fixtures_dir().join("missing-message-id.eml")).expect("fixture");
    let crlf = String::from_utf8(raw).expect("utf-8").replace('\n', "\r\n");
    let again = normalize(crlf.as_bytes(), &NormalizeOptions::default());
    assert_eq!(
        again.message.provider_message_id,
        p.message.provider_message_id
    );
}

#[test]
fn flags_of_the_flag_fixtures() {
    let flags = |name| parse(name).message.flags;
    assert_eq!(flags("spam-spamassassin"), [Flag::Spam]);
    assert_eq!(flags("spam-rspamd"), [Flag::Spam]);
    assert_eq!(flags("list-bulk"), [Flag::AutoReply]);
    assert_eq!(flags("auto-reply-rfc3834"), [Flag::AutoReply]);
    assert_eq!(flags("auto-reply-outlook-subject"), [Flag::AutoReply]);
    assert_eq!(flags("loop-own-message"), [Flag::Loop]);
    assert!(flags("plain-text").is_empty());
    assert!(flags("reply-gmail").is_empty());

    let auto = |name| parse(name).verdicts.auto_reply.map(|a| a.kind);
    assert_eq!(auto("auto-reply-rfc3834"), Some(AutoKind::AutoReply));
    assert_eq!(auto("list-bulk"), Some(AutoKind::Bulk));
    assert_eq!(
        auto("auto-reply-outlook-subject"),
        Some(AutoKind::Suspected)
    );

    let score = parse("spam-spamassassin")
        .verdicts
        .spam
        .and_then(|s| s.score);
    assert_eq!(score, Some(13.2));
}

#[test]
fn bounces_name_the_failed_outbound_message_and_recipients() {
    for (name, original, recipients) in [
        (
            "bounce-postfix-dsn",
            "0100018f-acme-outbound-12@switchboard.acme.example",
            vec![("no.such.user@example.org", Some("5.1.1"))],
        ),
        (
            "bounce-qmail",
            "0100018f-acme-outbound-13@switchboard.acme.example",
            vec![
                ("taro.gone@example.jp", Some("5.1.1")),
                ("hanako@example.jp", Some("5.2.2")),
            ],
        ),
        (
            "bounce-exchange-ndr",
            "0100018f-acme-outbound-16@switchboard.acme.example",
            vec![("former.employee@contoso.example", Some("5.1.10"))],
        ),
    ] {
        let p = parse(name);
        assert!(p.message.flags.contains(&Flag::Bounce), "{name}");
        let b = p.verdicts.bounce.expect("bounce report");
        assert_eq!(b.outcome, BounceOutcome::Failed, "{name}");
        assert_eq!(b.original_message_id.as_deref(), Some(original), "{name}");
        let got: Vec<(&str, Option<&str>)> = b
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.status.as_deref()))
            .collect();
        assert_eq!(got, recipients, "{name}");
        let update = b.status_update().expect("status update");
        assert_eq!(update.provider_message_id, original, "{name}");
        assert_eq!(update.status, DeliveryStatus::Failed, "{name}");
        assert_eq!(update.error_code.as_deref(), recipients[0].1, "{name}");
        assert!(update.error_message.is_some(), "{name}");
    }
}

#[test]
fn attached_messages_and_broken_mime_are_kept() {
    let p = parse("forwarded-rfc822");
    let eml = p
        .parts
        .iter()
        .find(|a| a.kind == PartKind::Message)
        .expect("attached message");
    assert_eq!(eml.content_type, "message/rfc822");
    assert_eq!(eml.filename, "Invoice 2024-118.eml");
    assert!(
        String::from_utf8_lossy(&eml.bytes).contains("Message-ID: <orig-invoice-3@vendor.example>")
    );
    assert!(p.reply_text.expect("reply").contains("Forwarded message"));

    let p = parse("malformed-bad-boundary");
    let all = format!("{:?}{:?}", p.message.text, p.parts);
    assert!(all.contains("never declared") || p.parts.iter().any(|a| !a.bytes.is_empty()));

    let p = parse("malformed-truncated");
    assert!(p.message.text.expect("text").contains("cut off in transit"));

    let p = parse("unparseable");
    assert!(
        p.problems.contains(&Problem::Unparseable),
        "{:?}",
        p.problems
    );
    assert!(
        p.message
            .text
            .expect("raw text kept")
            .contains("not an email at all")
    );
}

/// Every prefix (at a stride) and a few thousand deterministic byte mutations of every
/// fixture normalize without a panic, caught or not, and serialize.
#[test]
fn truncated_and_mutated_fixtures_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let options = NormalizeOptions::default();
    let mut runs = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).expect("fixture");
        let check = |bytes: &[u8], what: &str| {
            let p = normalize(bytes, &options);
            assert!(
                !p.problems.contains(&Problem::ParserPanicked),
                "{}: {what}: the parser panicked",
                path.display()
            );
            assert!(serde_json::to_string(&p).is_ok());
        };
        for cut in (0..raw.len()).step_by(23) {
            check(&raw[..cut], &format!("prefix {cut}"));
            runs += 1;
        }
        for round in 0..100 {
            let mut bytes = raw.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() as usize) % bytes.len().max(1);
                if let Some(b) = bytes.get_mut(i) {
                    *b = match next() % 4 {
                        0 => b'\n',
                        1 => b'-',
                        2 => 0xff,
                        _ => next() as u8,
                    };
                }
            }
            check(&bytes, &format!("mutation round {round}"));
            runs += 1;
        }
    }
    assert!(runs > 3000, "{runs}");
}

/// A mutated fixture found by the fuzzer that trips a `debug_assert!` inside mail-parser
/// ("Invalid part ID"): in debug builds the panic is caught and the message falls back to its
/// raw text; release builds (no debug assertions) parse it. Either way nothing is lost.
#[test]
fn a_parser_panic_falls_back_to_the_raw_text() {
    let raw = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/parser-debug-assert.eml"),
    )
    .expect("test data");
    let p = normalize(&raw, &NormalizeOptions::default());
    if cfg!(debug_assertions) {
        assert!(
            p.problems.contains(&Problem::ParserPanicked),
            "{:?}",
            p.problems
        );
        assert!(
            p.message
                .text
                .as_deref()
                .is_some_and(|t| t.contains("fwd-88@example.net"))
        );
    } else {
        assert!(!p.problems.contains(&Problem::ParserPanicked));
    }
    assert!(serde_json::to_string(&p).is_ok());
}
