//! Switchboard's test kit, shared by every test suite of the workspace (a dev-dependency
//! only):
//! - [`store`]: real stores on SQLite or a fresh PostgreSQL database, seeded per test, and
//!   [`store_tests!`] to run a suite on both;
//! - [`golden`]: the golden-file harness (fixtures normalized and compared with their JSON);
//! - [`app`]: `spawn_app`, the real daemon with a generated configuration ([`config`]) and
//!   fake providers, driven through [`daemon::Daemon`];
//! - [`twilio`] (with [`twilio_list`], its Messages list) and [`graph`]: fake Twilio and
//!   Meta Graph APIs;
//! - `mail` (feature `mail`): real Dovecot and Postfix on free ports;
//! - [`browser`]: headless Chromium over the DevTools protocol, with no network but loopback.

pub mod app;
pub mod browser;
pub mod config;
pub mod connector;
pub mod daemon;
pub mod golden;
pub mod graph;
pub mod graph_media;
pub mod graph_upload;
#[cfg(feature = "mail")]
pub mod mail;
pub mod store;
mod store_reads;
pub mod twilio;
pub mod twilio_list;

pub use app::{App, AppBuilder, Replica, spawn_app};
pub use daemon::Daemon;
pub use golden::Golden;
pub use store::{PgDatabase, StoreBuilder, TestStore};

use std::time::{Duration, Instant};

/// The path of the `switchboard` binary, for [`spawn_app`]. Cargo tells it only to the
/// binary package's own tests, so this expands to `env!` in the calling test crate.
#[macro_export]
macro_rules! switchboard_bin {
    () => {
        env!("CARGO_BIN_EXE_switchboard")
    };
}

/// Installs rustls' ring provider as the process default (idempotent), as the daemon does.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for tests (rustls with the ring provider, as the daemon uses).
pub fn http() -> reqwest::Client {
    install_crypto();
    reqwest::Client::new()
}

/// Polls `f` until it returns Some, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
