//! Plain text from a sanitized HTML body, for messages that have no text/plain part.
//!
//! Works on ammonia's output, which html5ever serialized: well-formed tags, quoted
//! attributes, and only `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&nbsp;` escapes in text (other
//! numeric and named references are decoded where they are common). Whitespace collapses as
//! in a browser (except in `<pre>`); block elements start new lines, paragraphs and headings
//! are separated by a blank line, list items become `- ` lines, table cells are separated by
//! two spaces, and `<blockquote>` content is prefixed with `> ` per level, so that
//! [`super::quote`] recognizes quoted history in HTML-only replies too.

/// Elements that end the current line when they open or close.
const BLOCK: [&str; 27] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "caption",
    "center",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "summary",
];
/// Block elements followed by a blank line.
const PARAGRAPH: [&str; 10] = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"];

struct Renderer {
    lines: Vec<String>,
    line: String,
    quote_depth: usize,
    pre_depth: usize,
    pending_space: bool,
}

impl Renderer {
    fn text(&mut self, text: &str) {
        if self.pre_depth > 0 {
            for (i, piece) in text.split('\n').enumerate() {
                if i > 0 {
                    self.newline();
                }
                self.line.push_str(piece);
            }
            return;
        }
        for c in text.chars() {
            if c.is_whitespace() && c != '\u{a0}' {
                self.pending_space = !self.line.is_empty();
            } else {
                if self.pending_space {
                    self.line.push(' ');
                    self.pending_space = false;
                }
                self.line.push(if c == '\u{a0}' { ' ' } else { c });
            }
        }
    }

    fn newline(&mut self) {
        let prefix = "> ".repeat(self.quote_depth);
        let line = std::mem::take(&mut self.line);
        self.lines.push(
            format!("{prefix}{}", line.trim_end())
                .trim_end()
                .to_string(),
        );
        self.pending_space = false;
    }

    /// Ends the current line unless it is empty.
    fn break_line(&mut self) {
        if !self.line.trim().is_empty() {
            self.newline();
        }
        self.line.clear();
        self.pending_space = false;
    }

    /// Ends the current line and leaves one blank line (never two).
    fn break_paragraph(&mut self) {
        self.break_line();
        if self
            .lines
            .last()
            .is_some_and(|l| !l.trim_start_matches(['>', ' ']).is_empty())
        {
            self.newline();
        }
    }
}

/// The text of a (sanitized) HTML fragment.
pub fn to_text(html: &str) -> String {
    let mut r = Renderer {
        lines: Vec::new(),
        line: String::new(),
        quote_depth: 0,
        pre_depth: 0,
        pending_space: false,
    };
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        r.text(&decode_entities(&rest[..lt]));
        let Some(gt) = rest[lt..].find('>') else {
            r.text(&decode_entities(&rest[lt..]));
            rest = "";
            break;
        };
        tag(&mut r, &rest[lt + 1..lt + gt]);
        rest = &rest[lt + gt + 1..];
    }
    r.text(&decode_entities(rest));
    r.break_line();
    let mut out = r.lines.join("\n");
    let trimmed_len = out.trim_end().len();
    out.truncate(trimmed_len);
    out.trim_start_matches('\n').to_string()
}

fn tag(r: &mut Renderer, inner: &str) {
    if inner.starts_with('!') || inner.starts_with('?') {
        return;
    }
    let closing = inner.starts_with('/');
    let name: String = inner
        .trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match name.as_str() {
        "br" => {
            r.newline();
        }
        "li" if !closing => {
            r.break_line();
            r.line.push_str("- ");
        }
        "td" | "th" if !closing => {
            if !r.line.trim().is_empty() {
                r.line.push_str("  ");
            }
            r.pending_space = false;
        }
        "tr" => r.break_line(),
        "blockquote" => {
            r.break_line();
            if closing {
                r.quote_depth = r.quote_depth.saturating_sub(1);
            }
            // The blank line around a quote belongs to the outer level.
            r.break_paragraph();
            if !closing {
                r.quote_depth += 1;
            }
        }
        "pre" => {
            r.break_line();
            r.pre_depth = if closing {
                r.pre_depth.saturating_sub(1)
            } else {
                r.pre_depth + 1
            };
        }
        n if PARAGRAPH.contains(&n) => r.break_paragraph(),
        n if BLOCK.contains(&n) => r.break_line(),
        _ => {}
    }
}

/// Decodes the character references html5ever's serializer writes, plus numeric ones and a
/// few common named ones. Unknown references are kept as written.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| entity(&after[..e]));
        match (end, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "euro" => '€',
        "copy" => '©',
        "reg" => '®',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn blocks_lists_tables_and_quotes() {
        let html = "<h1>Title</h1><p>One &amp; two<br>three</p><ul><li>a</li><li>b</li></ul>\
                    <table><tbody><tr><td>x</td><td>y</td></tr></tbody></table>\
                    <div>On Mon, Ann wrote:</div><blockquote>quoted<br>text</blockquote><p>after</p>";
        assert_eq!(
            to_text(html),
            "Title\n\nOne & two\nthree\n\n- a\n- b\n\nx  y\n\nOn Mon, Ann wrote:\n\n> quoted\n> text\n\nafter"
        );
    }

    #[test]
    fn whitespace_collapses_except_in_pre() {
        assert_eq!(to_text("  a \n  b&nbsp;&nbsp;c "), "a b  c");
        assert_eq!(to_text("<pre>x  y\n  z</pre>"), "x  y\n  z");
    }
}
