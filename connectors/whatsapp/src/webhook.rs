//! The Cloud API webhook, relative to `/webhooks/{channel_id}`:
//!
//! - `GET /`: Meta's verification handshake. `hub.mode=subscribe` with our verify token
//!   (compared in constant time) is answered 200 `text/plain` with `hub.challenge` echoed
//!   exactly; anything else is 403.
//! - `POST /`: a delivery. Verified first (`X-Hub-Signature-256` over the raw bytes; 403 and
//!   nothing stored when it fails), parsed second (400 when it is not a webhook body), then
//!   every item in it is journaled and ingested under its own idempotency key, each journal
//!   entry holding the whole raw delivery. Meta gets its 200 only once every item is durably
//!   stored; a storage failure is a 503 so Meta retries, and items stored before it are
//!   acknowledged as duplicates on the retry.

use crate::normalize::{self, Event};
use crate::signature::{SignatureError, Unverified, Verified};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use switchboard_core::contract::connector::ConnectorContext;
use switchboard_core::contract::ingest::IngestError;
use switchboard_core::contract::ingest_types::{IngestOutcome, ReactionOutcome, StatusOutcome};
use switchboard_core::contract::journal::JournalEntry;
use switchboard_core::contract::provider_webhook::WebhookError;
use switchboard_core::infra::config::Secret;

/// Meta sends deliveries of up to 3 MB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What the handlers share.
pub(crate) struct WebhookState {
    pub channel_id: String,
    pub phone_number_id: String,
    pub app_secret: Secret,
    pub verify_token: Secret,
    pub ctx: ConnectorContext,
}

/// The connector's routes, to be nested under `/webhooks/{channel_id}`.
pub(crate) fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/", get(handshake).post(deliver))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[tracing::instrument(name = "whatsapp.handshake", skip_all, fields(channel = %state.channel_id))]
async fn handshake(State(state): State<Arc<WebhookState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let mode = param("hub.mode");
    let token = param("hub.verify_token").unwrap_or_default();
    let challenge = param("hub.challenge").unwrap_or_default();
    let token_ok: bool = token
        .as_bytes()
        .ct_eq(state.verify_token.expose().as_bytes())
        .into();
    if mode.as_deref() == Some("subscribe") && token_ok && !challenge.is_empty() {
        tracing::info!("webhook verification handshake accepted");
        return (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response();
    }
    tracing::warn!(mode = ?mode, "webhook verification handshake refused");
    let body = serde_json::json!({
        "error": { "code": "forbidden", "message": "webhook verification failed" }
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

#[tracing::instrument(name = "whatsapp.webhook", skip_all, fields(channel = %state.channel_id, items))]
async fn deliver(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let verified = Unverified::new(&headers, body)
        .verify(&state.app_secret)
        .map_err(|e: SignatureError| {
            tracing::warn!(reason = %e, "WhatsApp webhook signature rejected");
            WebhookError::Forbidden
        })?;
    let events =
        normalize::normalize_for(verified.body(), &state.phone_number_id).map_err(|e| {
            tracing::warn!(error = %e, "WhatsApp webhook payload rejected");
            WebhookError::BadRequest(e.to_string())
        })?;
    tracing::Span::current().record("items", events.len());
    for event in events {
        ingest(&state, &verified, event).await?;
    }
    Ok(StatusCode::OK.into_response())
}

/// Journals and applies one item. An item core refuses as invalid is journaled alone (kept
/// for replay) rather than failing the delivery: Meta would retry it forever.
async fn ingest(
    state: &WebhookState,
    verified: &Verified,
    event: Event,
) -> Result<(), WebhookError> {
    let key = event.idempotency_key();
    let journal = journal_entry(&key, event.journal_kind(), verified);
    let ingest = &state.ctx.ingest;
    let result = match event {
        Event::Message(msg) => ingest
            .message(journal, *msg)
            .await
            .map(|o| log_message(&key, o)),
        Event::Status(update) => {
            let status = update.status.as_str();
            ingest
                .status(journal, update)
                .await
                .map(|o| log_status(&key, status, o))
        }
        Event::Reaction(reaction) => ingest
            .reaction(journal, reaction)
            .await
            .map(|o| log_reaction(&key, o)),
        Event::Other { field, .. } => ingest
            .journal_only(journal)
            .await
            .map(|fresh| tracing::info!(%key, %field, fresh, "webhook item journaled only")),
    };
    match result {
        Ok(()) => Ok(()),
        Err(IngestError::Invalid(why)) => {
            tracing::warn!(%key, %why, "invalid webhook item journaled only");
            match ingest
                .journal_only(journal_entry(&key, "event", verified))
                .await
            {
                Ok(_) => Ok(()),
                Err(IngestError::Invalid(why)) => {
                    tracing::error!(%key, %why, "webhook item not journaled; acknowledged");
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The journal entry of one item: its key, and the whole delivery as received.
fn journal_entry(key: &str, kind: &str, verified: &Verified) -> JournalEntry {
    JournalEntry::new(key, kind, "application/json", verified.body().to_vec())
}

fn log_message(key: &str, outcome: IngestOutcome) {
    match outcome {
        IngestOutcome::Stored {
            message_id,
            conversation_id,
            created_conversation,
        } => tracing::info!(
            %key, %message_id, %conversation_id, created_conversation,
            "inbound message stored"
        ),
        IngestOutcome::Duplicate => tracing::debug!(%key, "duplicate message acknowledged"),
    }
}

fn log_status(key: &str, status: &str, outcome: StatusOutcome) {
    match outcome {
        StatusOutcome::Applied { message_id } => {
            tracing::info!(%key, %message_id, status, "delivery status applied");
        }
        StatusOutcome::Stale { message_id } => {
            tracing::debug!(%key, %message_id, status, "stale delivery status ignored");
        }
        StatusOutcome::UnknownMessage => {
            tracing::info!(%key, status, "status for an unknown message parked");
        }
        StatusOutcome::Duplicate => tracing::debug!(%key, "duplicate status acknowledged"),
    }
}

fn log_reaction(key: &str, outcome: ReactionOutcome) {
    match outcome {
        ReactionOutcome::Applied { message_id } => {
            tracing::info!(%key, %message_id, "reaction applied");
        }
        ReactionOutcome::UnknownMessage => {
            tracing::info!(%key, "reaction to an unknown message journaled");
        }
        ReactionOutcome::Duplicate => tracing::debug!(%key, "duplicate reaction acknowledged"),
    }
}
