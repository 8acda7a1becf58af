//! Conversations: list (filters, cursor pagination), detail, messages, mark read,
//! close/reopen, assign, spam/not-spam, and the caller's unread summary.
//!
//! Every store call is scoped by the caller's tenant, so another tenant's conversation is
//! a 404. Query parameters with an empty value count as absent; unknown parameters are a
//! 400 so a typo never silently widens a filter. Replies and new outbound conversations
//! live in [`super::outbound`].

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::validate::{self, non_empty};
use crate::model::ConversationStatus;
use crate::store::{
    ConversationFilter, ConversationView, MessageView, Page, ParticipantView, UnreadSummary,
};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer, Serialize};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/conversations",
            get(list).post(super::outbound::start),
        )
        .route("/api/v1/conversations/{id}", get(detail))
        .route(
            "/api/v1/conversations/{id}/messages",
            get(messages).post(super::outbound::reply),
        )
        .route("/api/v1/conversations/{id}/read", post(mark_read))
        .route("/api/v1/conversations/{id}/close", post(close))
        .route("/api/v1/conversations/{id}/reopen", post(reopen))
        .route("/api/v1/conversations/{id}/assign", post(assign))
        .route("/api/v1/conversations/{id}/spam", post(spam))
        .route("/api/v1/conversations/{id}/not-spam", post(not_spam))
        .route("/api/v1/unread", get(unread))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    contact: Option<String>,
    /// A subject, or `none` for unassigned conversations.
    assignee: Option<String>,
    unread: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<ConversationView>>, ApiError> {
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
    let assignee = non_empty(q.assignee).map(|a| if a == "none" { String::new() } else { a });
    let filter = ConversationFilter {
        status,
        channel: non_empty(q.channel),
        contact: non_empty(q.contact),
        assignee,
        unread,
    };
    let page = validate::page_request(q.cursor, q.limit)?;
    Ok(Json(
        state
            .store
            .list_conversations(&caller.tenant, &filter, &page)
            .await?,
    ))
}

#[derive(Debug, Serialize)]
struct Detail {
    conversation: ConversationView,
    participants: Vec<ParticipantView>,
}

async fn detail(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Detail>, ApiError> {
    let conversation = state.store.get_conversation(&caller.tenant, &id).await?;
    let participants = state.store.list_participants(&caller.tenant, &id).await?;
    Ok(Json(Detail {
        conversation,
        participants,
    }))
}

/// Newest first.
async fn messages(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let page = validate::page_request(q.cursor, q.limit)?;
    Ok(Json(
        state
            .store
            .list_messages(&caller.tenant, &id, &page)
            .await?,
    ))
}

async fn mark_read(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
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
    Ok(Json(view))
}

async fn close(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    change_status(&state, &caller, &id, ConversationStatus::Closed).await
}

async fn reopen(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    change_status(&state, &caller, &id, ConversationStatus::Open).await
}

/// Close or reopen. Taking a conversation out of `spam` this way is the same as
/// not-spam, so it needs the admin role too.
async fn change_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: ConversationStatus,
) -> Result<Json<ConversationView>, ApiError> {
    let current = state.store.get_conversation(&caller.tenant, id).await?;
    if current.status == ConversationStatus::Spam.as_str() && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "only an admin can change the status of a conversation marked as spam".into(),
        ));
    }
    Ok(Json(
        state
            .store
            .set_status(&caller.tenant, id, status, &caller.subject)
            .await?,
    ))
}

async fn spam(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        state
            .store
            .set_status(
                &caller.tenant,
                &id,
                ConversationStatus::Spam,
                &caller.subject,
            )
            .await?,
    ))
}

async fn not_spam(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversationView>, ApiError> {
    caller.require_admin()?;
    Ok(Json(
        state
            .store
            .set_status(
                &caller.tenant,
                &id,
                ConversationStatus::Open,
                &caller.subject,
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// Outer `None`: the field is missing; `Some(None)`: explicit null (unassign).
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<String>>,
}

/// Distinguishes an explicit `null` from a missing field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// An agent may assign a conversation to themselves or unassign themselves; anything else
/// needs the admin role.
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
    if !caller.is_admin() {
        match &assignee {
            Some(a) if *a == caller.subject => {}
            Some(_) => {
                return Err(ApiError::Forbidden(
                    "agents may only assign conversations to themselves".into(),
                ));
            }
            None => {
                let current = state.store.get_conversation(&caller.tenant, &id).await?;
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
    Ok(Json(
        state
            .store
            .assign(&caller.tenant, &id, assignee.as_deref(), &caller.subject)
            .await?,
    ))
}

async fn unread(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<UnreadSummary>, ApiError> {
    Ok(Json(
        state
            .store
            .unread_summary(&caller.tenant, &caller.subject)
            .await?,
    ))
}
