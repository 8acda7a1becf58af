//! The few places where SQLite and PostgreSQL need different SQL.

/// Dialect-specific statements; everything else is shared text.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// Serializes ingest for one contact (PostgreSQL row lock), answering the contact's
    /// `merged_into` and `erased_at` as of the lock. SQLite has a single writer connection,
    /// which already serializes every write transaction.
    pub lock_contact: Option<&'static str>,
    /// Appended to a `SELECT` of contacts that a merge or an erasure is about to change
    /// (PostgreSQL `FOR UPDATE`; SQLite's single writer needs nothing).
    pub for_update: &'static str,
    /// Appended to a mail batch's `SELECT` of the contacts (alias `c`) it files mail under
    /// (PostgreSQL `FOR SHARE OF c`): a merge or erasure of one of them waits for the batch;
    /// one that commits first leaves the contact out of the answer, and the batch then
    /// finds the identity's survivor or makes a new contact, as for an unknown sender.
    pub for_share: &'static str,
    /// Claims one due job. PostgreSQL adds `FOR UPDATE SKIP LOCKED` so concurrent
    /// dispatchers (threads or replicas) never claim the same job.
    pub claim_job: &'static str,
    /// Tells other replicas that events were written (PostgreSQL `NOTIFY`, delivered on
    /// commit). SQLite runs in one process, whose event hub polls instead.
    pub notify_events: Option<&'static str>,
    /// Claims one enabled webhook endpoint that is due and owes events (outgoing webhooks);
    /// PostgreSQL adds `FOR UPDATE SKIP LOCKED`, so one replica delivers to an endpoint at a time.
    pub claim_webhook: &'static str,
    /// A savepoint around each message of a mail batch that takes the message-by-message
    /// path (mail with consent changes), so a message that lost a race with a concurrent
    /// writer is undone alone (PostgreSQL). SQLite has one writer: no race, and the two
    /// statements per message are saved.
    pub batch_savepoints: bool,
}

/// The PostgreSQL notification channel for new events.
pub const EVENTS_CHANNEL: &str = "switchboard_events";

const CLAIM_JOB_SQLITE: &str =
    "UPDATE jobs SET locked_until = $1, attempts = attempts + 1, updated_at = $2
 WHERE id = (SELECT id FROM jobs WHERE state = 'pending' AND next_attempt_at <= $2
             AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY next_attempt_at LIMIT 1)
 RETURNING id, tenant_id, kind, ref_id, channel_id, attempts, locked_until, send_started_at";

const CLAIM_JOB_POSTGRES: &str =
    "UPDATE jobs SET locked_until = $1, attempts = attempts + 1, updated_at = $2
 WHERE id = (SELECT id FROM jobs WHERE state = 'pending' AND next_attempt_at <= $2
             AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING id, tenant_id, kind, ref_id, channel_id, attempts, locked_until, send_started_at";

/// `$1` the lease's end, `$2` now.
macro_rules! claim_webhook_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_endpoints SET locked_until = $1, updated_at = $2
 WHERE uid = (SELECT w.uid FROM webhook_endpoints w
              WHERE w.state = 'enabled' AND w.removed_at IS NULL AND w.next_attempt_at <= $2
                AND (w.locked_until IS NULL OR w.locked_until <= $2)
                AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id AND e.seq > w.cursor_seq)
              ORDER BY w.next_attempt_at LIMIT 1",
            $lock,
            ")
 RETURNING uid, tenant_id, id, cursor_seq, consecutive_failures, locked_until"
        )
    };
}

pub const SQLITE: Dialect = Dialect {
    lock_contact: None,
    for_update: "",
    for_share: "",
    claim_job: CLAIM_JOB_SQLITE,
    notify_events: None,
    claim_webhook: claim_webhook_sql!(""),
    batch_savepoints: false,
};

pub const POSTGRES: Dialect = Dialect {
    lock_contact: Some("SELECT merged_into, erased_at FROM contacts WHERE id = $1 FOR UPDATE"),
    for_update: " FOR UPDATE",
    for_share: " FOR SHARE OF c",
    claim_job: CLAIM_JOB_POSTGRES,
    notify_events: Some("SELECT pg_notify('switchboard_events', $1)"),
    claim_webhook: claim_webhook_sql!(" FOR UPDATE OF w SKIP LOCKED"),
    batch_savepoints: true,
};
