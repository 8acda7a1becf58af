//! Golden tests: every `fixtures/twilio/*.form` webhook body is normalized and compared with
//! the `.json` next to it. `status-*` fixtures are status callbacks, all others incoming
//! messages; a fixture that must be rejected has `{"error": ...}` as its golden.
//!
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-twilio --test golden` rewrites the goldens;
//! review the diff by eye before committing.

use serde_json::{Value, json};
use switchboard_testkit::Golden;
use switchboard_testkit::golden::fixtures_dir;
use switchboard_twilio::form::parse_form;
use switchboard_twilio::message_key;
use switchboard_twilio::normalize::{normalize_message, normalize_status, status_key_for};

fn normalize_fixture(name: &str, body: &[u8]) -> Value {
    let params = parse_form(body);
    if name.starts_with("status-") {
        match (status_key_for(&params), normalize_status(&params)) {
            (Ok(key), Ok(update)) => json!({ "idempotency_key": key, "status": update }),
            (_, Err(e)) | (Err(e), _) => json!({ "error": e.to_string() }),
        }
    } else {
        match normalize_message(&params) {
            Ok(msg) => json!({
                "idempotency_key": message_key(&msg.provider_message_id),
                "message": msg,
            }),
            Err(e) => json!({ "error": e.to_string() }),
        }
    }
}

#[test]
fn fixtures_match_their_goldens() {
    Golden::new(fixtures_dir("twilio"), ".form")
        .at_least(13)
        .check(|name, raw| {
            // Editors like a final newline; Twilio never sends one.
            let body = raw.strip_suffix(b"\n").unwrap_or(raw);
            normalize_fixture(name, body)
        });
}

#[test]
fn rejected_fixtures_say_why() {
    let dir = fixtures_dir("twilio");
    for (name, needle) in [
        ("invalid-missing-from", "From"),
        ("invalid-missing-sid", "MessageSid"),
        ("invalid-nummedia-abc", "NumMedia"),
        ("invalid-nummedia-too-large", "MediaUrl1"),
        ("status-unknown-value", "teleported"),
    ] {
        let body = std::fs::read(dir.join(format!("{name}.form"))).expect("fixture");
        let got = normalize_fixture(name, &body);
        let error = got["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{name}: {got}");
    }
}
