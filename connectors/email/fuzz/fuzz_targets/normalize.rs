//! Fuzz target: any bytes normalize without a panic (the caught-panic fallback counts as a
//! finding), serialize, never carry a NUL, and mbox splitting of the same bytes holds up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_email::message::mbox;
use switchboard_email::{NormalizeOptions, Problem, normalize};

fuzz_target!(|data: &[u8]| {
    let options = NormalizeOptions::default();
    let parsed = normalize(data, &options);
    assert!(!parsed.problems.contains(&Problem::ParserPanicked));
    let json = serde_json::to_string(&parsed).expect("serializable");
    assert!(!json.contains("\\u0000"));
    assert!(!parsed.message.provider_message_id.is_empty());
    for message in mbox::split(data).into_iter().take(8) {
        let _ = normalize(message, &options);
    }
});
