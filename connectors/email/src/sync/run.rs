//! The sync loop of one channel: a sync at start, then one whenever an IDLE watcher sees
//! new mail or the schedule ticks, until shutdown. One loop per channel, so runs never
//! overlap; wake-ups arriving during a run coalesce into one more run. A failed run is
//! retried with backoff.

use super::SyncEngine;
use super::schedule;
use crate::imap::{Backoff, WatchEvent, watch_folder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Runs the channel's sync until `shutdown`.
pub async fn run(engine: Arc<SyncEngine>, shutdown: CancellationToken) {
    let wake = Arc::new(Notify::new());
    let settings = engine.settings().clone();
    let mut watchers = tokio::task::JoinSet::new();
    if settings.imap.idle {
        for folder in settings.imap.all_folders() {
            let config = settings.imap.clone();
            let wake = wake.clone();
            let stop = shutdown.clone();
            let engine = engine.clone();
            watchers.spawn(async move {
                let result = watch_folder(
                    &config,
                    &folder,
                    wake,
                    Backoff::default(),
                    stop.cancelled_owned(),
                    |event| match event {
                        WatchEvent::Connected => tracing::debug!(folder, "IDLE watching"),
                        WatchEvent::Disconnected { error, retry_in } => {
                            tracing::warn!(folder, %error, ?retry_in, "IDLE connection lost");
                        }
                    },
                )
                .await;
                if let Err(e) = result {
                    // Permanent (credentials, folder gone): the schedule still syncs what it
                    // can; the error shows in the channel's sync state.
                    tracing::error!(folder, error = %e, "IDLE watch stopped");
                    let _ = engine
                        .ingest()
                        .record_sync_run(&folder, Some(format!("IDLE: {e}")), 0, 0)
                        .await;
                }
            });
        }
    }
    let expression = settings
        .imap
        .schedule
        .clone()
        .unwrap_or_else(|| schedule::DEFAULT_SCHEDULE.to_string());
    let mut scheduler = match schedule::start(&expression, wake.clone()).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, schedule = %expression, "the sync schedule could not start");
            None
        }
    };
    let backoff = Backoff {
        initial: Duration::from_secs(2),
        max: Duration::from_secs(300),
    };
    let mut failures = 0u32;
    // One pending look at the lease at a time, however many wake-ups a standby gets.
    let lease_retry = Arc::new(AtomicBool::new(false));
    // The first run at start: the backlog since the last run is fetched whole.
    wake.notify_one();
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = shutdown.cancelled() => break,
        }
        let result = tokio::select! {
            r = engine.sync_all() => r,
            // A run cut short stores nothing half: its last batch rolls back and is fetched
            // again after restart.
            () = shutdown.cancelled() => break,
        };
        match result {
            Ok(report) if report.skipped => {
                // Another replica syncs this mailbox. Look again when its lease could have
                // expired, so a replica that died (or this process's previous life, after
                // a kill) is taken over without waiting for IDLE or the schedule.
                if !lease_retry.swap(true, Ordering::SeqCst) {
                    let wait = Duration::from_secs(settings.lease_secs.max(10) + 1);
                    let pending = lease_retry.clone();
                    wake_after(wait, &wake, &shutdown, move || {
                        pending.store(false, Ordering::SeqCst);
                    });
                }
            }
            Ok(report) => {
                failures = 0;
                tracing::info!(summary = %report.summary(), "mailbox synced");
            }
            Err(e) => {
                let delay = backoff.delay(failures);
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, retry_in = ?delay, "mailbox sync failed");
                wake_after(delay, &wake, &shutdown, || {});
            }
        }
    }
    if let Some(s) = scheduler.as_mut() {
        let _ = s.shutdown().await;
    }
    while watchers.join_next().await.is_some() {}
    engine.release_lease().await;
}

/// Wakes the loop after `delay` (unless shutting down first), then runs `done`.
fn wake_after(
    delay: Duration,
    wake: &Arc<Notify>,
    shutdown: &CancellationToken,
    done: impl FnOnce() + Send + 'static,
) {
    let wake = wake.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(delay) => wake.notify_one(),
            () = stop.cancelled() => {}
        }
        done();
    });
}
