//! Outbound messages: a reply in a conversation, and a new outbound conversation.
//!
//! Both write the message and its outbox job in one store transaction and answer
//! `202 Accepted`; the dispatcher is woken through [`AppState::jobs`]. An optional
//! `Idempotency-Key` makes a retried request return the original message (again 202, with
//! `Idempotent-Replayed: true`) without queueing a second send. The store scopes keys by
//! tenant, so a key reused for a different conversation or channel is a 409
//! `idempotency_key_reused` rather than someone else's message.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath};
use super::validate::{self, DraftFields};
use crate::model::{IdentityKind, ReplyCheck, Template, now_millis};
use crate::store::{MessageView, ReplyDraft, StartConversation};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Set on a response that returns the result of an earlier request with the same key.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplyBody {
    text: Option<String>,
    subject: Option<String>,
    media_urls: Option<Vec<String>>,
    template: Option<Template>,
}

/// POST /api/v1/conversations/{id}/messages → 202 with the message.
pub(super) async fn reply(
    caller: Caller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReplyBody>,
) -> Result<Response, ApiError> {
    let key = validate::idempotency_key(&headers)?;
    let fields = DraftFields {
        text: body.text,
        subject: body.subject,
        media_urls: body.media_urls,
        template: body.template,
    };
    let draft = validate::draft(fields, &caller.subject, key)?;
    let conversation = state.store.get_conversation(&caller.tenant, &id).await?;
    check_reply(
        &state,
        &conversation.channel_id,
        conversation.last_inbound_at,
        &draft,
    )?;
    let (message, created) = state
        .store
        .create_reply(&caller.tenant, &id, &draft)
        .await?;
    if !created && message.conversation_id != id {
        // 404 first if the conversation itself does not exist.
        state.store.get_conversation(&caller.tenant, &id).await?;
        return Err(key_reused());
    }
    Ok(accepted(&state, message, created, |m| m))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct To {
    kind: IdentityKind,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartBody {
    channel_id: String,
    to: To,
    contact_name: Option<String>,
    text: Option<String>,
    subject: Option<String>,
    media_urls: Option<Vec<String>>,
    template: Option<Template>,
}

#[derive(Debug, Serialize)]
struct Started {
    message: MessageView,
}

/// POST /api/v1/conversations → 202 `{message}`. Chat channels reuse the contact's open
/// conversation; email starts a new one.
pub(super) async fn start(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let key = validate::idempotency_key(&headers)?;
    let to = validate::identity(body.to.kind, &body.to.value)?;
    if let Some(name) = &body.contact_name {
        validate::single_line("contact_name", name, validate::MAX_NAME_CHARS)?;
    }
    let fields = DraftFields {
        text: body.text,
        subject: body.subject,
        media_urls: body.media_urls,
        template: body.template,
    };
    let draft = validate::draft(fields, &caller.subject, key)?;
    let channels = state.store.list_channels(&caller.tenant).await?;
    let channel = channels
        .iter()
        .find(|c| c.id == body.channel_id)
        .ok_or_else(|| ApiError::validation("channel_id names no channel of this tenant"))?;
    if !reachable(&channel.kind, to.kind) {
        return Err(ApiError::validation(format!(
            "a {} channel cannot reach a {} address",
            channel.kind,
            to.kind.as_str()
        )));
    }
    // A business-initiated conversation: no inbound message opens a provider window.
    check_reply(&state, &channel.id, None, &draft)?;
    let start = StartConversation {
        channel_id: body.channel_id,
        to,
        contact_name: body.contact_name,
        draft,
    };
    let (message, created) = state
        .store
        .start_conversation(&caller.tenant, &start)
        .await?;
    if !created && message.channel_id != start.channel_id {
        return Err(key_reused());
    }
    Ok(accepted(&state, message, created, |message| Started {
        message,
    }))
}

/// Which address kinds a channel kind can send to.
fn reachable(channel_kind: &str, to: IdentityKind) -> bool {
    matches!(
        (channel_kind, to),
        ("email", IdentityKind::Email)
            | ("twilio", IdentityKind::Phone | IdentityKind::Whatsapp)
            | ("whatsapp", IdentityKind::Whatsapp)
    )
}

/// Asks the channel's connector whether it can carry this message now (WhatsApp's 24-hour
/// window, template support) before anything is queued.
fn check_reply(
    state: &AppState,
    channel_id: &str,
    last_inbound_at: Option<crate::model::Millis>,
    draft: &ReplyDraft,
) -> Result<(), ApiError> {
    let connector = state.connectors.get(channel_id).ok_or(ApiError::Conflict {
        code: "channel_not_configured",
        message: format!("channel {channel_id} is not configured on this server"),
    })?;
    let check = ReplyCheck {
        last_inbound_at,
        now: now_millis(),
        has_template: draft.template.is_some(),
        has_text: draft.text.is_some(),
        has_media: !draft.media_urls.is_empty(),
    };
    connector
        .check_reply(&check)
        .map_err(|r| ApiError::Conflict {
            code: r.code,
            message: r.message,
        })
}

fn key_reused() -> ApiError {
    ApiError::Conflict {
        code: "idempotency_key_reused",
        message: "this Idempotency-Key was already used for a different request".into(),
    }
}

/// 202 with the body; wakes the dispatcher for a new message, marks a replay.
fn accepted<T: Serialize>(
    state: &AppState,
    message: MessageView,
    created: bool,
    wrap: impl FnOnce(MessageView) -> T,
) -> Response {
    if created {
        state.jobs.notify_one();
    }
    let mut response = (StatusCode::ACCEPTED, Json(wrap(message))).into_response();
    if !created {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}
