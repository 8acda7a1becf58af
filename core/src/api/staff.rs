//! The caller (`GET /api/v1/me`) and the tenant's staff directory (`/api/v1/staff`).
//!
//! The directory lists every identity that authenticated (API token names, JWT subjects;
//! recorded by [`super::access::SeenCache`]) and the entries admins add, with a display
//! name, an email and the active flag. Everyone may read it; only admins change it.
//! Assignments must name an active entry (see [`super::assignment`]). Deleting an entry
//! forgets it; an identity that authenticates again is recorded again (revoke its token to
//! keep it out, or set `active` to false to stop assignments to it).

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::openapi::{
    AdminOnly, Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_STAFF, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::validate::PageQuery;
use super::validate::{self, MAX_NAME_CHARS};
use super::views::{MeView, Page, StaffView};
use crate::store::{NewStaff, StaffChange, StoreError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
}

/// The caller: identity, role, tenant, credential kind and visibility.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = TAG_STAFF,
    operation_id = "me",
    responses(
        (status = 200, description = "Who the token or JWT authenticates as.", body = MeView),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn me(caller: Caller, State(state): State<AppState>) -> Result<Json<MeView>, ApiError> {
    let entry = match state.store.get_staff(&caller.tenant, &caller.subject).await {
        Ok(entry) => Some(entry),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let visibility = state.access.visibility(&caller);
    Ok(Json(MeView::new(&caller, entry, visibility)))
}

/// The tenant's staff directory, by id.
#[utoipa::path(
    get,
    path = "/api/v1/staff",
    tag = TAG_STAFF,
    operation_id = "listStaff",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the directory.", body = Page<StaffView>),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody,
            example = json!({"error": {"code": "invalid_cursor", "message": "the cursor is not one this server issued"}})),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<StaffView>>, ApiError> {
    let page = q.page()?;
    Ok(Json(
        state.store.list_staff(&caller.tenant, &page).await?.into(),
    ))
}

/// The `{id}` of a staff member.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
struct StaffId(
    /// The staff identity (API token name or JWT `sub`).
    #[param(example = "alice")]
    String,
);

/// One entry of the directory.
#[utoipa::path(
    get,
    path = "/api/v1/staff/{id}",
    tag = TAG_STAFF,
    operation_id = "getStaff",
    params(StaffId),
    responses(
        (status = 200, description = "The entry.", body = StaffView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<StaffView>, ApiError> {
    Ok(Json(
        state.store.get_staff(&caller.tenant, &id).await?.into(),
    ))
}

/// A new directory entry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "alice", "display_name": "Alice Liddell", "email": "alice@acme.example"}))]
struct CreateBody {
    /// The staff identity, as the member's API token name or JWT `sub` will carry it: one
    /// non-blank line without control characters, at most 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "alice"
    )]
    id: String,
    /// At most 255 characters, one line.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "Alice Liddell"
    )]
    display_name: Option<String>,
    /// An address with one `@` and no spaces or control characters, at most 254 characters.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+@[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+$",
        example = "alice@acme.example"
    )]
    email: Option<String>,
    /// Default true; inactive members cannot be assigned conversations.
    #[schema(default = true)]
    active: Option<bool>,
}

/// Add a member to the directory (admin only).
///
/// For someone who has not authenticated yet (a JWT user before their first login), so
/// they can be assigned conversations; an identity already recorded is changed with PATCH.
#[utoipa::path(
    post,
    path = "/api/v1/staff",
    tag = TAG_STAFF,
    operation_id = "createStaff",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The new entry.", body = StaffView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 409, description = "`staff_exists`: the directory already has this id.", body = ErrorBody,
            example = json!({"error": {"code": "staff_exists", "message": "the staff directory already has \"alice\" (change it with PATCH)"}})),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<StaffView>), ApiError> {
    caller.require_admin()?;
    validate::single_line("id", &body.id, MAX_NAME_CHARS)?;
    check_details(body.display_name.as_deref(), body.email.as_deref())?;
    let entry = NewStaff {
        id: body.id,
        display_name: body.display_name,
        email: body.email,
        active: body.active.unwrap_or(true),
    };
    let row = state.store.create_staff(&caller.tenant, &entry).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Changes to a directory entry: only the fields present change, and at least one must be.
// (No `min_properties = 1`: utoipa-gen 5.5 writes it as `maxProperties`.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Alice L.", "active": false}))]
struct UpdateBody {
    /// At most 255 characters, one line; null clears it.
    #[serde(default, deserialize_with = "super::validate::present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    display_name: Option<Option<String>>,
    /// An address with one `@` and no spaces or control characters; null clears it.
    #[serde(default, deserialize_with = "super::validate::present")]
    #[schema(value_type = Option<String>, min_length = 3, max_length = 254,
        pattern = "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+@[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+$")]
    email: Option<Option<String>>,
    /// Inactive members cannot be assigned conversations (current assignments stay).
    #[serde(default, deserialize_with = "super::validate::present")]
    #[schema(value_type = bool)]
    active: Option<Option<bool>>,
}

/// Change a directory entry (admin only).
#[utoipa::path(
    patch,
    path = "/api/v1/staff/{id}",
    tag = TAG_STAFF,
    operation_id = "updateStaff",
    params(StaffId),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The entry after the change.", body = StaffView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
async fn update(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<StaffView>, ApiError> {
    caller.require_admin()?;
    let active = match body.active {
        Some(None) => return Err(ApiError::validation("active must be true or false")),
        other => other.flatten(),
    };
    let change = StaffChange {
        display_name: body.display_name,
        email: body.email,
        active,
    };
    if change.display_name.is_none() && change.email.is_none() && change.active.is_none() {
        return Err(ApiError::validation(
            "nothing to change: give display_name, email or active",
        ));
    }
    check_details(
        change.display_name.clone().flatten().as_deref(),
        change.email.clone().flatten().as_deref(),
    )?;
    let row = state
        .store
        .update_staff(&caller.tenant, &id, &change)
        .await?;
    Ok(Json(row.into()))
}

/// Remove an entry from the directory (admin only).
///
/// Conversations assigned to it stay assigned. An identity that authenticates again is
/// recorded again.
#[utoipa::path(
    delete,
    path = "/api/v1/staff/{id}",
    tag = TAG_STAFF,
    operation_id = "deleteStaff",
    params(StaffId),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.store.delete_staff(&caller.tenant, &id).await?;
    state.access.seen.forget(&caller.tenant, &id);
    Ok(StatusCode::NO_CONTENT)
}

/// A display name and an email address, when given.
fn check_details(display_name: Option<&str>, email: Option<&str>) -> Result<(), ApiError> {
    if let Some(name) = display_name {
        validate::single_line("display_name", name, MAX_NAME_CHARS)?;
    }
    if let Some(email) = email {
        validate::single_line("email", email, MAX_EMAIL_CHARS)?;
        let valid = matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
            && !email.contains(char::is_whitespace);
        if !valid {
            return Err(ApiError::validation(
                "email must be an address with exactly one @ and no spaces",
            ));
        }
    }
    Ok(())
}
