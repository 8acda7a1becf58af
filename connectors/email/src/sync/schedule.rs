//! The safety-net schedule: a cron expression (6 fields, with seconds, UTC) run by
//! tokio-cron-scheduler, which wakes the sync loop. IDLE brings mail within seconds; the
//! schedule catches whatever IDLE missed (a dropped connection, a server without IDLE).

use std::sync::Arc;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};

/// Every five minutes: the schedule when the configuration names none.
pub const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";

/// Checks a cron expression (for the start-up configuration report).
pub fn check(expression: &str) -> Result<(), String> {
    Job::new_async(expression, |_, _| Box::pin(async {}))
        .map(|_| ())
        // The scheduler's error names its parser's internals (`ParseSchedule`), nothing a
        // reader of the configuration can act on.
        .map_err(|_| {
            "not a valid cron schedule (6 fields with seconds, e.g. \"0 */5 * * * *\")".to_string()
        })
}

/// Starts a scheduler that calls `wake.notify_one()` on every tick of `expression`.
pub async fn start(expression: &str, wake: Arc<Notify>) -> Result<JobScheduler, String> {
    let scheduler = JobScheduler::new().await.map_err(|e| e.to_string())?;
    let job = Job::new_async(expression, move |_, _| {
        let wake = wake.clone();
        Box::pin(async move {
            wake.notify_one();
        })
    })
    .map_err(|e| e.to_string())?;
    scheduler.add(job).await.map_err(|e| e.to_string())?;
    scheduler.start().await.map_err(|e| e.to_string())?;
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_checked() {
        assert!(check(DEFAULT_SCHEDULE).is_ok());
        assert!(check("*/10 * * * * *").is_ok());
        assert!(check("every five minutes").is_err());
    }

    #[tokio::test]
    async fn the_schedule_wakes_the_loop() {
        let wake = Arc::new(Notify::new());
        let mut scheduler = start("* * * * * *", wake.clone()).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
            .await
            .expect("a tick within five seconds");
        scheduler.shutdown().await.unwrap();
    }
}
