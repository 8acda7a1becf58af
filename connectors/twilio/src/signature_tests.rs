//! Tests of `X-Twilio-Signature` verification, anchored on the vectors published in Twilio's
//! SDK test suites (twilio-python `tests/unit/test_request_validator.py`, twilio-csharp
//! `RequestValidatorTest.cs`, twilio-php `RequestValidatorTest.php`, twilio-go
//! `request_validator_test.go`): auth token `12345`.

use super::*;
use axum::http::HeaderValue;

const TOKEN: &str = "12345";
const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const JSON_BODY: &str = r#"{"property": "value", "boolean": true}"#;
const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

fn params() -> Vec<(&'static str, &'static str)> {
    // Intentionally out of order, like the SDK suites.
    vec![
        ("CallSid", "CA1234567890ABCDE"),
        ("From", "+14158675309"),
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
    ]
}

fn form_body(pairs: &[(&str, &str)]) -> Bytes {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    Bytes::from(s.finish())
}

fn headers(signature: Option<&str>, content_type: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(s) = signature {
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(s).expect("ascii"));
    }
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("ascii"));
    }
    h
}

fn verify_form(
    url: &str,
    pairs: &[(&str, &str)],
    signature: &str,
) -> Result<Verified, SignatureError> {
    Unverified::new(
        url,
        &headers(Some(signature), Some("application/x-www-form-urlencoded")),
        form_body(pairs),
    )
    .verify(&Secret::new(TOKEN))
}

fn verify_json(url: &str, body: &str, signature: &str) -> Result<Verified, SignatureError> {
    Unverified::new(
        url,
        &headers(Some(signature), Some("application/json")),
        Bytes::from(body.to_string()),
    )
    .verify(&Secret::new(TOKEN))
}

#[test]
fn computes_the_published_signature() {
    assert_eq!(sign(TOKEN, URL, &params()), EXPECTED);
}

#[test]
fn computes_the_published_body_hash() {
    assert_eq!(body_sha256(JSON_BODY.as_bytes()), BODY_HASH);
}

#[test]
fn repeated_keys_sort_and_dedupe_values() {
    // twilio-python test_compute_signature_duplicate_multi_dict / php testValidateWithArrayAndDuplicates
    let p = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ];
    assert_eq!(sign(TOKEN, URL, &p), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    let v = verify_form(URL, &p, "IK+Dwps556ElfBT0I3Rgjkr1wJU=").expect("valid");
    assert_eq!(v.params().expect("form").len(), 5);
}

#[test]
fn go_sdk_vector_with_more_params() {
    let mut p = params();
    p.push(("ReasonConferenceEnded", "test"));
    p.push(("Reason", "Participant"));
    assert!(verify_form(URL, &p, "vOEb5UThFn24KEfnOFLQY2AE5FY=").is_ok());
}

#[test]
fn validates_the_published_form_request() {
    let v = verify_form(URL, &params(), EXPECTED).expect("valid");
    assert_eq!(v.kind(), BodyKind::Form);
    assert_eq!(v.content_type(), "application/x-www-form-urlencoded");
    let got = v.params().expect("form");
    assert_eq!(got.len(), 5);
    assert!(got.contains(&("From".to_string(), "+14158675309".to_string())));
}

#[test]
fn port_variants_match_the_sdks() {
    // Port removed (any port): twilio-python test_validation_removes_port_on_https.
    assert!(
        verify_form(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            EXPECTED
        )
        .is_ok()
    );
    // A signature over the URL as given, with its custom port.
    assert!(
        verify_form(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            "CYn1h0gLBdNxDGkKJg6hYohgeD8="
        )
        .is_ok()
    );
    assert!(
        verify_form(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        )
        .is_ok()
    );
    // Default port added: 443 for https, 80 for http.
    assert!(verify_form(URL, &params(), "kvajT1Ptam85bY51eRf/AJRuM3w=").is_ok());
    assert!(
        verify_form(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &params(),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        )
        .is_ok()
    );
}

#[test]
fn url_case_and_credentials_are_signed_as_given() {
    // twilio-csharp RequestValidatorTest: mixed-case hosts, ports and credentials.
    let cases = [
        (
            "https://MyCompany.com/myapp.php?foo=1&bar=2",
            "g9IN/x4Cft2g517EjYvEvM/W7LU=",
        ),
        (
            "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
            "PCqOZm8cnu/L6+u5i5fuEd+Iac4=",
        ),
        (
            "http://MyCompany.com/myapp.php?foo=1&bar=2",
            "XY7AlKOKL6im4yWyX84gldUrtis=",
        ),
        (
            "http://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
            "PJ08CxXr7KLPjEQCTc8LkUSMwSM=",
        ),
        (
            "HTTP://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
            "hy/l8pca+LFms4cvRdv8uiP6NGc=",
        ),
        (
            "http://Username:Password@MyCompany.com/myapp.php?foo=1&bar=2",
            "SkTSKyDJH9kUlhItI0slbgZ1UsI=",
        ),
    ];
    for (url, sig) in cases {
        assert!(verify_form(url, &params(), sig).is_ok(), "{url}");
    }
    // The lower-case signature does not validate a mixed-case URL.
    for url in [
        "https://MyCompany.com/myapp.php?foo=1&bar=2",
        "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
        "http://MyCompany.com/myapp.php?foo=1&bar=2",
    ] {
        assert_eq!(
            verify_form(url, &params(), EXPECTED).err(),
            Some(SignatureError::Mismatch),
            "{url}"
        );
    }
}

#[test]
fn validates_the_published_json_request() {
    let url = format!("{URL}&bodySHA256={BODY_HASH}");
    let v = verify_json(&url, JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=").expect("valid");
    assert_eq!(v.kind(), BodyKind::Json);
    assert_eq!(
        v.params().expect("object"),
        vec![
            ("boolean".to_string(), "true".to_string()),
            ("property".to_string(), "value".to_string()),
        ]
    );
    // twilio-csharp TestValidateWithOnlyHash
    let only = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
    assert!(verify_json(&only, JSON_BODY, "y77kIzt2vzLz71DgmJGsen2scGs=").is_ok());
}

#[test]
fn json_body_must_match_its_hash() {
    let url = format!("{URL}&bodySHA256={BODY_HASH}");
    let tampered = r#"{"property": "value", "boolean": false}"#;
    assert_eq!(
        verify_json(&url, tampered, "a9nBmqA0ju/hNViExpshrM61xv4=").err(),
        Some(SignatureError::BodyHashMismatch)
    );
    // twilio-csharp TestValidateWithBodyWithoutSignature: no bodySHA256 in the URL.
    assert!(verify_json(URL, JSON_BODY, EXPECTED).is_err());
    let unsigned_hash = sign(TOKEN, URL, &[] as &[(&str, &str)]);
    assert_eq!(
        verify_json(URL, JSON_BODY, &unsigned_hash).err(),
        Some(SignatureError::MissingBodyHash)
    );
}

#[test]
fn wrong_token_fails() {
    let r = Unverified::new(URL, &headers(Some(EXPECTED), None), form_body(&params()))
        .verify(&Secret::new("54321"));
    assert_eq!(r.err(), Some(SignatureError::Mismatch));
}

#[test]
fn tampered_params_and_urls_fail() {
    let mut p = params();
    p[2] = ("Digits", "9999");
    assert_eq!(
        verify_form(URL, &p, EXPECTED).err(),
        Some(SignatureError::Mismatch)
    );
    let mut extra = params();
    extra.push(("Extra", "1"));
    assert_eq!(
        verify_form(URL, &extra, EXPECTED).err(),
        Some(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_form(&format!("{URL}&extra=1"), &params(), EXPECTED).err(),
        Some(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_form(URL, &params(), "FAIL").err(),
        Some(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_form(URL, &params(), "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8=").err(),
        Some(SignatureError::Mismatch)
    );
}

#[test]
fn missing_or_malformed_header_fails() {
    let r = Unverified::new(URL, &headers(None, None), form_body(&params()))
        .verify(&Secret::new(TOKEN));
    assert_eq!(r.err(), Some(SignatureError::Missing));
    let r = Unverified::new(URL, &headers(Some(""), None), form_body(&params()))
        .verify(&Secret::new(TOKEN));
    assert_eq!(r.err(), Some(SignatureError::Missing));
    let mut h = HeaderMap::new();
    h.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes"),
    );
    let r = Unverified::new(URL, &h, form_body(&params())).verify(&Secret::new(TOKEN));
    assert_eq!(r.err(), Some(SignatureError::Malformed));
}

#[test]
fn content_types() {
    let body = form_body(&params());
    let with_charset = Unverified::new(
        URL,
        &headers(
            Some(EXPECTED),
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
        ),
        body.clone(),
    )
    .verify(&Secret::new(TOKEN));
    assert!(with_charset.is_ok());
    let xml = Unverified::new(URL, &headers(Some(EXPECTED), Some("text/xml")), body)
        .verify(&Secret::new(TOKEN));
    assert_eq!(
        xml.err(),
        Some(SignatureError::UnsupportedContentType("text/xml".into()))
    );
}

#[test]
fn url_variants_cover_ports_ipv6_and_userinfo() {
    assert_eq!(
        url_variants("https://h.example/p?q=1"),
        vec!["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
    );
    assert_eq!(
        url_variants("http://h.example:8080"),
        vec!["http://h.example:8080", "http://h.example"]
    );
    assert_eq!(
        url_variants("http://[::1]:8080/x"),
        vec!["http://[::1]:8080/x", "http://[::1]/x"]
    );
    assert_eq!(
        url_variants("http://[::1]/x"),
        vec!["http://[::1]/x", "http://[::1]:80/x"]
    );
    assert_eq!(
        url_variants("https://u:p@h.example/x"),
        vec!["https://u:p@h.example/x", "https://u:p@h.example:443/x"]
    );
    assert_eq!(url_variants("not a url"), vec!["not a url"]);
}
