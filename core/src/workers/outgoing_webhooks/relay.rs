//! The relay: one per process, delivering each enabled endpoint's events in order.
//!
//! It claims an endpoint that owes events (a lease in the database; on PostgreSQL the claim
//! skips rows other replicas hold), reads the tenant's events after the endpoint's cursor and
//! POSTs them one at a time. A 2xx moves the cursor (and renews the lease) in one transaction
//! with the log row; a failure logs, counts, schedules the retry with backoff and releases
//! the endpoint, leaving the failed event at the head. Up to `concurrency` endpoints are
//! delivered to at once; an endpoint never has two deliveries in flight.
//!
//! It sleeps until the event hub signals new events, a retry comes due, the API re-enables an
//! endpoint, or a slow safety poll fires.

use super::{Webhooks, deliver};
use crate::domain::model::now_millis;
use crate::infra::event_hub::EventHub;
use crate::store::{Store, StoreError, WebhookAttempt, WebhookClaim, WebhookFailure};
use crate::workers::outbox::backoff_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Events read from the log at a time.
const BATCH: i64 = 100;
/// Deliveries to one endpoint per claim, before it goes to the back of the queue.
const MAX_PER_CLAIM: usize = 500;
/// The safety net when nothing signals (a lost notification, a re-enable on another replica).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// An endpoint this process does not know (replicas with different configuration) is left
/// for this long, for a replica that knows it.
const UNKNOWN_ENDPOINT_DELAY_MS: i64 = 30_000;

pub struct Relay {
    store: Arc<dyn Store>,
    hub: Arc<EventHub>,
    webhooks: Arc<Webhooks>,
}

/// The retry delay after `failures` consecutive failures: exponential from `base_ms`, capped
/// at `max_ms`, with jitter (the outbox's backoff).
pub fn retry_delay_ms(failures: i64, base_ms: u64, max_ms: u64) -> i64 {
    i64::try_from(backoff_ms(failures.max(1), base_ms, max_ms)).unwrap_or(i64::MAX / 2)
}

impl Relay {
    pub fn new(store: Arc<dyn Store>, hub: Arc<EventHub>, webhooks: Arc<Webhooks>) -> Self {
        // A tenant's event ids commit in order (the tenant's counter row stays locked until
        // the event's transaction commits), so a cursor never moves past an event that
        // becomes visible later: no settling delay is needed.
        Self {
            store,
            hub,
            webhooks,
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.webhooks.settings.lease_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX / 2)
    }

    /// Delivers until `shutdown`, then lets the deliveries in flight finish. A process with
    /// no endpoints configured only prunes the delivery log (of endpoints removed since).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.webhooks.is_empty() {
            self.prune_loop(shutdown).await;
            return;
        }
        let pruner = tokio::spawn(self.clone().prune_loop(shutdown.clone()));
        let slots = Arc::new(Semaphore::new(self.webhooks.settings.concurrency.max(1)));
        let mut running = JoinSet::new();
        let mut changes = self.hub.subscribe();
        loop {
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            match self
                .store
                .claim_webhook_endpoint(now_millis(), self.lease_ms())
                .await
            {
                Ok(Some(claim)) => {
                    let this = self.clone();
                    let stop = shutdown.clone();
                    let span = tracing::info_span!("webhook", tenant = %claim.tenant_id, endpoint = %claim.id);
                    running.spawn(
                        async move {
                            if let Err(e) = this.process(claim, &stop).await {
                                // The lease expires and the endpoint is claimed again.
                                tracing::error!(error = %e, "webhook delivery bookkeeping failed");
                            }
                            drop(permit);
                            // There may be more to do (this endpoint's next batch, others).
                            this.webhooks.wake();
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    self.idle(&mut changes, &shutdown).await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!(error = %e, "claiming a webhook endpoint failed");
                    self.idle(&mut changes, &shutdown).await;
                }
            }
        }
        while running.join_next().await.is_some() {}
        let _ = pruner.await;
    }

    /// Waits for new events, a wake-up, the next due retry or the safety poll.
    async fn idle(&self, changes: &mut watch::Receiver<i64>, shutdown: &CancellationToken) {
        let now = now_millis();
        let wait = match self.store.next_webhook_due(now).await {
            Ok(Some(due)) => {
                let ms = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
                IDLE_POLL.min(Duration::from_millis(ms.max(10)))
            }
            _ => IDLE_POLL,
        };
        // A closed hub (shutting down) would wake at once, forever: then only the timer.
        let hub_open = changes.has_changed().is_ok();
        tokio::select! {
            _ = changes.changed(), if hub_open => {}
            _ = self.webhooks.woken() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// Delivers a claimed endpoint's events until it is caught up, fails, or has had its turn.
    async fn process(
        &self,
        mut claim: WebhookClaim,
        shutdown: &CancellationToken,
    ) -> Result<(), StoreError> {
        let Some(endpoint) = self.webhooks.endpoint(&claim.tenant_id, &claim.id) else {
            tracing::warn!(
                "endpoint not in this process's configuration; leaving it to a replica that has it"
            );
            return self
                .store
                .release_webhook_endpoint(&claim, now_millis() + UNKNOWN_ENDPOINT_DELAY_MS)
                .await;
        };
        let http = match self.webhooks.http() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot deliver webhooks");
                return self
                    .store
                    .release_webhook_endpoint(&claim, now_millis() + UNKNOWN_ENDPOINT_DELAY_MS)
                    .await;
            }
        };
        let settings = &self.webhooks.settings;
        let lease_ms = self.lease_ms();
        let mut delivered = 0usize;
        loop {
            let events = self
                .store
                .events_since(&claim.tenant_id, claim.cursor, BATCH)
                .await?;
            if events.is_empty() {
                return self
                    .store
                    .release_webhook_endpoint(&claim, now_millis())
                    .await;
            }
            // The last event the filter passed over since the cursor: moved over with the next
            // delivery, or on its own at the end of the batch.
            let mut passed_over = None;
            for event in events {
                if !endpoint.filter.matches(&event.kind) {
                    passed_over = Some(event.seq);
                    continue;
                }
                let attempt_no = claim.consecutive_failures + 1;
                let outcome = deliver::post(
                    http,
                    &endpoint.url,
                    &endpoint.secret,
                    &event,
                    self.webhooks.timeout(),
                )
                .await;
                let attempt = WebhookAttempt {
                    tenant_id: claim.tenant_id.clone(),
                    endpoint_id: claim.id.clone(),
                    kind: "event",
                    event_seq: event.seq,
                    event_type: event.kind.clone(),
                    attempt: attempt_no,
                    status_code: outcome.status.map(i64::from),
                    error: outcome.error.clone(),
                    duration_ms: outcome.duration_ms,
                    at: now_millis(),
                };
                if outcome.delivered() {
                    tracing::debug!(event = event.seq, kind = %event.kind, status = ?outcome.status, ms = outcome.duration_ms, "webhook delivered");
                    if !self
                        .store
                        .webhook_advance(&mut claim, event.seq, Some(&attempt), lease_ms)
                        .await?
                    {
                        tracing::warn!("lease lost; another worker has the endpoint now");
                        return Ok(());
                    }
                    passed_over = None;
                    delivered += 1;
                } else {
                    if let Some(seq) = passed_over
                        && !self
                            .store
                            .webhook_advance(&mut claim, seq, None, lease_ms)
                            .await?
                    {
                        return Ok(());
                    }
                    // Never sooner than the endpoint's Retry-After (bounded like the outbox's).
                    let delay = i64::try_from(crate::workers::outbox::retry_delay_ms(
                        u64::try_from(retry_delay_ms(
                            attempt_no,
                            settings.base_delay_ms,
                            settings.max_delay_ms,
                        ))
                        .unwrap_or(0),
                        outcome.retry_after_ms,
                    ))
                    .unwrap_or(i64::MAX / 2);
                    let error = outcome.error.as_deref().unwrap_or_default();
                    let result = self
                        .store
                        .webhook_failed(
                            &claim,
                            &attempt,
                            now_millis().saturating_add(delay),
                            i64::from(settings.disable_after),
                        )
                        .await?;
                    match result {
                        WebhookFailure::Retry {
                            consecutive_failures,
                        } => tracing::info!(
                            event = event.seq, %error, consecutive_failures, retry_in_ms = delay,
                            "webhook delivery failed; will retry"
                        ),
                        WebhookFailure::Disabled {
                            consecutive_failures,
                        } => tracing::warn!(
                            event = event.seq, %error, consecutive_failures,
                            "webhook endpoint disabled after consecutive failures; an admin can re-enable it"
                        ),
                        WebhookFailure::LeaseLost => {
                            tracing::warn!("lease lost before the failure was recorded")
                        }
                    }
                    return Ok(());
                }
                if shutdown.is_cancelled() || delivered >= MAX_PER_CLAIM {
                    return self
                        .store
                        .release_webhook_endpoint(&claim, now_millis())
                        .await;
                }
            }
            if let Some(seq) = passed_over
                && !self
                    .store
                    .webhook_advance(&mut claim, seq, None, lease_ms)
                    .await?
            {
                return Ok(());
            }
        }
    }

    async fn prune_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let retention_ms = i64::try_from(
            self.webhooks
                .settings
                .log_retention_hours
                .saturating_mul(3_600_000),
        )
        .unwrap_or(i64::MAX);
        loop {
            match self
                .store
                .prune_webhook_deliveries(now_millis().saturating_sub(retention_ms))
                .await
            {
                Ok(n) if n > 0 => {
                    tracing::info!(pruned = n, "old webhook delivery log entries pruned")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning the webhook delivery log failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_with_jitter_and_cap() {
        let (base, max) = (1_000u64, 600_000u64);
        for failures in 1..=60i64 {
            let full = i64::try_from((base << (failures - 1).min(30)).min(max)).expect("fits");
            for _ in 0..20 {
                let d = retry_delay_ms(failures, base, max);
                assert!(
                    d >= full / 2 && d <= full,
                    "failures {failures}: {d} not in [{}, {full}]",
                    full / 2
                );
            }
        }
        // The first retry is about base, the cap holds far out, and jitter spreads retries.
        assert!((500..=1_000).contains(&retry_delay_ms(1, base, max)));
        assert!(retry_delay_ms(50, base, max) <= 600_000);
        let spread: std::collections::HashSet<i64> =
            (0..50).map(|_| retry_delay_ms(10, base, max)).collect();
        assert!(spread.len() > 1, "no jitter");
        // Zero or negative counts are treated as the first failure.
        assert!(retry_delay_ms(0, base, max) <= 1_000);
    }
}
