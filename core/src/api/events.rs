//! Live events for frontends: Server-Sent Events at `GET /api/v1/events` and a WebSocket at
//! `GET /api/v1/ws`, both scoped to the caller's tenant.
//!
//! Each event is `{"id", "type", "created_at", "data"}`; `id` is the position in the durable
//! event log. Resume with the SSE `Last-Event-ID` header (browsers send it on reconnect) or
//! `?since=ID` (both endpoints); without either, a stream starts with what happens next.
//! Idle connections get heartbeats (an SSE comment, a WebSocket ping) so proxies keep them.

use super::AppState;
use super::auth::StreamCaller;
use super::error::{ApiError, ErrorBody};
use super::openapi::{Internal, TAG_EVENTS, Unauthorized};
use crate::events::{Cursor, Next};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
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

/// Counts a live connection for as long as it lives.
struct Live(std::sync::Arc<crate::events::EventHub>);

impl Live {
    fn new(state: &AppState) -> Self {
        state.events.connections.fetch_add(1, Ordering::Relaxed);
        Self(state.events.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Live events as Server-Sent Events.
///
/// Each event has the SSE `id` (its position in the durable event log), `event` (the type:
/// `message.created`, `message.updated`, `conversation.updated`, ...) and `data`, a JSON
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
    StreamCaller(caller): StreamCaller,
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = since(&headers, uri.query())?;
    let cursor = Cursor::open(state.store.clone(), &caller.tenant, since).await?;
    let changes = state.events.subscribe();
    let heartbeat = state.events.heartbeat;
    let live = Live::new(&state);
    let stream = futures::stream::unfold(
        (cursor, changes, live),
        move |(mut cursor, mut changes, live)| async move {
            loop {
                match cursor.next(&mut changes, heartbeat).await {
                    Ok(Next::Event(e)) => {
                        let data = serde_json::to_string(&e).unwrap_or_default();
                        let event = Event::default()
                            .id(e.seq.to_string())
                            .event(e.kind.clone())
                            .data(data);
                        return Some((Ok::<_, Infallible>(event), (cursor, changes, live)));
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
    );
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
    StreamCaller(caller): StreamCaller,
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let since = since(&headers, uri.query())?;
    // Not a (possible) WebSocket handshake: a 400 in our error shape, not axum's plain text.
    let upgrade = upgrade.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let cursor = Cursor::open(state.store.clone(), &caller.tenant, since).await?;
    Ok(upgrade.on_upgrade(move |socket| serve_socket(socket, state, cursor)))
}

async fn serve_socket(mut socket: WebSocket, state: AppState, mut cursor: Cursor) {
    let _live = Live::new(&state);
    let mut changes = state.events.subscribe();
    let heartbeat = state.events.heartbeat;
    loop {
        tokio::select! {
            next = cursor.next(&mut changes, heartbeat) => {
                let frame = match next {
                    Ok(Next::Event(e)) => Message::Text(serde_json::to_string(&e).unwrap_or_default().into()),
                    Ok(Next::Idle) => Message::Ping(Vec::new().into()),
                    Err(e) => {
                        tracing::warn!(error = %e, "websocket ended by a store error");
                        return;
                    }
                };
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
