//! A `multipart/form-data` body (RFC 7578) for the media upload endpoint: a few text fields
//! and one file. Built in memory, with a boundary proven absent from the content.

use sha2::{Digest, Sha256};

/// A finished body and the `Content-Type` header that goes with it.
#[derive(Debug)]
pub(crate) struct Multipart {
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Builds `fields` (name, value) followed by the file part `file_field`.
pub(crate) fn form(
    fields: &[(&str, &str)],
    file_field: &str,
    filename: &str,
    file_type: &str,
    file: &[u8],
) -> Multipart {
    let boundary = boundary(fields, file);
    let mut body = Vec::with_capacity(file.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                quoted(name),
                value
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            quoted(file_field),
            quoted(filename),
            header_safe(file_type)
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Multipart {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body,
    }
}

/// A boundary derived from the content, re-derived until it occurs nowhere in it.
fn boundary(fields: &[(&str, &str)], file: &[u8]) -> String {
    let seed: [u8; 32] = Sha256::digest(file).into();
    boundary_from(seed, fields, file)
}

fn boundary_from(seed: [u8; 32], fields: &[(&str, &str)], file: &[u8]) -> String {
    let candidate = |round: u64| {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(round.to_be_bytes());
        format!("switchboard-{}", &hex::encode(h.finalize())[..40])
    };
    let clashes = |b: &String| {
        let needle = b.as_bytes();
        contains(file, needle)
            || fields
                .iter()
                .any(|(n, v)| contains(n.as_bytes(), needle) || contains(v.as_bytes(), needle))
    };
    // Each round is a fresh 160-bit value: a clash twice in a row is already beyond belief,
    // so the search ends at once in practice (and certainly before `u64` runs out).
    (0u64..)
        .map(candidate)
        .find(|b| !clashes(b))
        .unwrap_or_else(|| candidate(u64::MAX))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A value inside a quoted header parameter: no quotes, backslashes or control characters.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A header value without line breaks.
fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_fields_then_the_file() {
        let m = form(
            &[("messaging_product", "whatsapp"), ("type", "image/png")],
            "file",
            "a \"b\".png",
            "image/png",
            b"\x89PNG\r\n",
        );
        let boundary = m
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let text = String::from_utf8_lossy(&m.body);
        assert!(text.starts_with(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n"
        )));
        assert!(text.contains(
            "filename=\"a _b_.png\"\r\nContent-Type: image/png\r\n\r\n\u{fffd}PNG\r\n\r\n"
        ));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    }

    #[test]
    fn the_boundary_never_occurs_in_the_content() {
        let seed = [7u8; 32];
        let first = boundary_from(seed, &[], b"abc");
        // Content that contains the boundary the seed gives first gets the next one.
        let hostile = format!("abc--{first}--");
        let second = boundary_from(seed, &[], hostile.as_bytes());
        assert_ne!(first, second);
        assert!(!contains(hostile.as_bytes(), second.as_bytes()));
        let in_field = boundary_from(seed, &[("type", &hostile)], b"abc");
        assert_eq!(in_field, second);
        assert_ne!(boundary(&[], b"abc"), boundary(&[], b"abd"));
    }
}
