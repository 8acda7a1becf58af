//! Contacts: search and list, details, changes (name, notes, custom attributes), a
//! person's conversations on every channel and the contact's audit trail. Merging and
//! erasure (admin only) live in [`super::contact_admin`].
//!
//! Every store call is scoped by the caller's tenant: another tenant's contact is a 404.
//! A contact merged into another is a tombstone: every `/api/v1/contacts/{id}...` request
//! naming it is answered 308 Permanent Redirect to the same URL of the survivor (query
//! string kept), `contact_merged`. An erased contact is a 404 whose message says so (its
//! conversations stay, under `/api/v1/conversations`).

use super::AppState;
use super::auth::Caller;
use super::contact_views::{ContactDetailView, ContactPatchBody};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::openapi::{
    ContactMoved, ContactNotFound, Internal, MalformedJson, PayloadTooLarge, TAG_CONTACTS,
    Unauthorized, UnsupportedMediaType,
};
use super::validate::PageQuery;
use super::validate::{self, non_empty};
use super::views::{AuditEntry, ConversationView, Page};
use crate::store::{ContactFilter, Refusal, StoreError};
use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The longest search text.
pub const MAX_QUERY_CHARS: usize = 200;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail, update, super::contact_admin::erase))
        .routes(routes!(conversations))
        .routes(routes!(audit))
        .routes(routes!(super::contact_admin::merge))
}

/// The `{id}` of a contact.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct ContactId(
    /// The contact's id. A merged contact's id answers 308 to the survivor.
    #[param(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b")]
    String,
);

/// The store's refusals in the words of `/api/v1/contacts/{id}{suffix}`: a merged contact
/// redirects to the survivor's same URL (with `query`), an erased one is a 404.
pub(super) fn contact_error(e: StoreError, suffix: &str, query: Option<&str>) -> ApiError {
    match e {
        StoreError::Refused(Refusal::ContactMerged { contact, into }) => {
            // The query came in a valid URI: visible ASCII, fit for a header.
            let query = query
                .filter(|q| !q.is_empty() && q.bytes().all(|b| b.is_ascii_graphic()))
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            ApiError::ContactMerged {
                location: format!("/api/v1/contacts/{into}{suffix}{query}"),
                message: format!("contact {contact} was merged into {into}"),
            }
        }
        StoreError::Refused(Refusal::ContactErased { contact }) => {
            ApiError::NotFoundWith(format!("contact {contact} was erased"))
        }
        StoreError::Unavailable(_) => {
            ApiError::Unavailable("the contact changed meanwhile; try again")
        }
        other => other.into(),
    }
}

/// Search and paging of the contact list. An empty value counts as absent; an unknown
/// parameter is a 400.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only contacts whose name or any identity value (address, number) contains this
    /// text, ignoring case (PostgreSQL folds every letter its locale knows, SQLite A to Z).
    #[param(nullable = false, max_length = 200, example = "ann")]
    q: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    cursor: Option<String>,
    /// Page size.
    #[param(value_type = Option<i64>, nullable = false, minimum = 1, maximum = 100, default = 25)]
    limit: Option<String>,
}

/// List and search contacts, newest first.
///
/// Merged and erased contacts are not listed. Each item has the contact's identities on
/// every channel, its number of conversations and its last activity.
#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = TAG_CONTACTS,
    operation_id = "listContacts",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of contacts, newest first.", body = Page<ContactDetailView>),
        (status = 400, description = "`bad_request`: an unknown parameter, a bad limit or a `q` \
            over 200 characters; `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "q must be at most 200 characters"}})),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<ContactDetailView>>, ApiError> {
    let q = non_empty(query.q.map(|q| q.trim().to_string()));
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let page = validate::page_request(query.cursor, query.limit)?;
    let filter = ContactFilter { q };
    Ok(Json(
        state
            .store
            .list_contacts(&caller.tenant, &filter, &page)
            .await?
            .into(),
    ))
}

/// A contact with its identities and activity.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = TAG_CONTACTS,
    operation_id = "getContact",
    params(ContactId),
    responses(
        (status = 200, description = "The contact.", body = ContactDetailView),
        (status = 308, response = ContactMoved),
        (status = 401, response = Unauthorized),
        (status = 404, response = ContactNotFound),
        (status = 500, response = Internal),
    )
)]
async fn detail(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ContactDetailView>, ApiError> {
    let contact = state
        .store
        .get_contact(&caller.tenant, &id)
        .await
        .map_err(|e| contact_error(e, "", None))?;
    Ok(Json(contact.into()))
}

/// Change a contact's name, notes or custom attributes.
///
/// Only the fields present change; `attributes` replaces the whole object. Recorded in the
/// contact's audit trail and sent as a `contact.updated` event.
#[utoipa::path(
    patch,
    path = "/api/v1/contacts/{id}",
    tag = TAG_CONTACTS,
    operation_id = "updateContact",
    params(ContactId),
    request_body = ContactPatchBody,
    responses(
        (status = 200, description = "The contact after the change.", body = ContactDetailView),
        (status = 308, response = ContactMoved),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 404, response = ContactNotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`validation_failed`: the message names the field \
            (`name`, `notes`, `attributes`) and the rule it breaks, or an unknown field.", body = ErrorBody,
            example = json!({"error": {"code": "validation_failed", "message": "attributes must be a JSON object"}})),
        (status = 500, response = Internal),
    )
)]
async fn update(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ContactPatchBody>,
) -> Result<Json<ContactDetailView>, ApiError> {
    let patch = body.into_patch()?;
    let contact = state
        .store
        .update_contact(&caller.tenant, &id, &patch, &caller.subject)
        .await
        .map_err(|e| contact_error(e, "", None))?;
    Ok(Json(contact.into()))
}

/// The person's conversations on every channel, newest activity first.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/conversations",
    tag = TAG_CONTACTS,
    operation_id = "listContactConversations",
    params(ContactId, PageQuery),
    responses(
        (status = 200, description = "A page of conversations, newest activity first.", body = Page<ConversationView>),
        (status = 308, response = ContactMoved),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody,
            example = json!({"error": {"code": "invalid_cursor", "message": "the cursor is not one this server issued"}})),
        (status = 401, response = Unauthorized),
        (status = 404, response = ContactNotFound),
        (status = 500, response = Internal),
    )
)]
async fn conversations(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ConversationView>>, ApiError> {
    let page = q.page()?;
    let mut rows = state
        .store
        .list_contact_conversations(&caller.tenant, &id, &page)
        .await
        .map_err(|e| contact_error(e, "/conversations", raw.as_deref()))?;
    // An agent who sees only their own and unassigned conversations sees only those here
    // too (a page may then hold fewer rows; its cursor still leads on).
    if let Some(me) = state.access.restricted_to(&caller) {
        rows.items
            .retain(|c| c.assignee.as_deref().is_none_or(|a| a == me));
    }
    Ok(Json(rows.into()))
}

/// The contact's audit trail: who changed and merged it, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/audit",
    tag = TAG_CONTACTS,
    operation_id = "listContactAudit",
    params(ContactId, PageQuery),
    responses(
        (status = 200, description = "A page of audit entries, newest first.", body = Page<AuditEntry>),
        (status = 308, response = ContactMoved),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = ContactNotFound),
        (status = 500, response = Internal),
    )
)]
async fn audit(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let page = q.page()?;
    let rows = state
        .store
        .list_contact_audit(&caller.tenant, &id, &page)
        .await
        .map_err(|e| contact_error(e, "/audit", raw.as_deref()))?;
    Ok(Json(rows.into()))
}
