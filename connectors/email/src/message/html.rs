//! HTML bodies, sanitized with ammonia for display in a staff frontend.
//!
//! - No script, no event handlers, no forms, frames, objects, `<style>`/`<link>`/`<base>`/
//!   `<meta>`: ammonia's allow-list only keeps formatting tags and safe attributes.
//! - No remote loads by default: `<img src>` pointing anywhere but a `cid:` part or an inline
//!   `data:image/...` is removed (and reported, so a frontend may offer to load it through a
//!   proxy); `style` attributes keep only properties that cannot take a URL; relative URLs are
//!   dropped (they would resolve against our own origin).
//! - `cid:` images are rewritten to the URL the caller chose for that part (core maps them to
//!   its attachment download URL).
//! - Links keep `http`, `https`, `mailto` and `tel` targets, with `rel="noopener noreferrer"`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// Inline CSS properties kept in `style` attributes: layout and typography, none of which can
/// reference a URL (`background`, `background-image`, `list-style`, `content`, `cursor`,
/// `border-image` are absent on purpose).
const STYLE_PROPERTIES: [&str; 47] = [
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "vertical-align",
    "white-space",
    "word-break",
    "word-wrap",
    "overflow-wrap",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "width",
    "height",
    "max-width",
    "min-width",
    "display",
];

/// Attributes allowed on every kept tag (presentational attributes email HTML relies on).
const GENERIC_ATTRIBUTES: [&str; 16] = [
    "lang",
    "title",
    "dir",
    "style",
    "align",
    "valign",
    "width",
    "height",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "colspan",
    "rowspan",
    "color",
    "face",
];

/// Inline image types a `data:` URL may carry (no SVG: it can script and load).
const DATA_IMAGE_PREFIXES: [&str; 4] = [
    "data:image/png",
    "data:image/jpeg",
    "data:image/gif",
    "data:image/webp",
];

/// A sanitized HTML body and what sanitizing removed or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    pub html: String,
    /// Remote URLs that were not loaded (image sources), in document order, deduplicated.
    pub blocked_remote: Vec<String>,
    /// Content-IDs (lower-cased) the HTML referenced and that were resolved.
    pub cids_used: Vec<String>,
}

/// Sanitizes an HTML body. `cid_urls` maps a lower-cased Content-ID to the URL that serves
/// that part; a `cid:` reference to an unknown part is removed.
pub fn sanitize(
    html: &str,
    cid_urls: HashMap<String, String>,
    allow_remote_images: bool,
) -> Sanitized {
    let blocked = Arc::new(Mutex::new(Vec::<String>::new()));
    let used = Arc::new(Mutex::new(Vec::<String>::new()));
    let (blocked_in, used_in) = (Arc::clone(&blocked), Arc::clone(&used));

    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["font"])
        .add_clean_content_tags(["title", "noscript", "template"])
        .generic_attributes(GENERIC_ATTRIBUTES.into_iter().collect::<HashSet<_>>())
        .filter_style_properties(STYLE_PROPERTIES.into_iter().collect::<HashSet<_>>())
        .url_schemes(
            ["http", "https", "mailto", "tel", "cid", "data"]
                .into_iter()
                .collect(),
        )
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(move |element, attribute, value| {
            if attribute == "style" {
                return Some(safe_style(value).into());
            }
            if !is_url_attribute(element, attribute) {
                return Some(value.into());
            }
            let compact: String = value
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
                .collect();
            let lower = compact.to_ascii_lowercase();
            let is_image = element == "img" && attribute == "src";
            if let Some(cid) = lower.strip_prefix("cid:") {
                if !is_image {
                    return None;
                }
                let key = percent_decode(cid).trim_matches(['<', '>']).to_string();
                let url = cid_urls.get(&key)?;
                push_unique(&used_in, key);
                return Some(url.clone().into());
            }
            if lower.starts_with("data:") {
                let ok = is_image && DATA_IMAGE_PREFIXES.iter().any(|p| lower.starts_with(p));
                return ok.then(|| compact.into());
            }
            let remote = lower.starts_with("http:")
                || lower.starts_with("https:")
                || lower.starts_with("//");
            if is_image {
                if remote && allow_remote_images {
                    return Some(compact.into());
                }
                if remote {
                    push_unique(&blocked_in, compact);
                }
                return None;
            }
            // Links: absolute http(s), mailto and tel only (ammonia already checked the
            // scheme of absolute URLs); relative ones would point at our own origin.
            let absolute = remote && !lower.starts_with("//")
                || lower.starts_with("mailto:")
                || lower.starts_with("tel:");
            absolute.then(|| value.into())
        });
    let html = builder.clean(html).to_string();
    Sanitized {
        html,
        blocked_remote: take(&blocked),
        cids_used: take(&used),
    }
}

/// CSS functions a kept declaration may call: colours only. Anything else with a `(` is
/// dropped, which covers `expression(` (old IE runs it as script), `url(`, `image-set(`,
/// however it is spelled.
const STYLE_FUNCTIONS: [&str; 4] = ["rgb", "rgba", "hsl", "hsla"];

/// A `style` value with every declaration that is not plainly safe removed. This runs
/// before ammonia's property allow-list (which checks names, not values): a declaration is
/// dropped if it has a comment or a backslash escape (both can split or disguise a keyword:
/// `exp/**/ression(`, `exp\72 ession(`), a function other than a colour, or a keyword
/// that can script or load (`expression`, `javascript`, `behavior`, `-moz-binding`,
/// `@import`, in any case).
fn safe_style(value: &str) -> String {
    value
        .split(';')
        .filter(|decl| safe_declaration(decl))
        .collect::<Vec<_>>()
        .join(";")
}

fn safe_declaration(decl: &str) -> bool {
    let lower = decl.to_ascii_lowercase();
    if [
        "/*",
        "*/",
        "\\",
        "<",
        "expression",
        "javascript",
        "behavior",
        "binding",
        "@import",
    ]
    .iter()
    .any(|bad| lower.contains(bad))
    {
        return false;
    }
    // Every `(` must open one of the colour functions.
    lower.match_indices('(').all(|(i, _)| {
        let name: String = lower[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        STYLE_FUNCTIONS.contains(&name.as_str())
    })
}

/// Attributes that hold a URL in the tags ammonia keeps.
fn is_url_attribute(element: &str, attribute: &str) -> bool {
    matches!(
        (element, attribute),
        ("a" | "area", "href") | ("img", "src") | ("blockquote" | "q" | "del" | "ins", "cite")
    )
}

fn push_unique(list: &Mutex<Vec<String>>, item: String) {
    let mut list = list.lock().unwrap_or_else(PoisonError::into_inner);
    if !list.contains(&item) {
        list.push(item);
    }
}

fn take(list: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *list.lock().unwrap_or_else(PoisonError::into_inner))
}

/// `%XX` sequences decoded (RFC 2392 cid URLs are percent-encoded Content-IDs); invalid
/// sequences and non-UTF-8 results are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for URL templates).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Plain text from a sanitized HTML body (see [`super::html_text`]).
pub fn to_text(html: &str) -> String {
    super::html_text::to_text(html)
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, percent_encode, sanitize};
    use std::collections::HashMap;

    fn cids() -> HashMap<String, String> {
        HashMap::from([("logo@x".to_string(), "/inline/0".to_string())])
    }

    #[test]
    fn cid_images_are_rewritten_and_unknown_ones_dropped() {
        let out = sanitize(
            r#"<img src="cid:LOGO@x"><img src="cid:other@x">"#,
            cids(),
            false,
        );
        assert_eq!(out.html, r#"<img src="/inline/0"><img>"#);
        assert_eq!(out.cids_used, ["logo@x"]);
        let encoded = sanitize(r#"<img src="cid:logo%40x">"#, cids(), false);
        assert_eq!(encoded.html, r#"<img src="/inline/0">"#);
    }

    #[test]
    fn remote_images_only_when_allowed() {
        let html = r#"<img src="https://t.example/p.gif"><a href="https://example.com">x</a>"#;
        let blocked = sanitize(html, HashMap::new(), false);
        assert!(!blocked.html.contains("t.example"));
        assert_eq!(blocked.blocked_remote, ["https://t.example/p.gif"]);
        let allowed = sanitize(html, HashMap::new(), true);
        assert!(allowed.html.contains(r#"src="https://t.example/p.gif""#));
        assert!(allowed.blocked_remote.is_empty());
    }

    #[test]
    fn cid_and_data_urls_are_not_links() {
        let out = sanitize(
            r#"<a href="cid:logo@x">a</a><a href="data:text/html,x">b</a><a href=" java	script:alert(1)">c</a>"#,
            cids(),
            false,
        );
        assert!(!out.html.contains("href"), "{}", out.html);
    }

    #[test]
    fn styles_keep_only_url_free_properties() {
        let out = sanitize(
            r#"<p style="color: red; background: url(https://t.example/x); background-image: url(x); font-size: 12px">x</p>"#,
            HashMap::new(),
            false,
        );
        assert_eq!(out.html, r#"<p style="color:red;font-size:12px">x</p>"#);
    }

    #[test]
    fn styles_drop_css_expressions_however_spelled() {
        for style in [
            "width:expression(alert(1))",
            "width:EXPRESSION(alert(1))",
            "width:exp/**/ression(alert(1))",
            r"width:exp\72 ession(alert(1))",
            "color:red;width:eXpReSsIoN(alert(1))",
            "width:calc(1px + expression(1))",
        ] {
            let out = sanitize(
                &format!(r#"<p style="{style}">x</p>"#),
                HashMap::new(),
                false,
            );
            let lower = out.html.to_ascii_lowercase();
            assert!(
                !lower.contains("expression")
                    && !lower.contains("ression(")
                    && !lower.contains("alert"),
                "{style} -> {}",
                out.html
            );
        }
        let kept = sanitize(
            r#"<p style="color:rgb(1, 2, 3);width:exp/**/ression(alert(1));font-size:12px">x</p>"#,
            HashMap::new(),
            false,
        );
        assert_eq!(
            kept.html,
            r#"<p style="color:rgb(1, 2, 3);font-size:12px">x</p>"#
        );
    }

    #[test]
    fn percent_coding_round_trips() {
        assert_eq!(percent_encode("a b@c/d"), "a%20b%40c%2Fd");
        assert_eq!(percent_decode("a%20b%40c%2Fd"), "a b@c/d");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
