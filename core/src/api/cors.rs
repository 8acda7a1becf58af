//! CORS for staff frontends served from another origin (`server.cors_allowed_origins`).
//!
//! Only configured origins get CORS headers; with none configured this layer is not
//! installed at all. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) from an allowed origin is answered here, 204 with the
//! methods, the request headers the API reads (`Authorization`, `Content-Type`,
//! `Idempotency-Key`, `Last-Event-ID`) and a `Max-Age`; any other `OPTIONS` goes on to the
//! router like any request (405). Other requests from an allowed origin get
//! `Access-Control-Allow-Origin` and the response headers a script may read (`Retry-After`,
//! the rate-limit fields, `Content-Disposition`, `WWW-Authenticate`). Credentials are never
//! allowed: the API takes bearer tokens, not cookies, so `*` is safe as "any origin".

use super::rate_limit::{RATELIMIT, RATELIMIT_POLICY};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Methods the API routes use.
const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE";
/// Request headers the API reads.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID";
/// How long a browser may cache a preflight answer (seconds; Chromium caps it at 7200).
const MAX_AGE_SECS: u32 = 600;

/// The allowed origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// `*` was configured: every origin.
    any: bool,
    /// Exact origins (as browsers serialize them: lower-case scheme and host).
    origins: Vec<String>,
}

impl CorsPolicy {
    /// The policy for the configured origins (checked by configuration); None if empty.
    pub fn new(origins: &[String]) -> Option<Self> {
        if origins.is_empty() {
            return None;
        }
        Some(Self {
            any: origins.iter().any(|o| o == "*"),
            origins: origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
        })
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn allow_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins.contains(&text).then(|| origin.clone())
    }
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Middleware: answers allowed preflights, adds the CORS headers to allowed origins'
/// responses, and leaves every other request alone (`Vary: Origin` aside).
pub async fn layer(
    State(policy): State<Arc<CorsPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = policy.allow_origin(request.headers());
    if let Some(origin) = &allowed
        && is_preflight(&request)
    {
        return preflight(origin.clone());
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        let exposed = format!(
            "Retry-After, {RATELIMIT}, {RATELIMIT_POLICY}, Content-Disposition, WWW-Authenticate"
        );
        if let Ok(v) = HeaderValue::from_str(&exposed) {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }
    response
}

/// 204 for a preflight from an allowed origin.
fn preflight(origin: HeaderValue) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(MAX_AGE_SECS),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn only_configured_origins_are_allowed() {
        assert_eq!(CorsPolicy::new(&[]), None);
        let policy = CorsPolicy::new(&["https://app.example".into()]).expect("policy");
        assert_eq!(
            policy.allow_origin(&origin("https://app.example")),
            Some(HeaderValue::from_static("https://app.example"))
        );
        assert_eq!(policy.allow_origin(&origin("https://evil.example")), None);
        assert_eq!(
            policy.allow_origin(&origin("https://app.example.evil")),
            None
        );
        assert_eq!(policy.allow_origin(&HeaderMap::new()), None);
        let any = CorsPolicy::new(&["*".into()]).expect("policy");
        assert_eq!(
            any.allow_origin(&origin("https://whoever.example")),
            Some(HeaderValue::from_static("*"))
        );
    }
}
