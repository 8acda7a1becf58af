//! One live client's place in its tenant's event log (`StreamCursor`), and what it reads.
//!
//! A cursor is pulled: it reads the next small batch of events only when its connection
//! asks for the next event, so what it holds is at most one batch (`BATCH` events), however
//! far behind the client is or however slowly it reads. A client that stops reading stops
//! being asked (the HTTP layer's write buffer is full), and the server's idle timeout closes
//! its connection. The bytes a cursor holds are counted in the hub's `buffered_bytes`.
//!
//! Ids are the tenant's own counter (1, 2, 3... with no gaps): a client resuming after id n
//! gets n + 1 next, unless that event was pruned (a `stream.reset` first).

use super::event_hub::EventHub;
use crate::domain::model::now_millis;
use crate::store::{EventRow, StoreResult};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// How many events one read returns (and so the most a cursor holds).
pub const BATCH: i64 = 16;

/// One client's position in its tenant's event log.
pub struct StreamCursor {
    hub: Arc<EventHub>,
    tenant: String,
    /// The last id handed out (or skipped to).
    after: i64,
    /// The tenant's head as last known from the store (the hub's may lag behind at first).
    known_head: i64,
    head: watch::Receiver<i64>,
    buffer: VecDeque<EventRow>,
    /// What `buffer` holds, as counted in the hub's `buffered_bytes`.
    buffered: i64,
}

/// What a client receives next.
pub enum Next {
    Event(EventRow),
    /// Nothing new within a heartbeat interval.
    Idle,
}

/// The `stream.reset` event: the client's position cannot be served; reload state.
fn reset(head: i64, first: i64, reason: &str) -> EventRow {
    EventRow {
        seq: head,
        kind: "stream.reset".into(),
        payload: sqlx::types::Json(serde_json::json!({
            "reason": reason,
            // The oldest id still readable (head + 1 when nothing is retained).
            "oldest_available": first,
        })),
        created_at: now_millis(),
    }
}

impl StreamCursor {
    /// Starts after `since` (a resuming client's last id), or at the tenant's newest event
    /// (a new client sees only what happens from now on). Returns a `stream.reset` event
    /// first when the requested position is past the tenant's newest id or was pruned, so
    /// the client knows to reload its state.
    pub async fn open(hub: &Arc<EventHub>, tenant: &str, since: Option<i64>) -> StoreResult<Self> {
        let head = hub.subscribe_tenant(tenant);
        let (first, last) = hub.store.event_bounds(tenant).await?;
        let mut cursor = Self {
            hub: hub.clone(),
            tenant: tenant.to_string(),
            after: last,
            known_head: last,
            head,
            buffer: VecDeque::new(),
            buffered: 0,
        };
        match since {
            Some(s) if s > last => cursor.push(reset(
                last,
                first,
                "the given id is newer than the event log; reload state",
            )),
            Some(s) if s + 1 < first => {
                cursor.push(reset(
                    last,
                    first,
                    "events after the given id are no longer retained; reload state",
                ));
                cursor.after = s;
            }
            Some(s) => cursor.after = s,
            None => {}
        }
        Ok(cursor)
    }

    fn push(&mut self, e: EventRow) {
        self.count(approx_bytes(&e));
        self.buffer.push_back(e);
    }

    fn pop(&mut self) -> Option<EventRow> {
        let e = self.buffer.pop_front()?;
        self.count(-approx_bytes(&e));
        Some(e)
    }

    fn count(&mut self, bytes: i64) {
        self.buffered += bytes;
        self.hub.buffered_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The next event, waiting for one (up to `heartbeat`) when caught up.
    pub async fn next(&mut self, heartbeat: Duration) -> StoreResult<Next> {
        if let Some(e) = self.pop() {
            return Ok(Next::Event(e));
        }
        let deadline = tokio::time::Instant::now() + heartbeat;
        loop {
            let head = (*self.head.borrow_and_update()).max(self.known_head);
            if head > self.after {
                let batch = self
                    .hub
                    .store
                    .events_since(&self.tenant, self.after, BATCH)
                    .await?;
                if let Some(last) = batch.last() {
                    self.after = last.seq;
                    for e in batch {
                        self.push(e);
                    }
                    return Ok(self.pop().map_or(Next::Idle, Next::Event));
                }
                // Nothing although the head is past the cursor: those events were pruned
                // meanwhile. Wait for the next change rather than ask again at once.
            }
            match tokio::time::timeout_at(deadline, self.head.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the hub is gone (shutdown): let the caller heartbeat or stop.
                Ok(Err(_)) | Err(_) => return Ok(Next::Idle),
            }
        }
    }
}

impl Drop for StreamCursor {
    fn drop(&mut self) {
        self.hub
            .buffered_bytes
            .fetch_sub(self.buffered, Ordering::Relaxed);
    }
}

/// About the bytes of an event as a client receives it (its JSON, without the envelope's
/// timestamp): what the buffered-bytes gauge counts. Walks the payload; allocates nothing.
pub fn approx_bytes(e: &EventRow) -> i64 {
    let n = 48 + e.kind.len() + json_len(&e.payload.0);
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn json_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|i| json_len(i) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_len(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximate_size_is_close_to_the_json() {
        let e = EventRow {
            seq: 7,
            kind: "message.created".into(),
            payload: sqlx::types::Json(serde_json::json!({
                "conversation_id": "0190f2a4-0000-7000-8000-000000000000",
                "message_id": "0190f2a4-0000-7000-8000-000000000001",
                "channel_id": "acme-sms",
                "flags": ["spam", "bounce"],
                "unread_count": 3,
            })),
            created_at: 0,
        };
        let exact = serde_json::to_string(&e.payload.0).expect("json").len() as i64;
        let approx = approx_bytes(&e) - 48 - e.kind.len() as i64;
        assert!((approx - exact).abs() <= exact / 5, "{approx} vs {exact}");
    }
}
