//! REST API v1: JSON under `/api/v1`, bearer auth, cursor pagination, one error shape.
//!
//! [`router`] assembles the routes of the submodules plus `/healthz` and `/readyz`, caps
//! request bodies, and answers unknown routes (404) and methods (405) in the same
//! `{"error": {"code", "message"}}` shape as everything else (see [`error`]).

pub mod attachments;
pub mod auth;
pub mod channels;
pub mod conversations;
pub mod error;
pub mod events;
pub mod outbound;
pub mod validate;

pub use auth::Caller;
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery};

use crate::blob::BlobStore;
use crate::connector::Connectors;
use crate::store::Store;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Notify;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    /// Woken when a new outbox job is queued, so the dispatcher need not poll.
    pub jobs: Arc<Notify>,
    /// The configured connectors: asked whether a channel can carry a reply, and whether
    /// reading a conversation sends the provider a read receipt.
    pub connectors: Arc<Connectors>,
    /// Signals new events to live SSE and WebSocket clients.
    pub events: Arc<crate::events::EventHub>,
}

/// The API router, with bodies capped at `max_body_bytes` (413 beyond).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(conversations::routes())
        .merge(attachments::routes())
        .merge(channels::routes())
        .merge(events::routes())
        .fallback(not_found)
        // Must come after every route: it applies to the routes present when called.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(
            max_body_bytes,
            reject_oversized,
        ))
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.migrations_applied().await {
        Ok(true) => Ok(Json(json!({ "status": "ok" }))),
        Ok(false) => Err(ApiError::Unavailable("database migrations are not applied")),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable("the database is not reachable"))
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Refuses a declared `Content-Length` over the cap before anything reads the body;
/// bodies without one are capped while being read ([`DefaultBodyLimit`]).
async fn reject_oversized(State(max): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > u64::try_from(max).unwrap_or(u64::MAX) => {
            ApiError::PayloadTooLarge.into_response()
        }
        _ => next.run(request).await,
    }
}
