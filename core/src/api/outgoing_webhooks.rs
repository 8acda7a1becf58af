//! Outgoing webhooks of the caller's tenant (admin only): the endpoints with their delivery
//! state, each endpoint's delivery log, a signed test send, and re-enabling a disabled one.
//!
//! Endpoints come from configuration (`[[tenants.webhooks]]`); the API does not create or
//! change them. Agents get 403; another tenant's endpoint is a 404.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::openapi::{AdminOnly, Internal, NotFound, TAG_WEBHOOKS, Unauthorized};
use super::validate::PageQuery;
use super::views::{Page, WebhookDeliveryView, WebhookEndpointView};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(deliveries))
        .routes(routes!(test))
        .routes(routes!(enable))
}

/// The `{id}` of a webhook endpoint.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
struct WebhookId(
    /// The endpoint's `id` from `[[tenants.webhooks]]`.
    #[param(example = "crm")]
    String,
);

/// The webhook endpoints of the tenant.
#[derive(Debug, Serialize, ToSchema)]
struct Endpoints {
    items: Vec<WebhookEndpointView>,
}

/// The outcome of a test send.
#[derive(Debug, Serialize, ToSchema)]
struct TestResult {
    /// The endpoint answered 2xx.
    delivered: bool,
    /// The HTTP status received (null: no response — timeout, connection error).
    #[schema(example = 200)]
    status_code: Option<u16>,
    #[schema(example = 42)]
    duration_ms: i64,
    /// Why it failed (null when delivered).
    error: Option<String>,
}

/// List the webhook endpoints with their delivery state.
///
/// Each endpoint shows whether it is enabled, its cursor (the id of the last event it
/// received), its consecutive failures and the last error.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = TAG_WEBHOOKS,
    operation_id = "listWebhooks",
    responses(
        (status = 200, description = "The tenant's configured endpoints.", body = Endpoints),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 500, response = Internal),
    )
)]
async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Endpoints>, ApiError> {
    caller.require_admin()?;
    let items = state.store.list_webhook_endpoints(&caller.tenant).await?;
    Ok(Json(Endpoints {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// An endpoint's delivery log, newest first.
///
/// One entry per HTTP attempt (event deliveries and test sends), kept for
/// `webhooks.log_retention_hours`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = TAG_WEBHOOKS,
    operation_id = "listWebhookDeliveries",
    params(WebhookId, PageQuery),
    responses(
        (status = 200, description = "A page of attempts, newest first.", body = Page<WebhookDeliveryView>),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody,
            example = json!({"error": {"code": "invalid_cursor", "message": "the cursor is not one this server issued"}})),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn deliveries(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<WebhookDeliveryView>>, ApiError> {
    caller.require_admin()?;
    let page = q.page()?;
    Ok(Json(
        state
            .store
            .list_webhook_deliveries(&caller.tenant, &id, &page)
            .await?
            .into(),
    ))
}

/// Send a test event to an endpoint now.
///
/// POSTs a signed `webhook.test` event (id 0; not part of the event log) and answers with
/// the outcome. The attempt is logged; a failed test does not count towards disabling.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = TAG_WEBHOOKS,
    operation_id = "testWebhook",
    params(WebhookId),
    responses(
        (status = 200, description = "The outcome of the attempt (also when it failed).", body = TestResult),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn test(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TestResult>, ApiError> {
    caller.require_admin()?;
    let outcome = state
        .webhooks
        .send_test(state.store.as_ref(), &caller.tenant, &id)
        .await?;
    Ok(Json(TestResult {
        delivered: outcome.delivered(),
        status_code: outcome.status,
        duration_ms: outcome.duration_ms,
        error: outcome.error,
    }))
}

/// Re-enable an endpoint and reset its failures.
///
/// Delivery resumes at once from the endpoint's cursor: the events it missed while disabled
/// (within the event log's retention) arrive first, in order.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/enable",
    tag = TAG_WEBHOOKS,
    operation_id = "enableWebhook",
    params(WebhookId),
    responses(
        (status = 200, description = "The endpoint, enabled.", body = WebhookEndpointView),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn enable(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    caller.require_admin()?;
    let view = state
        .store
        .enable_webhook_endpoint(&caller.tenant, &id)
        .await?;
    tracing::info!(tenant = %caller.tenant, endpoint = %id, by = %caller.subject, "webhook endpoint enabled");
    state.webhooks.wake();
    Ok(Json(view.into()))
}
