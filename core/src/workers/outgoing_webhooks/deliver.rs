//! One HTTP attempt: the signed POST of one event to one endpoint, and its outcome.

use super::sign;
use crate::api::views::EventView;
use crate::infra::config::Secret;
use crate::store::EventRow;
use std::time::{Duration, Instant};

/// How much of a failed response's body is kept in the error (for the delivery log).
const ERROR_BODY_BYTES: usize = 200;

/// The result of one attempt. Success is a 2xx; anything else is a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// None exactly when the attempt succeeded.
    pub error: Option<String>,
    /// The endpoint's `Retry-After` on a failed answer (429, 503), in milliseconds: the
    /// next attempt waits at least this long.
    pub retry_after_ms: Option<u64>,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// The request body: the event exactly as the live event stream shows it
/// (`{"id", "type", "data", "created_at"}`).
pub fn body(event: &EventRow) -> Vec<u8> {
    // Serializing a tree of JSON values cannot fail.
    serde_json::to_vec(&EventView::from(event.clone())).unwrap_or_default()
}

/// POSTs `event` to `url`, signed with `secret`, within `timeout`.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    event: &EventRow,
    timeout: Duration,
) -> Outcome {
    let body = body(event);
    let timestamp = crate::domain::model::now_millis().div_euclid(1000);
    let signature = sign::signature(secret.expose().as_bytes(), timestamp, &body);
    let started = Instant::now();
    let elapsed =
        |started: Instant| i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let request = http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(sign::EVENT_ID_HEADER, event.seq.to_string())
        .header(sign::EVENT_TYPE_HEADER, event.kind.as_str())
        .header(sign::SIGNATURE_HEADER, signature)
        .body(body);
    let attempt = async {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok((status.as_u16(), None, None));
        }
        let retry_after = crate::contract::provider_http::retry_after_ms(response.headers());
        let snippet = error_snippet(response).await;
        Ok::<_, reqwest::Error>((status.as_u16(), Some(snippet), retry_after))
    };
    // The request's own timeout covers the exchange; this one also bounds reading the body.
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok((status, None, _))) => Outcome {
            status: Some(status),
            duration_ms: elapsed(started),
            error: None,
            retry_after_ms: None,
        },
        Ok(Ok((status, Some(snippet), retry_after_ms))) => Outcome {
            status: Some(status),
            duration_ms: elapsed(started),
            retry_after_ms,
            error: Some(if snippet.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {snippet}")
            }),
        },
        Ok(Err(e)) => Outcome {
            status: None,
            retry_after_ms: None,
            duration_ms: elapsed(started),
            error: Some(describe(&e, timeout)),
        },
        Err(_) => Outcome {
            status: None,
            retry_after_ms: None,
            duration_ms: elapsed(started),
            error: Some(format!("timed out after {}s", timeout.as_secs_f64())),
        },
    }
}

/// The start of a failed response's body, on one line, for the log.
async fn error_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ERROR_BODY_BYTES);
    String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A transport error in words, without the URL (it is the endpoint's, known already).
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {}s", timeout.as_secs_f64());
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    // The chain of sources says why (refused, DNS, TLS...).
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}
