//! Which conversations a caller sees. A tenant with `agent_visibility = "assigned"` shows
//! its agents only the conversations assigned to them and unassigned ones, everywhere: the
//! list, the unread counts, a conversation and its messages, audit trail and attachments,
//! the actions on it, and the live events about it. Anything else is a 404, as if it did
//! not exist. Admins, and every caller of an `all` tenant, see the whole tenant (and pay
//! no extra query).

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::store::{ConversationOf, ConversationRow, EventRow, Store, StoreError, StoreResult};
use serde_json::Value;

/// Whether a conversation assigned to `assignee` is visible to the agent `me`.
fn sees(assignee: Option<&str>, me: &str) -> bool {
    assignee.is_none_or(|a| a == me)
}

/// 404 unless `caller` sees the conversation `of` names (one query, for restricted
/// callers only).
pub async fn check(
    state: &AppState,
    caller: &Caller,
    of: ConversationOf<'_>,
) -> Result<(), ApiError> {
    let Some(me) = state.access.restricted_to(caller) else {
        return Ok(());
    };
    let assignee = state
        .store
        .conversation_assignee(&caller.tenant, of)
        .await?;
    if sees(assignee.as_deref(), me) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The conversation, if `caller` sees it (404 otherwise).
pub async fn conversation(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ConversationRow, ApiError> {
    let row = state.store.get_conversation(&caller.tenant, id).await?;
    match state.access.restricted_to(caller) {
        Some(me) if !sees(row.assignee.as_deref(), me) => Err(ApiError::NotFound),
        _ => Ok(row),
    }
}

/// Decides which events of its tenant a live stream shows its caller.
#[derive(Debug, Clone)]
pub struct EventFilter {
    tenant: String,
    /// None: every event.
    restricted_to: Option<String>,
}

impl EventFilter {
    pub fn new(state: &AppState, caller: &Caller) -> Self {
        Self {
            tenant: caller.tenant.clone(),
            restricted_to: state.access.restricted_to(caller).map(str::to_string),
        }
    }

    /// Whether the event is shown: it names no conversation (a channel's, a webhook's), or
    /// its conversation is visible now, or it is the assignment that took the conversation
    /// away from the caller (so a client can drop it).
    pub async fn shows(&self, store: &dyn Store, event: &EventRow) -> StoreResult<bool> {
        let Some(me) = &self.restricted_to else {
            return Ok(true);
        };
        let data = &event.payload.0;
        if data.get("previous_assignee").and_then(Value::as_str) == Some(me.as_str()) {
            return Ok(true);
        }
        let Some(of) = conversation_of(data) else {
            return Ok(true);
        };
        match store.conversation_assignee(&self.tenant, of).await {
            Ok(assignee) => Ok(sees(assignee.as_deref(), me)),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The conversation an event is about, by the keys events carry.
fn conversation_of(data: &Value) -> Option<ConversationOf<'_>> {
    let text = |key: &str| data.get(key).and_then(Value::as_str);
    text("conversation_id")
        .or_else(|| text("into_conversation_id"))
        .map(ConversationOf::Id)
        .or_else(|| text("message_id").map(ConversationOf::Message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_name_their_conversation_by_id_or_message() {
        let d = json!({"conversation_id": "c1", "message_id": "m1"});
        assert_eq!(conversation_of(&d), Some(ConversationOf::Id("c1")));
        let d = json!({"merged_conversation_id": "c0", "into_conversation_id": "c2"});
        assert_eq!(conversation_of(&d), Some(ConversationOf::Id("c2")));
        let d = json!({"message_id": "m1", "delivery_status": "sent"});
        assert_eq!(conversation_of(&d), Some(ConversationOf::Message("m1")));
        assert_eq!(conversation_of(&json!({"channel_id": "sms"})), None);
    }

    #[test]
    fn agents_see_their_own_and_unassigned_conversations() {
        assert!(sees(None, "bob"));
        assert!(sees(Some("bob"), "bob"));
        assert!(!sees(Some("carol"), "bob"));
    }
}
