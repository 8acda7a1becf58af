//! Request validation shared by the handlers: pagination, the `Idempotency-Key` header,
//! reply drafts, contact addresses and free-text fields.
//!
//! Malformed transport-level input (query strings, headers, cursors) is a 400; a
//! well-formed body whose values break the rules (lengths, enums, formats) is a 422.
//! Strings are rejected when they contain NUL (PostgreSQL cannot store it) and, for
//! single-line fields that end up in headers (subject, names), any control character.

use super::error::ApiError;
use crate::domain::model::Template;
use crate::domain::model::{Identity, IdentityKind};
use crate::store::{PageCursor, PageRequest, ReplyDraft};
use axum::http::HeaderMap;

/// Paging of a list, as every list endpoint takes it. An empty value counts as absent; an
/// unknown parameter is a 400.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    cursor: Option<String>,
    /// Page size.
    #[param(value_type = Option<i64>, nullable = false, minimum = 1, maximum = 100, default = 25)]
    limit: Option<String>,
}

impl PageQuery {
    /// The store's page request (400 on a bad cursor or limit).
    pub fn page(self) -> Result<PageRequest, ApiError> {
        page_request(self.cursor, self.limit)
    }
}

/// Distinguishes an explicit `null` (`Some(None)`) from a missing field (`None`), for
/// bodies where null clears a value; use with `#[serde(default, deserialize_with = ...)]`.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 100;
pub const MAX_TEXT_CHARS: usize = 10_000;
pub const MAX_SUBJECT_CHARS: usize = 998;
pub const MAX_MEDIA_URLS: usize = 10;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const MAX_NAME_CHARS: usize = 255;
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A query parameter, with an empty value treated as absent.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// `cursor` and `limit` query parameters → a page request (400 on bad values).
pub fn page_request(
    cursor: Option<String>,
    limit: Option<String>,
) -> Result<PageRequest, ApiError> {
    let cursor = match non_empty(cursor) {
        // The id goes into a query: a NUL (which PostgreSQL refuses) is never one we issued.
        Some(c) => Some(
            PageCursor::decode(&c)
                .filter(|c| !c.id.contains('\0'))
                .ok_or(ApiError::InvalidCursor)?,
        ),
        None => None,
    };
    let limit = match non_empty(limit) {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
            })?,
        None => DEFAULT_LIMIT,
    };
    Ok(PageRequest { cursor, limit })
}

/// The optional `Idempotency-Key` header: one value of 1..=255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "Idempotency-Key must be one header of 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
        ))
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !bytes.iter().all(u8::is_ascii_graphic)
    {
        return Err(bad());
    }
    // All visible ASCII, so this is valid UTF-8.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The body fields of an outbound message, as received.
#[derive(Debug, Default)]
pub struct DraftFields {
    pub text: Option<String>,
    pub subject: Option<String>,
    pub media_urls: Option<Vec<String>>,
    pub template: Option<Template>,
}

/// Longest template name WhatsApp accepts.
pub const MAX_TEMPLATE_NAME: usize = 512;

/// A template: a lower-case name of `a-z`, `0-9` and `_`, a language code such as `en_US`,
/// and an optional `components` array passed to the provider as is.
fn template(t: &Template) -> Result<(), ApiError> {
    let name_ok = !t.name.is_empty()
        && t.name.len() <= MAX_TEMPLATE_NAME
        && t.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(ApiError::invalid(
            "template.name",
            "template.name must be 1-512 characters of a-z, 0-9 and _",
        ));
    }
    let lang_ok = (2..=15).contains(&t.language.len())
        && t.language
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-');
    if !lang_ok {
        return Err(ApiError::invalid(
            "template.language",
            "template.language must be a language code such as en or en_US",
        ));
    }
    if !(t.components.is_null() || t.components.is_array()) {
        return Err(ApiError::invalid(
            "template.components",
            "template.components must be an array",
        ));
    }
    if contains_nul(&t.components) {
        return Err(ApiError::invalid(
            "template.components",
            "template.components must not contain NUL characters",
        ));
    }
    Ok(())
}

/// Whether any string (or key) in the JSON holds a NUL, which PostgreSQL's JSON cannot store.
fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v))
        }
        _ => false,
    }
}

/// Validates the fields of a reply and builds the store's draft.
pub fn draft(
    fields: DraftFields,
    author: &str,
    idempotency_key: Option<String>,
) -> Result<ReplyDraft, ApiError> {
    if let Some(text) = &fields.text {
        free_text("text", text, MAX_TEXT_CHARS)?;
    }
    if let Some(subject) = &fields.subject {
        single_line("subject", subject, MAX_SUBJECT_CHARS)?;
    }
    let media_urls = fields.media_urls.unwrap_or_default();
    if media_urls.len() > MAX_MEDIA_URLS {
        return Err(ApiError::invalid(
            "media_urls",
            format!("at most {MAX_MEDIA_URLS} media_urls are allowed"),
        ));
    }
    for (i, u) in media_urls.iter().enumerate() {
        media_url(u).map_err(|why| {
            ApiError::invalid(
                &format!("media_urls[{i}]"),
                format!("media_urls[{i}] {why}"),
            )
        })?;
    }
    if let Some(t) = &fields.template {
        template(t)?;
        if fields.text.is_some() || !media_urls.is_empty() {
            return Err(ApiError::invalid(
                "template",
                "a template message carries no text or media_urls of its own",
            ));
        }
    } else if fields.text.is_none() && media_urls.is_empty() {
        return Err(ApiError::validation(
            "a message needs text, at least one media url, or a template",
        ));
    }
    Ok(ReplyDraft {
        text: fields.text,
        subject: fields.subject,
        media_urls,
        template: fields.template,
        author: author.to_string(),
        idempotency_key,
    })
}

/// An absolute http(s) URL of at most 2048 characters; the reason it is not, otherwise.
fn media_url(u: &str) -> Result<(), &'static str> {
    if u.len() > MAX_URL_LEN {
        return Err("is longer than 2048 characters");
    }
    if u.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain whitespace or control characters");
    }
    let parsed = url::Url::parse(u).map_err(|_| "is not an absolute URL")?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err("must be an http or https URL with a host");
    }
    Ok(())
}

/// A non-blank multi-line text field of at most `max` characters, without NUL.
pub fn free_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be blank"),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    Ok(())
}

/// A non-blank single-line text field of at most `max` characters.
pub fn single_line(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be blank"),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be a single line without control characters"),
        ));
    }
    Ok(())
}

/// A contact address to start a conversation with, normalized as ingest stores it:
/// phone `+` and 8-15 digits; WhatsApp the same digits without the `+` (a leading `+` is
/// accepted); email lower-cased with exactly one `@`.
pub fn identity(kind: IdentityKind, value: &str) -> Result<Identity, ApiError> {
    let value = value.trim();
    let normalized = if kind == IdentityKind::PHONE {
        if !is_e164(value) {
            return Err(ApiError::invalid(
                "to.value",
                "to.value must be an E.164 number: + then 8 to 15 digits",
            ));
        }
        value.to_string()
    } else if kind == IdentityKind::WHATSAPP {
        let digits = value.strip_prefix('+').unwrap_or(value);
        if !is_e164(&format!("+{digits}")) {
            return Err(ApiError::invalid(
                "to.value",
                "to.value must be a WhatsApp number: 8 to 15 digits",
            ));
        }
        digits.to_string()
    } else if kind == IdentityKind::EMAIL {
        let ok = value.len() <= 254
            && !value.chars().any(|c| c.is_control() || c.is_whitespace())
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
        if !ok {
            return Err(ApiError::invalid(
                "to.value",
                "to.value must be an email address with exactly one @",
            ));
        }
        value.to_lowercase()
    } else {
        // A kind a connector declared (a chat visitor id): taken as given, within bounds.
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "to.value",
                "to.value must be 1 to 256 characters without control characters",
            ));
        }
        value.to_string()
    };
    Ok(Identity {
        kind,
        value: normalized,
    })
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// An RFC 3339 time in a query parameter, as Unix milliseconds; a 400 naming `field`
/// otherwise.
pub fn parse_time(field: &str, value: &str) -> Result<crate::domain::model::Millis, ApiError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{field} must be an RFC 3339 time such as 2026-05-01T00:00:00Z"
            ))
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::bad_request(format!("{field} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn fields(text: Option<&str>, urls: &[&str]) -> DraftFields {
        DraftFields {
            text: text.map(str::to_string),
            subject: None,
            media_urls: Some(urls.iter().map(|s| s.to_string()).collect()),
            template: None,
        }
    }

    #[test]
    fn drafts_need_content_and_valid_urls() {
        assert!(draft(fields(Some("hi"), &[]), "bob", None).is_ok());
        assert!(draft(fields(None, &["https://cdn.example/a.jpg"]), "bob", None).is_ok());
        assert!(draft(fields(None, &[]), "bob", None).is_err());
        assert!(draft(fields(Some("  "), &[]), "bob", None).is_err());
        assert!(draft(fields(None, &["ftp://x/a"]), "bob", None).is_err());
        assert!(draft(fields(None, &["/relative"]), "bob", None).is_err());
        assert!(
            draft(
                fields(Some(&"x".repeat(MAX_TEXT_CHARS + 1)), &[]),
                "bob",
                None
            )
            .is_err()
        );
        let mut f = fields(Some("hi"), &[]);
        f.subject = Some("Hello\r\nBcc: x@y".into());
        assert!(draft(f, "bob", None).is_err());
    }

    #[test]
    fn identities_are_normalized() {
        let phone = identity(IdentityKind::PHONE, "+14155550123").expect("phone");
        assert_eq!(phone.value, "+14155550123");
        assert!(identity(IdentityKind::PHONE, "14155550123").is_err());
        assert!(identity(IdentityKind::PHONE, "+1415").is_err());
        let wa = identity(IdentityKind::WHATSAPP, "+14155550123").expect("wa");
        assert_eq!(wa.value, "14155550123");
        let mail = identity(IdentityKind::EMAIL, "Ann@Example.COM").expect("email");
        assert_eq!(mail.value, "ann@example.com");
        assert!(identity(IdentityKind::EMAIL, "a@b@c").is_err());
        assert!(identity(IdentityKind::EMAIL, "nobody").is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(idempotency_key(&h).ok(), Some(None));
        h.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static("key-1"));
        assert_eq!(idempotency_key(&h).ok(), Some(Some("key-1".into())));
        h.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static("has space"));
        assert!(idempotency_key(&h).is_err());
        h.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static(""));
        assert!(idempotency_key(&h).is_err());
    }

    #[test]
    fn pages_default_and_bound_the_limit() {
        assert_eq!(
            page_request(None, None).map(|p| p.limit).ok(),
            Some(DEFAULT_LIMIT)
        );
        assert!(page_request(None, Some("0".into())).is_err());
        assert!(page_request(None, Some("101".into())).is_err());
        assert!(matches!(
            page_request(Some("!!".into()), None),
            Err(ApiError::InvalidCursor)
        ));
        let nul = PageCursor {
            ts: 1,
            id: "a\0b".into(),
        };
        assert!(matches!(
            page_request(Some(nul.encode()), None),
            Err(ApiError::InvalidCursor)
        ));
    }

    #[test]
    fn template_components_refuse_nul() {
        let t = |components| Template {
            name: "order_update".into(),
            language: "en_US".into(),
            components,
        };
        assert!(template(&t(serde_json::json!([{"type": "body"}]))).is_ok());
        assert!(template(&t(serde_json::json!([{"text": "a\0b"}]))).is_err());
        assert!(template(&t(serde_json::json!([{"a\0": 1}]))).is_err());
    }
}
