//! Tests of `X-Hub-Signature-256` verification. The expected values were computed with an
//! independent implementation (Python's `hmac` module); the first is the published
//! HMAC-SHA256 example ("key", "The quick brown fox jumps over the lazy dog").

use super::*;
use axum::http::HeaderValue;

const SECRET: &str = "a1b2c3-app-secret";

/// A delivery as Meta serializes it: every non-ASCII character escaped (`é` is `\u00e9`,
/// the emoji a surrogate pair), no whitespace.
const ESCAPED_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Ren\u00e9e"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.X1","timestamp":"1739321024","type":"text","text":{"body":"caf\u00e9 \ud83d\ude00"}}]},"field":"messages"}]}]}"#;
const ESCAPED_SIGNATURE: &str =
    "sha256=cd66572816fb44c5a89fbd3cef18cfd9337d79372aaa8d6663fd4444ec03d2a0";

fn headers(signature: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(s) = signature {
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(s).expect("ascii"));
    }
    h
}

fn verify(secret: &str, signature: Option<&str>, body: &[u8]) -> Result<Verified, SignatureError> {
    Unverified::new(&headers(signature), Bytes::copy_from_slice(body)).verify(&Secret::new(secret))
}

#[test]
fn sign_matches_the_published_hmac_sha256_vector() {
    assert_eq!(
        sign("key", b"The quick brown fox jumps over the lazy dog"),
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
}

#[test]
fn escaped_non_ascii_body_verifies_over_its_exact_bytes() {
    assert!(
        ESCAPED_BODY.contains(r"\u00e9"),
        "the body keeps Meta's escapes"
    );
    assert_eq!(sign(SECRET, ESCAPED_BODY.as_bytes()), ESCAPED_SIGNATURE);
    let v = verify(SECRET, Some(ESCAPED_SIGNATURE), ESCAPED_BODY.as_bytes()).expect("valid");
    assert_eq!(v.body().as_ref(), ESCAPED_BODY.as_bytes());
}

#[test]
fn a_reserialized_body_does_not_verify() {
    // The same JSON value with the escapes decoded (what a parse + serialize round trip
    // produces): different bytes, so Meta's signature must not match it.
    let value: serde_json::Value = serde_json::from_str(ESCAPED_BODY).expect("json");
    let reserialized = serde_json::to_vec(&value).expect("serialize");
    assert_ne!(reserialized, ESCAPED_BODY.as_bytes());
    assert_eq!(
        verify(SECRET, Some(ESCAPED_SIGNATURE), &reserialized).map(|_| ()),
        Err(SignatureError::Mismatch)
    );
    // The decoded text signed by itself has another signature (computed independently).
    let decoded = ESCAPED_BODY
        .replace(r"\u00e9", "é")
        .replace(r"\ud83d\ude00", "😀");
    assert_eq!(
        sign(SECRET, decoded.as_bytes()),
        "sha256=77b33a91106cef1a09eea98fcecb319dbbc6ce8345cd908d2caa141b261af7ba"
    );
    assert_eq!(
        verify(SECRET, Some(ESCAPED_SIGNATURE), decoded.as_bytes()).map(|_| ()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn wrong_secret_is_a_mismatch() {
    assert_eq!(
        verify(
            "another-secret",
            Some(ESCAPED_SIGNATURE),
            ESCAPED_BODY.as_bytes()
        )
        .map(|_| ()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn tampered_body_is_a_mismatch() {
    let tampered = ESCAPED_BODY.replace("wamid.X1", "wamid.X2");
    assert_eq!(
        verify(SECRET, Some(ESCAPED_SIGNATURE), tampered.as_bytes()).map(|_| ()),
        Err(SignatureError::Mismatch)
    );
    let mut trailing = ESCAPED_BODY.as_bytes().to_vec();
    trailing.push(b'\n');
    assert_eq!(
        verify(SECRET, Some(ESCAPED_SIGNATURE), &trailing).map(|_| ()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_or_malformed_headers_are_rejected() {
    let body = ESCAPED_BODY.as_bytes();
    let digest = ESCAPED_SIGNATURE.trim_start_matches("sha256=");
    assert_eq!(
        verify(SECRET, None, body).map(|_| ()),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify(SECRET, Some(""), body).map(|_| ()),
        Err(SignatureError::Missing)
    );
    // The bare digest without its prefix, the SHA-1 header's prefix, truncated, not hex.
    for bad in [
        digest.to_string(),
        format!("sha1={digest}"),
        format!("sha256 {digest}"),
        ESCAPED_SIGNATURE[..ESCAPED_SIGNATURE.len() - 2].to_string(),
        format!("{ESCAPED_SIGNATURE}00"),
        "sha256=zz".to_string(),
        "sha256=".to_string(),
    ] {
        assert_eq!(
            verify(SECRET, Some(&bad), body).map(|_| ()),
            Err(SignatureError::Malformed),
            "{bad}"
        );
    }
}

#[test]
fn only_metas_exact_form_verifies() {
    // Meta sends `sha256=` and lowercase hex; an uppercase prefix or uppercase digits are
    // another spelling of a valid MAC and must not be accepted (hardening: exact formats).
    let digest = ESCAPED_SIGNATURE.trim_start_matches("sha256=");
    for other in [
        format!("SHA256={digest}"),
        format!("sha256={}", digest.to_ascii_uppercase()),
        format!("SHA256={}", digest.to_ascii_uppercase()),
        format!("Sha256={digest}"),
    ] {
        assert_eq!(
            verify(SECRET, Some(&other), ESCAPED_BODY.as_bytes()).map(|_| ()),
            Err(SignatureError::Malformed),
            "{other}"
        );
    }
    assert!(verify(SECRET, Some(ESCAPED_SIGNATURE), ESCAPED_BODY.as_bytes()).is_ok());
    // Optional whitespace around a header value is not part of it (RFC 9110 §5.5).
    let padded = format!(" {ESCAPED_SIGNATURE} ");
    assert!(verify(SECRET, Some(&padded), ESCAPED_BODY.as_bytes()).is_ok());
}

#[test]
fn non_text_header_is_malformed() {
    let mut h = HeaderMap::new();
    h.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_bytes(b"sha256=\xff").expect("opaque header value"),
    );
    assert_eq!(
        Unverified::new(&h, Bytes::from_static(b"{}"))
            .verify(&Secret::new(SECRET))
            .map(|_| ()),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn empty_body_signed_correctly_still_verifies() {
    let sig = sign(SECRET, b"");
    assert!(verify(SECRET, Some(&sig), b"").is_ok());
}
