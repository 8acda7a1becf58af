//! Attachment download: the stored bytes, served so a browser never renders them inline.
//!
//! Attachments come from strangers, so the response is always a download
//! (`Content-Disposition: attachment`), never sniffed (`nosniff`) and sandboxed should a
//! browser render it anyway (`Content-Security-Policy: sandbox`); an `<img>` still shows an
//! image. The filename is sanitized: no path, no control or format characters (bidi
//! overrides), no quotes; an ASCII fallback plus an RFC 6266 `filename*` when the name is
//! not plain ASCII.
//!
//! The route takes a bearer token or a signed URL (see [`super::media`]), which is what
//! message views hand out. Responses carry the content hash as `ETag` and may be cached
//! privately (`If-None-Match` → 304) for as long as a signed URL lives.

use super::AppState;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::media::{self, SignedParams};
use super::openapi::{Binary, Internal, NotFound, TAG_ATTACHMENTS, Unauthorized};
use crate::domain::text::is_format_char;
use crate::infra::blob::BlobStore;
use crate::infra::signed_url::Resource;
use crate::store::AttachmentRow;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const FALLBACK_NAME: &str = "attachment";
const MAX_FILENAME_CHARS: usize = 200;
const OCTET_STREAM: &str = "application/octet-stream";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download))
}

/// The `{id}` of an attachment.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
struct AttachmentId(
    /// The attachment's id (`attachments[].id` of a message).
    String,
);

/// The optional `If-None-Match` request header.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("If-None-Match"), parameter_in = Header)]
#[allow(dead_code)]
pub(super) struct IfNoneMatch(
    /// An `ETag` received before: 304 if the bytes are still the same.
    #[param(
        nullable = false,
        example = "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\""
    )]
    Option<String>,
);

/// Download an attachment.
///
/// With a bearer token, or without any header through the signed URL a message view gives
/// (`attachments[].url`: `tenant`, `expires` and `sig` in the query), so `<img src>` and
/// download links work in a browser. Always a download (`Content-Disposition: attachment`
/// with a sanitized filename), never sniffed (`X-Content-Type-Options: nosniff`) and
/// sandboxed (`Content-Security-Policy: sandbox`): attachments come from strangers.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{id}",
    tag = TAG_ATTACHMENTS,
    operation_id = "downloadAttachment",
    security(("bearerAuth" = []), ("signedUrl" = [])),
    params(AttachmentId, SignedParams, IfNoneMatch),
    responses(
        (status = 200, description = "The stored bytes, with the attachment's content type \
            (`application/octet-stream` when unknown).", content_type = "*/*", body = inline(Binary), headers(
                ("Content-Disposition" = String, description = "`attachment; filename=\"...\"`, plus `filename*=UTF-8''...` for names that are not plain ASCII."),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
                ("Content-Security-Policy" = String, description = "`sandbox`"),
                ("ETag" = String, description = "The sha256 of the bytes, quoted."),
                ("Cache-Control" = String, description = "`private, max-age=N`: as long as the signed URL lives (with a bearer token: the lifetime of a signed URL)."),
            )),
        (status = 304, description = "`If-None-Match` names the current `ETag`: no body.", headers(
                ("ETag" = String, description = "The sha256 of the bytes, quoted."),
                ("Cache-Control" = String, description = "`private, max-age=N`"),
            )),
        (status = 400, description = "`bad_request`: a query parameter other than `tenant`, \
            `expires` and `sig`.", body = ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "Failed to deserialize query string: unknown field `x`, expected one of `tenant`, `expires`, `sig`"}})),
        (status = 401, response = Unauthorized),
        (status = 403, description = "A signed URL that does not hold: `invalid_signature` \
            (wrong, incomplete or malformed) or `signature_expired`.", body = ErrorBody,
            example = json!({"error": {"code": "signature_expired", "message": "the signed URL has expired; fetch the message again for a fresh one"}})),
        (status = 404, response = NotFound),
        (status = 409, description = "`attachment_pending`: still being fetched from the \
            provider, try again shortly; `attachment_failed`: it could not be fetched; \
            `attachment_too_large`: it was over the size limit and not kept; \
            `attachment_erased`: it was erased with its contact.", body = ErrorBody,
            example = json!({"error": {"code": "attachment_pending", "message": "the attachment is still being fetched; try again shortly"}})),
        (status = 500, response = Internal),
    )
)]
async fn download(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<SignedParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let access = media::authorize(&state, &headers, params, Resource::Attachment(&id)).await?;
    let attachment = state.store.get_attachment(&access.tenant, &id).await?;
    if let Some(caller) = &access.caller {
        super::visibility::check(
            &state,
            caller,
            crate::store::ConversationOf::Message(&attachment.message_id),
        )
        .await?;
    }
    check_stored(&attachment)?;
    let key = attachment
        .storage_key
        .as_deref()
        .ok_or_else(|| ApiError::internal(format!("stored attachment {id} has no storage key")))?;
    let cache = access.cache_control(&state.urls);
    let known_etag = attachment.sha256.as_deref().map(|sha| format!("\"{sha}\""));
    if let Some(etag) = &known_etag
        && media::not_modified(&headers, etag)
    {
        return not_modified(etag, cache);
    }
    let bytes = state
        .blobs
        .get(key)
        .await
        .map_err(|e| ApiError::internal(format!("attachment {id}: {e}")))?;
    let etag = known_etag.unwrap_or_else(|| format!("\"{}\"", BlobStore::sha256_hex(&bytes)));
    let content_type = attachment
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
        .unwrap_or(HeaderValue::from_static(OCTET_STREAM));
    let disposition =
        HeaderValue::from_str(&content_disposition(attachment.filename.as_deref()))
            .map_err(|e| ApiError::internal(format!("content-disposition for {id}: {e}")))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "sandbox")
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, cache)
        .body(Body::from(bytes))
        .map_err(ApiError::internal)
}

/// 409 unless the attachment's bytes are stored.
fn check_stored(attachment: &AttachmentRow) -> Result<(), ApiError> {
    let (code, message) = match attachment.state.as_str() {
        "stored" => return Ok(()),
        "pending" => (
            "attachment_pending",
            "the attachment is still being fetched; try again shortly",
        ),
        "failed" => ("attachment_failed", "the attachment could not be fetched"),
        "too_large" => (
            "attachment_too_large",
            "the attachment was over the size limit and was not kept",
        ),
        "erased" => (
            "attachment_erased",
            "the attachment was erased with its contact",
        ),
        other => {
            return Err(ApiError::internal(format!(
                "attachment {} in unknown state {other:?}",
                attachment.id
            )));
        }
    };
    Err(ApiError::Conflict {
        code,
        message: message.into(),
    })
}

/// 304 with the validator and caching headers, no body.
fn not_modified(etag: &str, cache: HeaderValue) -> Result<Response, ApiError> {
    Response::builder()
        .status(StatusCode::NOT_MODIFIED)
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, cache)
        .body(Body::empty())
        .map_err(ApiError::internal)
}

/// The filename without path, control or format characters (bidi overrides) or quotes,
/// trimmed and bounded.
fn sanitize(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_format_char(*c) && !matches!(c, '"' | '\''))
        .take(MAX_FILENAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        FALLBACK_NAME.to_string()
    } else {
        cleaned.to_string()
    }
}

/// `attachment; filename="<ascii>"`, plus `filename*=UTF-8''<pct-encoded>` when the ASCII
/// fallback had to change the name (non-ASCII, `%` or `;`).
fn content_disposition(filename: Option<&str>) -> String {
    let name = sanitize(filename.unwrap_or(FALLBACK_NAME));
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !matches!(c, ';' | '%') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == name {
        format!("attachment; filename=\"{ascii}\"")
    } else {
        format!(
            "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
            rfc5987(&name)
        )
    }
}

/// Percent-encodes everything outside RFC 5987's `attr-char`.
fn rfc5987(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_sanitized() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\Users\\x\\evil.exe"), "evil.exe");
        assert_eq!(sanitize("a\"b\r\nc.txt"), "abc.txt");
        assert_eq!(sanitize(".."), FALLBACK_NAME);
        assert_eq!(sanitize(""), FALLBACK_NAME);
        assert_eq!(sanitize(".hidden"), "hidden");
    }

    #[test]
    fn dispositions_carry_no_bidi_or_format_characters() {
        // A name stored before names were cleaned still downloads without its override.
        assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        let d = content_disposition(Some("invoice\u{202E}fdp\u{200B}.exe"));
        assert_eq!(d, "attachment; filename=\"invoicefdp.exe\"");
    }

    #[test]
    fn any_name_makes_a_safe_header() {
        let nasty = [
            "\"; filename=evil.exe",
            "a\r\nSet-Cookie: x=1.txt",
            "\u{202E}gpj.exe",
            "\u{2066}x\u{2069}\u{061C}\u{200F}.pdf",
            "\\\\server\\share\\x.pdf",
            "名前 \"引用\" 😀.png",
            "\u{0}\u{7f}\u{85}\u{2028}.bin",
            "%22%0D%0A.txt",
        ];
        for name in nasty {
            let d = content_disposition(Some(name));
            assert!(HeaderValue::from_str(&d).is_ok(), "{d:?}");
            let fallback = d
                .strip_prefix("attachment; filename=\"")
                .and_then(|rest| rest.split('"').next())
                .expect("fallback");
            let rest = &d["attachment; filename=\"".len() + fallback.len() + 1..];
            assert!(
                rest.is_empty() || rest.starts_with("; filename*=UTF-8''"),
                "{d:?}"
            );
            assert!(fallback.is_ascii() && !fallback.is_empty(), "{d:?}");
            assert!(!d.contains(['\r', '\n', '\\', '\u{202E}']), "{d:?}");
            assert!(!d.chars().any(is_format_char), "{d:?}");
        }
    }

    #[test]
    fn dispositions_carry_ascii_and_utf8_names() {
        assert_eq!(
            content_disposition(Some("report.pdf")),
            "attachment; filename=\"report.pdf\""
        );
        assert_eq!(
            content_disposition(None),
            "attachment; filename=\"attachment\""
        );
        assert_eq!(
            content_disposition(Some("Grüße.txt")),
            "attachment; filename=\"Gr__e.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt"
        );
        assert_eq!(
            content_disposition(Some("100%.pdf")),
            "attachment; filename=\"100_.pdf\"; filename*=UTF-8''100%25.pdf"
        );
        let long = content_disposition(Some(&"x".repeat(1000)));
        assert!(long.len() < 300);
    }
}
