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
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::openapi::{
    ConversationId, Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_MESSAGES, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::validate::{self, DraftFields};
use crate::model::{IdentityKind, ReplyCheck, Template, now_millis};
use crate::store::{MessageView, ReplyDraft, StartConversation};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Set on a response that returns the result of an earlier request with the same key.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A reply: text, media or both, or a template (WhatsApp) instead of either.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "It ships today!"}))]
pub(super) struct ReplyBody {
    /// The message text: not blank, no NUL, at most 10000 characters.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    text: Option<String>,
    /// Email subject: one non-blank line without control characters, at most 998
    /// characters; ignored by chat channels.
    #[schema(
        min_length = 1,
        max_length = 998,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    subject: Option<String>,
    /// Absolute http(s) URLs of media to send (MMS, WhatsApp media), at most 10.
    #[schema(max_items = 10)]
    media_urls: Option<Vec<String>>,
    /// A provider template (WhatsApp), sent instead of text and media: `name` is 1-512
    /// characters of `a-z`, `0-9` and `_`; `language` a code such as `en` or `en_US`;
    /// `components`, if present, an array passed to the provider as is.
    template: Option<Template>,
}

/// Reply in a conversation.
///
/// Writes the message and its outbox job in one transaction and answers 202; the message's
/// `delivery_status` then moves on as the provider reports. With an `Idempotency-Key`, a
/// retried request returns the original message (again 202, with `Idempotent-Replayed:
/// true`) without queueing a second send.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/messages",
    tag = TAG_MESSAGES,
    operation_id = "reply",
    params(ConversationId, IdempotencyKey),
    request_body = ReplyBody,
    responses(
        (status = 202, description = "The reply, queued for sending (or the original one, \
            for a repeated `Idempotency-Key`).", body = MessageView, headers(
                ("Idempotent-Replayed" = String, description = "`true` when this is the result of an earlier request with the same `Idempotency-Key`.")
            )),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, description = "The conversation's channel refuses the message: \
            `contact_opted_out` (the contact sent STOP), `idempotency_key_reused` (the key \
            was used for another conversation), `channel_not_configured`, \
            `template_not_supported`, `whatsapp_window_closed` (the 24-hour window is \
            closed: send a template).", body = ErrorBody,
            example = json!({"error": {"code": "contact_opted_out", "message": "+14155550123 opted out of messages on this channel (they can reply START to opt back in)"}})),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 500, response = Internal),
    )
)]
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

/// The contact to write to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct To {
    kind: IdentityKind,
    /// phone: `+` and 8 to 15 digits; whatsapp: 8 to 15 digits (a leading `+` is accepted);
    /// email: an address with exactly one `@`.
    #[schema(example = "+14155550123")]
    value: String,
}

/// A new outbound conversation: the channel, the contact and the first message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel_id": "acme-sms", "to": {"kind": "phone", "value": "+14155550123"}, "text": "Your order has shipped."}))]
pub(super) struct StartBody {
    /// A channel of the caller's tenant that can reach `to.kind`.
    #[schema(example = "acme-sms")]
    channel_id: String,
    to: To,
    /// A display name for a new contact: one non-blank line without control characters, at
    /// most 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    contact_name: Option<String>,
    /// The message text: not blank, no NUL, at most 10000 characters.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    )]
    text: Option<String>,
    /// Email subject: one non-blank line without control characters, at most 998 characters.
    #[schema(
        min_length = 1,
        max_length = 998,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    subject: Option<String>,
    /// Absolute http(s) URLs of media to send, at most 10.
    #[schema(max_items = 10)]
    media_urls: Option<Vec<String>>,
    /// A provider template (WhatsApp), sent instead of text and media: `name` is 1-512
    /// characters of `a-z`, `0-9` and `_`; `language` a code such as `en` or `en_US`;
    /// `components`, if present, an array passed to the provider as is.
    template: Option<Template>,
}

/// The first message of a new outbound conversation.
#[derive(Debug, Serialize, ToSchema)]
struct Started {
    message: MessageView,
}

/// Start an outbound conversation.
///
/// Chat channels reuse the contact's open conversation; email starts a new one. Answers
/// 202 like a reply, with the same `Idempotency-Key` semantics.
#[utoipa::path(
    post,
    path = "/api/v1/conversations",
    tag = TAG_MESSAGES,
    operation_id = "startConversation",
    params(IdempotencyKey),
    request_body = StartBody,
    responses(
        (status = 202, description = "The first message, queued for sending; its \
            `conversation_id` names the conversation.", body = Started, headers(
                ("Idempotent-Replayed" = String, description = "`true` when this is the result of an earlier request with the same `Idempotency-Key`.")
            )),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthorized),
        (status = 409, description = "The channel refuses the message: `contact_opted_out`, \
            `idempotency_key_reused` (the key was used for another channel), \
            `channel_not_configured`, `template_not_supported`, `whatsapp_window_closed` \
            (a business-initiated WhatsApp conversation needs a template).", body = ErrorBody,
            example = json!({"error": {"code": "whatsapp_window_closed", "message": "the 24-hour customer service window is closed: send a template"}})),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`validation_failed`: a field breaks the rules, \
            `channel_id` names no channel of this tenant, or the channel cannot reach \
            `to.kind`.", body = ErrorBody,
            example = json!({"error": {"code": "validation_failed", "message": "channel_id names no channel of this tenant"}})),
        (status = 500, response = Internal),
    )
)]
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

/// The optional `Idempotency-Key` request header.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
#[allow(dead_code)]
pub(super) struct IdempotencyKey(
    /// Makes a retried request return the original message instead of sending twice:
    /// 1 to 255 visible ASCII characters, unique per tenant.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$",
        nullable = false,
        example = "order-4711-shipped"
    )]
    Option<String>,
);

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
