//! REST API v1 integration tests: each test gets a fresh SQLite store in a tempdir, two
//! tenants with a Twilio channel each and admin/agent tokens, builds the real router and
//! drives it with `tower::ServiceExt::oneshot`. Data is seeded through `ingest_message`.

mod attachments;
mod auth;
mod channel_rules;
mod conversations;
mod jwt;
mod replies;
mod support;
mod tenancy;
mod validation;
