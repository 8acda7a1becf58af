//! API tokens: random, shown once, stored only as a sha256 hash.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes a Switchboard token recognizable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "sb_";

/// A new token and its hash.
pub fn generate() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let h = hash(&token);
    (token, h)
}

/// The stored form of a token: hex sha256. Tokens carry 256 bits of entropy, so a fast
/// hash is enough (no password-style stretching needed).
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_matches() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(hash(&a), ha);
        assert_eq!(ha.len(), 64);
    }
}
