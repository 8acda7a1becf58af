//! Splits an mbox file into its messages (for imports, corpus tests and benchmarks).
//!
//! A message starts at a `From ` line at the start of the file or after a blank line, which
//! is how mboxo/mboxrd writers separate messages (a `From ` inside a body is escaped as
//! `>From ` by them). The `From ` envelope line itself is not part of the message.

/// The messages of an mbox, without their `From ` lines, in file order.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut pos = 0;
    let mut previous_blank = true;
    while pos < data.len() {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| pos + p + 1);
        let line = &data[pos..end];
        if previous_blank && line.starts_with(b"From ") {
            starts.push((pos, end));
        }
        previous_blank = line.iter().all(|b| b.is_ascii_whitespace());
        pos = end;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &(_, body_start)) in starts.iter().enumerate() {
        let body_end = starts.get(i + 1).map_or(data.len(), |&(next, _)| next);
        let message = &data[body_start..body_end];
        if !message.iter().all(u8::is_ascii_whitespace) {
            out.push(message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_on_from_lines_after_blank_lines_only() {
        let mbox = b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\nFrom here on, text\n\nFrom b@example.com Mon Jan  1 00:00:01 2024\nSubject: two\n\nbody two\n";
        let messages = split(mbox);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].starts_with(b"Subject: one"));
        assert!(messages[0].ends_with(b"From here on, text\n\n"));
        assert!(messages[1].starts_with(b"Subject: two"));
    }

    #[test]
    fn empty_and_blank_files_have_no_messages() {
        assert!(split(b"").is_empty());
        assert!(split(b"\n\n").is_empty());
        assert!(split(b"From x Mon Jan  1 00:00:00 2024\n\n").is_empty());
    }
}
