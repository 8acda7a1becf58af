//! REST API v1: JSON under `/api/v1`, bearer auth, cursor pagination, one error shape.
//!
//! [`router`] assembles the routes of the submodules plus `/healthz` and `/readyz`, caps
//! request bodies, and answers unknown routes (404) and methods (405) in the same
//! `{"error": {"code", "message"}}` shape as everything else (see [`error`]). Around
//! them: CORS for allowed browser origins ([`cors`]) and the rate-limit headers
//! ([`rate_limit`]); what callers may do and see is configured in [`access`].
//!
//! Routes are registered in one place, [`api_routes`], with `utoipa_axum::routes!` from
//! their `#[utoipa::path]` annotations: that one list builds both the router and the
//! OpenAPI document ([`openapi`]), and [`route_table`] lists it for tests. Add a route there
//! (never with a bare `Router::route`): `core/tests/openapi.rs` fails on any route the
//! router serves that the document does not describe.

pub mod access;
pub mod assignment;
pub mod attachments;
pub mod auth;
mod canned;
pub mod channels;
mod composer;
pub mod contact_admin;
pub mod contact_views;
pub mod contacts;
pub mod conversation_views;
pub mod conversations;
pub mod cors;
pub mod docs;
pub mod error;
pub mod live;
pub mod media;
pub mod message_html;
pub mod openapi;
pub mod outbound;
pub mod outgoing_webhooks;
pub mod rate_limit;
pub mod staff;
mod triage;
pub mod validate;
pub mod views;
pub mod visibility;

pub use auth::Caller;
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};

use crate::contract::connector::Connectors;
use crate::infra::blob::BlobStore;
use crate::store::Store;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use openapi::{Health, HealthStatus, TAG_SYSTEM};
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    pub events: Arc<crate::infra::event_hub::EventHub>,
    /// Verifies JWT bearer tokens, when configured.
    pub jwt: Option<Arc<crate::infra::auth::jwt::JwtVerifier>>,
    /// The configured tenants (a JWT must name one of them).
    pub tenants: Arc<std::collections::HashSet<String>>,
    /// Outgoing webhooks: endpoint secrets for test sends, and the relay's wake-up.
    pub webhooks: Arc<crate::workers::outgoing_webhooks::Webhooks>,
    /// What each kind of connector declares: which addresses a channel reaches, and the
    /// refusal codes the OpenAPI document lists.
    pub registry: Arc<crate::contract::registry::Registry>,
    /// CORS, rate limits, agents' visibility and the staff-sighting cache.
    pub access: Arc<access::Access>,
    /// Signs the media URLs of message views and checks them on the media routes.
    pub urls: Arc<crate::infra::signed_url::UrlSigner>,
}

/// Every route of the API, each registered from its `#[utoipa::path]` annotation: the one
/// list that builds both [`router`] and [`openapi::openapi`].
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi::openapi_json))
        .merge(docs::routes())
        .merge(conversations::routes())
        .merge(composer::routes())
        .merge(assignment::routes())
        .merge(contacts::routes())
        .merge(attachments::routes())
        .merge(message_html::routes())
        .merge(channels::routes())
        .merge(live::routes())
        .merge(outgoing_webhooks::routes())
        .merge(staff::routes())
}

/// `(METHOD, path)` of every route in [`api_routes`], in the OpenAPI path syntax
/// (`/api/v1/conversations/{id}`), which is also axum's.
pub fn route_table() -> &'static [(&'static str, String)] {
    static TABLE: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Vec::new();
        for (path, item) in &openapi::openapi().paths.paths {
            let ops = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("OPTIONS", &item.options),
                ("HEAD", &item.head),
                ("PATCH", &item.patch),
                ("TRACE", &item.trace),
            ];
            for (method, op) in ops {
                if op.is_some() {
                    table.push((method, path.clone()));
                }
            }
        }
        table
    })
}

/// The API router, with bodies capped at `max_body_bytes` (413 beyond), the rate-limit
/// headers, and CORS when origins are configured.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    let cors = state.access.cors.clone();
    let router = routes
        .fallback(not_found)
        // Must come after every route: it applies to the routes present when called.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(
            max_body_bytes,
            reject_oversized,
        ))
        .layer(middleware::from_fn(rate_limit::headers))
        .with_state(state);
    match cors {
        // Outermost: errors (404, 413, 429) get the CORS headers too.
        Some(policy) => router.layer(middleware::from_fn_with_state(policy, cors::layer)),
        None => router,
    }
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = TAG_SYSTEM,
    operation_id = "healthz",
    security(),
    responses((status = 200, description = "The process is up.", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// Ready when the database answers and every migration is applied.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = TAG_SYSTEM,
    operation_id = "readyz",
    security(),
    responses(
        (status = 200, description = "The database answers and every migration is applied.", body = Health),
        (status = 503, description = "`unavailable`: the database is not reachable or migrations are not applied.", body = ErrorBody,
            example = json!({"error": {"code": "unavailable", "message": "the database is not reachable"}})),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.store.migrations_applied().await {
        Ok(true) => Ok(Json(Health {
            status: HealthStatus::Ok,
        })),
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
