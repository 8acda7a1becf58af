//! Invisible characters in names shown to staff.
//!
//! Unicode format characters (general category Cf) change how text *looks* without being
//! seen: a right-to-left override makes `invoice\u{202E}fdp.exe` display as
//! `invoiceexe.pdf`. A file name is a label a person trusts, so stored names and download
//! names carry none of them.

/// The code points of Unicode's general category Cf (Unicode 16), as inclusive ranges.
const FORMAT_RANGES: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a format character (category Cf: bidi controls, zero-width characters,
/// the BOM, soft hyphen, tags...).
pub fn is_format_char(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `name` without its format characters.
pub fn strip_format_chars(name: &str) -> String {
    name.chars().filter(|c| !is_format_char(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_other_format_characters_are_removed() {
        assert_eq!(
            strip_format_chars("invoice\u{202E}fdp.exe"),
            "invoicefdp.exe"
        );
        assert_eq!(
            strip_format_chars("a\u{200B}b\u{2066}c\u{2069}d\u{FEFF}e\u{00AD}f\u{E0041}g"),
            "abcdefg"
        );
        assert_eq!(strip_format_chars("Grüße € 😀.txt"), "Grüße € 😀.txt");
    }
}
