//! Golden tests: every `fixtures/whatsapp/<name>.json` webhook body is normalized and compared
//! with `<name>.golden.json` next to it: the list of events (idempotency key, journal kind and
//! the normalized message, status or reaction), or `{"error": ...}` for a body that must be
//! rejected.
//!
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-whatsapp --test golden` rewrites the goldens;
//! review the diff by eye before committing.

use serde_json::{Value, json};
use switchboard_testkit::Golden;
use switchboard_testkit::golden::fixtures_dir;
use switchboard_whatsapp::{Event, normalize, normalize_for};

fn fixture(name: &str) -> Vec<u8> {
    switchboard_testkit::golden::fixture("whatsapp", &format!("{name}.json"))
}

fn event_json(event: &Event) -> Value {
    let (label, body) = match event {
        Event::Message(m) => ("message", serde_json::to_value(m)),
        Event::Status(s) => ("status", serde_json::to_value(s)),
        Event::Reaction(r) => ("reaction", serde_json::to_value(r)),
        Event::Other { field, .. } => ("other", Ok(json!({ "field": field }))),
    };
    let mut out = serde_json::Map::new();
    out.insert("idempotency_key".into(), json!(event.idempotency_key()));
    out.insert("kind".into(), json!(event.journal_kind()));
    out.insert(label.into(), body.expect("serializable"));
    Value::Object(out)
}

fn normalize_fixture(body: &[u8]) -> Value {
    match normalize(body) {
        Ok(events) => json!({ "events": events.iter().map(event_json).collect::<Vec<_>>() }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

#[test]
fn fixtures_match_their_goldens() {
    Golden::new(fixtures_dir("whatsapp"), ".json")
        .golden_suffix(".golden.json")
        .at_least(28)
        .check(|name, raw| {
            assert!(
                raw.is_ascii(),
                "{name}: Meta escapes non-ASCII; fixtures must too"
            );
            normalize_fixture(raw)
        });
}

#[test]
fn every_event_type_of_the_reference_has_a_fixture() {
    for name in [
        "text",
        "image",
        "audio",
        "voice",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive-button-reply",
        "interactive-list-reply",
        "button",
        "reaction",
        "reaction-removed",
        "order",
        "system",
        "unsupported",
        "unknown-type",
        "referral",
        "context-reply",
        "forwarded",
        "status-sent",
        "status-delivered",
        "status-read",
        "status-failed",
        "batched",
        "non-ascii",
    ] {
        let got = normalize_fixture(&fixture(name));
        let events = got["events"].as_array().map(Vec::len).unwrap_or(0);
        assert!(events > 0, "{name}: {got}");
        assert!(
            got["events"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|e| e["kind"] != "event" || name == "batched"),
            "{name} normalizes to something to apply: {got}"
        );
    }
}

#[test]
fn the_batched_delivery_yields_one_event_per_item_in_order() {
    let events = normalize(&fixture("batched")).expect("valid");
    let summary: Vec<(&str, String)> = events
        .iter()
        .map(|e| (e.journal_kind(), e.idempotency_key()))
        .collect();
    let kinds: Vec<&str> = summary.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            "message", "message", "status", "status", "message", "status", "event"
        ]
    );
    let mut keys: Vec<&String> = summary.iter().map(|(_, k)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), summary.len(), "keys are distinct: {summary:?}");
}

#[test]
fn non_ascii_text_is_decoded_from_metas_escapes() {
    let events = normalize(&fixture("non-ascii")).expect("valid");
    let Event::Message(m) = &events[0] else {
        panic!("a message: {events:?}");
    };
    assert_eq!(
        m.text.as_deref(),
        Some("Olá! ¿Dónde está mi pedido? 包裹 📦 مرحبا")
    );
    assert_eq!(m.from_name.as_deref(), Some("José Müller 🌟"));
}

#[test]
fn other_numbers_are_journaled_not_ingested() {
    let body = fixture("text");
    let ours = normalize_for(&body, "106540352242922").expect("valid");
    assert!(matches!(ours[0], Event::Message(_)));
    let foreign = normalize_for(&body, "999").expect("valid");
    assert_eq!(foreign.len(), 1);
    match &foreign[0] {
        Event::Other { key, field } => {
            assert!(key.starts_with("foreign:106540352242922:"), "{key}");
            assert_eq!(field, "messages");
        }
        other => panic!("expected Other: {other:?}"),
    }
    assert_eq!(
        normalize_for(&body, "999").expect("valid"),
        foreign,
        "stable keys"
    );
}

#[test]
fn rejected_fixtures_say_why() {
    let got = normalize_fixture(&fixture("invalid-no-entry"));
    assert!(
        got["error"].as_str().unwrap_or_default().contains("entry"),
        "{got}"
    );
    let got = normalize_fixture(b"{\"object\":");
    assert!(
        got["error"].as_str().unwrap_or_default().contains("JSON"),
        "{got}"
    );
}
