//! Unit tests of [`super::reply_text`].

use super::{FROM_LABELS, SENT_LABELS, TO_LABELS, reply_text};

#[test]
fn top_posted_reply_loses_attribution_and_quote() {
    let text = "Sounds good.\n\nOn Mon, Jun 3, 2024 at 9:00 AM Acme <a@acme.example> wrote:\n> earlier\n> text\n";
    assert_eq!(reply_text(text), "Sounds good.");
}

#[test]
fn attribution_wrapped_over_two_lines() {
    let text = "Yes.\n\nOn Mon, Jun 3, 2024 at 9:00 AM Acme Support <support@acme.example>\nwrote:\n\n> earlier\n";
    assert_eq!(reply_text(text), "Yes.");
}

#[test]
fn localized_attributions() {
    for attribution in [
        "Am 03.06.2024 um 09:00 schrieb Acme Support <support@acme.example>:",
        "Le lun. 3 juin 2024 à 09:00, Acme <support@acme.example> a écrit :",
        "El lun, 3 jun 2024 a las 9:00, Acme (<support@acme.example>) escribió:",
        "Il giorno lun 3 giu 2024 alle ore 09:00 Acme <support@acme.example> ha scritto:",
        "Op ma 3 jun. 2024 om 09:00 schreef Acme <support@acme.example>:",
        "Den mån 3 juni 2024 kl 09:00 skrev Acme <support@acme.example>:",
    ] {
        let text = format!("Danke!\n\n{attribution}\n\n> alt\n");
        assert_eq!(reply_text(&text), "Danke!", "{attribution}");
    }
}

#[test]
fn attribution_without_known_prefix_needs_a_quote_after_it() {
    let quoted = "Thanks\n\nAcme Support wrote:\n> old\n";
    assert_eq!(reply_text(quoted), "Thanks");
    // "wrote:" in running text is not an attribution.
    let prose = "My lawyer wrote:\nthe contract is void.\n";
    assert_eq!(reply_text(prose), "My lawyer wrote:\nthe contract is void.");
}

#[test]
fn outlook_separators_and_header_blocks() {
    let original =
        "Fine.\n\n-----Original Message-----\nFrom: Acme\nSent: Monday\nTo: me\nSubject: x\n\nold";
    assert_eq!(reply_text(original), "Fine.");
    let german = "Gut.\n\n-----Ursprüngliche Nachricht-----\nVon: Acme\n\nalt";
    assert_eq!(reply_text(german), "Gut.");
    let block = "OK.\n\n________________________________\nFrom: Acme Support <support@acme.example>\nSent: Friday, May 24, 2024 5:02 PM\nTo: Me <me@example.com>\nSubject: Ticket\n\nold text";
    assert_eq!(reply_text(block), "OK.");
    let bold = "OK.\n\n*From:* Acme\n*Sent:* Friday\n*To:* Me\n*Subject:* Ticket\n\nold";
    assert_eq!(reply_text(bold), "OK.");
}

#[test]
fn signature_and_sent_from_my_phone() {
    assert_eq!(reply_text("Hi\n-- \nJane Doe\nACME"), "Hi");
    assert_eq!(reply_text("Hi\n--\nJane"), "Hi");
    assert_eq!(reply_text("Hi there\n\nSent from my iPhone\n"), "Hi there");
    // A line of dashes inside the text is not a signature separator.
    assert_eq!(reply_text("a\n---\nb"), "a\n---\nb");
}

#[test]
fn interleaved_quotes_keep_the_answers() {
    let text = "> Can you come Monday?\nYes.\n> And Tuesday?\nNo.\n";
    assert_eq!(reply_text(text), "Yes.\nNo.");
}

#[test]
fn forwarded_content_is_kept() {
    let text = "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@example.com>\nDate: Mon\nSubject: x\nTo: me\n\nthe content";
    assert_eq!(reply_text(text), text);
}

#[test]
fn a_message_that_is_all_quote_keeps_its_text() {
    assert_eq!(reply_text("> only a quote\n"), "> only a quote");
    assert_eq!(reply_text(""), "");
}

#[test]
fn crlf_and_blank_runs_are_normalized() {
    assert_eq!(reply_text("a\r\n\r\n\r\n\r\nb\r\n"), "a\n\nb");
}

#[test]
fn outlook_labels_fit_the_lower_cased_head() {
    // `is_outlook_header_block` lower-cases only a line's first 12 characters.
    for label in FROM_LABELS.iter().chain(&SENT_LABELS).chain(&TO_LABELS) {
        assert!(label.chars().count() <= 12, "{label}");
    }
}

#[test]
fn prefilters_keep_case_insensitive_markers() {
    assert_eq!(
        reply_text("Hi\n\n---------- FORWARDED MESSAGE ---------\nFrom: a\n> b\n"),
        "Hi\n\n---------- FORWARDED MESSAGE ---------\nFrom: a"
    );
    assert_eq!(
        reply_text("Yes.\n\nON MON, 1 JAN 2024, ANN <A@X.ORG>\nWROTE:\n> q\n"),
        "Yes."
    );
}

#[test]
fn from_labels_start_with_the_letters_the_fast_path_admits() {
    // `is_outlook_header_block` dismisses lines not starting with d, f or v.
    for label in FROM_LABELS {
        assert!(matches!(label.as_bytes()[0], b'd' | b'f' | b'v'), "{label}");
    }
}
