//! JWT bearer tokens beside API tokens: valid tokens act as their `sub` in their tenant;
//! expired, not-yet-valid, wrongly signed, wrong-tenant and claim-less tokens are 401.

use crate::support::TestApp;
use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_core::infra::auth::jwt::JwtVerifier;
use switchboard_core::infra::config::{AuthConfig, Secret};

const SECRET: &str = "jwt-test-secret-0123456789abcdef-xyz";

fn now() -> i64 {
    switchboard_core::domain::model::now_millis() / 1000
}

fn jwt(claims: Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

async fn app() -> TestApp {
    let mut app = TestApp::spawn().await;
    let cfg = AuthConfig {
        jwt_algorithm: "HS256".into(),
        jwt_secret: Secret::new(SECRET),
        jwt_public_key_file: String::new(),
        jwt_jwks_file: String::new(),
        jwt_issuer: "https://login.example".into(),
        jwt_audience: String::new(),
        jwt_tenant_claim: "tenant".into(),
        jwt_role_claim: "role".into(),
        jwt_leeway_secs: 10,
    };
    app.jwt = JwtVerifier::from_config(&cfg)
        .expect("config")
        .map(Arc::new);
    app
}

#[tokio::test]
async fn jwt_callers_act_as_their_subject_in_their_tenant() {
    let app = app().await;
    let conv = app.acme_sms("+14155550170", "hi").await;
    let token = jwt(
        json!({"sub": "carol@acme", "tenant": "acme", "role": "agent", "iss": "https://login.example", "exp": now() + 300}),
        SECRET,
    );
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/read"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .get(&format!("/api/v1/conversations/{conv}"), &token)
        .await;
    let staff: Vec<&Value> = r.body["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter(|p| p["kind"] == "staff")
        .collect();
    assert_eq!(
        staff[0]["id"], "carol@acme",
        "the JWT sub is the staff identity"
    );
    // The audit trail names the JWT subject.
    let trail = app
        .get(&format!("/api/v1/conversations/{conv}/audit"), &app.agent)
        .await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    assert_eq!(trail.body["items"][0]["actor"], "carol@acme");
    assert_eq!(trail.body["items"][0]["action"], "read");
    // Agent role from the claim: admin-only actions are refused.
    app.post(
        &format!("/api/v1/conversations/{conv}/spam"),
        &token,
        json!({}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // API tokens keep working beside JWTs.
    assert_eq!(
        app.get("/api/v1/conversations", &app.agent).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_jwts_are_401() {
    let app = app().await;
    let base = json!({"sub": "carol", "tenant": "acme", "iss": "https://login.example", "exp": now() + 300});
    let with = |patch: Value| {
        let mut c = base.clone();
        if let (Some(o), Some(p)) = (c.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                if v.is_null() {
                    o.remove(k);
                } else {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
        c
    };
    let cases = [
        ("expired", jwt(with(json!({"exp": now() - 120})), SECRET)),
        (
            "not yet valid",
            jwt(with(json!({"nbf": now() + 120})), SECRET),
        ),
        (
            "wrong key",
            jwt(base.clone(), "another-secret-0123456789abcdef-xyz!"),
        ),
        (
            "unknown tenant",
            jwt(with(json!({"tenant": "initech"})), SECRET),
        ),
        ("missing tenant", jwt(with(json!({"tenant": null})), SECRET)),
        ("missing sub", jwt(with(json!({"sub": null})), SECRET)),
        ("missing exp", jwt(with(json!({"exp": null})), SECRET)),
        (
            "wrong issuer",
            jwt(with(json!({"iss": "https://evil.example"})), SECRET),
        ),
    ];
    for (name, token) in cases {
        let r = app.get("/api/v1/conversations", &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.body);
    }
    // Another tenant's JWT sees only its own tenant.
    let conv = app.acme_sms("+14155550171", "hi").await;
    let globex = jwt(with(json!({"tenant": "globex"})), SECRET);
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{conv}"), &globex)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// An HS256 token over hand-written JSON (jsonwebtoken cannot write repeated keys).
fn raw_jwt(header: &str, payload: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

#[tokio::test]
async fn configured_issuer_and_audience_are_required_and_odd_tokens_refused() {
    let mut app = TestApp::spawn().await;
    let cfg = AuthConfig {
        jwt_algorithm: "HS256".into(),
        jwt_secret: Secret::new(SECRET),
        jwt_public_key_file: String::new(),
        jwt_jwks_file: String::new(),
        jwt_issuer: "https://login.example".into(),
        jwt_audience: "switchboard".into(),
        jwt_tenant_claim: "tenant".into(),
        jwt_role_claim: "role".into(),
        jwt_leeway_secs: 10,
    };
    app.jwt = JwtVerifier::from_config(&cfg)
        .expect("config")
        .map(Arc::new);
    let exp = now() + 300;
    let good = jwt(
        json!({"sub": "carol", "tenant": "acme", "iss": "https://login.example", "aud": "switchboard", "exp": exp}),
        SECRET,
    );
    let r = app.get("/api/v1/conversations", &good).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let claims =
        format!(r#""sub":"carol","iss":"https://login.example","aud":"switchboard","exp":{exp}"#);
    let mut crit = Header::new(Algorithm::HS256);
    crit.crit = Some(vec!["urn:example:must-understand".into()]);
    let cases = [
        (
            "no iss",
            jwt(
                json!({"sub": "carol", "tenant": "acme", "aud": "switchboard", "exp": exp}),
                SECRET,
            ),
        ),
        (
            "no aud",
            jwt(
                json!({"sub": "carol", "tenant": "acme", "iss": "https://login.example", "exp": exp}),
                SECRET,
            ),
        ),
        (
            "unknown critical extension",
            encode(
                &crit,
                &json!({"sub": "carol", "tenant": "acme", "iss": "https://login.example", "aud": "switchboard", "exp": exp}),
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("encode"),
        ),
        (
            "tenant twice",
            raw_jwt(
                header,
                &format!(r#"{{{claims},"tenant":"globex","tenant":"acme"}}"#),
            ),
        ),
        (
            "role twice",
            raw_jwt(
                header,
                &format!(r#"{{{claims},"tenant":"acme","role":"agent","role":"admin"}}"#),
            ),
        ),
        (
            "header key twice",
            raw_jwt(
                r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#,
                &format!(r#"{{{claims},"tenant":"acme"}}"#),
            ),
        ),
    ];
    // The hand-written path itself is sound: the same token without repeats is accepted.
    let plain = raw_jwt(header, &format!(r#"{{{claims},"tenant":"acme"}}"#));
    assert_eq!(
        app.get("/api/v1/conversations", &plain).await.status,
        StatusCode::OK
    );
    for (name, token) in cases {
        let r = app.get("/api/v1/conversations", &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.body);
    }
}
