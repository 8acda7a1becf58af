//! Journal entries: every inbound delivery as it arrived (a webhook body, a fetched mail),
//! stored before or with its effect so that it can be replayed.
//!
//! Payloads are kept exactly; large ones (raw mail) may be stored zstd-compressed, which the
//! `payload_encoding` column records. Mail compresses about 3.5× at zstd's fastest level, and
//! the journal is most of what an email backfill writes: compressed, a backfill writes about
//! half as much to the database (and its write-ahead log) and keeps a smaller file.

use std::borrow::Cow;

/// How a journal payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadEncoding {
    /// The bytes as received.
    #[default]
    Identity,
    /// A zstd frame holding the bytes as received.
    Zstd,
}

impl PayloadEncoding {
    /// The value of the `payload_encoding` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Zstd => "zstd",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "identity" => Some(Self::Identity),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// A journal payload that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("journal payload ({encoding}) cannot be decoded: {source}")]
pub struct PayloadError {
    encoding: &'static str,
    source: std::io::Error,
}

/// Payloads smaller than this are stored as they are: compression gains little on them.
const COMPRESS_FROM_BYTES: usize = 1024;

/// zstd's fastest standard level: about 3.5× on mail at several hundred MB/s per core.
const ZSTD_LEVEL: i32 = 1;

/// One raw inbound delivery, journaled before (in the same transaction as) its effect.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// Unique per channel: the same key twice is the same delivery.
    pub idempotency_key: String,
    /// `message`, `status`, `event`...
    pub kind: String,
    pub content_type: String,
    /// The payload as stored: see `encoding`.
    pub payload: Vec<u8>,
    pub encoding: PayloadEncoding,
}

impl JournalEntry {
    /// An entry whose payload is stored as it is.
    pub fn new(
        idempotency_key: impl Into<String>,
        kind: impl Into<String>,
        content_type: impl Into<String>,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            kind: kind.into(),
            content_type: content_type.into(),
            payload,
            encoding: PayloadEncoding::Identity,
        }
    }

    /// An entry whose payload is stored zstd-compressed when it is large enough and gets
    /// smaller (raw mail). CPU work: call it where parsing happens, not on the store's path.
    pub fn compressed(
        idempotency_key: impl Into<String>,
        kind: impl Into<String>,
        content_type: impl Into<String>,
        raw: Vec<u8>,
    ) -> Self {
        let mut entry = Self::new(idempotency_key, kind, content_type, Vec::new());
        let packed = (raw.len() >= COMPRESS_FROM_BYTES)
            .then(|| zstd::bulk::compress(&raw, ZSTD_LEVEL).ok())
            .flatten()
            .filter(|packed| packed.len() < raw.len());
        match packed {
            Some(packed) => {
                entry.payload = packed;
                entry.encoding = PayloadEncoding::Zstd;
            }
            None => entry.payload = raw,
        }
        entry
    }

    /// The payload as it was received.
    pub fn raw_payload(&self) -> Result<Cow<'_, [u8]>, PayloadError> {
        match self.encoding {
            PayloadEncoding::Identity => Ok(Cow::Borrowed(&self.payload)),
            PayloadEncoding::Zstd => zstd::stream::decode_all(self.payload.as_slice())
                .map(Cow::Owned)
                .map_err(|source| PayloadError {
                    encoding: PayloadEncoding::Zstd.as_str(),
                    source,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payloads_are_compressed_and_read_back_exactly() {
        let raw: Vec<u8> = b"Received: from a\r\nSubject: hello\r\n\r\n"
            .iter()
            .chain(b"the same line again and again\r\n".repeat(200).iter())
            .copied()
            .collect();
        let entry = JournalEntry::compressed("k", "message", "message/rfc822", raw.clone());
        assert_eq!(entry.encoding, PayloadEncoding::Zstd);
        assert!(
            entry.payload.len() * 4 < raw.len(),
            "{}",
            entry.payload.len()
        );
        assert_eq!(
            entry.raw_payload().expect("decode").as_ref(),
            raw.as_slice()
        );
    }

    #[test]
    fn small_or_incompressible_payloads_stay_as_they_are() {
        let small = JournalEntry::compressed("k", "message", "message/rfc822", b"tiny".to_vec());
        assert_eq!(small.encoding, PayloadEncoding::Identity);
        assert_eq!(small.payload, b"tiny");
        // Already-compressed bytes do not shrink.
        let noise = zstd::bulk::compress(&b"abc".repeat(5000), 19).expect("compress");
        let noise = zstd::bulk::compress(&noise, 1).expect("compress again");
        let entry = JournalEntry::compressed("k", "message", "message/rfc822", noise.clone());
        assert_eq!(
            entry.raw_payload().expect("decode").as_ref(),
            noise.as_slice()
        );
    }

    #[test]
    fn a_corrupt_compressed_payload_is_an_error_not_a_panic() {
        let mut entry = JournalEntry::new("k", "message", "message/rfc822", b"not zstd".to_vec());
        entry.encoding = PayloadEncoding::Zstd;
        let err = entry.raw_payload().expect_err("corrupt");
        assert!(err.to_string().contains("zstd"), "{err}");
    }

    #[test]
    fn encodings_round_trip_their_column_values() {
        for e in [PayloadEncoding::Identity, PayloadEncoding::Zstd] {
            assert_eq!(PayloadEncoding::parse(e.as_str()), Some(e));
        }
        assert_eq!(PayloadEncoding::parse("gzip"), None);
    }
}
