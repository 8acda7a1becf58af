//! Infrastructure the other layers stand on: configuration, credentials (API tokens, JWT),
//! the blob store, the guarded HTTP client for URLs callers name, metrics, and the event hub
//! that wakes live clients when the durable event log grows.

pub mod auth;
pub mod blob;
pub mod config;
pub mod event_hub;
pub mod metrics;
pub mod public_http;
