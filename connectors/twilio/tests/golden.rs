//! Golden tests: every `fixtures/twilio/*.form` webhook body is normalized and compared with
//! the `.json` next to it. `status-*` fixtures are status callbacks, all others incoming
//! messages; a fixture that must be rejected has `{"error": ...}` as its golden.
//!
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-twilio --test golden` rewrites the goldens;
//! review the diff by eye before committing.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use switchboard_twilio::form::parse_form;
use switchboard_twilio::message_key;
use switchboard_twilio::normalize::{normalize_message, normalize_status, status_key_for};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/twilio")
}

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
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut forms: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/twilio exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "form"))
        .collect();
    forms.sort();
    assert!(
        forms.len() >= 13,
        "expected the Twilio fixtures, found {}",
        forms.len()
    );

    let mut failures = Vec::new();
    for form in &forms {
        let name = form
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 fixture name");
        let raw = std::fs::read(form).expect("readable fixture");
        // Editors like a final newline; Twilio never sends one.
        let body = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let got = normalize_fixture(name, body);
        let golden_path = form.with_extension("json");
        if update {
            let text = serde_json::to_string_pretty(&got).expect("serializable") + "\n";
            std::fs::write(&golden_path, text).expect("golden written");
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&golden_path) else {
            failures.push(format!("{name}: no golden (run with UPDATE_GOLDEN=1)"));
            continue;
        };
        let want: Value = serde_json::from_str(&text).expect("golden is JSON");
        if got != want {
            failures.push(format!(
                "{name}: output differs from golden\n--- golden\n{}\n--- got\n{}",
                serde_json::to_string_pretty(&want).unwrap_or_default(),
                serde_json::to_string_pretty(&got).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn rejected_fixtures_say_why() {
    let dir = fixtures_dir();
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
