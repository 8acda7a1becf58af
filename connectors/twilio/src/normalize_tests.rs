//! Unit tests of normalization: the edge cases; realistic payloads live in the golden
//! fixtures (`fixtures/twilio`, `tests/golden.rs`).

use super::*;

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sms(body: &str) -> Vec<(String, String)> {
    p(&[
        ("MessageSid", "SM1"),
        ("From", "+14155550111"),
        ("To", "+14155550100"),
        ("Body", body),
    ])
}

#[test]
fn sms_basics() {
    let m = normalize_message(&sms("Hello")).expect("valid");
    assert_eq!(m.provider_message_id, "SM1");
    assert_eq!(m.from.kind, IdentityKind::PHONE);
    assert_eq!(m.from.value, "+14155550111");
    assert_eq!(m.to, vec!["+14155550100"]);
    assert_eq!(m.text.as_deref(), Some("Hello"));
    assert_eq!(m.consent, None);
    assert_eq!(m.external["channel"], "sms");
    assert_eq!(m.external["Body"], "Hello");
}

#[test]
fn sms_sid_is_a_fallback_for_message_sid() {
    let m = normalize_message(&p(&[("SmsSid", "SM9"), ("From", "+14155550111")])).expect("valid");
    assert_eq!(m.provider_message_id, "SM9");
    assert_eq!(m.text, None);
}

#[test]
fn keywords_set_consent() {
    for (body, want) in [
        ("STOP", Some(Consent::OptOut)),
        ("  stop \n", Some(Consent::OptOut)),
        ("Unsubscribe", Some(Consent::OptOut)),
        ("stopall", Some(Consent::OptOut)),
        ("cancel", Some(Consent::OptOut)),
        ("END", Some(Consent::OptOut)),
        ("quit", Some(Consent::OptOut)),
        ("start", Some(Consent::OptIn)),
        ("Yes", Some(Consent::OptIn)),
        ("UNSTOP", Some(Consent::OptIn)),
        ("stop please", None),
        ("please stop", None),
        ("HELP", None),
    ] {
        let m = normalize_message(&sms(body)).expect("valid");
        assert_eq!(m.consent, want, "{body:?}");
    }
}

#[test]
fn opt_out_type_takes_precedence() {
    let mut params = sms("arret");
    params.push(("OptOutType".into(), "STOP".into()));
    assert_eq!(
        normalize_message(&params).expect("valid").consent,
        Some(Consent::OptOut)
    );

    let mut params = sms("stop");
    params.push(("OptOutType".into(), "HELP".into()));
    assert_eq!(normalize_message(&params).expect("valid").consent, None);

    let mut params = sms("whatever");
    params.push(("OptOutType".into(), "start".into()));
    assert_eq!(
        normalize_message(&params).expect("valid").consent,
        Some(Consent::OptIn)
    );
}

#[test]
fn whatsapp_keywords_need_opt_out_type() {
    let params = p(&[
        ("MessageSid", "SM2"),
        ("From", "whatsapp:+14155550111"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "cancel"),
    ]);
    let m = normalize_message(&params).expect("valid");
    assert_eq!(m.from.kind, IdentityKind::WHATSAPP);
    assert_eq!(m.from.value, "14155550111");
    assert_eq!(m.consent, None);
    assert_eq!(m.external["channel"], "whatsapp");

    let mut with_type = params.clone();
    with_type.push(("OptOutType".into(), "STOP".into()));
    assert_eq!(
        normalize_message(&with_type).expect("valid").consent,
        Some(Consent::OptOut)
    );
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    assert_eq!(
        normalize_message(&p(&[("MessageSid", "SM1"), ("Body", "x")])),
        Err(NormalizeError::Missing("From"))
    );
    assert_eq!(
        normalize_message(&p(&[("From", "+14155550111"), ("MessageSid", " ")])),
        Err(NormalizeError::Missing("MessageSid"))
    );
    let mut bad_count = sms("x");
    bad_count.push(("NumMedia".into(), "abc".into()));
    assert!(matches!(
        normalize_message(&bad_count),
        Err(NormalizeError::Invalid {
            field: "NumMedia",
            ..
        })
    ));
    let mut negative = sms("x");
    negative.push(("NumMedia".into(), "-1".into()));
    assert!(matches!(
        normalize_message(&negative),
        Err(NormalizeError::Invalid {
            field: "NumMedia",
            ..
        })
    ));
    let mut too_many = sms("x");
    too_many.push(("NumMedia".into(), "2".into()));
    too_many.push(("MediaUrl0".into(), "https://api.twilio.com/m0".into()));
    assert_eq!(
        normalize_message(&too_many),
        Err(NormalizeError::MissingMedia {
            declared: 2,
            index: 1
        })
    );
    let mut huge = sms("x");
    huge.push(("NumMedia".into(), "4294967295".into()));
    assert!(matches!(
        normalize_message(&huge),
        Err(NormalizeError::MissingMedia { index: 0, .. })
    ));
    let bad_from = p(&[("MessageSid", "SM1"), ("From", "+1-415")]);
    assert!(matches!(
        normalize_message(&bad_from),
        Err(NormalizeError::Invalid { field: "From", .. })
    ));
    let messenger = p(&[("MessageSid", "SM1"), ("From", "messenger:123")]);
    assert!(matches!(
        normalize_message(&messenger),
        Err(NormalizeError::UnsupportedAddress(_))
    ));
    let bad_wa = p(&[("MessageSid", "SM1"), ("From", "whatsapp:abc")]);
    assert!(matches!(
        normalize_message(&bad_wa),
        Err(NormalizeError::UnsupportedAddress(_))
    ));
}

#[test]
fn media_without_declared_count_is_ignored_and_types_are_optional() {
    let mut params = sms("");
    params.push(("MediaUrl0".into(), "https://api.twilio.com/m0".into()));
    let m = normalize_message(&params).expect("valid");
    assert!(m.attachments.is_empty());

    let mut params = sms("");
    params.push(("NumMedia".into(), "1".into()));
    params.push(("MediaUrl0".into(), "https://api.twilio.com/m0".into()));
    let m = normalize_message(&params).expect("valid");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].content_type, None);
    assert_eq!(
        m.attachments[0].source.as_deref(),
        Some("https://api.twilio.com/m0")
    );
    assert_eq!(m.external["channel"], "mms");
    assert_eq!(m.text, None);
}

#[test]
fn repeated_params_become_arrays_in_external() {
    let mut params = sms("x");
    params.push(("Tag".into(), "a".into()));
    params.push(("Tag".into(), "b".into()));
    let m = normalize_message(&params).expect("valid");
    assert_eq!(m.external["Tag"], serde_json::json!(["a", "b"]));
}

#[test]
fn statuses_map_and_keep_errors() {
    for (raw, want) in [
        ("accepted", DeliveryStatus::Queued),
        ("scheduled", DeliveryStatus::Queued),
        ("queued", DeliveryStatus::Queued),
        ("sending", DeliveryStatus::Sending),
        ("sent", DeliveryStatus::Sent),
        ("delivered", DeliveryStatus::Delivered),
        ("undelivered", DeliveryStatus::Undelivered),
        ("failed", DeliveryStatus::Failed),
        ("canceled", DeliveryStatus::Failed),
        ("read", DeliveryStatus::Read),
        ("received", DeliveryStatus::Received),
        ("DELIVERED", DeliveryStatus::Delivered),
    ] {
        assert_eq!(map_status(raw), Some(want), "{raw}");
    }
    assert_eq!(map_status("teleported"), None);

    let params = p(&[
        ("MessageSid", "SM5"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30005"),
    ]);
    let s = normalize_status(&params).expect("valid");
    assert_eq!(s.status, DeliveryStatus::Undelivered);
    assert_eq!(s.error_code.as_deref(), Some("30005"));
    assert_eq!(
        s.error_message.as_deref(),
        Some("Unknown destination handset")
    );
    assert_eq!(
        status_key_for(&params).as_deref(),
        Ok("status:SM5:undelivered:30005")
    );

    let with_message = p(&[
        ("MessageSid", "SM5"),
        ("MessageStatus", "failed"),
        ("ErrorCode", "99999"),
        ("ErrorMessage", "Something odd"),
    ]);
    let s = normalize_status(&with_message).expect("valid");
    assert_eq!(s.error_message.as_deref(), Some("Something odd"));
}

#[test]
fn malformed_statuses_are_errors() {
    assert_eq!(
        normalize_status(&p(&[("MessageStatus", "sent")])),
        Err(NormalizeError::Missing("MessageSid"))
    );
    assert_eq!(
        normalize_status(&p(&[("MessageSid", "SM1")])),
        Err(NormalizeError::Missing("MessageStatus"))
    );
    assert_eq!(
        normalize_status(&p(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "teleported")
        ])),
        Err(NormalizeError::UnknownStatus("teleported".into()))
    );
    // SmsStatus is the deprecated twin of MessageStatus.
    let s = normalize_status(&p(&[("SmsSid", "SM1"), ("SmsStatus", "sent")])).expect("valid");
    assert_eq!(s.status, DeliveryStatus::Sent);
    assert_eq!(s.error_code, None);
}

#[test]
fn keys_derive_from_sids() {
    assert_eq!(message_key("SM1"), "msg:SM1");
    assert_eq!(status_key("SM1", "delivered", None), "status:SM1:delivered");
    assert_eq!(
        status_key("SM1", "failed", Some("30003")),
        "status:SM1:failed:30003"
    );
}
