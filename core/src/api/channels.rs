//! Channels of the caller's tenant with their sync status and outbox backlog.

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::store::ChannelView;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/channels", get(list))
}

#[derive(Debug, Serialize)]
struct Channels {
    items: Vec<ChannelView>,
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Channels>, ApiError> {
    let items = state.store.list_channels(&caller.tenant).await?;
    Ok(Json(Channels { items }))
}
