//! Attachment download: the stored bytes, served so a browser never renders them inline.
//!
//! Attachments come from strangers, so the response is always a download
//! (`Content-Disposition: attachment`), never sniffed (`nosniff`) and sandboxed should a
//! browser render it anyway (`Content-Security-Policy: sandbox`). The filename is
//! sanitized: no path, no control characters, no quotes; an ASCII fallback plus an
//! RFC 5987 `filename*` when the name is not ASCII.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::openapi::{Binary, Internal, NotFound, TAG_ATTACHMENTS, Unauthorized};
use crate::domain::text::is_format_char;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
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

/// Download an attachment.
///
/// Always a download (`Content-Disposition: attachment` with a sanitized filename), never
/// sniffed (`X-Content-Type-Options: nosniff`) and sandboxed (`Content-Security-Policy:
/// sandbox`): attachments come from strangers.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{id}",
    tag = TAG_ATTACHMENTS,
    operation_id = "downloadAttachment",
    params(AttachmentId),
    responses(
        (status = 200, description = "The stored bytes, with the attachment's content type \
            (`application/octet-stream` when unknown).", content_type = "*/*", body = inline(Binary), headers(
                ("Content-Disposition" = String, description = "`attachment; filename=\"...\"`, plus `filename*` for non-ASCII names."),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
                ("Content-Security-Policy" = String, description = "`sandbox`"),
            )),
        (status = 401, response = Unauthorized),
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
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let attachment = state.store.get_attachment(&caller.tenant, &id).await?;
    match attachment.state.as_str() {
        "stored" => {}
        "pending" => {
            return Err(ApiError::Conflict {
                code: "attachment_pending",
                message: "the attachment is still being fetched; try again shortly".into(),
            });
        }
        "failed" => {
            return Err(ApiError::Conflict {
                code: "attachment_failed",
                message: "the attachment could not be fetched".into(),
            });
        }
        "too_large" => {
            return Err(ApiError::Conflict {
                code: "attachment_too_large",
                message: "the attachment was over the size limit and was not kept".into(),
            });
        }
        "erased" => {
            return Err(ApiError::Conflict {
                code: "attachment_erased",
                message: "the attachment was erased with its contact".into(),
            });
        }
        other => {
            return Err(ApiError::internal(format!(
                "attachment {id} in unknown state {other:?}"
            )));
        }
    }
    let key = attachment
        .storage_key
        .as_deref()
        .ok_or_else(|| ApiError::internal(format!("stored attachment {id} has no storage key")))?;
    let bytes = state
        .blobs
        .get(key)
        .await
        .map_err(|e| ApiError::internal(format!("attachment {id}: {e}")))?;
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
        .header(header::CACHE_CONTROL, "private, no-cache")
        .body(Body::from(bytes))
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
