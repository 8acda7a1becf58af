//! A message's HTML body as a page of its own, for a sandboxed iframe in a staff frontend.
//!
//! The body is the sanitized HTML the store keeps (no scripts, handlers or remote loads:
//! the email connector's sanitizer), its inline images pointing at their signed URLs, in a
//! minimal document. The response's `Content-Security-Policy` is strict on top of that:
//! nothing loads but images from this origin (the signed URLs) and `data:` images, styles
//! only inline, and the page is sandboxed (no scripts, no forms, a unique origin) even when
//! opened directly. Like attachments, the route takes a bearer token or a signed URL
//! (`html_url` of the message view).

use super::AppState;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::media::{self, MediaUrls, SignedParams};
use super::openapi::{Internal, TAG_MESSAGES, Unauthorized};
use crate::infra::signed_url::Resource;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The policy of the page: images from this origin (signed attachment URLs) and `data:`,
/// inline styles, nothing else; sandboxed.
pub const HTML_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; \
     base-uri 'none'; form-action 'none'; sandbox";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(message_html))
}

/// The `{id}` of a message.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
struct MessageId(
    /// The message's id (`id` of a message view).
    #[param(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    String,
);

/// A message's HTML body as a page, for a sandboxed iframe.
///
/// With a bearer token, or without any header through the signed URL the message view gives
/// (`html_url`). The sanitized HTML, its inline (`cid:`) images pointing at their signed
/// URLs, served with a strict `Content-Security-Policy` (`default-src 'none'; img-src 'self'
/// data:; style-src 'unsafe-inline'; ...; sandbox`) and `X-Content-Type-Options: nosniff`.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}/html",
    tag = TAG_MESSAGES,
    operation_id = "getMessageHtml",
    security(("bearerAuth" = []), ("signedUrl" = [])),
    params(MessageId, SignedParams),
    responses(
        (status = 200, description = "The HTML body as a document (UTF-8).", content_type = "text/html",
            body = String, headers(
                ("Content-Security-Policy" = String, description = "`default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; sandbox`"),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
                ("Cache-Control" = String, description = "`private, max-age=N`: as long as the signed URL lives."),
            ),
            example = json!("<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"></head><body><p>Hi, the photo: <img src=\"/api/v1/attachments/0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b?tenant=acme&amp;expires=1777777200&amp;sig=q5y0bnfBZUpeE6qHWVgVwdJSqXt3v6Hh2sX0Yy3eOkA\"></p></body></html>\n")),
        (status = 400, description = "`bad_request`: a query parameter other than `tenant`, \
            `expires` and `sig`.", body = ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "Failed to deserialize query string: unknown field `x`, expected one of `tenant`, `expires`, `sig`"}})),
        (status = 401, response = Unauthorized),
        (status = 403, description = "A signed URL that does not hold: `invalid_signature` \
            (wrong, incomplete or malformed) or `signature_expired`.", body = ErrorBody,
            example = json!({"error": {"code": "invalid_signature", "message": "the URL's signature is not valid"}})),
        (status = 404, description = "`not_found`: no such message in the tenant, or it has \
            no HTML body.", body = ErrorBody,
            example = json!({"error": {"code": "not_found", "message": "not found"}})),
        (status = 500, response = Internal),
    )
)]
async fn message_html(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<SignedParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let access = media::authorize(&state, &headers, params, Resource::MessageHtml(&id)).await?;
    let message = state.store.get_message(&access.tenant, &id).await?;
    if let Some(caller) = &access.caller {
        super::visibility::check(
            &state,
            caller,
            crate::store::ConversationOf::Id(&message.conversation_id),
        )
        .await?;
    }
    let html = message.html.as_deref().ok_or(ApiError::NotFound)?;
    let urls = MediaUrls::new(&state.urls, &access.tenant);
    let body = urls.sign_html(html, message.attachments.iter().map(|a| a.id.as_str()));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, HTML_CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, access.cache_control(&state.urls))
        .body(Body::from(document(&body)))
        .map_err(ApiError::internal)
}

/// The sanitized body in a minimal UTF-8 document that sends no referrer.
fn document(body: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\"></head><body>{body}</body></html>\n"
    )
}
