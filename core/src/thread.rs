//! Thread assignment, decided then applied (as Delta Chat does it): the store gathers the
//! facts inside the ingest transaction, [`decide`] turns them into a decision with no I/O,
//! and the store applies it. Keeping the rule pure keeps it testable and identical on both
//! databases.
//!
//! Chat channels (SMS, WhatsApp): a reply to a specific message joins that message's
//! conversation; otherwise the contact's latest open (or spam) conversation on the channel;
//! otherwise a new one. Threads never cross tenants or channels: every fact is looked up
//! within the channel.

use crate::model::{ConversationStatus, Flag};

/// A conversation the store found while gathering facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub status: ConversationStatus,
}

/// What the store knows about where a message could go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFacts {
    /// The conversation of the message this one replies to (first `reply_to` id found).
    pub replied_to: Option<Candidate>,
    /// The contact's most recent open or spam conversation on this channel.
    pub latest_active: Option<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadDecision {
    /// Append to an existing conversation; `new_status` is set when its status changes
    /// (a closed conversation reopened by a genuine reply).
    Join {
        conversation_id: String,
        new_status: Option<ConversationStatus>,
    },
    /// Open a new conversation with this status.
    New { status: ConversationStatus },
}

/// Flags that keep a message from bumping unread counts, reopening conversations or
/// triggering anything automatic.
pub fn is_quiet(flags: &[Flag]) -> bool {
    flags.iter().any(|f| {
        matches!(
            f,
            Flag::Spam
                | Flag::AutoReply
                | Flag::Bounce
                | Flag::Blocked
                | Flag::Loop
                | Flag::OptOut
                | Flag::OptIn
        )
    })
}

/// Whether a message with these flags is spam (a new conversation for it starts as spam).
pub fn is_spam(flags: &[Flag]) -> bool {
    flags
        .iter()
        .any(|f| matches!(f, Flag::Spam | Flag::Blocked))
}

/// Decides where a message goes.
pub fn decide(facts: &ThreadFacts, flags: &[Flag]) -> ThreadDecision {
    let target = facts.replied_to.as_ref().or(facts.latest_active.as_ref());
    match target {
        Some(c) => {
            let new_status = (c.status == ConversationStatus::Closed && !is_quiet(flags))
                .then_some(ConversationStatus::Open);
            ThreadDecision::Join {
                conversation_id: c.id.clone(),
                new_status,
            }
        }
        None => ThreadDecision::New {
            status: if is_spam(flags) {
                ConversationStatus::Spam
            } else {
                ConversationStatus::Open
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationStatus::*;

    fn cand(id: &str, status: ConversationStatus) -> Option<Candidate> {
        Some(Candidate {
            id: id.into(),
            status,
        })
    }

    #[test]
    fn reply_context_wins_over_latest() {
        let f = ThreadFacts {
            replied_to: cand("old", Open),
            latest_active: cand("new", Open),
        };
        assert_eq!(
            decide(&f, &[]),
            ThreadDecision::Join {
                conversation_id: "old".into(),
                new_status: None
            }
        );
    }

    #[test]
    fn joins_latest_active_else_new() {
        let f = ThreadFacts {
            replied_to: None,
            latest_active: cand("c", Spam),
        };
        assert_eq!(
            decide(&f, &[]),
            ThreadDecision::Join {
                conversation_id: "c".into(),
                new_status: None
            }
        );
        assert_eq!(
            decide(&ThreadFacts::default(), &[]),
            ThreadDecision::New { status: Open }
        );
        assert_eq!(
            decide(&ThreadFacts::default(), &[Flag::Spam]),
            ThreadDecision::New { status: Spam }
        );
    }

    #[test]
    fn reply_to_closed_reopens_unless_quiet() {
        let f = ThreadFacts {
            replied_to: cand("c", Closed),
            latest_active: None,
        };
        assert_eq!(
            decide(&f, &[]),
            ThreadDecision::Join {
                conversation_id: "c".into(),
                new_status: Some(Open)
            }
        );
        assert_eq!(
            decide(&f, &[Flag::OptOut]),
            ThreadDecision::Join {
                conversation_id: "c".into(),
                new_status: None
            }
        );
    }
}
