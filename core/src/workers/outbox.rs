//! The job dispatcher: sends queued replies through their originating connector and fetches
//! inbound media into the blob store.
//!
//! Jobs live in the database, so the dispatcher survives restarts. A claim holds a lease; a
//! crashed worker's job is claimed again once its lease expires (and, on PostgreSQL, claims
//! use `SKIP LOCKED`, so replicas never work one job at the same time). Transient errors are
//! retried with exponential backoff and jitter (never sooner than the provider's
//! `Retry-After`) up to the configured limit; permanent errors
//! fail the job at once with the provider's code.
//!
//! Sending is at least once, and the window for twice is kept narrow: the start of a send
//! attempt is committed before the provider is called, so an attempt after one that left no
//! outcome (`kill -9` mid-request, a lost answer) first asks the connector whether the
//! provider already has the message ([`Connector::find_prior_send`]) and, if so, records
//! that as the send instead of sending again. Connectors that cannot tell send again.

use crate::contract::connector::{Connector, Connectors, PriorSend};
use crate::domain::model::{MediaLimits, Millis, OutboundMessage, SendError, now_millis};
use crate::infra::blob::BlobStore;
use crate::infra::config::{MediaConfig, OutboxConfig};
use crate::store::{Job, JobKind, Store, StoreError, StoredBlob};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    connectors: Arc<Connectors>,
    blobs: BlobStore,
    outbox: OutboxConfig,
    media: MediaConfig,
    wake: Arc<Notify>,
}

/// The longest `Retry-After` honoured: a provider asking for more (or a hostile answer
/// asking for a year) is retried after an hour, and the attempt limit still applies.
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// The delay before the next attempt: the backoff, but never less than the provider's
/// `Retry-After` (bounded by [`MAX_RETRY_AFTER_MS`]).
pub fn retry_delay_ms(backoff: u64, retry_after_ms: Option<u64>) -> u64 {
    backoff.max(retry_after_ms.unwrap_or(0).min(MAX_RETRY_AFTER_MS))
}

/// Delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped, with
/// "equal jitter" (uniform in the upper half) so that a burst of failures spreads out.
pub fn backoff_ms(attempt: i64, base_ms: u64, max_ms: u64) -> u64 {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base_ms.saturating_mul(1u64 << exp).min(max_ms).max(1);
    let half = full / 2;
    half + rand::rng().random_range(0..=full - half)
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        connectors: Arc<Connectors>,
        blobs: BlobStore,
        outbox: OutboxConfig,
        media: MediaConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            connectors,
            blobs,
            outbox,
            media,
            wake,
        }
    }

    /// Runs until `shutdown`, then waits for the jobs in flight to finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.outbox.concurrency.max(1)));
        let mut running = JoinSet::new();
        let lease_ms =
            i64::try_from(self.outbox.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        loop {
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            match self.store.claim_job(now_millis(), lease_ms).await {
                Ok(Some(job)) => {
                    let this = self.clone();
                    let span = tracing::info_span!("job", id = %job.id, kind = job.kind.as_str(), channel = %job.channel_id, attempt = job.attempts);
                    running.spawn(
                        async move {
                            this.process(job).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    self.idle(&shutdown).await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!(error = %e, "claiming a job failed");
                    self.idle(&shutdown).await;
                }
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// Sleeps until the next job is due, new work is signalled, or the poll interval passes.
    async fn idle(&self, shutdown: &CancellationToken) {
        let poll = Duration::from_millis(self.outbox.poll_interval_ms.max(10));
        let wait = match self.store.next_job_due().await {
            Ok(Some(due)) => {
                let ms = u64::try_from(due.saturating_sub(now_millis())).unwrap_or(0);
                poll.min(Duration::from_millis(ms.max(10)))
            }
            _ => poll,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.wake.notified() => {}
            _ = shutdown.cancelled() => {}
        }
    }

    async fn process(&self, job: Job) {
        let result = match job.kind {
            JobKind::Send => self.send(&job).await,
            JobKind::FetchMedia => self.fetch(&job).await,
            JobKind::ReadReceipt => self.read_receipt(&job).await,
        };
        if let Err(e) = result {
            // The outcome could not be recorded; the lease will expire and the job be retried.
            tracing::error!(error = %e, "recording a job outcome failed");
        }
    }

    fn connector(&self, job: &Job) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(&job.channel_id)
    }

    /// What a job needs before it can run: its context from the store and its channel's
    /// connector. A job missing either can never succeed, so it is failed at once and
    /// `None` returned.
    async fn prepare<T>(
        &self,
        job: &Job,
        ctx: Result<T, StoreError>,
        missing: &str,
    ) -> Result<Option<(T, &Arc<dyn Connector>)>, StoreError> {
        let ctx = match ctx {
            Ok(ctx) => ctx,
            Err(StoreError::NotFound) => {
                self.store.job_failed(job, "not_found", missing).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match self.connector(job) {
            Some(c) => Ok(Some((ctx, c))),
            None => {
                self.store
                    .job_failed(
                        job,
                        "channel_not_configured",
                        "the channel is no longer configured",
                    )
                    .await?;
                Ok(None)
            }
        }
    }

    async fn send(&self, job: &Job) -> Result<(), StoreError> {
        let ctx = self.store.outbound_for_job(job).await;
        let Some((ctx, connector)) = self.prepare(job, ctx, "message no longer exists").await?
        else {
            return Ok(());
        };
        if let Some(since) = job.send_started_at
            && self
                .settle_prior_send(job, connector, &ctx.message, since)
                .await?
        {
            return Ok(());
        }
        if ctx.opted_out {
            return self
                .store
                .job_failed(
                    job,
                    "contact_opted_out",
                    "the contact opted out before the message was sent",
                )
                .await;
        }
        let result = connector.send(&ctx.message).await;
        let outcome = match &result {
            Ok(_) => "sent",
            Err(SendError::Transient { .. }) => "transient",
            Err(SendError::Permanent { .. }) => "permanent",
        };
        metrics::counter!(crate::infra::metrics::SEND_ATTEMPTS, "channel" => job.channel_id.clone(), "outcome" => outcome)
            .increment(1);
        match result {
            Ok(receipt) => {
                tracing::info!(provider_id = %receipt.provider_message_id, "sent");
                self.store.job_sent(job, &receipt).await
            }
            Err(e) => self.handle_error(job, e, self.outbox.max_attempts).await,
        }
    }

    /// An earlier attempt began at `since` and left no outcome: it may have reached the
    /// provider. Asks the connector and records the provider's message as this send when
    /// it has one no other message claims. Whether the job is settled (recorded, or put off
    /// by a transient lookup error); false means: send it.
    async fn settle_prior_send(
        &self,
        job: &Job,
        connector: &Arc<dyn Connector>,
        msg: &OutboundMessage,
        since: Millis,
    ) -> Result<bool, StoreError> {
        match connector.find_prior_send(msg, since).await {
            Ok(PriorSend::Found(candidates)) => {
                for receipt in candidates {
                    let id = &receipt.provider_message_id;
                    if !self.store.provider_id_in_use(&job.channel_id, id).await? {
                        tracing::info!(provider_id = %id, "an earlier attempt reached the provider: recorded, not sent again");
                        self.store.job_sent(job, &receipt).await?;
                        return Ok(true);
                    }
                }
                tracing::info!("the provider's matches are other messages': sending");
                Ok(false)
            }
            Ok(PriorSend::NotFound) => {
                tracing::info!("an earlier attempt did not reach the provider: sending");
                Ok(false)
            }
            Ok(PriorSend::Unknown) => {
                tracing::info!(
                    "whether an earlier attempt reached the provider is unknown: sending again"
                );
                Ok(false)
            }
            Err(e @ SendError::Transient { .. }) => {
                self.handle_error(job, e, self.outbox.max_attempts).await?;
                Ok(true)
            }
            Err(SendError::Permanent { code, message }) => {
                tracing::warn!(%code, %message, "looking up an earlier attempt failed: sending again");
                Ok(false)
            }
        }
    }

    async fn handle_error(
        &self,
        job: &Job,
        e: SendError,
        max_attempts: u32,
    ) -> Result<(), StoreError> {
        match e {
            SendError::Permanent { code, message } => {
                tracing::warn!(%code, %message, "permanent failure");
                self.store.job_failed(job, &code, &message).await
            }
            SendError::Transient {
                code,
                message,
                retry_after_ms,
            } => {
                if job.attempts >= i64::from(max_attempts) {
                    tracing::warn!(%message, "giving up after {} attempts", job.attempts);
                    let code = code.unwrap_or_else(|| "retries_exhausted".to_string());
                    self.store.job_failed(job, &code, &message).await
                } else {
                    let delay = retry_delay_ms(
                        backoff_ms(
                            job.attempts,
                            self.outbox.base_delay_ms,
                            self.outbox.max_delay_ms,
                        ),
                        retry_after_ms,
                    );
                    tracing::info!(%message, delay_ms = delay, "transient failure, will retry");
                    let next =
                        now_millis().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 2));
                    self.store.job_retry(job, next, &message).await
                }
            }
        }
    }

    async fn read_receipt(&self, job: &Job) -> Result<(), StoreError> {
        let target = self.store.read_receipt_target(job).await;
        let Some((target, connector)) = self
            .prepare(job, target, "message has no provider id")
            .await?
        else {
            return Ok(());
        };
        match connector.mark_read(&target).await {
            Ok(()) => self.store.job_done(job).await,
            Err(e) => self.handle_error(job, e, self.outbox.max_attempts).await,
        }
    }

    async fn fetch(&self, job: &Job) -> Result<(), StoreError> {
        let ctx = self.store.media_for_job(job).await;
        let Some((ctx, connector)) = self.prepare(job, ctx, "attachment has no source").await?
        else {
            return Ok(());
        };
        let limits = MediaLimits {
            max_bytes: self.media.max_bytes,
            allowed_types: self.media.allowed_types.clone(),
        };
        let timeout = Duration::from_secs(self.media.timeout_secs.max(1));
        let fetched = match tokio::time::timeout(
            timeout,
            connector.fetch_media(&ctx.source, &limits),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SendError::Transient {
                retry_after_ms: None,
                code: Some("timeout".into()),
                message: "media download timed out".into(),
            }),
        };
        let media = match fetched.and_then(|m| check_media(m, &limits)) {
            Ok(m) => m,
            Err(e) => return self.handle_error(job, e, self.media.max_attempts).await,
        };
        let (storage_key, sha256) = match self.blobs.put(&media.bytes).await {
            Ok(x) => x,
            Err(e) => {
                let e = SendError::Transient {
                    retry_after_ms: None,
                    code: Some("blob_store".into()),
                    message: e.to_string(),
                };
                return self.handle_error(job, e, self.media.max_attempts).await;
            }
        };
        tracing::info!(%sha256, size = media.bytes.len(), "media stored");
        let blob = StoredBlob {
            storage_key,
            sha256,
            size: i64::try_from(media.bytes.len()).unwrap_or(i64::MAX),
            content_type: media.content_type,
        };
        if !self.store.attachment_stored(job, &blob).await? {
            // Erased while it was being fetched: the bytes are nobody's unless shared.
            tracing::info!(attachment = %job.ref_id, "media of an erased attachment discarded");
            if !self.store.blob_in_use(&blob.storage_key).await? {
                self.blobs
                    .delete(&blob.storage_key)
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("deleting erased media: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Core's own check of what a connector fetched, whatever the connector did: size, type and
/// the checksum the provider vouches for.
fn check_media(
    m: crate::domain::model::FetchedMedia,
    limits: &MediaLimits,
) -> Result<crate::domain::model::FetchedMedia, SendError> {
    if u64::try_from(m.bytes.len()).unwrap_or(u64::MAX) > limits.max_bytes {
        return Err(SendError::Permanent {
            code: "media_too_large".into(),
            message: format!(
                "{} bytes exceeds the limit of {}",
                m.bytes.len(),
                limits.max_bytes
            ),
        });
    }
    if !limits.allows(&m.content_type) {
        return Err(SendError::Permanent {
            code: "media_type_not_allowed".into(),
            message: format!("content type {:?} is not allowed", m.content_type),
        });
    }
    if let Some(expected) = &m.expected_sha256 {
        let actual = BlobStore::sha256_hex(&m.bytes);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(SendError::Transient {
                retry_after_ms: None,
                code: Some("checksum_mismatch".into()),
                message: "downloaded media does not match the provider's sha256".into(),
            });
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        for attempt in 1..40 {
            let d = backoff_ms(attempt, 1000, 60_000);
            let full = (1000u64 << (attempt - 1).min(30)).min(60_000);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
        }
        assert!(backoff_ms(0, 0, 0) <= 1);
    }

    #[test]
    fn media_checks() {
        let limits = MediaLimits {
            max_bytes: 4,
            allowed_types: vec!["image/*".into()],
        };
        let m =
            |ct: &str, b: &'static [u8], sha: Option<&str>| crate::domain::model::FetchedMedia {
                content_type: ct.into(),
                bytes: bytes::Bytes::from_static(b),
                expected_sha256: sha.map(str::to_string),
            };
        assert!(check_media(m("image/png", b"abc", None), &limits).is_ok());
        assert!(matches!(
            check_media(m("image/png", b"abcde", None), &limits),
            Err(SendError::Permanent { code, .. }) if code == "media_too_large"
        ));
        assert!(matches!(
            check_media(m("text/html", b"a", None), &limits),
            Err(SendError::Permanent { code, .. }) if code == "media_type_not_allowed"
        ));
        let sha = BlobStore::sha256_hex(b"abc");
        assert!(check_media(m("image/png", b"abc", Some(&sha)), &limits).is_ok());
        assert!(check_media(m("image/png", b"abd", Some(&sha)), &limits).is_err());
    }
}
