//! The API's one error type and its mapping to HTTP, in one place.
//!
//! Every error leaves as `{"error": {"code": "...", "message": "..."}}` with a stable code.
//! Internal failures are logged with their detail and shown to callers only as a generic
//! message. The extractor wrappers ([`ApiJson`], [`ApiQuery`], [`ApiPath`]) turn axum's
//! rejections into [`ApiError`] so malformed requests get the same shape.

use crate::store::{Refusal, StoreError};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
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
    /// Well-formed, but semantically invalid: lengths, enums, missing fields (422).
    #[error("{0}")]
    Validation(String),
    /// The body is larger than the configured limit (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// Valid, but the current state refuses it; the code is stable (409).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
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
        Self::Validation(message.into())
    }

    /// A 400 with a message naming what is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NotFoundWith(_) => StatusCode::NOT_FOUND,
            Self::ContactMerged { .. } => StatusCode::PERMANENT_REDIRECT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) | Self::InvalidCursor => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound | Self::NotFoundWith(_) => "not_found",
            Self::ContactMerged { .. } => "contact_merged",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest(_) => "bad_request",
            Self::InvalidCursor => "invalid_cursor",
            Self::Validation(_) => "validation_failed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Conflict { code, .. } => code,
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
    pub const ALL: [Self; 21] = [
        Self::Unauthorized,
        Self::Forbidden,
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
            Self::AttachmentErased => "attachment_erased",
            Self::ContactErased => "contact_erased",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed with an internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
            },
        };
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
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
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
            Refusal::NoSuchContact { .. } => return Self::Validation(refusal.to_string()),
        };
        Self::Conflict {
            code,
            message: refusal.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::Validation(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge
            }
            other => Self::BadRequest(other.body_text()),
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
#[derive(Debug, Clone, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
            ApiError::NotFound,
            ApiError::NotFoundWith(String::new()),
            ApiError::ContactMerged {
                location: String::new(),
                message: String::new(),
            },
            ApiError::MethodNotAllowed,
            ApiError::BadRequest(String::new()),
            ApiError::InvalidCursor,
            ApiError::Validation(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType(""),
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
