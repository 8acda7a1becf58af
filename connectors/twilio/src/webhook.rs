//! Twilio's webhooks: `POST /messages` (incoming messages) and `POST /status` (status
//! callbacks of our outbound messages), relative to `/webhooks/{channel_id}`.
//!
//! Each delivery is verified first (over the raw bytes, against the public URL Twilio called:
//! `ConnectorContext::webhook_url(route)` plus the request's query string), parsed second,
//! then journaled and ingested; Twilio gets its 2xx only once the event is durably stored.
//! A bad signature is a 403 and stores nothing; a payload that cannot be normalized is a
//! 400; duplicates are acknowledged like first deliveries so Twilio stops retrying.

use crate::normalize::{self, NormalizeError};
use crate::signature::{SignatureError, Unverified, Verified};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;
use switchboard_core::contract::connector::ConnectorContext;
use switchboard_core::contract::ingest_types::{IngestOutcome, StatusOutcome};
use switchboard_core::contract::journal::JournalEntry;
use switchboard_core::contract::provider_webhook::WebhookError;
use switchboard_core::infra::config::Secret;

/// The answer to an incoming message: "received, nothing to reply".
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

/// Twilio's webhook bodies are a few KiB; anything much larger is not from Twilio.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the handlers share: the channel's identity, its auth token and its context.
pub(crate) struct WebhookState {
    pub channel_id: String,
    pub auth_token: Secret,
    pub ctx: ConnectorContext,
}

/// The connector's routes, to be nested under `/webhooks/{channel_id}`.
pub(crate) fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/messages", post(messages))
        .route("/status", post(status))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[tracing::instrument(name = "twilio.webhook", skip_all, fields(channel = %state.channel_id, route = "messages"))]
async fn messages(
    State(state): State<Arc<WebhookState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let verified = verify(&state, "messages", &uri, &headers, body)?;
    let params = verified
        .params()
        .map_err(|e| WebhookError::BadRequest(e.to_string()))?;
    let msg = normalize::normalize_message(&params).map_err(bad_request)?;
    let journal = journal_entry(
        normalize::message_key(&msg.provider_message_id),
        "message",
        &verified,
    );
    let sid = msg.provider_message_id.clone();
    match state.ctx.ingest.message(journal, msg).await? {
        IngestOutcome::Stored {
            message_id,
            conversation_id,
            created_conversation,
        } => {
            tracing::info!(%sid, %message_id, %conversation_id, created_conversation, "inbound message stored")
        }
        IngestOutcome::Duplicate => tracing::debug!(%sid, "duplicate inbound message acknowledged"),
    }
    Ok(([(CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response())
}

#[tracing::instrument(name = "twilio.webhook", skip_all, fields(channel = %state.channel_id, route = "status"))]
async fn status(
    State(state): State<Arc<WebhookState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let verified = verify(&state, "status", &uri, &headers, body)?;
    let params = verified
        .params()
        .map_err(|e| WebhookError::BadRequest(e.to_string()))?;
    let key = normalize::status_key_for(&params).map_err(bad_request)?;
    let journal = journal_entry(key, "status", &verified);
    let update = match normalize::normalize_status(&params) {
        Ok(u) => u,
        Err(NormalizeError::UnknownStatus(raw)) => {
            // A status value Twilio added after this code was written: keep it for replay,
            // acknowledge it, change nothing.
            tracing::warn!(status = %raw, "unknown Twilio message status journaled only");
            state.ctx.ingest.journal_only(journal).await?;
            return Ok(StatusCode::OK.into_response());
        }
        Err(e) => return Err(bad_request(e)),
    };
    let sid = update.provider_message_id.clone();
    let reported = update.status;
    match state.ctx.ingest.status(journal, update).await? {
        StatusOutcome::Applied { message_id } => {
            tracing::info!(%sid, %message_id, status = reported.as_str(), "delivery status applied");
        }
        StatusOutcome::Stale { message_id } => {
            tracing::debug!(%sid, %message_id, status = reported.as_str(), "stale delivery status ignored");
        }
        StatusOutcome::UnknownMessage => {
            tracing::info!(%sid, status = reported.as_str(), "status for an unknown message journaled");
        }
        StatusOutcome::Duplicate => tracing::debug!(%sid, "duplicate status acknowledged"),
    }
    Ok(StatusCode::OK.into_response())
}

/// Verifies a delivery against the URL Twilio signed: our public URL of the route plus the
/// query string exactly as received.
fn verify(
    state: &WebhookState,
    route: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Verified, WebhookError> {
    let mut url = state.ctx.webhook_url(route);
    if let Some(query) = uri.query() {
        url.push('?');
        url.push_str(query);
    }
    Unverified::new(url, headers, body)
        .verify(&state.auth_token)
        .map_err(|e| match e {
            SignatureError::UnsupportedContentType(ct) => WebhookError::UnsupportedMediaType(ct),
            other => {
                tracing::warn!(reason = %other, "Twilio webhook signature rejected");
                WebhookError::Forbidden
            }
        })
}

fn journal_entry(idempotency_key: String, kind: &str, verified: &Verified) -> JournalEntry {
    JournalEntry::new(
        idempotency_key,
        kind,
        verified.content_type(),
        verified.body().to_vec(),
    )
}

fn bad_request(e: NormalizeError) -> WebhookError {
    tracing::warn!(error = %e, "Twilio webhook payload rejected");
    WebhookError::BadRequest(e.to_string())
}
