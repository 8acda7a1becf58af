//! JWT bearer tokens: HS256 with a shared secret, or RS256/ES256 with a public key (PEM) or
//! a JWKS file. A token must carry `sub`, `exp` and the tenant claim; `nbf` is enforced when
//! present, and `iss` / `aud` are required and checked when configured, with a configurable
//! clock skew. A token whose header marks an extension critical (`crit`, RFC 7515 §4.1.11) is
//! refused, since this verifier understands none; so is a header or payload with a repeated
//! key, which JSON parsers resolve differently (a second `role` must not silently win). Keys
//! are read once at start-up; a bad key file is a configuration error reported with the others.

use crate::infra::config::{AuthConfig, ConfigError};
use crate::store::Role;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Who a valid token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    pub tenant: String,
    pub subject: String,
    pub role: Role,
}

/// Why a token was refused (never shown to the caller in detail; logged at debug).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token lacks the {0} claim")]
    MissingClaim(String),
    #[error("unknown key id")]
    UnknownKey,
}

enum Keys {
    One(DecodingKey),
    ByKid(HashMap<String, DecodingKey>),
}

pub struct JwtVerifier {
    keys: Keys,
    validation: Validation,
    tenant_claim: String,
    role_claim: String,
}

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

/// Every problem of the `[auth]` section, for the start-up report.
pub fn check_config(cfg: &AuthConfig) -> Vec<ConfigError> {
    match JwtVerifier::from_config(cfg) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

impl JwtVerifier {
    /// `Ok(None)` when JWTs are off.
    pub fn from_config(cfg: &AuthConfig) -> Result<Option<Self>, Vec<ConfigError>> {
        if cfg.jwt_algorithm.is_empty() {
            return Ok(None);
        }
        let err = |key: &str, msg: String| vec![ConfigError::new(format!("auth.{key}"), msg)];
        let alg = algorithm(&cfg.jwt_algorithm).ok_or_else(|| {
            err(
                "jwt_algorithm",
                format!("{:?} is not one of HS256, RS256, ES256", cfg.jwt_algorithm),
            )
        })?;
        let keys = match alg {
            Algorithm::HS256 => {
                let secret = cfg.jwt_secret.expose();
                if secret.len() < 32 {
                    return Err(err(
                        "jwt_secret",
                        "HS256 needs a secret of at least 32 bytes".into(),
                    ));
                }
                Keys::One(DecodingKey::from_secret(secret.as_bytes()))
            }
            _ => match (
                cfg.jwt_public_key_file.is_empty(),
                cfg.jwt_jwks_file.is_empty(),
            ) {
                (false, true) => {
                    let pem = std::fs::read(&cfg.jwt_public_key_file)
                        .map_err(|e| err("jwt_public_key_file", format!("cannot read: {e}")))?;
                    let key = if alg == Algorithm::RS256 {
                        DecodingKey::from_rsa_pem(&pem)
                    } else {
                        DecodingKey::from_ec_pem(&pem)
                    };
                    Keys::One(key.map_err(|e| {
                        err(
                            "jwt_public_key_file",
                            format!("not a {} public key: {e}", cfg.jwt_algorithm),
                        )
                    })?)
                }
                (true, false) => {
                    let text = std::fs::read_to_string(&cfg.jwt_jwks_file)
                        .map_err(|e| err("jwt_jwks_file", format!("cannot read: {e}")))?;
                    let set: JwkSet = serde_json::from_str(&text)
                        .map_err(|e| err("jwt_jwks_file", format!("not a JWKS: {e}")))?;
                    let mut map = HashMap::new();
                    for jwk in &set.keys {
                        let kid = jwk.common.key_id.clone().unwrap_or_default();
                        let key = DecodingKey::from_jwk(jwk)
                            .map_err(|e| err("jwt_jwks_file", format!("key {kid:?}: {e}")))?;
                        map.insert(kid, key);
                    }
                    if map.is_empty() {
                        return Err(err("jwt_jwks_file", "contains no keys".into()));
                    }
                    Keys::ByKid(map)
                }
                _ => {
                    return Err(err(
                        "jwt_public_key_file",
                        format!(
                            "{} needs exactly one of jwt_public_key_file and jwt_jwks_file",
                            cfg.jwt_algorithm
                        ),
                    ));
                }
            },
        };
        let mut validation = Validation::new(alg);
        validation.leeway = cfg.jwt_leeway_secs;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        // A configured issuer or audience is required, not only checked when present:
        // otherwise a token minted without them (for another service) would pass.
        let mut required = vec!["exp", "sub"];
        if !cfg.jwt_issuer.is_empty() {
            validation.set_issuer(&[&cfg.jwt_issuer]);
            required.push("iss");
        }
        if cfg.jwt_audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&cfg.jwt_audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(Some(Self {
            keys,
            validation,
            tenant_claim: cfg.jwt_tenant_claim.clone(),
            role_claim: cfg.jwt_role_claim.clone(),
        }))
    }

    /// Whether a bearer token looks like a JWT (three dot-separated parts).
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }

    pub fn verify(&self, token: &str) -> Result<JwtIdentity, JwtError> {
        let header = decode_header(token).map_err(|e| JwtError::Invalid(e.to_string()))?;
        // We implement no JWS extension, so any critical one must make the token invalid.
        if header.crit.is_some() {
            return Err(JwtError::Invalid(
                "the header names a critical extension this server does not understand".into(),
            ));
        }
        let key = match &self.keys {
            Keys::One(k) => k,
            Keys::ByKid(map) => map
                .get(header.kid.as_deref().unwrap_or_default())
                .ok_or(JwtError::UnknownKey)?,
        };
        let data = decode::<HashMap<String, Value>>(token, key, &self.validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        // The map above kept the last of repeated keys; refuse such a token outright.
        for (part, name) in token.split('.').take(2).zip(["header", "payload"]) {
            reject_duplicate_keys(part).map_err(|e| JwtError::Invalid(format!("{name}: {e}")))?;
        }
        let claim = |name: &str| {
            data.claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let subject = claim("sub").ok_or_else(|| JwtError::MissingClaim("sub".into()))?;
        let tenant = claim(&self.tenant_claim)
            .ok_or_else(|| JwtError::MissingClaim(self.tenant_claim.clone()))?;
        let role = match claim(&self.role_claim).as_deref() {
            None => Role::Agent,
            Some(r) => {
                Role::parse(r).ok_or_else(|| JwtError::Invalid(format!("unknown role {r:?}")))?
            }
        };
        Ok(JwtIdentity {
            tenant,
            subject,
            role,
        })
    }
}

/// Fails when the base64url JSON `part` has an object with a repeated key, at any depth.
fn reject_duplicate_keys(part: &str) -> Result<(), String> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice::<NoDuplicateKeys>(&json)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A JSON value that only deserializes when no object in it repeats a key.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("repeated key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::config::Secret;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn cfg() -> AuthConfig {
        AuthConfig {
            jwt_algorithm: "HS256".into(),
            jwt_secret: Secret::new(SECRET),
            jwt_public_key_file: String::new(),
            jwt_jwks_file: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_tenant_claim: "tenant".into(),
            jwt_role_claim: "role".into(),
            jwt_leeway_secs: 5,
        }
    }

    fn now() -> i64 {
        crate::domain::model::now_millis() / 1000
    }

    fn token(claims: Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::from_config(&cfg())
            .expect("config")
            .expect("enabled")
    }

    #[test]
    fn valid_tokens_give_tenant_subject_role() {
        let t = token(
            json!({"sub": "ann", "tenant": "acme", "role": "admin", "exp": now() + 60}),
            SECRET,
        );
        assert_eq!(
            verifier().verify(&t),
            Ok(JwtIdentity {
                tenant: "acme".into(),
                subject: "ann".into(),
                role: Role::Admin
            })
        );
        let t = token(
            json!({"sub": "bo", "tenant": "acme", "exp": now() + 60}),
            SECRET,
        );
        assert_eq!(verifier().verify(&t).map(|i| i.role), Ok(Role::Agent));
    }

    #[test]
    fn expired_not_yet_valid_wrong_key_and_missing_claims_are_refused() {
        let v = verifier();
        let expired = token(
            json!({"sub": "a", "tenant": "acme", "exp": now() - 60}),
            SECRET,
        );
        assert!(v.verify(&expired).is_err());
        let within_skew = token(
            json!({"sub": "a", "tenant": "acme", "exp": now() - 2}),
            SECRET,
        );
        assert!(v.verify(&within_skew).is_ok(), "clock skew allowance");
        let early = token(
            json!({"sub": "a", "tenant": "acme", "exp": now() + 600, "nbf": now() + 300}),
            SECRET,
        );
        assert!(v.verify(&early).is_err());
        let wrong = token(
            json!({"sub": "a", "tenant": "acme", "exp": now() + 60}),
            "another-secret-of-sufficient-length!!",
        );
        assert!(v.verify(&wrong).is_err());
        let no_tenant = token(json!({"sub": "a", "exp": now() + 60}), SECRET);
        assert_eq!(
            v.verify(&no_tenant),
            Err(JwtError::MissingClaim("tenant".into()))
        );
        let no_exp = token(json!({"sub": "a", "tenant": "acme"}), SECRET);
        assert!(v.verify(&no_exp).is_err());
        let bad_role = token(
            json!({"sub": "a", "tenant": "acme", "role": "root", "exp": now() + 60}),
            SECRET,
        );
        assert!(v.verify(&bad_role).is_err());
        // An unsigned token ("alg": "none") is never accepted.
        assert!(
            v.verify("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwidGVuYW50IjoiYWNtZSJ9.")
                .is_err()
        );
    }

    #[test]
    fn es256_with_a_public_key_file_and_with_a_jwks_file() {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("ES256 key");
        let signer = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("signing key");
        let pem = dir.path().join("pub.pem");
        std::fs::write(&pem, key.public_key_pem()).expect("write pem");
        let raw = key.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = dir.path().join("jwks.json");
        let set = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
                                   "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}]});
        std::fs::write(&jwks, set.to_string()).expect("write jwks");
        let claims = json!({"sub": "ann", "tenant": "acme", "exp": now() + 60});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let token = encode(&header, &claims, &signer).expect("sign");

        let mut c = cfg();
        c.jwt_algorithm = "ES256".into();
        c.jwt_public_key_file = pem.display().to_string();
        let by_pem = JwtVerifier::from_config(&c)
            .expect("pem config")
            .expect("on");
        assert_eq!(
            by_pem.verify(&token).map(|i| i.subject),
            Ok("ann".to_string())
        );

        c.jwt_public_key_file = String::new();
        c.jwt_jwks_file = jwks.display().to_string();
        let by_jwks = JwtVerifier::from_config(&c)
            .expect("jwks config")
            .expect("on");
        assert_eq!(
            by_jwks.verify(&token).map(|i| i.tenant),
            Ok("acme".to_string())
        );
        header.kid = Some("other".into());
        let unknown = encode(&header, &claims, &signer).expect("sign");
        assert_eq!(by_jwks.verify(&unknown), Err(JwtError::UnknownKey));
        // An HS256 token forged with the public key as secret is refused (algorithm pinned).
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key.public_key_pem().as_bytes()),
        )
        .expect("forge");
        assert!(by_pem.verify(&forged).is_err());
    }

    #[test]
    fn config_problems_are_reported() {
        let mut c = cfg();
        c.jwt_secret = Secret::new("short");
        assert_eq!(check_config(&c)[0].path, "auth.jwt_secret");
        c.jwt_algorithm = "PS512".into();
        assert_eq!(check_config(&c)[0].path, "auth.jwt_algorithm");
        c.jwt_algorithm = "RS256".into();
        assert_eq!(check_config(&c)[0].path, "auth.jwt_public_key_file");
        c.jwt_public_key_file = "/nonexistent.pem".into();
        assert!(check_config(&c)[0].message.contains("cannot read"));
        c.jwt_algorithm = String::new();
        assert!(check_config(&c).is_empty(), "off by default");
    }
}
