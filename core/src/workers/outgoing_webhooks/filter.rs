//! Which events an endpoint receives: exact types (`message.created`), prefixes
//! (`message.*` — every type starting with `message.`), or `*`. No filter means every event.

/// The longest pattern accepted.
const MAX_PATTERN_LEN: usize = 100;
/// The most patterns one endpoint may list.
const MAX_PATTERNS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    All,
    /// `message.*` kept as `message.`.
    Prefix(String),
    Exact(String),
}

/// An endpoint's event filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Empty: every event.
    patterns: Vec<Pattern>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self {
            patterns: Vec::new(),
        }
    }

    /// Parses the configured list (`None`: every event). The error names the entry.
    pub fn parse(list: Option<&[String]>) -> Result<Self, (Option<usize>, String)> {
        let Some(list) = list else {
            return Ok(Self::all());
        };
        if list.is_empty() {
            return Err((
                None,
                "must list at least one event type; leave `events` out to receive every event"
                    .into(),
            ));
        }
        if list.len() > MAX_PATTERNS {
            return Err((None, format!("at most {MAX_PATTERNS} entries")));
        }
        let mut patterns = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            patterns.push(parse_pattern(p).map_err(|e| (Some(i), e))?);
        }
        Ok(Self { patterns })
    }

    /// Whether an event of type `kind` is delivered.
    pub fn matches(&self, kind: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|p| match p {
                Pattern::All => true,
                Pattern::Prefix(prefix) => kind.starts_with(prefix.as_str()),
                Pattern::Exact(t) => kind == t,
            })
    }
}

/// `*`, or dot-separated segments of `a-z 0-9 _`, the last of which may be `*`.
fn parse_pattern(p: &str) -> Result<Pattern, String> {
    let bad = || {
        format!(
            "{p:?} is not an event type or prefix (expected e.g. \"message.created\", \"message.*\" or \"*\")"
        )
    };
    if p.is_empty() || p.len() > MAX_PATTERN_LEN {
        return Err(bad());
    }
    if p == "*" {
        return Ok(Pattern::All);
    }
    let segments: Vec<&str> = p.split('.').collect();
    let last = segments.len() - 1;
    for (i, s) in segments.iter().enumerate() {
        let ok = if i == last && *s == "*" {
            true
        } else {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !ok {
            return Err(bad());
        }
    }
    Ok(match p.strip_suffix('*') {
        Some(prefix) => Pattern::Prefix(prefix.to_string()),
        None => Pattern::Exact(p.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(list: &[&str]) -> EventFilter {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        EventFilter::parse(Some(&list)).expect("valid filter")
    }

    #[test]
    fn no_filter_and_star_match_everything() {
        for f in [EventFilter::parse(None).expect("none"), filter(&["*"])] {
            for kind in [
                "message.created",
                "conversation.updated",
                "webhook.disabled",
            ] {
                assert!(f.matches(kind), "{kind}");
            }
        }
    }

    #[test]
    fn exact_types_and_prefixes() {
        let f = filter(&["message.*", "conversation.created"]);
        assert!(f.matches("message.created"));
        assert!(f.matches("message.updated"));
        assert!(f.matches("message.reaction.added"));
        assert!(f.matches("conversation.created"));
        assert!(!f.matches("conversation.updated"));
        assert!(!f.matches("messages.created"));
        // The prefix includes the dot: "message.*" is not "message" itself.
        assert!(!f.matches("message"));
        assert!(!f.matches("channel.updated"));
    }

    #[test]
    fn malformed_patterns_are_refused_with_their_index() {
        for bad in [
            "",
            "Message.created",
            "message.",
            ".created",
            "message*",
            "*.created",
            "a..b",
            "a b",
            "message.*.x",
        ] {
            let list = vec!["message.created".to_string(), bad.to_string()];
            let err = EventFilter::parse(Some(&list)).expect_err(bad);
            assert_eq!(err.0, Some(1), "{bad}");
        }
        assert_eq!(EventFilter::parse(Some(&[])).expect_err("empty").0, None);
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("t{i}")).collect();
        assert!(EventFilter::parse(Some(&many)).is_err());
    }
}
