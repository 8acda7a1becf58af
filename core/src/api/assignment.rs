//! Assigning a conversation to a member of the staff directory, or unassigning it.
//!
//! An agent may assign a visible conversation to themselves or unassign themselves; anything
//! else needs the admin role. The assignee must be an active entry of the tenant's staff
//! directory ([`super::staff`]); the caller may always take a conversation themselves unless
//! an admin deactivated them (a caller is recorded in the directory when it authenticates).

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::openapi::{
    ConversationId, Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_CONVERSATIONS,
    Unauthorized, UnsupportedMediaType,
};
use super::validate;
use super::views::ConversationView;
use super::visibility;
use crate::store::StoreError;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assign))
}

/// Who the conversation is assigned to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"assignee": "alice"}))]
struct AssignBody {
    /// An active staff member's id (an API token's name or a JWT's `sub`, as
    /// `GET /api/v1/staff` lists them): one non-blank line without control characters, at
    /// most 255 characters; or null to unassign. Required.
    // Outer `None`: the field is missing; `Some(None)`: explicit null (unassign).
    #[serde(default, deserialize_with = "super::validate::present")]
    #[schema(value_type = Option<String>, required = true, min_length = 1, max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    assignee: Option<Option<String>>,
}

/// Assign the conversation, or unassign it with null.
///
/// An agent may assign a conversation to themselves or unassign themselves; anything else
/// needs the admin role.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/assign",
    tag = TAG_CONVERSATIONS,
    operation_id = "assignConversation",
    params(ConversationId),
    request_body = AssignBody,
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`forbidden`: agents may only assign conversations to \
            themselves and unassign themselves.", body = ErrorBody,
            example = json!({"error": {"code": "forbidden", "message": "agents may only assign conversations to themselves"}})),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`validation_failed`: `assignee` is missing, malformed, \
            not in the tenant's staff directory, or inactive there.", body = ErrorBody,
            example = json!({"error": {"code": "validation_failed", "message": "assignee \"carol\" is not in the staff directory (see GET /api/v1/staff)"}})),
        (status = 500, response = Internal),
    )
)]
async fn assign(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<Json<ConversationView>, ApiError> {
    let assignee = body
        .assignee
        .ok_or_else(|| ApiError::validation("assignee is required (null to unassign)"))?;
    if let Some(a) = &assignee {
        validate::single_line("assignee", a, validate::MAX_NAME_CHARS)?;
    }
    let current = visibility::conversation(&state, &caller, &id).await?;
    if !caller.is_admin() {
        match &assignee {
            Some(a) if *a == caller.subject => {}
            Some(_) => {
                return Err(ApiError::Forbidden(
                    "agents may only assign conversations to themselves".into(),
                ));
            }
            None => {
                if current
                    .assignee
                    .as_deref()
                    .is_some_and(|a| a != caller.subject)
                {
                    return Err(ApiError::Forbidden(
                        "agents may only unassign themselves".into(),
                    ));
                }
            }
        }
    }
    if let Some(a) = &assignee {
        require_assignable(&state, &caller, a).await?;
    }
    Ok(Json(
        state
            .store
            .assign(&caller.tenant, &id, assignee.as_deref(), &caller.subject)
            .await?
            .into(),
    ))
}

/// 422 unless `assignee` is an active entry of the caller's staff directory. The caller
/// themselves needs no entry (they authenticated, so they are being recorded), unless one
/// marks them inactive.
async fn require_assignable(
    state: &AppState,
    caller: &Caller,
    assignee: &str,
) -> Result<(), ApiError> {
    match state.store.get_staff(&caller.tenant, assignee).await {
        Ok(entry) if entry.active => Ok(()),
        Ok(_) => Err(ApiError::validation(format!(
            "assignee {assignee:?} is inactive in the staff directory"
        ))),
        Err(StoreError::NotFound) if assignee == caller.subject => Ok(()),
        Err(StoreError::NotFound) => Err(ApiError::validation(format!(
            "assignee {assignee:?} is not in the staff directory (see GET /api/v1/staff)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Assigns as `POST /assign` does, with the same role rules (for bulk actions).
pub(super) async fn assign_one(
    caller: &Caller,
    state: &AppState,
    id: &str,
    assignee: Option<String>,
) -> Result<ConversationView, ApiError> {
    let Json(view) = assign(
        caller.clone(),
        State(state.clone()),
        ApiPath(id.to_string()),
        ApiJson(AssignBody {
            assignee: Some(assignee),
        }),
    )
    .await?;
    Ok(view)
}
