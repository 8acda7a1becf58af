//! Outbound messages: a reply in a conversation, and a new outbound conversation.
//!
//! Both write the message and its outbox job in one store transaction and answer
//! `202 Accepted`; the dispatcher is woken through [`AppState::jobs`]. An optional
//! `Idempotency-Key` makes a retried request return the original message (again 202, with
//! `Idempotent-Replayed: true`) without queueing a second send. The store scopes keys by
//! tenant, so a key reused for a different conversation or channel, or with a different
//! body (text, subject, media, template), is a 409 `idempotency_key_reused` rather than
//! someone else's message or a silent replay of another one.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::media::MediaUrls;
use super::openapi::{
    ConversationId, Internal, MalformedJson, NotFound, PayloadTooLarge, TAG_MESSAGES, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use super::validate::{self, DraftFields};
use super::views::MessageView;
use crate::domain::model::{IdentityKind, ReplyCheck, Template, now_millis};
use crate::store::{MessageRow, ReplyDraft, StartConversation};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Set on a response that returns the result of an earlier request with the same key.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Declares a request body that carries a message: the body's own fields, then the
/// message content every outbound request has (`text`, `subject`, `media_urls`,
/// `template`), written once here with their rules and documentation, and
/// `take_content` to hand them to [`validate::draft`]. A macro rather than
/// `#[serde(flatten)]`: flatten cannot be combined with `deny_unknown_fields`, and it would
/// change serde's error messages (no list of expected fields, no line and column).
macro_rules! message_body {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_attr:meta])* $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[$field_attr])* $field: $ty, )*
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

        impl $name {
            /// The message content, taken out for validation; the body's own fields stay.
            fn take_content(&mut self) -> DraftFields {
                DraftFields {
                    text: self.text.take(),
                    subject: self.subject.take(),
                    media_urls: self.media_urls.take(),
                    template: self.template.take(),
                }
            }
        }
    };
}

message_body! {
    /// A reply: text, media or both, or a template (WhatsApp) instead of either.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(example = json!({"text": "It ships today!"}))]
    pub(super) struct ReplyBody {}
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
            was used for another conversation or another body), `channel_not_configured`, \
            `template_not_supported`, or a refusal code the channel's connector declares \
            (listed in the served `ErrorCode` schema).", body = ErrorBody,
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
    ApiJson(mut body): ApiJson<ReplyBody>,
) -> Result<Response, ApiError> {
    let key = validate::idempotency_key(&headers)?;
    let draft = validate::draft(body.take_content(), &caller.subject, key)?;
    let conversation = super::visibility::conversation(&state, &caller, &id).await?;
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
    if !created && !draft.same_request_as(&message) {
        // The same key with another body is not a retry: replaying the first message
        // would silently drop what the caller asked to send now.
        return Err(key_reused());
    }
    Ok(accepted(&state, &caller, message, created, |m| m))
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

message_body! {
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
    }
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
            `idempotency_key_reused` (the key was used for another channel or another body), \
            `channel_not_configured`, `template_not_supported`, or a refusal code the \
            channel's connector declares (listed in the served `ErrorCode` schema).", body = ErrorBody,
            example = json!({"error": {"code": "template_not_supported", "message": "email channels do not send templates"}})),
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
    ApiJson(mut body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let key = validate::idempotency_key(&headers)?;
    let to = validate::identity(body.to.kind.clone(), &body.to.value)?;
    if let Some(name) = &body.contact_name {
        validate::single_line("contact_name", name, validate::MAX_NAME_CHARS)?;
    }
    let draft = validate::draft(body.take_content(), &caller.subject, key)?;
    let channels = state.store.list_channels(&caller.tenant).await?;
    let channel = channels
        .iter()
        .find(|c| c.id == body.channel_id)
        .ok_or_else(|| {
            ApiError::invalid("channel_id", "channel_id names no channel of this tenant")
        })?;
    let connector_type = state.registry.by_name(&channel.kind);
    let reaches = connector_type.is_some_and(|t| t.reaches(&to.kind));
    if !reaches {
        return Err(ApiError::invalid(
            "to.kind",
            format!(
                "a {} channel cannot reach a {} address",
                channel.kind,
                to.kind.as_str()
            ),
        ));
    }
    // A business-initiated conversation: no inbound message opens a provider window.
    check_reply(&state, &channel.id, None, &draft)?;
    let start = StartConversation {
        channel_id: body.channel_id,
        threading: connector_type.map(|t| t.threading).unwrap_or_default(),
        to,
        contact_name: body.contact_name,
        draft,
    };
    let (message, created) = state
        .store
        .start_conversation(&caller.tenant, &start)
        .await?;
    if !created
        && (message.channel_id != start.channel_id || !start.draft.same_request_as(&message))
    {
        return Err(key_reused());
    }
    Ok(accepted(&state, &caller, message, created, |message| {
        Started { message }
    }))
}

/// Asks the channel's connector whether it can carry this message now (WhatsApp's 24-hour
/// window, template support) before anything is queued.
fn check_reply(
    state: &AppState,
    channel_id: &str,
    last_inbound_at: Option<crate::domain::model::Millis>,
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
    caller: &Caller,
    message: MessageRow,
    created: bool,
    wrap: impl FnOnce(MessageView) -> T,
) -> Response {
    if created {
        state.jobs.notify_one();
    }
    let message = MessageView::new(message, &MediaUrls::new(&state.urls, &caller.tenant));
    let mut response = (StatusCode::ACCEPTED, Json(wrap(message))).into_response();
    if !created {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        serde_json::from_str::<T>(json).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_are_refused_naming_every_accepted_one() {
        assert_eq!(
            error_of::<ReplyBody>(r#"{"text": "hi", "unknown": true}"#),
            "unknown field `unknown`, expected one of `text`, `subject`, `media_urls`, \
             `template` at line 1 column 24"
        );
        assert_eq!(
            error_of::<StartBody>(r#"{"text": "hi", "unknown": true}"#),
            "unknown field `unknown`, expected one of `channel_id`, `to`, `contact_name`, \
             `text`, `subject`, `media_urls`, `template` at line 1 column 24"
        );
    }

    #[test]
    fn both_bodies_carry_the_message_content() {
        let mut reply: ReplyBody = serde_json::from_str(
            r#"{"text": "hi", "subject": "s", "media_urls": ["https://x.example/a.png"]}"#,
        )
        .unwrap();
        let content = reply.take_content();
        assert_eq!(content.text.as_deref(), Some("hi"));
        assert_eq!(content.subject.as_deref(), Some("s"));
        assert_eq!(content.media_urls.map(|u| u.len()), Some(1));

        let mut start: StartBody = serde_json::from_str(
            r#"{"channel_id": "c", "to": {"kind": "phone", "value": "+14155550123"},
                "contact_name": "Ann", "text": "hello"}"#,
        )
        .unwrap();
        assert_eq!(start.take_content().text.as_deref(), Some("hello"));
        assert_eq!(start.channel_id, "c");
        assert_eq!(start.contact_name.as_deref(), Some("Ann"));
        let missing = error_of::<StartBody>(r#"{"text": "hello"}"#);
        assert!(
            missing.starts_with("missing field `channel_id`"),
            "{missing}"
        );
    }
}
