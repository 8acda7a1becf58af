//! The contract between core and connectors: what a kind of connector declares
//! ([`registry`]), the trait a configured channel implements and the context it gets
//! ([`connector`]), the ingest handle it hands normalized traffic to and the outcomes it gets
//! back ([`ingest`]), how its webhook handlers answer providers ([`provider_webhook`]), and
//! the shared handling of provider HTTP responses ([`provider_http`]).
//!
//! Connectors import from here and from [`crate::domain`], never from the store.

pub mod connector;
pub mod ingest;
mod ingest_text;
pub mod ingest_types;
pub mod journal;
pub mod provider_http;
pub mod provider_webhook;
pub mod registry;
