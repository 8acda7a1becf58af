//! Infrastructure the other layers stand on: configuration, credentials (API tokens, JWT),
//! the blob store, the guarded HTTP client for URLs callers name, metrics, the event hub
//! that wakes live clients when the durable event log grows, and the live clients' cursors.

pub mod auth;
pub mod blob;
pub mod config;
pub mod event_hub;
pub mod memory;
pub mod metrics;
pub mod public_http;
pub mod stream_cursor;
