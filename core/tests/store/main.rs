//! The store suite: every test runs against SQLite and against PostgreSQL, each on a fresh
//! database. PostgreSQL is taken from `SWITCHBOARD_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a missing server fails the suite — the
//! test command starts one.

#[path = "../support/mod.rs"]
mod support;

/// Generates, for each test function of the calling module, a `sqlite` and a `postgres`
/// test that run it on a fresh database.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = crate::support::TestDb::sqlite().await;
                super::$name(db.store.clone()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = crate::support::TestDb::postgres().await;
                super::$name(db.store.clone()).await;
                db.drop_pg().await;
            })*
        }
    };
}

mod email;
mod ingest;
mod outbound;
mod tenancy;
