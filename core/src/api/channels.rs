//! Channels of the caller's tenant with their sync status and outbox backlog.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{Internal, TAG_CHANNELS, Unauthorized};
use super::views::ChannelView;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The channels of the caller's tenant.
#[derive(Debug, Serialize, ToSchema)]
struct Channels {
    items: Vec<ChannelView>,
}

/// The channels of the caller's tenant, with their status and outbox backlog.
#[utoipa::path(
    get,
    path = "/api/v1/channels",
    tag = TAG_CHANNELS,
    operation_id = "listChannels",
    responses(
        (status = 200, description = "Every channel of the tenant.", body = Channels),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Channels>, ApiError> {
    let items = state.store.list_channels(&caller.tenant).await?;
    Ok(Json(Channels {
        items: items.into_iter().map(Into::into).collect(),
    }))
}
