//! `X-Hub-Signature-256` verification, as Meta signs webhook deliveries.
//!
//! The header is `sha256=` followed by the lowercase hex HMAC-SHA256 of the raw request body,
//! keyed with the app secret. Meta serializes the payload with every non-ASCII character
//! escaped (`\u00e9`, surrogate pairs for emoji) and signs those exact bytes, so the MAC is
//! computed over the body as received — never over a re-serialization of the parsed JSON.
//! Only that exact form is accepted (no `SHA256=`, no uppercase digits). The comparison of
//! the digest is constant-time (`Mac::verify_slice`).
//!
//! A delivery is an [`Unverified`] value; only [`Unverified::verify`] yields a [`Verified`]
//! one, and only a [`Verified`] delivery gives access to its body.

use axum::http::HeaderMap;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_core::infra::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The prefix of the header value.
const PREFIX: &str = "sha256=";

/// Why a delivery was not accepted as coming from Meta.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Hub-Signature-256 header missing")]
    Missing,
    #[error("X-Hub-Signature-256 header is not sha256=<64 hex digits>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// The `X-Hub-Signature-256` value Meta would send for `body`; for tests and tools.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let Some(mac) = mac(app_secret, body) else {
        // Unreachable (HMAC takes keys of any length); an empty value never verifies.
        return String::new();
    };
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

fn mac(app_secret: &str, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(app_secret.as_bytes()).ok()?;
    mac.update(body);
    Some(mac)
}

/// A delivery as received: its body cannot be read until it is verified.
#[derive(Debug, Clone)]
pub struct Unverified {
    signature: Option<Result<String, ()>>,
    body: Bytes,
}

/// A delivery proven to come from Meta (signed with our app secret).
#[derive(Debug, Clone)]
pub struct Verified {
    body: Bytes,
}

impl Unverified {
    pub fn new(headers: &HeaderMap, body: Bytes) -> Self {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().map(|s| s.trim().to_string()).map_err(|_| ()));
        Self { signature, body }
    }

    /// Checks the signature with the app secret, over the exact received bytes.
    pub fn verify(self, app_secret: &Secret) -> Result<Verified, SignatureError> {
        let header = match self.signature {
            None => return Err(SignatureError::Missing),
            Some(Err(())) => return Err(SignatureError::Malformed),
            Some(Ok(s)) if s.is_empty() => return Err(SignatureError::Missing),
            Some(Ok(s)) => s,
        };
        // Exactly what Meta sends: the lowercase prefix and 64 lowercase hex digits. Any
        // other spelling (`SHA256=`, uppercase digits) is not Meta's and is refused, so
        // one signature has one accepted form.
        let digest = header
            .strip_prefix(PREFIX)
            .filter(|d| d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or(SignatureError::Malformed)?;
        let expected = hex::decode(digest).map_err(|_| SignatureError::Malformed)?;
        let mac = mac(app_secret.expose(), &self.body).ok_or(SignatureError::Mismatch)?;
        mac.verify_slice(&expected)
            .map_err(|_| SignatureError::Mismatch)?;
        Ok(Verified { body: self.body })
    }
}

impl Verified {
    /// The raw body, exactly as signed: for parsing and for the journal.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
