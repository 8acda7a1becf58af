//! Thread assignment, decided then applied (as Delta Chat does it): the store gathers the
//! facts inside the ingest transaction, [`decide`] turns them into a decision with no I/O,
//! and the store applies it. Keeping the rule pure keeps it testable and identical on both
//! databases.
//!
//! The order, first match wins:
//! 1. a reply to a stored message (WhatsApp `context.id`; email In-Reply-To, then References
//!    newest first) joins that message's conversation;
//! 2. a conversation's reply token in a recipient address (`local+token@domain`, set by our
//!    outbound mail) joins that conversation;
//! 3. email: the same contact and normalized subject within the subject window;
//! 4. chat channels (SMS, WhatsApp): the contact's latest open (or spam) conversation;
//! 5. otherwise a new conversation.
//!
//! Threads never cross tenants or channels: every fact is looked up within the channel.

use crate::domain::model::{ConversationStatus, Flag};

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
    /// The conversation whose reply token the message was addressed to.
    pub by_token: Option<Candidate>,
    /// Email: the contact's latest conversation with the same normalized subject, within
    /// the subject window.
    pub by_subject: Option<Candidate>,
    /// Chat channels: the contact's most recent open or spam conversation on this channel.
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

/// Tunable parts of threading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadingPolicy {
    /// Email: thread by same contact + normalized subject when references do not match.
    pub subject_matching: bool,
    /// How recent the matched conversation's last message must be.
    pub subject_window_ms: i64,
    /// A genuine reply to a closed conversation reopens it (true) or starts a new one.
    pub reopen_closed: bool,
}

impl Default for ThreadingPolicy {
    fn default() -> Self {
        Self {
            subject_matching: true,
            subject_window_ms: 30 * 24 * 3_600_000,
            reopen_closed: true,
        }
    }
}

/// A new conversation's reply token: 20 characters of base32 (100 bits), safe in the local
/// part of an address (`support+TOKEN@acme.example`) and case-insensitive.
pub fn new_reply_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..32)]))
        .collect()
}

/// Decides where a message goes, with the given policy.
pub fn decide_with(
    facts: &ThreadFacts,
    flags: &[Flag],
    policy: &ThreadingPolicy,
) -> ThreadDecision {
    let decision = decide(facts, flags);
    match decision {
        ThreadDecision::Join {
            new_status: Some(ConversationStatus::Open),
            ..
        } if !policy.reopen_closed => ThreadDecision::New {
            status: ConversationStatus::Open,
        },
        d => d,
    }
}

/// Decides where a message goes (reopening closed conversations).
pub fn decide(facts: &ThreadFacts, flags: &[Flag]) -> ThreadDecision {
    let target = facts
        .replied_to
        .as_ref()
        .or(facts.by_token.as_ref())
        .or(facts.by_subject.as_ref())
        .or(facts.latest_active.as_ref());
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

/// A subject reduced to what identifies a thread: reply and forward prefixes in common
/// languages (Re, Fwd, Fw, AW, WG, SV, VS, Antw, Doorst, RE[2], Re:Re:) and mailing-list
/// tags (`[list]`) stripped, whitespace folded, lower-cased. Empty means "no usable subject".
pub fn subject_key(subject: &str) -> String {
    const PREFIXES: [&str; 14] = [
        "re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw", "doorst", "tr", "rif", "res", "enc",
        "odp",
    ];
    let mut s = subject.trim();
    loop {
        let before = s;
        if let Some(rest) = s.strip_prefix('[')
            && let Some(end) = rest.find(']')
        {
            s = rest[end + 1..].trim_start();
        }
        let lower = s.to_lowercase();
        for p in PREFIXES {
            if let Some(rest) = lower.strip_prefix(p) {
                // "Re:", "RE[2]:", "Re :" — a prefix only when a colon follows.
                let rest = rest.trim_start();
                let rest = if let Some(r) = rest.strip_prefix('[') {
                    r.find(']').map_or(rest, |e| &r[e + 1..])
                } else {
                    rest
                };
                if let Some(after) = rest
                    .trim_start()
                    .strip_prefix(':')
                    .or_else(|| rest.trim_start().strip_prefix('：'))
                {
                    let cut = s.len() - after.len();
                    s = s.get(cut..).unwrap_or("").trim_start();
                    break;
                }
            }
        }
        if s == before {
            break;
        }
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
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
    fn subject_keys_strip_prefixes_and_list_tags() {
        for (raw, key) in [
            ("Re: Order 42", "order 42"),
            ("RE: re:  Order   42", "order 42"),
            ("AW: WG: Order 42", "order 42"),
            // Tags are stripped wherever they lead, so an original and its replies agree
            // whichever way the list puts its tag.
            ("[fedora-devel] Re: [Bug 1] crash", "crash"),
            ("Re: [fedora-devel] crash", "crash"),
            ("[fedora-devel] crash", "crash"),
            ("Fwd: [list] SV: Re[2]: Order 42", "order 42"),
            ("Réponse: Order", "réponse: order"),
            ("Re:", ""),
            ("Regarding the order", "regarding the order"),
            ("Re : spaced", "spaced"),
        ] {
            assert_eq!(subject_key(raw), key, "{raw:?}");
        }
    }

    #[test]
    fn token_and_subject_come_after_references() {
        let f = ThreadFacts {
            replied_to: None,
            by_token: cand("tok", Open),
            by_subject: cand("subj", Open),
            latest_active: None,
        };
        assert!(
            matches!(decide(&f, &[]), ThreadDecision::Join { conversation_id, .. } if conversation_id == "tok")
        );
        let f = ThreadFacts {
            by_token: None,
            ..f
        };
        assert!(
            matches!(decide(&f, &[]), ThreadDecision::Join { conversation_id, .. } if conversation_id == "subj")
        );
    }

    #[test]
    fn reply_context_wins_over_latest() {
        let f = ThreadFacts {
            replied_to: cand("old", Open),
            latest_active: cand("new", Open),
            ..Default::default()
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
            latest_active: cand("c", Spam),
            ..Default::default()
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
            ..Default::default()
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
