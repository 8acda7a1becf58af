//! What a connector hands to ingest and gets back: the channel it is bound to, the outcomes
//! of storing a message, a status or a reaction, and a mail folder's sync position.
//!
//! A leaf of the contract (it imports nothing): the store
//! implements ingest against these types, connectors read them, and neither imports the other.

/// How inbound messages of a channel find their conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threading {
    /// Mail-style: `In-Reply-To`/`References`, a reply token, then the subject within the
    /// configured window (see `[threading]`).
    MailHeaders,
    /// Chat-style: the contact's latest open (or recently closed) conversation on the channel.
    #[default]
    ByContact,
}

/// The channel a connector ingests for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    pub tenant_id: String,
    pub channel_id: String,
    /// How the channel's inbound messages find their conversation (its connector declares it).
    pub threading: Threading,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored {
        message_id: String,
        conversation_id: String,
        created_conversation: bool,
    },
    /// Seen before (journal key or provider message id): nothing changed.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReactionOutcome {
    /// The reaction was set on (or removed from) the message.
    Applied {
        message_id: String,
    },
    /// No message of ours has the target id (journaled, nothing else).
    UnknownMessage,
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The message moved forward to the reported status.
    Applied {
        message_id: String,
    },
    /// The message is already at or past the reported status.
    Stale {
        message_id: String,
    },
    /// No message of ours has that provider id (journaled, nothing else).
    UnknownMessage,
    Duplicate,
}

/// Where a folder's sync stands after a batch: the mailbox's UIDVALIDITY, the highest UID
/// covered, and HIGHESTMODSEQ where the server has CONDSTORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPosition {
    pub folder: String,
    pub uidvalidity: i64,
    pub last_uid: i64,
    pub highestmodseq: Option<i64>,
}

/// The outcome of one sync run of a folder (its position and counters move with the
/// batches it ingested, see `IngestStore::ingest_mail_batch`).
#[derive(Debug, Clone, Default)]
pub struct SyncRun {
    pub channel_id: String,
    pub folder: String,
    /// `None` for a successful run.
    pub error: Option<String>,
    pub backlog_total: i64,
    pub backlog_done: i64,
}
