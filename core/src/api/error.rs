//! The API's one error type and its mapping to HTTP, in one place.
//!
//! Every error leaves as `{"error": {"code": "...", "message": "..."}}` with a stable code.
//! Internal failures are logged with their detail and shown to callers only as a generic
//! message. The extractor wrappers ([`ApiJson`], [`ApiQuery`], [`ApiPath`]) turn axum's
//! rejections into [`ApiError`] so malformed requests get the same shape.

use super::rate_limit::RateState;
use crate::store::{Refusal, StoreError};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Everything a request can fail with. The variant decides the status and the code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed, unknown or revoked credentials (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but the role does not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    /// A signed URL whose signature is wrong, incomplete or malformed (403).
    #[error("{0}")]
    InvalidSignature(&'static str),
    /// A signed URL past its expiry (403).
    #[error("the signed URL has expired; fetch the message again for a fresh one")]
    SignatureExpired,
    /// No such object in the caller's tenant, or no such route (404).
    #[error("not found")]
    NotFound,
    /// Not found, with the reason (an erased contact) (404, `not_found`).
    #[error("{0}")]
    NotFoundWith(String),
    /// The contact was merged into another: the same request to `location`, the
    /// survivor's URL, serves it (308 Permanent Redirect, `contact_merged`).
    #[error("{message}")]
    ContactMerged { location: String, message: String },
    /// The route exists, the method does not (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Malformed request: bad JSON syntax, bad query string, bad header (400).
    #[error("{0}")]
    BadRequest(String),
    /// A pagination cursor that this server did not issue (400).
    #[error("invalid cursor")]
    InvalidCursor,
    /// Well-formed, but semantically invalid: lengths, enums, missing fields (422);
    /// `field` is the offending member as a JSON pointer (`/to/value`) when one is to blame.
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// The body is larger than the configured limit (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// Valid, but the current state refuses it; the code is stable (409).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    /// The caller's token made too many requests (429); the state sets `Retry-After` and
    /// the rate-limit fields.
    #[error(
        "too many requests for this token: try again in {} s",
        .0.retry_after_secs.unwrap_or(1)
    )]
    RateLimited(RateState),
    /// The service cannot serve yet (503).
    #[error("{0}")]
    Unavailable(&'static str),
    /// A failure of ours; the detail is logged, never shown (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// An internal failure; `detail` is logged when the response is built.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// A 422 with a message naming what is wrong.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation {
            field: None,
            message: message.into(),
        }
    }

    /// A 422 blaming one field, named as in the request body (`to.value`, `media_urls[2]`);
    /// the response gives it as a JSON pointer (`/to/value`, `/media_urls/2`).
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: Some(json_pointer(field)),
            message: message.into(),
        }
    }

    /// A 400 with a message naming what is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::InvalidSignature(_) | Self::SignatureExpired => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound | Self::NotFoundWith(_) => StatusCode::NOT_FOUND,
            Self::ContactMerged { .. } => StatusCode::PERMANENT_REDIRECT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) | Self::InvalidCursor => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::SignatureExpired => "signature_expired",
            Self::NotFound | Self::NotFoundWith(_) => "not_found",
            Self::ContactMerged { .. } => "contact_merged",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest(_) => "bad_request",
            Self::InvalidCursor => "invalid_cursor",
            Self::Validation { .. } => "validation_failed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Conflict { code, .. } => code,
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What the caller is told.
    fn public_message(&self) -> String {
        match self {
            Self::Conflict { message, .. } => message.clone(),
            Self::Internal(_) => "internal error".to_string(),
            Self::InvalidCursor => "the cursor is not one this server issued".to_string(),
            other => other.to_string(),
        }
    }
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: branch on this, not on the message.
    #[schema(value_type = ErrorCode)]
    pub code: &'static str,
    /// For humans; may change between versions. Never contains internal details.
    #[schema(example = "not found")]
    pub message: String,
    /// With `validation_failed`: the request body member at fault, as a JSON pointer
    /// (RFC 6901), when one is to blame.
    #[schema(required = false, example = "/to/value")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Every code core's own errors can carry. The HTTP status is fixed per code, except the
/// conflict codes, which are all 409. Connectors declare their own refusal codes (always 409)
/// in their `ConnectorType`; the served document adds them to this schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: missing, malformed, unknown or revoked credentials.
    Unauthorized,
    /// 403: the caller's role does not allow the action.
    Forbidden,
    /// 403: a signed URL whose signature is wrong, incomplete or malformed.
    InvalidSignature,
    /// 403: a signed URL past its expiry (fetch the message again for a fresh one).
    SignatureExpired,
    /// 404: no such object in the caller's tenant (or an erased contact), or no such route.
    NotFound,
    /// 308: the contact was merged into another; `Location` is the survivor's URL, where
    /// the same request is served.
    ContactMerged,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 400: malformed query string, header, path or JSON syntax.
    BadRequest,
    /// 400: a pagination cursor this server did not issue.
    InvalidCursor,
    /// 422: well-formed but semantically invalid body.
    ValidationFailed,
    /// 413: the body is larger than `server.max_body_bytes`.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 409: the contact opted out of messages on the channel (STOP).
    ContactOptedOut,
    /// 409: the `Idempotency-Key` was used for a different request.
    IdempotencyKeyReused,
    /// 409: the channel is not configured on this server.
    ChannelNotConfigured,
    /// 409: the channel does not send templates.
    TemplateNotSupported,
    /// 409: the attachment is still being fetched.
    AttachmentPending,
    /// 409: the attachment could not be fetched.
    AttachmentFailed,
    /// 409: the attachment was over the size limit and not kept.
    AttachmentTooLarge,
    /// 409: only a failed or undelivered outbound message can be retried.
    MessageNotRetryable,
    /// 409: another canned reply of the tenant has this shortcut.
    ShortcutTaken,
    /// 409: the staff directory already has an entry with this id.
    StaffExists,
    /// 429: the token made more requests than its role's rate limit allows; see
    /// `Retry-After`.
    RateLimited,
    /// 409: the attachment was erased with its contact.
    AttachmentErased,
    /// 409: the conversation's contact was erased; nothing can be sent to it.
    ContactErased,
    /// 503: not ready (database unreachable or migrations not applied).
    Unavailable,
    /// 500: a failure of ours; the detail is logged, never shown.
    Internal,
}

impl ErrorCode {
    pub const ALL: [Self; 27] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::InvalidSignature,
        Self::SignatureExpired,
        Self::NotFound,
        Self::ContactMerged,
        Self::MethodNotAllowed,
        Self::BadRequest,
        Self::InvalidCursor,
        Self::ValidationFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ContactOptedOut,
        Self::IdempotencyKeyReused,
        Self::ChannelNotConfigured,
        Self::TemplateNotSupported,
        Self::AttachmentPending,
        Self::AttachmentFailed,
        Self::AttachmentTooLarge,
        Self::MessageNotRetryable,
        Self::ShortcutTaken,
        Self::StaffExists,
        Self::RateLimited,
        Self::AttachmentErased,
        Self::ContactErased,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears in a response.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::InvalidSignature => "invalid_signature",
            Self::SignatureExpired => "signature_expired",
            Self::NotFound => "not_found",
            Self::ContactMerged => "contact_merged",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest => "bad_request",
            Self::InvalidCursor => "invalid_cursor",
            Self::ValidationFailed => "validation_failed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ContactOptedOut => "contact_opted_out",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::ChannelNotConfigured => "channel_not_configured",
            Self::TemplateNotSupported => "template_not_supported",
            Self::AttachmentPending => "attachment_pending",
            Self::AttachmentFailed => "attachment_failed",
            Self::AttachmentTooLarge => "attachment_too_large",
            Self::MessageNotRetryable => "message_not_retryable",
            Self::ShortcutTaken => "shortcut_taken",
            Self::StaffExists => "staff_exists",
            Self::RateLimited => "rate_limited",
            Self::AttachmentErased => "attachment_erased",
            Self::ContactErased => "contact_erased",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl ApiError {
    /// The body this error answers with (an internal error's detail is logged here).
    pub fn body(&self) -> ErrorBody {
        if let Self::Internal(detail) = self {
            tracing::error!(error = %detail, "request failed with an internal error");
        }
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
                field: match self {
                    Self::Validation { field, .. } => field.clone(),
                    _ => None,
                },
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let location = match &self {
            Self::ContactMerged { location, .. } => match HeaderValue::from_str(location) {
                Ok(v) => Some(v),
                Err(e) => {
                    return Self::internal(format!("location {location:?}: {e}")).into_response();
                }
            },
            _ => None,
        };
        let mut response = (self.status(), Json(body)).into_response();
        match &self {
            Self::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited(state) => state.write_headers(response.headers_mut()),
            _ => {}
        }
        if let Some(location) = location {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Refused(refusal) => refusal.into(),
            other => Self::internal(other),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let code = match &refusal {
            Refusal::ContactOptedOut { .. } => "contact_opted_out",
            Refusal::ChannelTenantChanged { .. } => "channel_tenant_changed",
            Refusal::UnknownTenant { .. } => "unknown_tenant",
            Refusal::ContactErased { .. } => "contact_erased",
            Refusal::ContactMerged { into, .. } => {
                return Self::ContactMerged {
                    location: format!("/api/v1/contacts/{into}"),
                    message: refusal.to_string(),
                };
            }
            Refusal::NoSuchContact { .. } => return Self::validation(refusal.to_string()),
            Refusal::NotRetryable { .. } => "message_not_retryable",
            Refusal::ShortcutTaken { .. } => "shortcut_taken",
            Refusal::StaffExists { .. } => "staff_exists",
        };
        Self::Conflict {
            code,
            message: refusal.to_string(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::MissingPathParams(e) => Self::internal(e.body_text()),
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// `axum::Json` with our error shape: syntax 400, data 422, no JSON content type 415,
/// too large 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::bad_request(e.body_text()),
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(value) => Ok(Self(value)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                    return Err(ApiError::bad_request(format!("malformed JSON: {inner}")));
                }
                // serde names the member it stopped at; "." is the body itself.
                let message = strip_position(&inner.to_string());
                Err(match path.as_str() {
                    "." | "" => ApiError::validation(message),
                    field => ApiError::invalid(field, format!("{field}: {message}")),
                })
            }
        }
    }
}

/// serde_json's messages end with " at line L column C": useless for a one-line body.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// A field as serde and our messages name it (`to.value`, `media_urls[2]`) as a JSON
/// pointer (`/to/value`, `/media_urls/2`), `~` and `/` escaped as RFC 6901 says.
pub fn json_pointer(field: &str) -> String {
    let mut out = String::new();
    for part in field.split('.') {
        let mut rest = part;
        while !rest.is_empty() {
            let (name, index, tail) = match rest.find('[') {
                Some(open) => {
                    let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
                    (
                        &rest[..open],
                        Some(&rest[open + 1..close.min(rest.len())]),
                        rest.get(close + 1..).unwrap_or(""),
                    )
                }
                None => (rest, None, ""),
            };
            if !name.is_empty() {
                out.push('/');
                out.push_str(&name.replace('~', "~0").replace('/', "~1"));
            }
            if let Some(i) = index {
                out.push('/');
                out.push_str(i);
            }
            rest = tail;
        }
    }
    out
}

/// A percent-encoded NUL. No id or filter value can contain one, and PostgreSQL cannot take
/// one as a text parameter, so it is refused before any store call.
const ENCODED_NUL: &str = "%00";

/// `axum::extract::Query` with our error shape (400); a NUL in the query string is a 400.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|q| q.contains(ENCODED_NUL)) {
            return Err(ApiError::bad_request(
                "query parameters must not contain NUL characters",
            ));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Path` with our error shape (400); an id with a NUL names nothing (404).
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.path().contains(ENCODED_NUL) {
            return Err(ApiError::NotFound);
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_json_pointers() {
        assert_eq!(json_pointer("text"), "/text");
        assert_eq!(json_pointer("to.value"), "/to/value");
        assert_eq!(json_pointer("media_urls[2]"), "/media_urls/2");
        assert_eq!(json_pointer("a[0].b[1]"), "/a/0/b/1");
        assert_eq!(json_pointer("we/ird~"), "/we~1ird~0");
    }

    #[test]
    fn store_errors_map_to_stable_codes() {
        let e: ApiError = StoreError::NotFound.into();
        assert_eq!((e.status(), e.code()), (StatusCode::NOT_FOUND, "not_found"));
        let e: ApiError = StoreError::Refused(Refusal::ContactOptedOut {
            address: "+15550001".into(),
        })
        .into();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::CONFLICT, "contact_opted_out")
        );
        let e: ApiError = StoreError::Refused(Refusal::ContactMerged {
            contact: "a".into(),
            into: "b".into(),
        })
        .into();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::PERMANENT_REDIRECT, "contact_merged")
        );
        let response = e.into_response();
        assert_eq!(response.headers()[header::LOCATION], "/api/v1/contacts/b");
        let e: ApiError = StoreError::Refused(Refusal::ContactErased {
            contact: "a".into(),
        })
        .into();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::CONFLICT, "contact_erased")
        );
        let e: ApiError = StoreError::Corrupt("secret detail".into()).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.public_message(), "internal error");
    }

    #[test]
    fn every_code_is_in_the_documented_enum() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).expect("json");
            assert_eq!(json, code.as_str());
        }
        let documented: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let fixed = [
            ApiError::Unauthorized(""),
            ApiError::Forbidden(String::new()),
            ApiError::InvalidSignature(""),
            ApiError::SignatureExpired,
            ApiError::NotFound,
            ApiError::NotFoundWith(String::new()),
            ApiError::ContactMerged {
                location: String::new(),
                message: String::new(),
            },
            ApiError::MethodNotAllowed,
            ApiError::BadRequest(String::new()),
            ApiError::InvalidCursor,
            ApiError::validation(""),
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType(""),
            ApiError::RateLimited(RateState {
                quota: 1,
                remaining: 0,
                reset_secs: 60,
                retry_after_secs: Some(60),
            }),
            ApiError::Unavailable(""),
            ApiError::Internal(String::new()),
        ];
        for e in fixed {
            assert!(
                documented.contains(&e.code()),
                "{} is not in ErrorCode",
                e.code()
            );
        }
    }
}
