//! The IMAP sync engine: pulls every folder of a channel into core, exactly once.
//!
//! Per folder: open it read-only, compare its UIDVALIDITY with the stored cursor, list the
//! UIDs to fetch (everything above the cursor; on the first sync the whole folder or the
//! `since_days` window; after a UIDVALIDITY change the whole folder again — journal keys of
//! Message-ID plus content hash make the re-fetch create nothing twice), then fetch them in
//! bounded batches on one task while the previous batch is parsed (on blocking threads) and
//! stored. Each batch is stored in one transaction that also moves the folder's cursor, so
//! the cursor never passes a message that is not stored, and a crash anywhere re-fetches at
//! most one batch, which dedupes. Memory is bounded by a few batches whatever the mailbox size.
//!
//! A bounce of one of our messages (its original Message-ID is ours) becomes a delivery
//! status of that message and never a conversation. Runs of one channel never overlap (a
//! mutex), and only the holder of the channel's lease syncs (one replica on PostgreSQL).

pub mod convert;
pub mod run;
pub mod schedule;

use crate::imap::{FetchedMessage, ImapError, Mailbox};
use crate::settings::EmailSettings;
use convert::{ConvertOptions, Converted, convert};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_core::contract::connector::ConnectorContext;
use switchboard_core::contract::ingest::{Ingest, IngestError};
use switchboard_core::contract::ingest_types::{FolderPosition, IngestOutcome, StatusOutcome};
use switchboard_core::domain::model::new_id;
use tokio::sync::{Mutex, mpsc};

/// Why a sync run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error("storing synced mail: {0}")]
    Ingest(#[from] IngestError),
    #[error("another replica took over this mailbox's sync lease")]
    LeaseLost,
    #[error("parsing task failed: {0}")]
    Task(String),
}

impl SyncError {
    /// Worth retrying soon (network, server busy, database hiccup), as opposed to a
    /// configuration problem that needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Imap(e) => e.is_transient(),
            _ => true,
        }
    }
}

/// What a run did to one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderReport {
    pub folder: String,
    /// Messages fetched from the server.
    pub fetched: usize,
    /// New messages stored.
    pub stored: usize,
    /// Messages already stored (re-fetches).
    pub duplicates: usize,
    /// Bounces applied as delivery statuses of our messages.
    pub statuses: usize,
    /// The folder's UIDVALIDITY changed since the last run: it was fetched again whole.
    pub resynced: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub folders: Vec<FolderReport>,
    /// Another replica holds the lease: nothing was done.
    pub skipped: bool,
    pub elapsed: Duration,
}

impl SyncReport {
    pub fn summary(&self) -> String {
        if self.skipped {
            return "skipped: another replica holds this mailbox's sync lease".into();
        }
        let parts: Vec<String> = self
            .folders
            .iter()
            .map(|f| {
                format!(
                    "{}: {} fetched, {} stored, {} duplicates, {} bounce statuses{}",
                    f.folder,
                    f.fetched,
                    f.stored,
                    f.duplicates,
                    f.statuses,
                    if f.resynced {
                        " (UIDVALIDITY changed: resynced)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        format!("{} in {:.2}s", parts.join("; "), self.elapsed.as_secs_f64())
    }
}

/// The sync engine of one email channel.
pub struct SyncEngine {
    settings: Arc<EmailSettings>,
    /// The channel's ingest handle, and core's attachment URLs for `cid:` images.
    ctx: ConnectorContext,
    /// This process's name for the lease.
    holder: String,
    running: Mutex<()>,
}

/// How often a long backfill reports its progress (and renews the lease at the latest).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Batches fetched ahead of the one being stored.
const FETCH_AHEAD: usize = 2;

impl SyncEngine {
    pub fn new(settings: Arc<EmailSettings>, ctx: ConnectorContext) -> Self {
        Self {
            settings,
            ctx,
            holder: format!("{}:{}", hostname(), uuid::Uuid::new_v4().simple()),
            running: Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &EmailSettings {
        &self.settings
    }

    pub fn ingest(&self) -> &Ingest {
        &self.ctx.ingest
    }

    fn lease_ttl_ms(&self) -> i64 {
        i64::try_from(self.settings.lease_secs.max(10).saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    async fn renew_lease(&self) -> Result<bool, SyncError> {
        Ok(self
            .ctx
            .ingest
            .acquire_sync_lease(&self.holder, self.lease_ttl_ms())
            .await?)
    }

    /// Gives the lease up (shutdown), so another replica need not wait for it to expire.
    pub async fn release_lease(&self) {
        if let Err(e) = self.ctx.ingest.release_sync_lease(&self.holder).await {
            tracing::warn!(error = %e, "releasing the sync lease failed");
        }
    }

    /// Syncs every folder once, to completion. Waits for a run in progress to finish first:
    /// runs never overlap.
    pub async fn sync_all(&self) -> Result<SyncReport, SyncError> {
        let _running = self.running.lock().await;
        let started = Instant::now();
        if !self.renew_lease().await? {
            tracing::debug!("another replica holds the sync lease");
            return Ok(SyncReport {
                skipped: true,
                ..SyncReport::default()
            });
        }
        let mut mailbox = Mailbox::connect(&self.settings.imap).await?;
        let mut report = SyncReport::default();
        for folder in self.settings.imap.all_folders() {
            let (result, back) = self.sync_folder(mailbox, &folder).await;
            let error = result.as_ref().err().map(ToString::to_string);
            match result {
                Ok(folder_report) => report.folders.push(folder_report),
                Err(e) => {
                    // The run record carries the error for the API; a folder that cannot be
                    // opened (deleted, renamed) must not stop the others.
                    let _ = self.ctx.ingest.record_sync_run(&folder, error, 0, 0).await;
                    match (back, &e) {
                        (Some(m), SyncError::Imap(ie)) if ie.is_permanent() => {
                            tracing::warn!(folder, error = %e, "folder skipped");
                            mailbox = m;
                            continue;
                        }
                        _ => return Err(e),
                    }
                }
            }
            match back {
                Some(m) => mailbox = m,
                None => return Err(SyncError::Task("the fetch task lost the connection".into())),
            }
        }
        mailbox.logout().await;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Syncs one folder. Gives the mailbox back unless the connection is unusable.
    async fn sync_folder(
        &self,
        mut mailbox: Mailbox,
        folder: &str,
    ) -> (Result<FolderReport, SyncError>, Option<Mailbox>) {
        let plan = match self.plan(&mut mailbox, folder).await {
            Ok(plan) => plan,
            Err(e) => return (Err(e), Some(mailbox)),
        };
        let mut report = FolderReport {
            folder: folder.to_owned(),
            resynced: plan.resync,
            ..FolderReport::default()
        };
        if plan.uids.is_empty() {
            let r = self.finish_empty(&plan).await.map(|()| report);
            return (r, Some(mailbox));
        }
        let total = plan.uids.len();
        if let Err(e) = self
            .ctx
            .ingest
            .record_sync_run(folder, None, total, 0)
            .await
        {
            return (Err(e.into()), Some(mailbox));
        }
        tracing::info!(folder, total, resync = plan.resync, "fetching");
        let (tx, mut rx) = mpsc::channel(FETCH_AHEAD);
        let batch = self.settings.imap.batch_size.max(1);
        let max_bytes = self.settings.imap.max_batch_bytes.max(1);
        let uids = plan.uids.clone();
        let options = self.convert_options(&plan);
        let ctx = self.ctx.clone();
        // Fetching, parsing and writing attachment files run ahead on their own task while
        // earlier batches are stored.
        let fetcher = tokio::spawn(async move {
            fetch_into(&mut mailbox, uids, batch, max_bytes, &options, &ctx, tx).await;
            mailbox
        });
        let result = self.store_batches(&plan, &mut rx, &mut report).await;
        // Stop the fetcher (if storing failed) and take the connection back.
        drop(rx);
        let mailbox = fetcher.await.ok();
        let result = result.map(|()| report);
        let (error, done) = match &result {
            Ok(r) => (None, r.fetched),
            Err(e) => (Some(e.to_string()), 0),
        };
        if let Err(e) = self
            .ctx
            .ingest
            .record_sync_run(folder, error, total, done)
            .await
        {
            tracing::warn!(folder, error = %e, "recording the sync run failed");
        }
        (result, mailbox)
    }

    /// Opens the folder and decides what to fetch.
    async fn plan(&self, mailbox: &mut Mailbox, folder: &str) -> Result<Plan, SyncError> {
        let state = mailbox.examine(folder).await?;
        let stored = self.ctx.ingest.folder_position(folder).await?;
        let validity = i64::from(state.uid_validity);
        let resync = stored.as_ref().is_some_and(|p| p.uidvalidity != validity);
        let cursor = stored.as_ref().filter(|p| p.uidvalidity == validity);
        let uids = match (cursor, self.settings.imap.since_days) {
            (Some(p), _) => {
                let after = u32::try_from(p.last_uid).unwrap_or(u32::MAX);
                mailbox.uids_after(after).await?
            }
            // First sync with a window: the last N days only (later runs take everything
            // after the cursor, so nothing newer is ever skipped).
            (None, Some(days)) if !resync => mailbox.uid_search_since(days).await?,
            (None, _) => mailbox.uids_after(0).await?,
        };
        if resync {
            tracing::warn!(
                folder,
                old = stored.as_ref().map(|p| p.uidvalidity),
                new = validity,
                "UIDVALIDITY changed: fetching the folder again (known messages dedupe)"
            );
        }
        Ok(Plan {
            folder: folder.to_owned(),
            uid_validity: state.uid_validity,
            highest_modseq: state.highest_modseq,
            start_uid: cursor.map_or(0, |p| p.last_uid),
            start_modseq: cursor.and_then(|p| p.highestmodseq),
            changed: stored.as_ref().is_none_or(|p| {
                p.uidvalidity != validity
                    || p.highestmodseq != state.highest_modseq.and_then(|m| i64::try_from(m).ok())
            }),
            resync,
            uids,
        })
    }

    /// Nothing to fetch: still record a new UIDVALIDITY or HIGHESTMODSEQ.
    async fn finish_empty(&self, plan: &Plan) -> Result<(), SyncError> {
        if plan.changed {
            let position = plan.position(plan.start_uid, true);
            self.ctx.ingest.mail_batch(&position, Vec::new()).await?;
        }
        self.ctx
            .ingest
            .record_sync_run(&plan.folder, None, 0, 0)
            .await?;
        Ok(())
    }

    async fn store_batches(
        &self,
        plan: &Plan,
        rx: &mut mpsc::Receiver<Result<Vec<Converted>, SyncError>>,
        report: &mut FolderReport,
    ) -> Result<(), SyncError> {
        let total = plan.uids.len();
        let mut last_progress = Instant::now();
        let mut last_uid = plan.start_uid;
        let mut waited = Duration::ZERO;
        let mut storing = Duration::ZERO;
        loop {
            let t = Instant::now();
            let Some(batch) = rx.recv().await else { break };
            waited += t.elapsed();
            let batch = batch?;
            if batch.is_empty() {
                continue;
            }
            report.fetched += batch.len();
            let max_uid = batch.iter().map(|m| m.uid).max().unwrap_or(0);
            last_uid = last_uid.max(i64::from(max_uid));
            let t = Instant::now();
            let mut items = Vec::with_capacity(batch.len());
            for c in batch {
                if let Some(message) = self.apply_status(c, report).await? {
                    items.push(message);
                }
            }
            if !self.renew_lease().await? {
                return Err(SyncError::LeaseLost);
            }
            let last = report.fetched >= total;
            let position = plan.position(last_uid, last);
            let outcomes = self.ctx.ingest.mail_batch(&position, items).await?;
            storing += t.elapsed();
            for o in outcomes {
                match o {
                    IngestOutcome::Stored { .. } => report.stored += 1,
                    IngestOutcome::Duplicate => report.duplicates += 1,
                }
            }
            if last_progress.elapsed() >= PROGRESS_EVERY && !last {
                last_progress = Instant::now();
                self.ctx
                    .ingest
                    .record_sync_run(&plan.folder, None, total, report.fetched)
                    .await?;
            }
        }
        // Where a run's time went: waiting for fetched and parsed mail, storing it.
        tracing::debug!(
            folder = %plan.folder,
            waited_ms = waited.as_millis() as u64,
            storing_ms = storing.as_millis() as u64,
            "folder fetched"
        );
        Ok(())
    }

    /// A bounce of one of our messages becomes that message's delivery status and is not
    /// stored as a message; everything else is returned for storing.
    async fn apply_status(
        &self,
        c: Converted,
        report: &mut FolderReport,
    ) -> Result<
        Option<(
            switchboard_core::contract::journal::JournalEntry,
            switchboard_core::domain::model::InboundMessage,
        )>,
        SyncError,
    > {
        // Conversion decided whether the bounce is of our mail (ParsedEmail::own_bounce).
        match c.status {
            Some((mut journal, update)) => {
                // The raw bounce is kept in the status's journal entry.
                journal.payload = c.journal.payload;
                // The payload may be zstd-compressed: its encoding travels with it.
                journal.encoding = c.journal.encoding;
                journal.content_type = "message/rfc822".into();
                let outcome = self.ctx.ingest.status(journal, update).await?;
                if matches!(
                    outcome,
                    StatusOutcome::Applied { .. } | StatusOutcome::Stale { .. }
                ) {
                    report.statuses += 1;
                }
                Ok(None)
            }
            None => Ok(Some((c.journal, c.message))),
        }
    }

    /// How this folder's messages are converted (owned: it goes to the fetch task).
    fn convert_options(&self, plan: &Plan) -> ConvertOptions {
        ConvertOptions {
            folder: plan.folder.clone(),
            uid_validity: plan.uid_validity,
            spam_folder: self.settings.imap.is_spam_folder(&plan.folder),
            allow_remote_images: self.settings.allow_remote_images,
            max_attachment_bytes: self.settings.max_attachment_bytes,
            own_address: self.settings.address.to_ascii_lowercase(),
            message_id_domain: self.settings.message_id_domain(),
        }
    }
}

/// Parses a batch and writes its attachment bytes to the blob store now, while earlier
/// batches are stored: each attachment then holds the `PreparedBlob` its row will name, and
/// storing this batch writes no files.
async fn prepare(
    options: &ConvertOptions,
    ctx: &ConnectorContext,
    batch: Vec<FetchedMessage>,
) -> Result<Vec<Converted>, SyncError> {
    let mut converted = convert_batch(options, ctx, batch).await?;
    let mut messages: Vec<&mut switchboard_core::domain::model::InboundMessage> =
        converted.iter_mut().map(|c| &mut c.message).collect();
    ctx.ingest.store_attachment_bytes(&mut messages).await?;
    Ok(converted)
}

/// Parses a batch on blocking threads, split across the cores.
async fn convert_batch(
    options: &ConvertOptions,
    ctx: &ConnectorContext,
    batch: Vec<FetchedMessage>,
) -> Result<Vec<Converted>, SyncError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = batch.len().div_ceil(workers).max(1);
    let mut chunks: Vec<Vec<FetchedMessage>> = Vec::new();
    let mut rest = batch.into_iter();
    loop {
        let part: Vec<FetchedMessage> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    let mut tasks = Vec::with_capacity(chunks.len());
    for part in chunks {
        let options = options.clone();
        let ctx = ctx.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let attachment_url = |id: &str| ctx.attachment_url(id);
            part.into_iter()
                .map(|m| convert(m, &options, &new_id, &attachment_url))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.map_err(|e| SyncError::Task(e.to_string()))?);
    }
    Ok(out)
}

/// What one folder's run fetches.
#[derive(Debug)]
struct Plan {
    folder: String,
    uid_validity: u32,
    highest_modseq: Option<u64>,
    /// The cursor's last UID (0 on a first sync or a resync).
    start_uid: i64,
    start_modseq: Option<i64>,
    /// The folder's UIDVALIDITY or HIGHESTMODSEQ differs from the cursor.
    changed: bool,
    resync: bool,
    uids: Vec<u32>,
}

impl Plan {
    /// The cursor after a batch. HIGHESTMODSEQ only moves with the last batch: before it,
    /// the folder's changes are not all seen.
    fn position(&self, last_uid: i64, last_batch: bool) -> FolderPosition {
        FolderPosition {
            folder: self.folder.clone(),
            uidvalidity: i64::from(self.uid_validity),
            last_uid,
            highestmodseq: if last_batch {
                self.highest_modseq.and_then(|m| i64::try_from(m).ok())
            } else {
                self.start_modseq
            },
        }
    }
}

/// Fetches `uids` and sends them on in batches of at most `batch` messages and about
/// `max_bytes` bytes; stops when the receiver is gone.
async fn fetch_into(
    mailbox: &mut Mailbox,
    uids: Vec<u32>,
    batch: u32,
    max_bytes: u64,
    options: &ConvertOptions,
    ctx: &ConnectorContext,
    tx: mpsc::Sender<Result<Vec<Converted>, SyncError>>,
) {
    let batch = usize::try_from(batch).unwrap_or(usize::MAX);
    let stream = mailbox.fetch_uids(uids, u32::try_from(batch).unwrap_or(u32::MAX));
    futures::pin_mut!(stream);
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    while let Some(item) = stream.next().await {
        match item {
            Ok(m) => {
                bytes += m.raw.len() as u64;
                buf.push(m);
                if buf.len() >= batch || bytes >= max_bytes {
                    bytes = 0;
                    let converted = prepare(options, ctx, std::mem::take(&mut buf)).await;
                    if tx.send(converted).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
    }
    if !buf.is_empty() {
        let _ = tx.send(prepare(options, ctx, buf).await).await;
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchboard".into())
}
