//! Short-lived signed URLs for media a browser loads without headers (`<img>`, downloads,
//! a sandboxed iframe): HMAC-SHA256 with a server key over what the URL grants (the tenant,
//! the kind of resource, its id) and when it stops granting it.
//!
//! The key is `[server] url_signing_key` (a secret, set it with `${ENV}`); without one the
//! daemon makes a random key at start-up, so its URLs stop working at a restart and are not
//! accepted by another replica. The key never leaves this type: `Debug` redacts it.
//!
//! Expiry times are rounded to a tenth of the lifetime, so the URLs of one message stay the
//! same for a while and browsers can cache what they load; a URL is valid for at least
//! nine tenths of the lifetime and at most the whole of it.

use crate::infra::config::{ConfigError, ServerConfig};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

/// Shortest configured key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The range of `server.signed_url_ttl_secs`: a minute to a week.
const MIN_TTL_SECS: u64 = 60;
const MAX_TTL_SECS: u64 = 604_800;

/// What a signed URL grants access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// An attachment's bytes, by attachment id.
    Attachment(&'a str),
    /// A message's HTML body page, by message id.
    MessageHtml(&'a str),
}

impl Resource<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Attachment(_) => "attachment",
            Self::MessageHtml(_) => "message-html",
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::Attachment(id) | Self::MessageHtml(id) => id,
        }
    }
}

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not signed by this key for this tenant, resource and expiry (or malformed).
    #[error("the URL's signature is not valid")]
    Invalid,
    /// Signed, but its time is over.
    #[error("the signed URL has expired")]
    Expired,
}

/// Signs and verifies media URLs (see the module docs).
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
    ttl_secs: i64,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("key", &"[redacted]")
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

/// Checks `[server]`'s keys for signed URLs: a configured key of at least
/// [`MIN_KEY_BYTES`], a lifetime from a minute to a week.
pub fn check_config(server: &ServerConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let key = server.url_signing_key.expose();
    if !key.is_empty() && key.len() < MIN_KEY_BYTES {
        errors.push(ConfigError::new(
            "server.url_signing_key",
            format!("must be at least {MIN_KEY_BYTES} bytes (or empty for a random key per start)"),
        ));
    }
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&server.signed_url_ttl_secs) {
        errors.push(ConfigError::new(
            "server.signed_url_ttl_secs",
            format!("must be from {MIN_TTL_SECS} to {MAX_TTL_SECS} (one week)"),
        ));
    }
    errors
}

impl UrlSigner {
    /// The signer `[server]` configures; without a key, a random one, and an info line
    /// saying that signed URLs will not survive a restart (the key itself is never logged).
    pub fn from_config(server: &ServerConfig) -> Self {
        let key = server.url_signing_key.expose();
        if key.is_empty() {
            tracing::info!(
                "server.url_signing_key is not set: signing media URLs with a random key; \
                 signed URLs do not survive a restart and other replicas refuse them"
            );
            Self::random(server.signed_url_ttl_secs)
        } else {
            Self::new(key.as_bytes(), server.signed_url_ttl_secs)
        }
    }

    /// A signer with this key; URLs live `ttl_secs` (at least one second).
    pub fn new(key: &[u8], ttl_secs: u64) -> Self {
        Self {
            key: key.to_vec(),
            ttl_secs: i64::try_from(ttl_secs.max(1)).unwrap_or(i64::MAX),
        }
    }

    /// A signer with a random 32-byte key (URLs die with the process).
    pub fn random(ttl_secs: u64) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key, ttl_secs)
    }

    /// The lifetime of a URL, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The expiry (Unix seconds) of a URL signed at `now`: `now + ttl` rounded down to a
    /// tenth of the lifetime.
    pub fn expiry(&self, now: i64) -> i64 {
        let step = (self.ttl_secs / 10).max(1);
        now.saturating_add(self.ttl_secs) / step * step
    }

    /// The signature (unpadded base64url of the HMAC) of `resource` for `tenant` until
    /// `expires`.
    pub fn sign(&self, tenant: &str, resource: Resource<'_>, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(tenant, resource, expires).finalize().into_bytes())
    }

    /// Checks a signature (in constant time), then the expiry against `now`.
    pub fn verify(
        &self,
        tenant: &str,
        resource: Resource<'_>,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SignatureError::Invalid)?;
        self.mac(tenant, resource, expires)
            .verify_slice(&given)
            .map_err(|_| SignatureError::Invalid)?;
        if now >= expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    /// The MAC over the fields, each length-prefixed so no two inputs share an encoding.
    fn mac(&self, tenant: &str, resource: Resource<'_>, expires: i64) -> Hmac<Sha256> {
        // HMAC takes keys of any length; new_from_slice cannot fail for it.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        for field in [resource.kind(), tenant, resource.id()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac.update(&expires.to_be_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn signer() -> UrlSigner {
        UrlSigner::new(&[7u8; 32], 3600)
    }

    #[test]
    fn a_signature_grants_exactly_what_was_signed() {
        let s = signer();
        let att = Resource::Attachment("a1");
        let exp = s.expiry(NOW);
        let sig = s.sign("acme", att, exp);
        assert_eq!(sig.len(), 43, "{sig}");
        assert_eq!(s.verify("acme", att, exp, &sig, NOW), Ok(()));
        let invalid = Err(SignatureError::Invalid);
        assert_eq!(s.verify("globex", att, exp, &sig, NOW), invalid);
        assert_eq!(
            s.verify("acme", Resource::Attachment("a2"), exp, &sig, NOW),
            invalid
        );
        assert_eq!(
            s.verify("acme", Resource::MessageHtml("a1"), exp, &sig, NOW),
            invalid
        );
        assert_eq!(s.verify("acme", att, exp + 1, &sig, NOW), invalid);
        assert_eq!(s.verify("acme", att, exp, "not base64!", NOW), invalid);
        assert_eq!(s.verify("acme", att, exp, &sig[..40], NOW), invalid);
        let other = UrlSigner::new(&[8u8; 32], 3600);
        assert_eq!(other.verify("acme", att, exp, &sig, NOW), invalid);
        // Field boundaries are part of the MAC: ("ab", "c") is not ("a", "bc").
        let joined = s.sign("ab", Resource::Attachment("c"), exp);
        assert_eq!(
            s.verify("a", Resource::Attachment("bc"), exp, &joined, NOW),
            invalid
        );
    }

    #[test]
    fn urls_expire_and_are_stable_within_a_tenth_of_their_lifetime() {
        let s = signer();
        let exp = s.expiry(NOW);
        assert!(exp > NOW + 3600 - 360 && exp <= NOW + 3600, "{exp}");
        assert_eq!(exp % 360, 0);
        assert_eq!(s.expiry(exp - 3600), exp);
        let sig = s.sign("acme", Resource::Attachment("a1"), exp);
        assert_eq!(
            s.verify("acme", Resource::Attachment("a1"), exp, &sig, exp),
            Err(SignatureError::Expired)
        );
        assert_eq!(UrlSigner::new(b"k", 5).expiry(NOW), NOW + 5);
    }

    #[test]
    fn short_keys_and_odd_lifetimes_are_configuration_errors() {
        use crate::infra::config::{Validators, load_str};
        let registry = crate::contract::registry::Registry::default();
        let env = vec![(
            "KEY".to_string(),
            "0123456789abcdef0123456789abcdef".to_string(),
        )];
        let load = |server: &str| {
            let text = format!("[server]\n{server}\n[[tenants]]\nid = \"acme\"\n");
            load_str(&text, &env, Validators::channels_only(&registry))
        };
        let errors =
            load("url_signing_key = \"short\"\nsigned_url_ttl_secs = 5").expect_err("refused");
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["server.url_signing_key", "server.signed_url_ttl_secs"],
            "{errors}"
        );
        let config = load("url_signing_key = \"${KEY}\"").expect("loads");
        assert_eq!(config.server.signed_url_ttl_secs, 3600);
        let signer = UrlSigner::from_config(&config.server);
        assert_eq!(signer.ttl_secs(), 3600);
        let r = Resource::Attachment("x");
        assert_eq!(
            signer.sign("t", r, 1),
            UrlSigner::new(b"0123456789abcdef0123456789abcdef", 1).sign("t", r, 1)
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        let s = UrlSigner::new(b"super-secret-signing-key-of-32-bytes", 60);
        let debug = format!("{s:?}");
        assert!(!debug.contains("super-secret"), "{debug}");
        assert!(debug.contains("[redacted]"));
        let a = UrlSigner::random(60);
        let b = UrlSigner::random(60);
        let r = Resource::Attachment("x");
        assert_ne!(a.sign("t", r, 1), b.sign("t", r, 1));
    }
}
