//! Live events for frontends: Server-Sent Events at `GET /api/v1/events` and a WebSocket at
//! `GET /api/v1/ws`, both scoped to the caller's tenant.
//!
//! Each event is `{"id", "type", "created_at", "data"}`; `id` is the event's position in its
//! tenant's durable event log, the tenant's own counter (1, 2, 3... with no gaps). Resume with the SSE `Last-Event-ID` header (browsers send it on reconnect) or
//! `?since=ID` (both endpoints); without either, a stream starts with what happens next.
//! Idle connections get heartbeats (an SSE comment, a WebSocket ping) so proxies keep them.
//! At every heartbeat interval a stream checks its token again and ends once it is revoked
//! or expired: a stream outlives the request that authenticated it. Streams also end when
//! the daemon shuts down (the event hub's `closed`), so an open client never
//! holds graceful shutdown. An agent whose tenant restricts visibility gets only the events
//! of the conversations it sees ([`super::visibility::EventFilter`]).

use super::AppState;
use super::auth::{Caller, StreamCaller, StreamCredential};
use super::error::{ApiError, ErrorBody};
use super::openapi::{Internal, TAG_EVENTS, Unauthorized};
use super::views::EventView;
use super::visibility::EventFilter;
use crate::infra::event_hub::{Next, StreamCursor};
use crate::store::{Store, StoreResult};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sse))
        .routes(routes!(ws))
}

/// The resume position: `Last-Event-ID`, else `?since=`; 400 if present but not a number.
fn since(headers: &HeaderMap, query: Option<&str>) -> Result<Option<i64>, ApiError> {
    let raw = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            query.and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "since")
                    .map(|(_, v)| v.into_owned())
            })
        });
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("since / Last-Event-ID must be a non-negative event id")
            }),
    }
}

/// Live events as Server-Sent Events.
///
/// Each event has the SSE `id` (its position in the tenant's event log: 1, 2, 3...), `event` (the type:
/// `message.created`, `message.updated`, `conversation.created`, `conversation.updated`,
/// `channel.updated`, `contact.updated`, `contact.merged`, `contact.erased`, ...) and `data`, a JSON
/// `Event` (`{"id", "type", "created_at", "data"}`). Idle streams get a `: heartbeat`
/// comment. Authenticate with the bearer header or `?access_token=`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = TAG_EVENTS,
    operation_id = "streamEvents",
    params(
        ("since" = Option<i64>, Query, minimum = 0, nullable = false,
            description = "Resume after this event id; ignored when `Last-Event-ID` is sent. \
                Without either, the stream starts with what happens next."),
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, nullable = false,
            description = "Sent by browsers when an `EventSource` reconnects: resume after this event id."),
    ),
    security(("bearerAuth" = []), ("accessToken" = [])),
    responses(
        (status = 200, description = "An endless `text/event-stream`; every `data` line is an `Event` as JSON.",
            content_type = "text/event-stream", body = String,
            example = "id: 42\nevent: message.created\ndata: {\"id\":42,\"type\":\"message.created\",\"created_at\":\"2026-05-01T12:34:56.789Z\",\"data\":{\"message_id\":\"0190f2a4-...\",\"conversation_id\":\"0190f2a4-...\"}}\n\n"),
        (status = 400, description = "`bad_request`: `since` / `Last-Event-ID` is not a non-negative event id.", body = ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "since / Last-Event-ID must be a non-negative event id"}})),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn sse(
    StreamCaller(caller, credential): StreamCaller,
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = since(&headers, uri.query())?;
    let cursor = Shown::open(&state, &caller, since).await?;
    let heartbeat = state.events.heartbeat;
    let live = state.events.connection();
    let closed = state.events.closed.clone();
    let check = Recheck::new(state.clone(), caller, credential);
    let stream = futures::stream::unfold(
        (cursor, live, check),
        move |(mut cursor, live, mut check)| async move {
            loop {
                if !check.still_valid().await {
                    return None;
                }
                match cursor.next(heartbeat).await {
                    Ok(Next::Event(e)) => {
                        let (id, kind) = (e.seq.to_string(), e.kind.clone());
                        let data = serde_json::to_string(&cursor.view(e).await).unwrap_or_default();
                        let event = Event::default().id(id).event(kind).data(data);
                        return Some((Ok::<_, Infallible>(event), (cursor, live, check)));
                    }
                    // KeepAlive sends the heartbeat comments; just wait again.
                    Ok(Next::Idle) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream ended by a store error");
                        return None;
                    }
                }
            }
        },
    )
    .take_until(closed.cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response())
}

/// Live events over a WebSocket.
///
/// After the upgrade, the server sends each event as a text message holding an `Event` as
/// JSON, and pings idle connections; clients need not send anything. Authenticate with the
/// bearer header or `?access_token=` (browsers cannot set headers on a WebSocket).
#[utoipa::path(
    get,
    path = "/api/v1/ws",
    tag = TAG_EVENTS,
    operation_id = "eventsWebSocket",
    params(
        ("since" = Option<i64>, Query, minimum = 0, nullable = false,
            description = "Resume after this event id; without it, the stream starts with what happens next."),
    ),
    security(("bearerAuth" = []), ("accessToken" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket \
            carrying one text message (an `Event` as JSON) per event."),
        (status = 400, description = "`bad_request`: `since` is not a non-negative event id, \
            or the request is not a WebSocket handshake this connection can upgrade.", body = ErrorBody,
            example = json!({"error": {"code": "bad_request", "message": "Connection header did not include 'upgrade'"}})),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    )
)]
async fn ws(
    StreamCaller(caller, credential): StreamCaller,
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let since = since(&headers, uri.query())?;
    // Not a (possible) WebSocket handshake: a 400 in our error shape, not axum's plain text.
    let upgrade = upgrade.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let cursor = Shown::open(&state, &caller, since).await?;
    let check = Recheck::new(state.clone(), caller, credential);
    Ok(upgrade.on_upgrade(move |socket| serve_socket(socket, state, cursor, check)))
}

/// A stream's cursor with its caller's event filter: yields only the events it shows.
struct Shown {
    cursor: StreamCursor,
    filter: EventFilter,
    store: Arc<dyn Store>,
    urls: Arc<crate::infra::signed_url::UrlSigner>,
    tenant: String,
}

impl Shown {
    async fn open(state: &AppState, caller: &Caller, since: Option<i64>) -> Result<Self, ApiError> {
        Ok(Self {
            cursor: StreamCursor::open(&state.events, &caller.tenant, since).await?,
            filter: EventFilter::new(state, caller),
            store: state.store.clone(),
            urls: state.urls.clone(),
            tenant: caller.tenant.clone(),
        })
    }

    /// The event as the stream sends it, with the current state of what it is about: a
    /// message event the message (with signed media URLs), a conversation event the
    /// conversation, so a client needs no follow-up call. Something gone since (an erased
    /// contact's message) is simply left out.
    async fn view(&self, e: crate::store::EventRow) -> EventView {
        let id_of = |key: &str| {
            e.payload
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let mut view = EventView::from(e.clone());
        if e.kind.starts_with("message.") {
            if let Some(id) = id_of("message_id")
                && let Ok(row) = self.store.get_message(&self.tenant, &id).await
            {
                let urls = super::media::MediaUrls::new(&self.urls, &self.tenant);
                view.message = Some(Box::new(super::views::MessageView::new(row, &urls)));
            }
        } else if e.kind.starts_with("conversation.")
            && let Some(id) = id_of("conversation_id")
            && let Ok(row) = self.store.get_conversation(&self.tenant, &id).await
        {
            view.conversation = Some(Box::new(row.into()));
        }
        view
    }

    /// The next event shown to the caller, or `Idle` after a quiet heartbeat interval.
    async fn next(&mut self, heartbeat: std::time::Duration) -> StoreResult<Next> {
        loop {
            match self.cursor.next(heartbeat).await? {
                Next::Event(e) if !self.filter.shows(self.store.as_ref(), &e).await? => continue,
                next => return Ok(next),
            }
        }
    }
}

/// Checks a stream's token again once per heartbeat interval.
struct Recheck {
    state: AppState,
    caller: Caller,
    credential: StreamCredential,
    next: tokio::time::Instant,
}

impl Recheck {
    fn new(state: AppState, caller: Caller, credential: StreamCredential) -> Self {
        let next = tokio::time::Instant::now() + state.events.heartbeat;
        Self {
            state,
            caller,
            credential,
            next,
        }
    }

    /// False once the token no longer authenticates (checked at most once an interval).
    async fn still_valid(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now < self.next {
            return true;
        }
        self.next = now + self.state.events.heartbeat;
        let valid = self.credential.still_valid(&self.state, &self.caller).await;
        if !valid {
            tracing::info!(tenant = %self.caller.tenant, subject = %self.caller.subject,
                "live stream closed: its token was revoked or expired");
        }
        valid
    }
}

async fn serve_socket(
    mut socket: WebSocket,
    state: AppState,
    mut cursor: Shown,
    mut check: Recheck,
) {
    let _live = state.events.connection();
    let heartbeat = state.events.heartbeat;
    let closed = state.events.closed.clone();
    loop {
        tokio::select! {
            () = closed.cancelled() => {
                // Going away (RFC 6455 1001): the client reconnects to another replica or later.
                let _ = socket
                    .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: 1001,
                        reason: "server shutting down".into(),
                    })))
                    .await;
                return;
            }
            next = cursor.next(heartbeat) => {
                let frame = match next {
                    Ok(Next::Event(e)) => Message::Text(serde_json::to_string(&cursor.view(e).await).unwrap_or_default().into()),
                    Ok(Next::Idle) => Message::Ping(Vec::new().into()),
                    Err(e) => {
                        tracing::warn!(error = %e, "websocket ended by a store error");
                        return;
                    }
                };
                if !check.still_valid().await {
                    let _ = socket
                        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                            code: 1008,
                            reason: "token revoked or expired".into(),
                        })))
                        .await;
                    return;
                }
                if socket.send(frame).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // Clients need not send anything; pongs and pings are handled by axum.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_position_from_header_or_query() {
        let mut h = HeaderMap::new();
        assert_eq!(since(&h, None).ok(), Some(None));
        assert_eq!(since(&h, Some("since=42&x=1")).ok(), Some(Some(42)));
        h.insert("last-event-id", "7".parse().expect("header"));
        assert_eq!(since(&h, Some("since=42")).ok(), Some(Some(7)));
        assert!(since(&HeaderMap::new(), Some("since=-1")).is_err());
        assert!(since(&HeaderMap::new(), Some("since=abc")).is_err());
    }
}
