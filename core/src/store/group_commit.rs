//! Group commit: concurrent provider deliveries share one write transaction.
//!
//! A durable commit costs an fsync (SQLite) or a WAL flush (PostgreSQL), and one commit per
//! webhook made that the ceiling: about 900 deliveries a second whatever the CPU. So every
//! delivery (message, status, reaction, journal-only item) is queued for a writer task,
//! which takes whatever has arrived — at most [`MAX_ITEMS`] items or [`MAX_BYTES`] of
//! payload, and no added wait when the queue is empty — applies it in one transaction with a
//! savepoint per item (one bad item fails alone), commits, and only then answers each
//! delivery: a 2xx still means durable.
//!
//! The queue is bounded: when it is full the delivery is refused at once with
//! [`super::StoreError::Overloaded`] (the webhook answers 503 with `Retry-After`, and the
//! provider retries) instead of growing memory. The writer task is cancellation-safe: a
//! client that hangs up does not cancel a transaction other deliveries wait on.

use super::{StoreError, StoreResult};
use crate::contract::ingest_types::{ChannelRef, IngestOutcome, ReactionOutcome, StatusOutcome};
use crate::contract::journal::JournalEntry;
use crate::domain::model::{InboundMessage, ReactionUpdate, StatusUpdate};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Items one transaction takes at most.
pub const MAX_ITEMS: usize = 256;
/// Payload bytes (journal entries and message bodies) one transaction takes at most; the
/// first item is always taken, whatever its size.
pub const MAX_BYTES: usize = 8 << 20;
/// Deliveries waiting for a writer at most; more are refused with `Overloaded`.
pub const QUEUE: usize = 2048;

/// One delivery to apply.
#[derive(Debug)]
pub enum Write {
    Message {
        channel: ChannelRef,
        journal: JournalEntry,
        msg: Box<InboundMessage>,
    },
    Status {
        channel: ChannelRef,
        journal: JournalEntry,
        update: StatusUpdate,
    },
    Reaction {
        channel: ChannelRef,
        journal: JournalEntry,
        reaction: ReactionUpdate,
    },
    JournalOnly {
        channel: ChannelRef,
        journal: JournalEntry,
    },
}

impl Write {
    /// Roughly what the item weighs in the transaction.
    fn bytes(&self) -> usize {
        match self {
            Self::Message { journal, msg, .. } => {
                journal.payload.len()
                    + msg.text.as_ref().map_or(0, String::len)
                    + msg.html.as_ref().map_or(0, String::len)
            }
            Self::Status { journal, .. }
            | Self::Reaction { journal, .. }
            | Self::JournalOnly { journal, .. } => journal.payload.len(),
        }
    }

    /// The order items are applied in within a transaction (a stable sort, so items with
    /// one key keep their arrival order): messages by channel and sender, so concurrent
    /// PostgreSQL writers take contact locks in the same order and two batches do not
    /// deadlock; then the channel's other items, after any message they may refer to.
    pub fn sort_key(&self) -> (&str, bool, &str) {
        match self {
            Self::Message { channel, msg, .. } => (&channel.channel_id, false, &msg.from.value),
            Self::Status { channel, .. }
            | Self::Reaction { channel, .. }
            | Self::JournalOnly { channel, .. } => (&channel.channel_id, true, ""),
        }
    }
}

/// What applying a [`Write`] gave.
#[derive(Debug)]
pub enum Written {
    Message(IngestOutcome),
    Status(StatusOutcome),
    Reaction(ReactionOutcome),
    Journal(bool),
}

/// A queued delivery and where its answer goes.
pub struct Queued {
    pub write: Write,
    pub reply: oneshot::Sender<StoreResult<Written>>,
}

/// The receiving end, shared by the writer tasks (one on SQLite, a few on PostgreSQL).
pub type SharedReceiver = Arc<Mutex<mpsc::Receiver<Queued>>>;

/// The sending end a store keeps. Empty until the store's writers are started: a store
/// without writers (a tool opening the database briefly) applies each delivery alone.
#[derive(Default)]
pub struct GroupQueue {
    sender: OnceLock<mpsc::Sender<Queued>>,
}

impl GroupQueue {
    /// Creates the queue; `None` if it was created before.
    pub fn open(&self) -> Option<SharedReceiver> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.sender.set(tx).ok().map(|()| Arc::new(Mutex::new(rx)))
    }

    /// Whether writers run (deliveries go through the queue).
    pub fn is_open(&self) -> bool {
        self.sender.get().is_some()
    }

    /// Queues `write` and waits for its commit.
    pub async fn submit(&self, write: Write) -> StoreResult<Written> {
        let sender = self
            .sender
            .get()
            .ok_or_else(|| StoreError::Unavailable("no writer is running".into()))?;
        let (reply, answer) = oneshot::channel();
        metrics::gauge!(crate::infra::metrics::GROUP_COMMIT_QUEUED).increment(1.0);
        sender
            .try_send(Queued { write, reply })
            .inspect_err(|_| {
                metrics::gauge!(crate::infra::metrics::GROUP_COMMIT_QUEUED).decrement(1.0);
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the writer has stopped".into())
                }
            })?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before committing".into()))?
    }
}

/// Waits for the next delivery, then takes whatever else has arrived, within the limits.
/// `None` once every sender is gone.
pub async fn take_batch(rx: &SharedReceiver) -> Option<Vec<Queued>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut bytes = first.write.bytes();
    let mut batch = vec![first];
    while batch.len() < MAX_ITEMS && bytes < MAX_BYTES {
        match rx.try_recv() {
            Ok(next) => {
                bytes += next.write.bytes();
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    metrics::gauge!(crate::infra::metrics::GROUP_COMMIT_QUEUED).decrement(batch.len() as f64);
    Some(batch)
}

/// Answers every delivery of a batch whose transaction failed as a whole.
pub fn fail_all(batch: Vec<Queued>, error: &StoreError) {
    let message = error.to_string();
    for q in batch {
        let _ = q.reply.send(Err(StoreError::Unavailable(format!(
            "group commit failed: {message}"
        ))));
    }
}
