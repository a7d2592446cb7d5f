//! Names and labels typed by people (keys, apps, roles, users' display names, message
//! subjects): one line of visible text. Control characters, bidirectional controls
//! (which make a name display as something else: "Trojan Source"), zero-width and
//! other invisible format characters (two names that look the same but differ), and
//! line or paragraph separators are refused, with one rule for every such field.

use model::error::AppError;

/// True for a character no one-line label may hold: a control character, a Unicode
/// format character (general category Cf: bidirectional controls, zero-width space,
/// joiners, word joiner, soft hyphen, byte-order mark, tags…), any other
/// Default_Ignorable_Code_Point (Hangul fillers, combining grapheme joiner, Khmer
/// inherent vowels, Mongolian selectors…; the emoji variation selectors U+FE0E/U+FE0F
/// excepted), a blank that renders as nothing (braille blank), or a line or paragraph
/// separator.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0D}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// True for text with at least one character that shows: not whitespace, not hidden,
/// not a combining mark alone (a label of marks only renders as nothing or a dotted
/// circle).
fn has_visible(text: &str) -> bool {
    text.chars().any(|c| {
        !c.is_whitespace()
            && !is_hidden_or_control(c)
            && !matches!(c, '\u{0300}'..='\u{036F}' | '\u{FE0E}'..='\u{FE0F}')
    })
}

/// Trims a label and checks it: 1 to `max` characters, none of them hidden or control
/// characters. `what` names the thing in the message ("A key name").
pub fn label(field: &str, input: &str, max: usize, what: &str) -> Result<String, AppError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(AppError::validation(
            field,
            format!("{what} cannot be empty."),
        ));
    }
    if text.chars().count() > max {
        return Err(AppError::validation(
            field,
            format!("{what} has at most {max} characters."),
        ));
    }
    if text.chars().any(is_hidden_or_control) || !has_visible(text) {
        return Err(AppError::validation(
            field,
            format!(
                "{what} is one line of visible text: no control, invisible (zero-width), bidirectional or line-separator characters."
            ),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refuse_hidden_and_control_characters() {
        for bad in [
            "pay\u{202E}txt.exe",
            "a\u{2066}b",
            "zero\u{200B}width",
            "join\u{200D}er",
            "line\u{2028}sep",
            "para\u{2029}sep",
            "bom\u{FEFF}",
            "tab\tname",
            "new\nline",
            "soft\u{00AD}hyphen",
            "tag\u{E0041}",
            "\u{3164}",
            "\u{034F}\u{034F}",
            "\u{FFA0}x",
            "\u{115F}",
            "\u{17B4}a",
            "\u{2800}",
            "\u{0301}\u{0301}",
        ] {
            assert!(label("name", bad, 100, "A name").is_err(), "{bad:?}");
        }
        for good in [
            "Billing",
            "Café prod",
            "鍵の名前",
            "שלום",
            "key (test) #2",
            "🔑 main",
        ] {
            assert_eq!(label("name", good, 100, "A name").unwrap(), good);
        }
        assert!(label("name", "   ", 100, "A name").is_err());
        assert!(label("name", &"x".repeat(101), 100, "A name").is_err());
        assert_eq!(label("name", "  x  ", 100, "A name").unwrap(), "x");
    }
}
