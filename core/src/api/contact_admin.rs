//! Merging two contacts of one person and erasing a person (GDPR): admin only.
//!
//! A merge moves `from`'s identities, conversations and participations to the contact in
//! the path and leaves `from` a tombstone whose id answers 308 to the survivor. Erasure
//! removes the person's data in one transaction (see `store::sql_contact_erase` for what
//! goes and what stays) and then deletes the stored files no other attachment shares.

use super::AppState;
use super::auth::Caller;
use super::contact_views::{ContactDetailView, ErasureView, MergeBody};
use super::contacts::{ContactId, contact_error};
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::openapi::{
    AdminOnly, ContactMoved, ContactNotFound, Internal, MalformedJson, PayloadTooLarge,
    TAG_CONTACTS, Unauthorized, UnsupportedMediaType,
};
use crate::store::{Erasure, Refusal, StoreError};
use axum::Json;
use axum::extract::State;

/// Merge another contact of the same person into this one (admin only).
///
/// `from`'s identities, conversations (with their participations) and audit trail move to
/// this contact; its name, notes and attributes complete this one's (this contact's win).
/// `from` becomes a tombstone: its id answers 308 to this contact. One transaction, with an
/// audit entry and a `contact.merged` event. Merging a `from` that is already merged into
/// this contact changes nothing and answers 200.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/merge",
    tag = TAG_CONTACTS,
    operation_id = "mergeContacts",
    params(ContactId),
    request_body = MergeBody,
    responses(
        (status = 200, description = "The contact after the merge.", body = ContactDetailView),
        (status = 308, response = ContactMoved),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = ContactNotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`validation_failed`: `from` is missing, malformed, this \
            contact itself, names no contact of the tenant, or an erased one.", body = ErrorBody,
            example = json!({"error": {"code": "validation_failed", "message": "from: no contact 0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9c in this tenant"}})),
        (status = 500, response = Internal),
        (status = 503, description = "`unavailable`: a contact changed while merging; try again.", body = ErrorBody,
            example = json!({"error": {"code": "unavailable", "message": "the contact changed meanwhile; try again"}})),
    )
)]
pub(super) async fn merge(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<Json<ContactDetailView>, ApiError> {
    caller.require_admin()?;
    let from = body.source(&id)?;
    let merged = state
        .store
        .merge_contacts(&caller.tenant, &id, from, &caller.subject)
        .await
        .map_err(|e| merge_error(e, &id))?;
    Ok(Json(merged.into()))
}

/// A refusal about `from` names the field (422); one about the path's contact is answered
/// as for any contact URL.
fn merge_error(e: StoreError, id: &str) -> ApiError {
    match e {
        StoreError::Refused(Refusal::NoSuchContact { contact }) => {
            ApiError::validation(format!("from: no contact {contact} in this tenant"))
        }
        StoreError::Refused(Refusal::ContactErased { contact }) if contact != id => {
            ApiError::validation(format!("from: contact {contact} was erased"))
        }
        other => contact_error(other, "/merge", None),
    }
}

/// Erase a contact (admin only; GDPR).
///
/// Removes, in one transaction, every message's subject, text, HTML, addresses and provider
/// data in the contact's conversations (the messages stay, marked `erased`), their
/// attachments (marked `erased`), reactions and raw journal entries, and the contact's
/// identities (a new message from the same address makes a new contact); the contact
/// becomes a tombstone named `erased` and its id then answers 404. Pending sends to it are
/// cancelled. The conversations stay. An audit entry and a `contact.erased` event record
/// it. After the commit, the stored files of the attachments are deleted unless another
/// attachment holds the same bytes.
#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}",
    tag = TAG_CONTACTS,
    operation_id = "eraseContact",
    params(ContactId),
    responses(
        (status = 200, description = "What was erased.", body = ErasureView),
        (status = 308, response = ContactMoved),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = ContactNotFound),
        (status = 500, response = Internal),
    )
)]
pub(super) async fn erase(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ErasureView>, ApiError> {
    caller.require_admin()?;
    let erasure = state
        .store
        .erase_contact(&caller.tenant, &id, &caller.subject)
        .await
        .map_err(|e| contact_error(e, "", None))?;
    tracing::info!(contact = %erasure.contact_id, staff = %caller.subject, "contact erased");
    let (deleted, shared) = delete_blobs(&state, &erasure).await;
    Ok(Json(ErasureView::new(&erasure, deleted, shared)))
}

/// Deletes the erased attachments' files that no attachment names any more; returns how
/// many were deleted and how many are shared with other attachments. A failure is logged
/// (the database part is committed; the file stays until deleted by hand).
async fn delete_blobs(state: &AppState, erasure: &Erasure) -> (i64, i64) {
    let (mut deleted, mut shared) = (0, 0);
    for key in &erasure.blob_keys {
        match state.store.blob_in_use(key).await {
            Ok(true) => shared += 1,
            Ok(false) => match state.blobs.delete(key).await {
                Ok(_) => deleted += 1,
                Err(e) => tracing::error!(%key, error = %e, "erased attachment's file not deleted"),
            },
            Err(e) => tracing::error!(%key, error = %e, "erased attachment's file not deleted"),
        }
    }
    (deleted, shared)
}
