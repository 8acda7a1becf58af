//! Prometheus metrics at `/metrics`: webhooks by channel and outcome, messages ingested,
//! duplicates, outbox depth and age, send attempts by outcome, HTTP latency by route, live
//! event connections and the event bytes their cursors hold, and per mailbox the last successful sync and the lag since it.
//!
//! Counters are recorded where things happen (ingest, dispatcher, an HTTP middleware);
//! gauges that describe the database (outbox depth, age) are read when scraped, so every
//! replica reports the shared truth. Without an installed recorder (tests), recording is a
//! no-op.
//!
//! The page names every tenant's channels, so `[server] metrics_token` can require
//! `Authorization: Bearer <token>` of the scraper (compared in constant time).

use crate::domain::model::now_millis;
use crate::infra::config::Secret;
use crate::infra::event_hub::EventHub;
use crate::store::Store;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use subtle::ConstantTimeEq;

pub const HTTP_DURATION: &str = "switchboard_http_request_duration_seconds";
pub const WEBHOOKS: &str = "switchboard_webhooks_total";
pub const INGESTED: &str = "switchboard_messages_ingested_total";
pub const DUPLICATES: &str = "switchboard_duplicates_total";
pub const SEND_ATTEMPTS: &str = "switchboard_send_attempts_total";
pub const OUTBOX_DEPTH: &str = "switchboard_outbox_depth";
pub const OUTBOX_AGE: &str = "switchboard_outbox_oldest_age_seconds";
pub const LIVE_CONNECTIONS: &str = "switchboard_live_connections";
pub const LIVE_BUFFERED_BYTES: &str = "switchboard_live_buffered_bytes";
pub const MAILBOX_LAST_SUCCESS: &str = "switchboard_mailbox_last_success_timestamp_seconds";
pub const MAILBOX_SYNC_LAG: &str = "switchboard_mailbox_sync_lag_seconds";
/// Write transactions of the group-commit writers, and the deliveries they carried: the
/// ratio is the mean batch size.
pub const GROUP_COMMITS: &str = "switchboard_group_commits_total";
pub const GROUP_COMMIT_ITEMS: &str = "switchboard_group_commit_items_total";
/// Deliveries waiting for a group-commit writer (at most the queue's bound).
pub const GROUP_COMMIT_QUEUED: &str = "switchboard_group_commit_queued";

/// Installs the process-wide Prometheus recorder.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(HTTP_DURATION.to_string()),
            &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

#[derive(Clone)]
struct MetricsState {
    /// Empty: no token required.
    token: Secret,
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
    events: Arc<EventHub>,
}

/// `GET /metrics` in the Prometheus text format.
pub fn routes(
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
    events: Arc<EventHub>,
    token: Secret,
) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(MetricsState {
            token,
            handle,
            store,
            events,
        })
}

/// Whether `headers` carry the configured bearer token (always, when none is configured).
fn authorized(token: &Secret, headers: &HeaderMap) -> bool {
    let expected = token.expose();
    if expected.is_empty() {
        return true;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

async fn render(State(s): State<MetricsState>, headers: HeaderMap) -> Response {
    if !authorized(&s.token, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need the bearer token of [server] metrics_token\n",
        )
            .into_response();
    }
    match s.store.outbox_stats().await {
        Ok((depth, oldest)) => {
            metrics::gauge!(OUTBOX_DEPTH).set(depth as f64);
            let age = oldest.map_or(0.0, |t| (now_millis().saturating_sub(t)) as f64 / 1000.0);
            metrics::gauge!(OUTBOX_AGE).set(age);
        }
        Err(e) => tracing::warn!(error = %e, "outbox stats for /metrics failed"),
    }
    metrics::gauge!(LIVE_CONNECTIONS).set(s.events.connections.load(Ordering::Relaxed) as f64);
    metrics::gauge!(LIVE_BUFFERED_BYTES)
        .set(s.events.buffered_bytes.load(Ordering::Relaxed) as f64);
    match s.store.sync_states(None).await {
        Ok(states) => {
            let now = now_millis();
            for st in states {
                let labels = [
                    ("channel", st.channel_id.clone()),
                    ("folder", st.folder.clone()),
                ];
                if let Some(ok) = st.last_success_at {
                    metrics::gauge!(MAILBOX_LAST_SUCCESS, &labels).set(ok as f64 / 1000.0);
                    // Lag: how long since the mailbox was last known to be in step.
                    metrics::gauge!(MAILBOX_SYNC_LAG, &labels)
                        .set(now.saturating_sub(ok) as f64 / 1000.0);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "sync states for /metrics failed"),
    }
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.handle.render(),
    )
        .into_response()
}

/// Middleware: HTTP latency by method, matched route and status; webhook outcomes by
/// channel (the route template keeps label cardinality bounded).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let channel = webhook_channel(req.uri().path());
    let response = next.run(req).await;
    let status = response.status();
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route, "status" => status.as_u16().to_string())
        .record(start.elapsed().as_secs_f64());
    if let Some(channel) = channel {
        let outcome = match status.as_u16() {
            200..=299 => "accepted",
            401 | 403 => "rejected",
            400..=499 => "invalid",
            _ => "error",
        };
        metrics::counter!(WEBHOOKS, "channel" => channel, "outcome" => outcome).increment(1);
    }
    response
}

/// The channel id of a `/webhooks/{channel}/...` path.
fn webhook_channel(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/webhooks/")?;
    let id = rest.split('/').next().filter(|s| !s.is_empty())?;
    // Unknown ids are attacker-controlled: keep them out of label values.
    Some(
        if id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            id.to_string()
        } else {
            "invalid".to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_channel_labels() {
        assert_eq!(
            webhook_channel("/webhooks/acme-sms/messages").as_deref(),
            Some("acme-sms")
        );
        assert_eq!(
            webhook_channel("/webhooks/acme-wa").as_deref(),
            Some("acme-wa")
        );
        assert_eq!(
            webhook_channel("/webhooks/%3Cscript%3E/x").as_deref(),
            Some("invalid")
        );
        assert_eq!(webhook_channel("/api/v1/conversations"), None);
    }
}
