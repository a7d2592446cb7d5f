//! Names and labels typed by people (keys, apps, roles, users' display names, message
//! subjects): one line of visible text. Control characters, bidirectional controls
//! (which make a name display as something else: "Trojan Source"), zero-width and
//! other invisible format characters (two names that look the same but differ), and
//! line or paragraph separators are refused, with one rule for every such field.

use crate::error::AppError;

/// True for a character no one-line label may hold: a control character, a Unicode
/// format character (general category Cf: bidirectional controls, zero-width space,
/// joiners, word joiner, soft hyphen, byte-order mark, tags…) or a line or paragraph
/// separator.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
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
    if text.chars().any(is_hidden_or_control) {
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
