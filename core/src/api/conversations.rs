//! Conversations: list (filters, cursor pagination), detail, messages, mark read,
//! close/reopen, spam/not-spam, and the caller's unread summary.
//!
//! Every store call is scoped by the caller's tenant, so another tenant's conversation is
//! a 404, and so is one the caller's agent visibility hides (see [`super::visibility`]). Query parameters with an empty value count as absent; unknown parameters are a
//! 400 so a typo never silently widens a filter. Replies and new outbound conversations
//! live in [`super::outbound`], assignment in [`super::assignment`].

use super::AppState;
use super::auth::Caller;
use super::conversation_views::Priority;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::media::MediaUrls;
use super::openapi::{AdminOnly, ConversationId, Internal, NotFound, SpamNeedsAdmin, Unauthorized};
use super::openapi::{TAG_CONVERSATIONS, TAG_MESSAGES};
use super::validate::PageQuery;
use super::validate::{self, non_empty};
use super::views::{
    AuditEntry, ConversationPage, ConversationView, MessageView, Page, ParticipantView,
    UnreadSummary,
};
use super::visibility;
use crate::domain::model::ConversationStatus;
use crate::store::{ConversationFilter, ConversationOf};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, super::outbound::start))
        .routes(routes!(detail, super::triage::update))
        .routes(routes!(super::triage::message))
        .routes(routes!(messages, super::outbound::reply))
        .routes(routes!(mark_read))
        .routes(routes!(close))
        .routes(routes!(reopen))
        .routes(routes!(spam))
        .routes(routes!(not_spam))
        .routes(routes!(unread))
        .routes(routes!(audit))
}

/// Filters and paging of the conversation list. An empty value counts as absent; an
/// unknown parameter is a 400.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only conversations with this status.
    #[param(value_type = Option<ConversationStatus>, nullable = false)]
    status: Option<String>,
    /// Only conversations on this channel (a channel id).
    #[param(nullable = false, example = "acme-sms")]
    channel: Option<String>,
    /// Only conversations with this contact (a contact id).
    #[param(nullable = false)]
    contact: Option<String>,
    /// Only conversations assigned to this staff identity; `me` for the caller's own,
    /// `none` for unassigned ones.
    #[param(nullable = false, example = "me")]
    assignee: Option<String>,
    /// `true`: only conversations with unread messages; `false`: only those without.
    #[param(value_type = Option<bool>, nullable = false)]
    unread: Option<String>,
    /// Only conversations with this priority (`low`, `normal`, `high`, `urgent`), or `none`
    /// for those without one.
    #[param(nullable = false, example = "high")]
    priority: Option<String>,
    /// Only conversations with this tag.
    #[param(nullable = false, example = "billing")]
    tag: Option<String>,
    /// Only conversations changed at or after this time (RFC 3339).
    #[param(nullable = false, format = DateTime, example = "2026-05-01T00:00:00Z")]
    updated_since: Option<String>,
    /// `true`: also count all matching conversations (`total`); costs a second query.
    #[param(value_type = Option<bool>, nullable = false)]
    total: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(nullable = false)]
    cursor: Option<String>,
    /// Page size.
    #[param(value_type = Option<i64>, nullable = false, minimum = 1, maximum = 100, default = 25)]
    limit: Option<String>,
}

/// List conversations, newest activity first.
#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = TAG_CONVERSATIONS,
    operation_id = "listConversations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of conversations, each with its latest message.", body = ConversationPage),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad value \
            (status, unread, priority, updated_since, total, limit); `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody,
            example = json!({"error": {"code": "invalid_cursor", "message": "the cursor is not one this server issued"}})),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    let status = match non_empty(q.status) {
        Some(s) => Some(
            ConversationStatus::parse(&s)
                .ok_or_else(|| ApiError::bad_request("status must be one of open, closed, spam"))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let unread = match non_empty(q.unread).as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::bad_request("unread must be true or false")),
        None => None,
    };
    // The store's filter names unassigned conversations with the empty string.
    let assignee = non_empty(q.assignee).map(|a| match a.as_str() {
        "none" => String::new(),
        "me" => caller.subject.clone(),
        _ => a,
    });
    let priority = match non_empty(q.priority) {
        Some(p) if p == "none" => Some(String::new()),
        Some(p) if Priority::ALL.contains(&p.as_str()) => Some(p),
        Some(_) => {
            return Err(ApiError::bad_request(
                "priority must be one of low, normal, high, urgent, none",
            ));
        }
        None => None,
    };
    let updated_since = match non_empty(q.updated_since) {
        Some(t) => Some(validate::parse_time("updated_since", &t)?),
        None => None,
    };
    let total = match non_empty(q.total).as_deref() {
        Some("true") => true,
        Some("false") | None => false,
        Some(_) => return Err(ApiError::bad_request("total must be true or false")),
    };
    let filter = ConversationFilter {
        status,
        channel: non_empty(q.channel),
        contact: non_empty(q.contact),
        assignee,
        unread,
        priority,
        tag: non_empty(q.tag),
        updated_since,
        viewer: Some(caller.subject.clone()),
        visible_to: state.access.restricted_to(&caller).map(str::to_string),
    };
    let page = validate::page_request(q.cursor, q.limit)?;
    let rows = state
        .store
        .list_conversations(&caller.tenant, &filter, &page)
        .await?;
    let total = match total {
        true => Some(
            state
                .store
                .count_conversations(&caller.tenant, &filter)
                .await?,
        ),
        false => None,
    };
    Ok(Json(ConversationPage::new(rows, total)))
}

/// A conversation with its participants and their read state.
#[derive(Debug, Serialize, ToSchema)]
struct Detail {
    conversation: ConversationView,
    participants: Vec<ParticipantView>,
}

/// A conversation and its participants.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    tag = TAG_CONVERSATIONS,
    operation_id = "getConversation",
    params(ConversationId),
    responses(
        (status = 200, description = "The conversation and its participants.", body = Detail),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn detail(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Detail>, ApiError> {
    let conversation = visibility::conversation(&state, &caller, &id).await?;
    let participants = state.store.list_participants(&caller.tenant, &id).await?;
    Ok(Json(Detail {
        conversation: conversation.into(),
        participants: participants.into_iter().map(Into::into).collect(),
    }))
}

/// The messages of a conversation, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/messages",
    tag = TAG_MESSAGES,
    operation_id = "listMessages",
    params(ConversationId, PageQuery),
    responses(
        (status = 200, description = "A page of messages, newest first.", body = Page<MessageView>),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "limit must be an integer from 1 to 100"}})),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn messages(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let page = q.page()?;
    visibility::check(&state, &caller, ConversationOf::Id(&id)).await?;
    let rows = state
        .store
        .list_messages(&caller.tenant, &id, &page)
        .await?;
    let urls = MediaUrls::new(&state.urls, &caller.tenant);
    Ok(Json(Page::build(rows, |m| MessageView::new(m, &urls))))
}

/// The audit trail of the conversation: who replied, read, assigned and changed its
/// status (API token name or JWT `sub`), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/audit",
    tag = TAG_CONVERSATIONS,
    operation_id = "listAudit",
    params(ConversationId, PageQuery),
    responses(
        (status = 200, description = "A page of audit entries, newest first.", body = Page<AuditEntry>),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn audit(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let page = q.page()?;
    visibility::check(&state, &caller, ConversationOf::Id(&id)).await?;
    Ok(Json(
        state
            .store
            .list_audit(&caller.tenant, &id, &page)
            .await?
            .into(),
    ))
}

/// Mark the conversation read for the caller: their unread count becomes zero.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/read",
    tag = TAG_CONVERSATIONS,
    operation_id = "markConversationRead",
    params(ConversationId),
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn mark_read(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    visibility::check(&state, &caller, ConversationOf::Id(&id)).await?;
    let view = state
        .store
        .mark_read(&caller.tenant, &id, &caller.subject)
        .await?;
    let receipts = state
        .connectors
        .get(&view.channel_id)
        .is_some_and(|c| c.sends_read_receipts());
    if receipts && state.store.queue_read_receipt(&caller.tenant, &id).await? {
        state.jobs.notify_one();
    }
    Ok(Json(view.into()))
}

/// Close the conversation.
///
/// Sets the status to `closed`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/close",
    tag = TAG_CONVERSATIONS,
    operation_id = "closeConversation",
    params(ConversationId),
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 401, response = Unauthorized),
        (status = 403, response = SpamNeedsAdmin),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn close(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    change_status(&state, &caller, &id, ConversationStatus::Closed).await
}

/// Reopen the conversation.
///
/// Sets the status to `open`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/reopen",
    tag = TAG_CONVERSATIONS,
    operation_id = "reopenConversation",
    params(ConversationId),
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 401, response = Unauthorized),
        (status = 403, response = SpamNeedsAdmin),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn reopen(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    change_status(&state, &caller, &id, ConversationStatus::Open).await
}

/// Close or reopen. Taking a conversation out of `spam` this way is the same as
/// not-spam, so it needs the admin role too.
pub(super) async fn change_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: ConversationStatus,
) -> Result<Json<ConversationView>, ApiError> {
    let current = visibility::conversation(state, caller, id).await?;
    if current.status == ConversationStatus::Spam.as_str() && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "only an admin can change the status of a conversation marked as spam".into(),
        ));
    }
    Ok(Json(
        state
            .store
            .set_status(&caller.tenant, id, status, &caller.subject)
            .await?
            .into(),
    ))
}

/// Mark the conversation as spam (admin only).
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/spam",
    tag = TAG_CONVERSATIONS,
    operation_id = "markConversationSpam",
    params(ConversationId),
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn spam(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    set_spam_status(&state, &caller, &id, ConversationStatus::Spam).await
}

/// Mark the conversation as not spam (admin only).
///
/// Sets the status back to `open`.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/not-spam",
    tag = TAG_CONVERSATIONS,
    operation_id = "markConversationNotSpam",
    params(ConversationId),
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn not_spam(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    set_spam_status(&state, &caller, &id, ConversationStatus::Open).await
}

/// Marking spam and not-spam: admin only, any current status.
async fn set_spam_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: ConversationStatus,
) -> Result<Json<ConversationView>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        state
            .store
            .set_status(&caller.tenant, id, status, &caller.subject)
            .await?
            .into(),
    ))
}

/// Unread counts for the caller's tenant and for the caller.
#[utoipa::path(
    get,
    path = "/api/v1/unread",
    tag = TAG_CONVERSATIONS,
    operation_id = "unreadSummary",
    responses(
        (status = 200, description = "Unread counts.", body = UnreadSummary),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn unread(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<UnreadSummary>, ApiError> {
    Ok(Json(
        state
            .store
            .unread_summary(
                &caller.tenant,
                &caller.subject,
                state.access.restricted_to(&caller),
            )
            .await?
            .into(),
    ))
}

/// Marks read as `POST /read` does, read receipts included (for bulk actions).
pub(super) async fn mark_read_one(
    caller: &Caller,
    state: &AppState,
    id: &str,
) -> Result<ConversationView, ApiError> {
    let Json(view) = mark_read(
        caller.clone(),
        State(state.clone()),
        ApiPath(id.to_string()),
    )
    .await?;
    Ok(view)
}
