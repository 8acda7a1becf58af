//! Triage of a conversation (`PATCH /api/v1/conversations/{id}`: priority, tags, subject)
//! and a single message by id (`GET /api/v1/messages/{id}`), so a client that holds an id
//! from an event or a link needs no list call.

use super::AppState;
use super::auth::Caller;
use super::conversation_views::Priority;
use super::error::{ApiError, ApiJson, ApiPath};
use super::openapi::{
    ConversationId, Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_CONVERSATIONS,
    TAG_MESSAGES, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use super::validate;
use super::views::{ConversationView, MessageView};
use crate::store::TriageChange;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Tags a conversation carries at most.
pub const MAX_TAGS: usize = 20;
/// Characters of one tag at most.
pub const MAX_TAG_CHARS: usize = 50;

/// What to change; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"priority": "high", "tags": ["billing", "vip"]}))]
pub(super) struct TriageBody {
    /// `low`, `normal`, `high` or `urgent`; null clears it.
    #[serde(default, deserialize_with = "super::validate::present")]
    #[schema(value_type = Option<Priority>)]
    priority: Option<Option<String>>,
    /// The whole new set of tags (an empty list removes all): at most 20, each a single
    /// line of at most 50 characters; duplicates are dropped.
    #[schema(max_items = 20)]
    tags: Option<Vec<String>>,
    /// A new subject: a single line of at most 998 characters.
    #[schema(min_length = 1, max_length = 998)]
    subject: Option<String>,
}

impl TriageBody {
    /// Checks every field and turns the body into the store's change.
    fn into_change(self) -> Result<TriageChange, ApiError> {
        if let Some(Some(p)) = &self.priority
            && !Priority::ALL.contains(&p.as_str())
        {
            return Err(ApiError::invalid(
                "priority",
                "priority must be one of low, normal, high, urgent (or null)",
            ));
        }
        let tags = match self.tags {
            Some(tags) => Some(clean_tags(tags)?),
            None => None,
        };
        if let Some(subject) = &self.subject {
            validate::single_line("subject", subject, validate::MAX_SUBJECT_CHARS)?;
        }
        if self.priority.is_none() && tags.is_none() && self.subject.is_none() {
            return Err(ApiError::validation(
                "nothing to change: give priority, tags or subject",
            ));
        }
        Ok(TriageChange {
            priority: self.priority,
            tags,
            subject: self.subject.map(|s| s.trim().to_string()),
        })
    }
}

/// Trimmed, checked and without duplicates (first spelling kept, order kept).
fn clean_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        validate::single_line("tags", &tag, MAX_TAG_CHARS)?;
        let tag = tag.trim().to_string();
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "tags",
            format!("tags: at most {MAX_TAGS} tags"),
        ));
    }
    Ok(out)
}

/// Change a conversation's priority, tags or subject.
///
/// Recorded in the audit trail and announced as `conversation.updated`.
#[utoipa::path(
    patch,
    path = "/api/v1/conversations/{id}",
    tag = TAG_CONVERSATIONS,
    operation_id = "updateConversation",
    params(ConversationId),
    request_body = TriageBody,
    responses(
        (status = 200, description = "The conversation after the change.", body = ConversationView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
pub(super) async fn update(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TriageBody>,
) -> Result<Json<ConversationView>, ApiError> {
    let change = body.into_change()?;
    super::visibility::check(&state, &caller, crate::store::ConversationOf::Id(&id)).await?;
    Ok(Json(
        state
            .store
            .update_triage(&caller.tenant, &id, &change, &caller.subject)
            .await?
            .into(),
    ))
}

#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct MessageId(
    /// The message's id.
    #[param(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9c")]
    String,
);

/// One message, with its attachments, reactions and delivery status.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}",
    tag = TAG_MESSAGES,
    operation_id = "getMessage",
    params(MessageId),
    responses(
        (status = 200, description = "The message.", body = MessageView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(super) async fn message(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageView>, ApiError> {
    let message = state.store.get_message(&caller.tenant, &id).await?;
    super::visibility::check(
        &state,
        &caller,
        crate::store::ConversationOf::Id(&message.conversation_id),
    )
    .await?;
    let urls = super::media::MediaUrls::new(&state.urls, &caller.tenant);
    Ok(Json(MessageView::new(message, &urls)))
}
