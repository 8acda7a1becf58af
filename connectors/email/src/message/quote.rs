//! The reply text: what the sender wrote, without the quoted history and the signature.
//!
//! Cuts the text at the first
//! - attribution line of a top-posted reply: `On <date>, <name> wrote:` (Gmail, Apple Mail,
//!   Thunderbird; also wrapped over two lines, and the German, French, Spanish, Italian,
//!   Dutch, Portuguese, Nordic and Polish forms);
//! - Outlook separator: `-----Original Message-----` (and its translations), or an Outlook
//!   header block (`From:` followed by `Sent:`/`Date:` and `To:`/`Subject:` lines, also
//!   `Von:`/`Gesendet:`/`An:`/`Betreff:` ...), with the `____` rule above it;
//! - signature separator `-- ` (RFC 3676; `--` alone too, as many clients trim it);
//!
//! then drops every remaining `>`-quoted line (interleaved replies keep their own lines) and
//! a trailing "Sent from my ..." line. Forwarded content is not cut: it is the message, so
//! scanning stops at a "Forwarded message" marker.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// Verbs of attribution lines, lower-case; the line ends with a colon (`... wrote:`,
/// `... schrieb Name <addr>:`, `... a écrit :`).
const ATTRIBUTION_VERBS: [&str; 14] = [
    " wrote",
    " writes",
    " schrieb",
    " a écrit",
    " escribió",
    " ha scritto",
    " schreef",
    " escreveu",
    " skrev",
    " kirjoitti",
    " pisze",
    " napisał",
    " написал",
    " a scris",
];

/// Beginnings of attribution lines, lower-case.
const ATTRIBUTION_STARTS: [&str; 12] = [
    "on ", "am ", "le ", "el ", "il ", "op ", "em ", "den ", "w dniu ", "dnia ", "quoting ",
    "citando ",
];

/// Outlook "original message" separators, lower-case, without the dashes.
const ORIGINAL_MESSAGE: [&str; 8] = [
    "original message",
    "ursprüngliche nachricht",
    "message d'origine",
    "mensaje original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "mensagem original",
    "originalmeddelande",
];

/// Header labels of an Outlook quote block, lower-case: (from, sent/date, to/subject).
const FROM_LABELS: [&str; 6] = ["from:", "von:", "de:", "da:", "van:", "från:"];
const SENT_LABELS: [&str; 10] = [
    "sent:",
    "date:",
    "gesendet:",
    "datum:",
    "envoyé :",
    "envoyé:",
    "enviado:",
    "inviato:",
    "verzonden:",
    "skickat:",
];
const TO_LABELS: [&str; 12] = [
    "to:", "subject:", "an:", "betreff:", "à :", "à:", "objet :", "para:", "asunto:", "a:",
    "oggetto:", "aan:",
];

/// The reply text of a message body: see the module documentation. Returns the whole text
/// (trimmed) when cutting would leave nothing.
pub fn reply_text(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    let cut = cut_index(&lines).unwrap_or(lines.len());

    let mut kept: Vec<&str> = lines[..cut]
        .iter()
        .copied()
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect();
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    if kept
        .last()
        .is_some_and(|l| l.trim().to_ascii_lowercase().starts_with("sent from my "))
    {
        kept.pop();
    }
    let reply = collapse_blank_runs(&kept).trim().to_string();
    if reply.is_empty() {
        normalized.trim().to_string()
    } else {
        reply
    }
}

/// Index of the first line that starts the quoted history or the signature.
fn cut_index(lines: &[&str]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if is_forward_marker(trimmed) {
            // Forwarded content is the message; nothing after the marker is history.
            return None;
        }
        if line.trim_end() == "--" {
            return Some(i);
        }
        if is_original_message_separator(trimmed) {
            return Some(i);
        }
        if is_attribution(lines, i) {
            return Some(i);
        }
        if is_outlook_header_block(lines, i) {
            // Include the horizontal rule Outlook draws above the block.
            let rule_above = i > 0 && is_rule(lines[i - 1].trim());
            return Some(if rule_above { i - 1 } else { i });
        }
    }
    None
}

/// Forwarded-message markers, lower-case substrings.
const FORWARD_MARKERS: [&str; 5] = [
    "forwarded message",
    "begin forwarded message",
    "weitergeleitete nachricht",
    "message transféré",
    "mensaje reenviado",
];

/// A word every [`FORWARD_MARKERS`] phrase holds, any ASCII case, in one pass (`None` only
/// if the automaton cannot be built: then every line gets the full check).
static FORWARD_WORDS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(["message", "nachricht", "mensaje"])
        .ok()
});

fn is_forward_marker(line: &str) -> bool {
    // Every marker holds one of these words: most lines are dismissed without a copy.
    if line.len() > 120 || !FORWARD_WORDS.as_ref().is_none_or(|w| w.is_match(line)) {
        return false;
    }
    let lower = line.to_lowercase();
    FORWARD_MARKERS.iter().any(|m| lower.contains(m))
}

fn is_rule(line: &str) -> bool {
    line.len() >= 10 && line.chars().all(|c| c == '_' || c == '-')
}

fn is_original_message_separator(line: &str) -> bool {
    if !line.starts_with("---") {
        return false;
    }
    let inner = line
        .trim_matches(|c: char| c == '-' || c.is_whitespace())
        .to_lowercase();
    ORIGINAL_MESSAGE.contains(&inner.as_str())
}

/// `On ... wrote:` on this line, or starting on this line and ending on the next.
fn is_attribution(lines: &[&str], i: usize) -> bool {
    // An attribution ends with a colon, on this line or the next: checked before any copy.
    let ends_with_colon = |l: Option<&&str>| l.is_some_and(|l| l.trim().ends_with(':'));
    if !ends_with_colon(lines.get(i)) && !ends_with_colon(lines.get(i + 1)) {
        return false;
    }
    let line = lines[i].trim().to_lowercase();
    if line.is_empty() || line.starts_with('>') || line.chars().count() > 300 {
        return false;
    }
    let candidates = [
        line.clone(),
        match lines.get(i + 1) {
            Some(next) if !next.trim().is_empty() => {
                format!("{line} {}", next.trim().to_lowercase())
            }
            _ => String::new(),
        },
    ];
    candidates.iter().any(|c| {
        let attribution = c.ends_with(':') && ATTRIBUTION_VERBS.iter().any(|v| c.contains(v));
        attribution
            && (ATTRIBUTION_STARTS.iter().any(|s| c.starts_with(s)) || next_is_quote(lines, i))
    })
}

/// The next non-blank line after the attribution (one or two lines) is a `>` quote.
fn next_is_quote(lines: &[&str], i: usize) -> bool {
    lines
        .iter()
        .skip(i + 1)
        .take(3)
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('>'))
}

/// A `From:` line followed within four lines by a sent/date label and a to/subject label.
fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    // Labels are at most 12 characters: only the line's head is lower-cased.
    let starts = |line: &str, labels: &[&str]| {
        let head: String = line
            .trim()
            .trim_start_matches('*')
            .chars()
            .take(12)
            .collect();
        let lower = head.to_lowercase();
        labels.iter().any(|l| lower.starts_with(l))
    };
    // Every From label starts with d, f or v: other lines are dismissed without a copy.
    let first = lines[i].trim().trim_start_matches('*').bytes().next();
    if !first.is_some_and(|b| matches!(b.to_ascii_lowercase(), b'd' | b'f' | b'v'))
        || !starts(lines[i], &FROM_LABELS)
    {
        return false;
    }
    let window = &lines[i + 1..lines.len().min(i + 6)];
    window.iter().any(|l| starts(l, &SENT_LABELS)) && window.iter().any(|l| starts(l, &TO_LABELS))
}

fn collapse_blank_runs(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    for line in lines {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "quote_tests.rs"]
mod tests;
