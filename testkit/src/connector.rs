//! Connectors under test without the daemon: the context core hands a connector (an
//! `Ingest` bound to a test store's tenant and channel, HTTP clients that may reach the
//! loopback fakes), and one call of a connector's router, answered as (status,
//! content type, body text).

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use switchboard_core::contract::connector::ConnectorContext;
use switchboard_core::contract::ingest::Ingest;
use switchboard_core::contract::ingest_types::{ChannelRef, Threading};
use switchboard_core::infra::public_http::PublicHttp;
use switchboard_core::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Core's ingest for one channel of `store`, threaded as its connector declares
/// (`switchboard_twilio::TYPE.threading`, ...).
pub fn ingest(store: Arc<dyn Store>, tenant: &str, channel: &str, threading: Threading) -> Ingest {
    let channel = ChannelRef {
        tenant_id: tenant.into(),
        channel_id: channel.into(),
        threading,
    };
    Ingest::new(store, channel, Arc::new(Notify::new()))
}

/// A connector's context around `ingest`, its public URL `public_url`.
pub fn context(ingest: Ingest, public_url: &str) -> ConnectorContext {
    crate::install_crypto();
    ConnectorContext {
        ingest,
        http: reqwest::Client::builder().build().expect("http client"),
        // Fake servers listen on loopback.
        public_http: PublicHttp::new(true).expect("client"),
        public_url: public_url.into(),
        shutdown: CancellationToken::new(),
    }
}

/// Sends `req` through `router` once: (status, content type, body as text).
pub async fn call(router: Router, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = router.oneshot(req).await.expect("infallible");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}
