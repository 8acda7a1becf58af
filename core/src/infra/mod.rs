//! Infrastructure the other layers stand on: configuration, credentials (API tokens, JWT),
//! the blob store, the guarded HTTP client for URLs that callers and providers name (with
//! host allow-lists for provider media), metrics, the event hub that wakes live clients
//! when the durable event log grows, the live clients' cursors, and the signer of
//! short-lived media URLs.

pub mod auth;
pub mod blob;
pub mod config;
pub mod event_hub;
pub mod host_list;
pub mod memory;
pub mod metrics;
pub mod public_http;
pub mod signed_url;
pub mod stream_cursor;
