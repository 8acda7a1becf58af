//! Switchboard core: the conversation/message model, configuration, the store (SQLite and
//! PostgreSQL), the ingest pipeline, the outbox dispatcher and the REST API.
//!
//! Connectors depend on this crate and never the reverse; only this crate touches the
//! database. A connector gets a [`connector::ConnectorContext`], never a pool.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod auth;
pub mod blob;
pub mod config;
pub mod connector;
pub mod events;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod public_http;
pub mod store;
pub mod thread;
pub mod tokens;
pub mod webhook;
pub mod webhooks_out;
