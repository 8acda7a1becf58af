//! `X-Twilio-Signature` verification, as Twilio's SDKs do it (twilio-python
//! `RequestValidator`, twilio-node `webhooks.js`, twilio-java, twilio-csharp).
//!
//! The signature is `base64(HMAC-SHA1(auth_token, url + k1 + v1 + k2 + v2 ...))` over the
//! exact URL Twilio called and the POST parameters sorted by key (a repeated key contributes
//! each of its distinct values, sorted). The URL is tried as given, and with its port
//! removed (when it has one) or the scheme's default port added (when it has none), because
//! Twilio may sign either form. A JSON body is signed differently: the URL carries a
//! `bodySHA256` query parameter (hex SHA-256 of the raw body), the signature covers the URL
//! alone, and the body must hash to that value. Comparisons are constant-time.
//!
//! A request is an [`Unverified`] value; only [`Unverified::verify`] yields a [`Verified`]
//! one, and only a [`Verified`] request gives access to its parameters.

use crate::form::{self, BodyError};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use switchboard_core::infra::config::Secret;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// The query parameter carrying the SHA-256 of a JSON body.
pub const BODY_HASH_PARAM: &str = "bodySHA256";

type HmacSha1 = Hmac<Sha1>;

/// How a body is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`: the parameters are signed.
    Form,
    /// `application/json`: the body is hashed into the URL's `bodySHA256`.
    Json,
}

/// Why a request was not accepted as coming from Twilio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Twilio-Signature header missing")]
    Missing,
    #[error("X-Twilio-Signature header is not valid text")]
    Malformed,
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    #[error("JSON body without a bodySHA256 query parameter")]
    MissingBodyHash,
    #[error("body does not match bodySHA256")]
    BodyHashMismatch,
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
}

/// The signature Twilio would send for a form request to `url` with `params`. Used by tests
/// and the CLI helper; a JSON request is signed with no params over a URL that carries
/// `bodySHA256` (see [`body_sha256`]).
pub fn sign<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    compute(auth_token, url, &pairs, true)
}

/// Hex SHA-256 of a raw body, as Twilio puts it in `bodySHA256`.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// HMAC-SHA1 over the URL and the sorted parameters; `dedup` drops repeated identical pairs
/// (what the SDKs do). An HMAC key of any length is valid, so the key-length error cannot
/// happen; should it, the empty result never matches a signature.
fn compute(auth_token: &str, url: &str, params: &[(&str, &str)], dedup: bool) -> String {
    let Ok(mut mac) = <HmacSha1 as KeyInit>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    if dedup {
        sorted.dedup();
    }
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A request as received: nothing in it can be read until it is verified.
#[derive(Debug, Clone)]
pub struct Unverified {
    url: String,
    signature: Option<Result<String, ()>>,
    content_type: Option<String>,
    body: Bytes,
}

/// A request proven to come from Twilio.
#[derive(Debug, Clone)]
pub struct Verified {
    kind: BodyKind,
    content_type: String,
    body: Bytes,
    form_params: Vec<(String, String)>,
}

impl Unverified {
    /// `url` is the full public URL Twilio called, query string included.
    pub fn new(url: impl Into<String>, headers: &HeaderMap, body: Bytes) -> Self {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().map(|s| s.trim().to_string()).map_err(|_| ()));
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Self {
            url: url.into(),
            signature,
            content_type,
            body,
        }
    }

    /// Checks the signature (and, for JSON, the body hash) with the channel's auth token.
    pub fn verify(self, auth_token: &Secret) -> Result<Verified, SignatureError> {
        let kind = body_kind(self.content_type.as_deref())?;
        let signature = match self.signature {
            None => return Err(SignatureError::Missing),
            Some(Err(())) => return Err(SignatureError::Malformed),
            Some(Ok(s)) if s.is_empty() => return Err(SignatureError::Missing),
            Some(Ok(s)) => s,
        };
        let token = auth_token.expose();
        let form_params = match kind {
            BodyKind::Form => form::parse_form(&self.body),
            BodyKind::Json => Vec::new(),
        };
        let pairs: Vec<(&str, &str)> = form_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let has_repeats = {
            let mut s = pairs.clone();
            s.sort_unstable();
            s.windows(2).any(|w| w[0] == w[1])
        };
        let mut matched = Choice::from(0);
        for url in url_variants(&self.url) {
            matched |= ct_eq(&compute(token, &url, &pairs, true), &signature);
            if has_repeats {
                matched |= ct_eq(&compute(token, &url, &pairs, false), &signature);
            }
        }
        if !bool::from(matched) {
            return Err(SignatureError::Mismatch);
        }
        if kind == BodyKind::Json {
            let expected =
                query_param(&self.url, BODY_HASH_PARAM).ok_or(SignatureError::MissingBodyHash)?;
            let actual = body_sha256(&self.body);
            if !bool::from(ct_eq(&actual, &expected.to_ascii_lowercase())) {
                return Err(SignatureError::BodyHashMismatch);
            }
        }
        let content_type = self.content_type.unwrap_or_else(|| match kind {
            BodyKind::Form => "application/x-www-form-urlencoded".to_string(),
            BodyKind::Json => "application/json".to_string(),
        });
        Ok(Verified {
            kind,
            content_type,
            body: self.body,
            form_params,
        })
    }
}

impl Verified {
    pub fn kind(&self) -> BodyKind {
        self.kind
    }

    /// The request's content type (the form type when the request named none).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The raw body, for the journal.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The request parameters in the order received: the form fields, or a JSON object's
    /// members flattened (see [`form::parse_json`]).
    pub fn params(&self) -> Result<Vec<(String, String)>, BodyError> {
        match self.kind {
            BodyKind::Form => Ok(self.form_params.clone()),
            BodyKind::Json => form::parse_json(&self.body),
        }
    }
}

fn ct_eq(a: &str, b: &str) -> Choice {
    a.as_bytes().ct_eq(b.as_bytes())
}

/// No content type is taken as a form (what Twilio sends); anything else but form or JSON
/// cannot be verified.
fn body_kind(content_type: Option<&str>) -> Result<BodyKind, SignatureError> {
    let Some(ct) = content_type else {
        return Ok(BodyKind::Form);
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        "application/json" => Ok(BodyKind::Json),
        _ => Err(SignatureError::UnsupportedContentType(ct.to_string())),
    }
}

/// The first value of a query parameter, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The URLs a signature may cover: as given, plus without its port (if it has one) or with
/// the scheme's default port (if it has none). String surgery on purpose: a URL parser would
/// normalize case and encoding, and Twilio signs the URL byte for byte.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some(scheme_end) = url.find("://") else {
        return out;
    };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    let auth_start = scheme_end + 3;
    let auth_end = url[auth_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| auth_start + i);
    let authority = &url[auth_start..auth_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let after_bracket = host_port.rfind(']').map_or(0, |i| i + 1);
    let colon = host_port[after_bracket..]
        .rfind(':')
        .map(|i| after_bracket + i);
    match colon {
        Some(c) => {
            let at = auth_start + host_start + c;
            out.push(format!("{}{}", &url[..at], &url[auth_end..]));
        }
        None => {
            let port = match scheme.as_str() {
                "https" => Some(443),
                "http" => Some(80),
                _ => None,
            };
            if let Some(port) = port {
                out.push(format!("{}:{port}{}", &url[..auth_end], &url[auth_end..]));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
