//! The WhatsApp webhook suites' shared set-up: the tenant, channel and phone number the
//! tests post to, a fresh SQLite store seeded with them (the test kit's), and the harness
//! that drives the connector's routes.

pub use switchboard_testkit::TestStore;

pub mod harness;

pub const TENANT: &str = "acme";
pub const CHANNEL: &str = "acme-wa";
pub const PNID: &str = "106540352242922";

/// A migrated SQLite store with the tenant and its WhatsApp channel.
pub async fn test_store() -> TestStore {
    TestStore::single_channel(TENANT, CHANNEL, "whatsapp", PNID).await
}
