//! How webhook handlers answer providers: one error type, mapped to HTTP in one place.
//!
//! Providers retry on 5xx and give up on 4xx, so the mapping matters: a bad signature is a
//! 403 (never retried into success), a body we cannot parse is a 400, and a storage failure
//! is a 503 so the provider retries later (with `Retry-After` when the write queue is full). Internals never reach the response body.

use crate::contract::ingest::IngestError;
use crate::store::StoreError;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature missing or invalid")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::Forbidden => (StatusCode::FORBIDDEN, "invalid_signature", self.to_string()),
            Self::BadRequest(m) | Self::Ingest(IngestError::Invalid(m)) => {
                (StatusCode::BAD_REQUEST, "bad_request", m.clone())
            }
            Self::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m.clone(),
            ),
            Self::Ingest(IngestError::Store(StoreError::Overloaded)) => {
                tracing::warn!("webhook refused: the write queue is full (503, Retry-After: 1)");
                let body = serde_json::json!({ "error": {
                    "code": "overloaded",
                    "message": "too many deliveries waiting to be stored; retry later",
                } });
                let mut response =
                    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            Self::Ingest(e @ (IngestError::Store(_) | IngestError::Blob(_))) => {
                tracing::error!(error = %e, "webhook could not be stored");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "temporarily unable to store the event; retry later".to_string(),
                )
            }
        };
        if status == StatusCode::FORBIDDEN {
            tracing::warn!("webhook rejected: {message}");
        }
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        (status, axum::Json(body)).into_response()
    }
}
