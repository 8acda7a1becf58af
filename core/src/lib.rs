//! Switchboard core: the conversation/message model, the connector contract, the store
//! (SQLite and PostgreSQL), the REST API and the background workers.
//!
//! The folders are the layers, from the bottom up (see `ARCHITECTURE.md`):
//!
//! - [`domain`]: the shared vocabulary and pure rules (model, thread decision); no I/O.
//! - [`infra`]: configuration, credentials, blobs, metrics, the guarded HTTP client, the
//!   event hub.
//! - [`store`]: the only code that touches the database; typed rows in, typed rows out.
//! - [`contract`]: what connectors see: the registry of connector types, the `Connector`
//!   trait and its context, the ingest handle.
//! - [`api`]: HTTP for staff frontends: views, OpenAPI, errors mapped in one place.
//! - [`workers`]: the outbox dispatcher, channel health, the outgoing-webhook relay.
//!
//! Connectors depend on this crate and never the reverse; a connector gets a
//! [`contract::connector::ConnectorContext`], never a pool, and core never matches on a
//! concrete channel kind: each connector declares what differs in its
//! [`contract::registry::ConnectorType`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod contract;
pub mod domain;
pub mod infra;
pub mod store;
pub mod workers;
