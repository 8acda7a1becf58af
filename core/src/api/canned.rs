//! Canned replies: a tenant's reusable texts, each with a shortcut a composer completes after
//! `/` and placeholders (`{{contact.name}}`, `{{contact.first_name}}`,
//! `{{conversation.subject}}`, `{{agent.name}}`) filled for a conversation on request.

use super::AppState;
use super::auth::Caller;
use super::composer::{canned_draft, placeholders, render};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::openapi::{
    Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_MESSAGES, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::validate::non_empty;
use super::views::rfc3339;
use crate::domain::model::Millis;
use crate::store::CannedReplyRow;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A canned reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct CannedReplyView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9e")]
    id: String,
    /// Typed after `/` in a composer.
    #[schema(example = "ship")]
    shortcut: String,
    #[schema(example = "Shipping times")]
    title: String,
    /// The text with its placeholders.
    #[schema(example = "Hi {{contact.first_name}}, orders ship within 2 days.")]
    body: String,
    /// The body filled for the conversation named by `conversation_id`; absent otherwise.
    #[schema(required = false, example = "Hi Ann, orders ship within 2 days.")]
    #[serde(skip_serializing_if = "Option::is_none")]
    rendered: Option<String>,
    created_by: String,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    updated_at: Millis,
}

impl CannedReplyView {
    pub fn new(r: CannedReplyRow, rendered: Option<String>) -> Self {
        Self {
            id: r.id,
            shortcut: r.shortcut,
            title: r.title,
            body: r.body,
            rendered,
            created_by: r.created_by,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct CannedQuery {
    /// Fill each reply's placeholders for this conversation (`rendered`).
    #[param(nullable = false)]
    conversation_id: Option<String>,
}

/// The tenant's canned replies, by shortcut.
#[utoipa::path(
    get,
    path = "/api/v1/canned-replies",
    tag = TAG_MESSAGES,
    operation_id = "listCannedReplies",
    params(CannedQuery),
    responses(
        (status = 200, description = "Every canned reply of the tenant.", body = Vec<CannedReplyView>),
        (status = 400, description = "`bad_request`: an unknown parameter.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_canned(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CannedQuery>,
) -> Result<Json<Vec<CannedReplyView>>, ApiError> {
    let values = match non_empty(q.conversation_id) {
        Some(id) => {
            super::visibility::check(&state, &caller, crate::store::ConversationOf::Id(&id))
                .await?;
            let conversation = state.store.get_conversation(&caller.tenant, &id).await?;
            Some(placeholders(&conversation, &caller.subject))
        }
        None => None,
    };
    let rows = state.store.list_canned(&caller.tenant).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let rendered = values.as_ref().map(|v| render(&r.body, v));
                CannedReplyView::new(r, rendered)
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"shortcut": "ship", "title": "Shipping times", "body": "Hi {{contact.first_name}}, orders ship within 2 days."}))]
pub(super) struct CannedBody {
    /// 1-32 letters, digits, `-` or `_`, unique in the tenant.
    #[schema(min_length = 1, max_length = 32)]
    shortcut: String,
    #[schema(min_length = 1, max_length = 120)]
    title: String,
    #[schema(min_length = 1, max_length = 10000)]
    body: String,
}

/// Create a canned reply.
#[utoipa::path(
    post,
    path = "/api/v1/canned-replies",
    tag = TAG_MESSAGES,
    operation_id = "createCannedReply",
    request_body = CannedBody,
    responses(
        (status = 201, description = "The canned reply.", body = CannedReplyView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 409, description = "`shortcut_taken`: another canned reply has the shortcut.", body = ErrorBody,
            example = json!({"error": {"code": "shortcut_taken", "message": "the shortcut \"ship\" is taken by another canned reply"}})),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_canned(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CannedBody>,
) -> Result<(StatusCode, Json<CannedReplyView>), ApiError> {
    let draft = canned_draft(&body.shortcut, &body.title, &body.body)?;
    let row = state
        .store
        .put_canned(&caller.tenant, None, &draft, &caller.subject)
        .await?;
    Ok((StatusCode::CREATED, Json(CannedReplyView::new(row, None))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Shipping (EU)"}))]
pub(super) struct CannedPatch {
    #[schema(min_length = 1, max_length = 32)]
    shortcut: Option<String>,
    #[schema(min_length = 1, max_length = 120)]
    title: Option<String>,
    #[schema(min_length = 1, max_length = 10000)]
    body: Option<String>,
}

#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct CannedId(
    /// The canned reply's id.
    String,
);

/// Change a canned reply (fields left out stay).
#[utoipa::path(
    patch,
    path = "/api/v1/canned-replies/{id}",
    tag = TAG_MESSAGES,
    operation_id = "updateCannedReply",
    params(CannedId),
    request_body = CannedPatch,
    responses(
        (status = 200, description = "The canned reply after the change.", body = CannedReplyView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, description = "`shortcut_taken`: another canned reply has the shortcut.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn update_canned(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<CannedPatch>,
) -> Result<Json<CannedReplyView>, ApiError> {
    let current = state
        .store
        .list_canned(&caller.tenant)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound)?;
    let draft = canned_draft(
        patch.shortcut.as_deref().unwrap_or(&current.shortcut),
        patch.title.as_deref().unwrap_or(&current.title),
        patch.body.as_deref().unwrap_or(&current.body),
    )?;
    let row = state
        .store
        .put_canned(&caller.tenant, Some(&id), &draft, &caller.subject)
        .await?;
    Ok(Json(CannedReplyView::new(row, None)))
}

/// Delete a canned reply.
#[utoipa::path(
    delete,
    path = "/api/v1/canned-replies/{id}",
    tag = TAG_MESSAGES,
    operation_id = "deleteCannedReply",
    params(CannedId),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn delete_canned(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_canned(&caller.tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
