//! The store suite: every test runs against SQLite and against PostgreSQL, each on a fresh
//! database (`switchboard_testkit::store_tests!`). PostgreSQL is taken from
//! `SWITCHBOARD_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`); a missing
//! server fails the suite — the test command starts one.

mod support;

mod contacts;
mod contacts_erase;
mod email;
mod event_ids;
mod ingest;
mod outbound;
mod staff;
mod tenancy;
mod webhooks;
