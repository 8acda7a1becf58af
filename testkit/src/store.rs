//! Real stores for tests: a migrated SQLite database in a temp dir, or a fresh PostgreSQL
//! database per test (created on the server from `SWITCHBOARD_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, and dropped afterwards), seeded with the
//! tenants and channels the test declares. A missing PostgreSQL server fails loudly: the
//! suites that need it must not pass by skipping.

use sqlx::SqlitePool;
use std::sync::Arc;
use switchboard_core::domain::model::new_id;
use switchboard_core::store::{ChannelRecord, Store, TenantRecord, open};
use tempfile::TempDir;

/// The PostgreSQL server's admin URL (a database we may create others from).
pub fn pg_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A PostgreSQL database created for one test; dropped (connections and all) when this
/// value is dropped, so failed tests do not leave databases behind either.
#[derive(Debug)]
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    /// Creates `<prefix>_<unique>` on the server.
    pub async fn create(prefix: &str) -> Self {
        use sqlx::Connection;
        let admin = pg_admin_url();
        let name = format!("{prefix}_{}", new_id().replace('-', ""));
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("bad admin url {admin}"),
        };
        Self { url, admin, name }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its
        // own runtime can, and waiting for it keeps databases from piling up.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// What a test store is seeded with; the first tenant and channel are the ones the
/// [`TestStore`] helpers read.
#[derive(Debug, Clone, Default)]
pub struct StoreBuilder {
    tenants: Vec<TenantRecord>,
    channels: Vec<ChannelRecord>,
    pool: Option<u32>,
}

impl StoreBuilder {
    pub fn tenant(mut self, id: &str) -> Self {
        self.tenants.push(TenantRecord {
            id: id.into(),
            name: None,
        });
        self
    }

    /// A channel of `tenant` with its provider `kind` and optional address.
    pub fn channel(mut self, tenant: &str, id: &str, kind: &str, address: Option<&str>) -> Self {
        self.channels.push(ChannelRecord {
            id: id.into(),
            tenant_id: tenant.into(),
            kind: kind.into(),
            address: address.map(str::to_string),
        });
        self
    }

    /// The connection pool size (default 4 for SQLite, 8 for PostgreSQL).
    pub fn pool(mut self, size: u32) -> Self {
        self.pool = Some(size);
        self
    }

    /// A fresh SQLite database in a temp dir.
    pub async fn sqlite(self) -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/test.db", dir.path().display());
        let store = open(&url, self.pool.unwrap_or(4))
            .await
            .expect("open sqlite");
        self.seed(store.as_ref()).await;
        let side = SqlitePool::connect(&url).await.expect("side connection");
        TestStore {
            store,
            tenant: self.first_tenant(),
            channel: self.first_channel(),
            sqlite: Some(side),
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, dropped with the returned value.
    pub async fn postgres(self) -> TestStore {
        let pg = PgDatabase::create("sb_test").await;
        let store = open(&pg.url, self.pool.unwrap_or(8))
            .await
            .expect("open postgres");
        self.seed(store.as_ref()).await;
        TestStore {
            store,
            tenant: self.first_tenant(),
            channel: self.first_channel(),
            sqlite: None,
            _dir: None,
            pg: Some(pg),
        }
    }

    fn first_tenant(&self) -> String {
        self.tenants
            .first()
            .map(|t| t.id.clone())
            .unwrap_or_default()
    }

    fn first_channel(&self) -> String {
        self.channels
            .first()
            .map(|c| c.id.clone())
            .unwrap_or_default()
    }

    async fn seed(&self, store: &dyn Store) {
        store.migrate().await.expect("migrate");
        assert!(store.migrations_applied().await.expect("applied"));
        store
            .sync_tenants_and_channels(&self.tenants, &self.channels)
            .await
            .expect("sync tenants and channels");
    }
}

/// A migrated, seeded store; its database lives as long as this value.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// The first seeded tenant and channel: what the read helpers look at.
    pub tenant: String,
    pub channel: String,
    /// A separate connection to a SQLite store, for what the store has no API to read
    /// (parked statuses) and for injecting failures.
    sqlite: Option<SqlitePool>,
    _dir: Option<TempDir>,
    pg: Option<PgDatabase>,
}

impl TestStore {
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// The common connector set-up: one tenant with one channel, on SQLite.
    pub async fn single_channel(tenant: &str, channel: &str, kind: &str, address: &str) -> Self {
        Self::builder()
            .tenant(tenant)
            .channel(tenant, channel, kind, Some(address))
            .pool(2)
            .sqlite()
            .await
    }

    /// The side connection to a SQLite store.
    pub fn sqlite_pool(&self) -> &SqlitePool {
        self.sqlite
            .as_ref()
            .expect("a SQLite test store (the side connection is SQLite only)")
    }

    /// Drops a PostgreSQL database now, after closing the store's connections (dropping
    /// the value does it too, also on panic).
    pub async fn drop_pg(self) {
        let Self { store, pg, .. } = self;
        drop(store);
        drop(pg);
    }
}
