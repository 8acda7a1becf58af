//! Channel health: each connector's `healthcheck` (can it reach its provider with its
//! credentials) runs at start-up and then periodically; the channel's status (`active` or
//! `error` with the reason) is recorded only when it changes, which emits `channel.updated`
//! to live clients and outgoing webhooks.

use crate::contract::connector::Connectors;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one provider check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// Checks every channel now, then every `every` (`None`: only now), until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    connectors: Arc<Connectors>,
    every: Option<Duration>,
    shutdown: CancellationToken,
) {
    let mut last: HashMap<String, Result<(), String>> = HashMap::new();
    loop {
        for (id, connector) in connectors.iter() {
            let result = match tokio::time::timeout(CHECK_TIMEOUT, connector.healthcheck()).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no answer from the provider within {}s",
                    CHECK_TIMEOUT.as_secs()
                )),
            };
            if last.get(id) == Some(&result) {
                continue;
            }
            let (status, error) = match &result {
                Ok(()) => ("active", None),
                Err(e) => ("error", Some(e.as_str())),
            };
            match &result {
                Ok(()) => tracing::info!(channel = %id, "channel healthy"),
                Err(e) => tracing::warn!(channel = %id, error = %e, "channel health check failed"),
            }
            match store.set_channel_status(id, status, error).await {
                Ok(()) => {
                    last.insert(id.clone(), result);
                }
                Err(e) => {
                    tracing::warn!(channel = %id, error = %e, "recording channel status failed")
                }
            }
        }
        let Some(every) = every else { return };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
