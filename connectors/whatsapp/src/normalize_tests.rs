//! Unit tests of normalization: the edge cases; realistic payloads live in the golden
//! fixtures (`fixtures/whatsapp`, `tests/golden.rs`).

use super::*;
use serde_json::json;

fn delivery(value: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": value }] }]
    }))
    .expect("json")
}

fn messages(msgs: Value, contacts: Value) -> Vec<u8> {
    delivery(json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
        "contacts": contacts,
        "messages": msgs,
    }))
}

fn one(body: &[u8]) -> Event {
    let mut events = normalize(body).expect("valid");
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn message(event: Event) -> InboundMessage {
    match event {
        Event::Message(m) => *m,
        other => panic!("expected a message: {other:?}"),
    }
}

#[test]
fn text_is_kept_verbatim_and_blank_text_is_none() {
    let m = message(one(&messages(
        json!([{ "from": "+16505551234", "id": "wamid.A", "timestamp": 1739321024,
                 "type": "text", "text": { "body": "  two spaces\n" } }]),
        json!([]),
    )));
    assert_eq!(m.text.as_deref(), Some("  two spaces\n"));
    assert_eq!(m.from.value, "16505551234", "the + is dropped");
    assert_eq!(m.from_name, None);
    assert_eq!(m.sent_at, Some(1_739_321_024_000), "numeric timestamps too");
    let m = message(one(&messages(
        json!([{ "from": "1", "id": "wamid.B", "timestamp": "soon", "type": "text",
                 "text": { "body": " \n " } }]),
        json!([]),
    )));
    assert_eq!(m.text, None);
    assert_eq!(m.sent_at, None);
}

#[test]
fn the_sender_name_comes_from_the_matching_contact() {
    let contacts = json!([
        { "profile": { "name": "Other Person" }, "wa_id": "19999999999" },
        { "profile": { "name": "Sheena" }, "wa_id": "16505551234" }
    ]);
    let m = message(one(&messages(
        json!([{ "from": "16505551234", "id": "wamid.C", "type": "text", "text": { "body": "x" } }]),
        contacts,
    )));
    assert_eq!(m.from_name.as_deref(), Some("Sheena"));
    assert_eq!(m.external["contact"]["wa_id"], "16505551234");
}

#[test]
fn items_without_ids_are_kept_as_other_events_with_stable_keys() {
    let body = messages(
        json!([
            { "from": "1", "type": "text", "text": { "body": "no id" } },
            { "id": "wamid.D", "type": "text", "text": { "body": "no sender" } },
            { "from": "1", "id": "wamid.E", "type": "reaction", "reaction": { "emoji": "x" } }
        ]),
        json!([]),
    );
    let events = normalize(&body).expect("valid");
    assert_eq!(events.len(), 3);
    for e in &events {
        match e {
            Event::Other { key, field } => {
                assert!(key.starts_with("event:messages:"), "{key}");
                assert_eq!(field, "messages");
            }
            other => panic!("expected Other: {other:?}"),
        }
    }
    assert_eq!(
        normalize(&body).expect("valid"),
        events,
        "same keys on a retry"
    );
    let keys: std::collections::HashSet<String> =
        events.iter().map(Event::idempotency_key).collect();
    assert_eq!(keys.len(), 3);
}

#[test]
fn an_empty_emoji_removes_the_reaction() {
    let e = one(&messages(
        json!([{ "from": "1", "id": "wamid.F", "type": "reaction",
                 "reaction": { "message_id": "wamid.OUT", "emoji": "" } }]),
        json!([]),
    ));
    match e {
        Event::Reaction(r) => {
            assert_eq!(r.emoji, None);
            assert_eq!(r.target_provider_id, "wamid.OUT");
            assert_eq!(r.provider_message_id, "wamid.F");
        }
        other => panic!("expected a reaction: {other:?}"),
    }
}

#[test]
fn media_without_an_id_is_fetched_by_url() {
    let m = message(one(&messages(
        json!([{ "from": "1", "id": "wamid.G", "type": "image",
                 "image": { "mime_type": "image/png", "url": "https://lookaside.fbsbx.com/x" } }]),
        json!([]),
    )));
    assert_eq!(
        m.attachments[0].source.as_deref(),
        Some("https://lookaside.fbsbx.com/x")
    );
    assert_eq!(m.attachments[0].filename, None, "only documents have names");
}

#[test]
fn statuses_map_and_unknown_values_are_journaled() {
    let body = delivery(json!({
        "messaging_product": "whatsapp",
        "metadata": { "phone_number_id": "106540352242922" },
        "statuses": [
            { "id": "wamid.S", "status": "READ", "recipient_id": "1" },
            { "id": "wamid.S", "status": "played", "recipient_id": "1" },
            { "status": "sent" },
            { "id": "wamid.T", "status": "failed", "errors": [{ "code": "131026", "message": "Message undeliverable" }] }
        ]
    }));
    let events = normalize(&body).expect("valid");
    assert!(matches!(&events[0], Event::Status(s) if s.status == DeliveryStatus::Read));
    assert_eq!(events[0].idempotency_key(), "status:wamid.S:read");
    assert!(
        matches!(&events[1], Event::Other { key, .. } if key == "status:wamid.S:played"),
        "{:?}",
        events[1]
    );
    assert!(matches!(&events[2], Event::Other { key, .. } if key.starts_with("event:messages:")));
    match &events[3] {
        Event::Status(s) => {
            assert_eq!(s.error_code.as_deref(), Some("131026"));
            assert_eq!(s.error_message.as_deref(), Some("Message undeliverable"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_messages_combine_title_and_details() {
    let e = |v: Value| first_error(&json!({ "errors": [v] }));
    assert_eq!(
        e(json!({ "code": 1, "title": "T", "message": "T", "error_data": { "details": "D" } })),
        (Some("1".into()), Some("T: D".into()))
    );
    assert_eq!(
        e(json!({ "code": 2, "title": "Same", "error_data": { "details": "Same" } })),
        (Some("2".into()), Some("Same".into()))
    );
    assert_eq!(
        e(json!({ "error_data": { "details": "D" } })),
        (None, Some("D".into()))
    );
    assert_eq!(first_error(&json!({})), (None, None));
}

#[test]
fn other_objects_and_shapes() {
    let page = br#"{"object":"page","entry":[{"id":"1","messaging":[]}]}"#;
    assert!(matches!(one(page), Event::Other { field, .. } if field == "page"));
    let no_changes = br#"{"object":"whatsapp_business_account","entry":[{"id":"1"}]}"#;
    assert!(matches!(one(no_changes), Event::Other { field, .. } if field == "entry"));
    let bare = delivery(json!({ "messaging_product": "whatsapp", "metadata": {} }));
    assert!(matches!(one(&bare), Event::Other { field, .. } if field == "messages"));
    assert_eq!(
        normalize(b"[1,2]"),
        Err(NormalizeError::Shape("the body is not a JSON object"))
    );
    assert!(matches!(
        normalize(b"{\"object\""),
        Err(NormalizeError::Json(_))
    ));
    assert!(
        normalize(b"{\"object\":\"whatsapp_business_account\",\"entry\":[]}")
            .expect("valid")
            .is_empty()
    );
}

#[test]
fn value_level_extras_are_journaled_alongside_the_items() {
    let body = delivery(json!({
        "messaging_product": "whatsapp",
        "metadata": { "phone_number_id": "106540352242922" },
        "messages": [{ "from": "1", "id": "wamid.H", "type": "text", "text": { "body": "x" } }],
        "user_actions": [{ "action_type": "marketing_messages_link_click" }]
    }));
    let events = normalize(&body).expect("valid");
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0], Event::Message(_)));
    assert!(matches!(&events[1], Event::Other { field, .. } if field == "messages"));
}

#[test]
fn keys_and_kinds() {
    assert_eq!(message_key("wamid.X"), "msg:wamid.X");
    assert_eq!(
        status_key("wamid.X", "delivered"),
        "status:wamid.X:delivered"
    );
    assert_eq!(reaction_key("wamid.X"), "reaction:wamid.X");
    assert_eq!(map_status("deleted"), None);
    let other = Event::Other {
        key: "k".into(),
        field: "f".into(),
    };
    assert_eq!(other.journal_kind(), "event");
    assert_eq!(other.idempotency_key(), "k");
}

#[test]
fn content_keys_do_not_depend_on_member_order() {
    let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,"x"],"x":null}}"#).expect("json");
    let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#).expect("json");
    assert_eq!(content_key("f", "s", &a), content_key("f", "s", &b));
    assert_ne!(content_key("f", "s", &a), content_key("f", "t", &a));
    assert_ne!(
        content_key("f", "s", &a),
        content_key("f", "s", &json!({"b": 2}))
    );
}
