//! What staff do around replies: retry a failed message, write internal notes (never sent;
//! `@name` mentions raise `staff.mentioned`), keep canned replies with shortcuts and
//! placeholders, and act on many conversations at once.

use super::AppState;
use super::assignment::assign_one;
use super::auth::Caller;
use super::conversations::{change_status, mark_read_one};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::openapi::{
    ConversationId, Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_CONVERSATIONS,
    TAG_MESSAGES, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use super::triage::MessageId;
use super::validate;
use super::validate::PageQuery;
use super::views::{MessageView, Page, rfc3339};
use crate::domain::model::{ConversationStatus, Millis};
use crate::store::{CannedDraft, ConversationOf, ConversationRow, NoteRow};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(retry))
        .routes(routes!(list_notes, add_note))
        .routes(routes!(
            super::canned::list_canned,
            super::canned::create_canned
        ))
        .routes(routes!(
            super::canned::update_canned,
            super::canned::delete_canned
        ))
        .routes(routes!(bulk))
}

/// Conversations one bulk request acts on at most.
const MAX_BULK: usize = 100;
/// Characters of a note or a canned reply's body at most.
const MAX_BODY_CHARS: usize = 10_000;

/// Send a failed (or undelivered) outbound message again.
///
/// Its status goes back to `queued` and a new send job starts; audited, `message.updated`.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/retry",
    tag = TAG_MESSAGES,
    operation_id = "retryMessage",
    params(MessageId),
    responses(
        (status = 200, description = "The message, queued again.", body = MessageView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, description = "`message_not_retryable`: not a failed outbound message; \
            `contact_opted_out`: the contact opted out since.", body = ErrorBody,
            example = json!({"error": {"code": "message_not_retryable", "message": "only a failed or undelivered outbound message can be retried (this one is sent)"}})),
        (status = 500, response = Internal),
    )
)]
async fn retry(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageView>, ApiError> {
    super::visibility::check(&state, &caller, ConversationOf::Message(&id)).await?;
    let view = state
        .store
        .retry_message(&caller.tenant, &id, &caller.subject)
        .await?;
    state.jobs.notify_one();
    let urls = super::media::MediaUrls::new(&state.urls, &caller.tenant);
    Ok(Json(MessageView::new(view, &urls)))
}

/// A staff-only note on a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NoteView {
    #[schema(example = "0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9d")]
    id: String,
    conversation_id: String,
    /// Who wrote it (API token name or JWT `sub`).
    #[schema(example = "alice")]
    author: String,
    #[schema(example = "@bob can you check the refund?")]
    text: String,
    /// Staff identities named with `@name`.
    #[schema(example = json!(["bob"]))]
    mentions: Vec<String>,
    #[schema(value_type = String, format = DateTime, example = "2026-05-01T12:34:56.789Z")]
    #[serde(serialize_with = "rfc3339")]
    created_at: Millis,
}

impl From<NoteRow> for NoteView {
    fn from(r: NoteRow) -> Self {
        Self {
            id: r.id,
            conversation_id: r.conversation_id,
            author: r.author,
            text: r.body,
            mentions: r.mentions,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "@bob can you check the refund?"}))]
pub(super) struct NoteBody {
    /// The note (never sent to the contact); `@name` mentions a staff member.
    #[schema(min_length = 1, max_length = 10000)]
    text: String,
}

/// The `@name` mentions of a note, in order, without repeats: `@` at the start or after a
/// space, then letters, digits, `.`, `_`, `-` or `+` (a trailing `.` is punctuation).
pub(super) fn mentions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let Some(name) = word.strip_prefix('@') else {
            continue;
        };
        let name: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
            .collect();
        let name = name.trim_end_matches('.').to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Notes of a conversation, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/notes",
    tag = TAG_CONVERSATIONS,
    operation_id = "listNotes",
    params(ConversationId, PageQuery),
    responses(
        (status = 200, description = "A page of notes, newest first.", body = Page<NoteView>),
        (status = 400, description = "`bad_request`: an unknown parameter or a bad limit; \
            `invalid_cursor`: a cursor this server did not issue.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
async fn list_notes(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<NoteView>>, ApiError> {
    let page = q.page()?;
    super::visibility::check(&state, &caller, ConversationOf::Id(&id)).await?;
    Ok(Json(
        state
            .store
            .list_notes(&caller.tenant, &id, &page)
            .await?
            .into(),
    ))
}

/// Add an internal note (never sent to the contact).
///
/// Announced as `note.created`; each `@name` mention also as `staff.mentioned` (with
/// `data.staff`), so a mentioned staff member's client can notify them.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/notes",
    tag = TAG_CONVERSATIONS,
    operation_id = "addNote",
    params(ConversationId),
    request_body = NoteBody,
    responses(
        (status = 201, description = "The note.", body = NoteView),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
async fn add_note(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<(StatusCode, Json<NoteView>), ApiError> {
    validate::free_text("text", &body.text, MAX_BODY_CHARS)?;
    super::visibility::check(&state, &caller, ConversationOf::Id(&id)).await?;
    let named = mentions(&body.text);
    let note = state
        .store
        .add_note(&caller.tenant, &id, &caller.subject, &body.text, &named)
        .await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

/// A bulk action on many conversations.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ids": ["0190f2a4-7b1c-7d2e-9a41-3c5d6e7f8a9b"], "action": "close"}))]
pub(super) struct BulkBody {
    /// The conversations, at most 100.
    #[schema(min_items = 1, max_items = 100)]
    ids: Vec<String>,
    action: BulkAction,
    /// With `assign`: the staff identity, or null to unassign.
    #[serde(default)]
    assignee: Option<String>,
}

/// What a bulk request does to each conversation (the same rules as the single actions).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum BulkAction {
    Close,
    Reopen,
    Assign,
    Read,
}

/// The outcome for one conversation of a bulk request.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BulkResult {
    id: String,
    ok: bool,
    /// The error this conversation got, as a single action would answer it.
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BulkResponse {
    results: Vec<BulkResult>,
}

/// Close, reopen, assign or mark read many conversations at once.
///
/// Each conversation is changed as its single action would change it (roles, audit,
/// events); one failing does not stop the others: `results` says what happened to each.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/bulk",
    tag = TAG_CONVERSATIONS,
    operation_id = "bulkConversations",
    request_body = BulkBody,
    responses(
        (status = 200, description = "What happened to each conversation, in request order.", body = BulkResponse),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
async fn bulk(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkBody>,
) -> Result<Json<BulkResponse>, ApiError> {
    if body.ids.is_empty() || body.ids.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "ids",
            format!("ids must name 1 to {MAX_BULK} conversations"),
        ));
    }
    let mut results = Vec::with_capacity(body.ids.len());
    for id in &body.ids {
        let outcome = match body.action {
            BulkAction::Close => change_status(&state, &caller, id, ConversationStatus::Closed)
                .await
                .map(|_| ()),
            BulkAction::Reopen => change_status(&state, &caller, id, ConversationStatus::Open)
                .await
                .map(|_| ()),
            BulkAction::Assign => assign_one(&caller, &state, id, body.assignee.clone())
                .await
                .map(|_| ()),
            BulkAction::Read => mark_read_one(&caller, &state, id).await.map(|_| ()),
        };
        results.push(BulkResult {
            id: id.clone(),
            ok: outcome.is_ok(),
            error: outcome.err().map(|e| e.body()),
        });
    }
    Ok(Json(BulkResponse { results }))
}

/// A conversation's placeholders, for rendering canned replies.
pub(super) fn placeholders(
    conversation: &ConversationRow,
    staff: &str,
) -> Vec<(&'static str, String)> {
    let name = conversation.contact.name.clone().unwrap_or_default();
    let first = name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    vec![
        ("contact.name", name),
        ("contact.first_name", first),
        (
            "conversation.subject",
            conversation.subject.clone().unwrap_or_default(),
        ),
        ("agent.name", staff.to_string()),
    ]
}

/// Fills `{{name}}` placeholders (spaces inside the braces allowed); an unknown one is left
/// as written, so a typo shows instead of vanishing.
pub(super) fn render(body: &str, values: &[(&'static str, String)]) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let key = after[..close].trim();
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[open..open + 2 + close + 2]),
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Builds a canned reply draft from checked fields.
pub(super) fn canned_draft(
    shortcut: &str,
    title: &str,
    body: &str,
) -> Result<CannedDraft, ApiError> {
    let shortcut = shortcut.trim().trim_start_matches('/');
    let shortcut_ok = !shortcut.is_empty()
        && shortcut.len() <= 32
        && shortcut
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'));
    if !shortcut_ok {
        return Err(ApiError::invalid(
            "shortcut",
            "shortcut must be 1-32 letters, digits, - or _ (typed after /)",
        ));
    }
    validate::single_line("title", title, 120)?;
    validate::free_text("body", body, MAX_BODY_CHARS)?;
    Ok(CannedDraft {
        shortcut: shortcut.to_string(),
        title: title.trim().to_string(),
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_in_order_without_repeats() {
        assert_eq!(
            mentions("@bob, can you and @carol.s check? cc @bob. mail x@y.z"),
            vec!["bob", "carol.s"]
        );
        assert!(mentions("no mentions @ here").is_empty());
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let values = vec![
            ("contact.name", "Ann Lee".to_string()),
            ("agent.name", "bob".to_string()),
        ];
        assert_eq!(
            render(
                "Hi {{ contact.name }}, {{agent.name}} here. {{nope}} {{",
                &values
            ),
            "Hi Ann Lee, bob here. {{nope}} {{"
        );
    }
}
