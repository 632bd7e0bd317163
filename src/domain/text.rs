//! Invisible format characters in text that people read: the bidirectional embeddings,
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069) that make `admin\u{202e}TOOR`
//! display as something else, and the zero-width and other invisible format characters
//! (Unicode category Cf) that make two different strings look the same. The API refuses
//! them in a `subject` (an identity must read as what it is) and shows them in a `message`
//! as a visible `[U+XXXX]` marker.

/// Whether `c` is an invisible format character (the Cf characters a person cannot see).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// `text` with every invisible format character replaced by a visible `[U+XXXX]`.
pub fn neutralise_format(text: &str) -> String {
    if !text.chars().any(is_invisible_format) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_invisible_format(c) {
            shown.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_invisible_format() {
        for c in [
            '\u{202E}',
            '\u{2066}',
            '\u{200B}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            assert!(is_invisible_format(c), "{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '漢', ' ', '\n', '\u{00A0}'] {
            assert!(!is_invisible_format(c), "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn a_message_shows_each_invisible_character_as_a_marker() {
        assert_eq!(neutralise_format("plain"), "plain");
        assert_eq!(
            neutralise_format("admin\u{202e}TOOR\u{200b}"),
            "admin[U+202E]TOOR[U+200B]"
        );
    }
}
