//! Phone numbers (SMS sender numbers, SMS recipients, a user's number for sign-in codes):
//! E.164 only (`+` and the country code, as `+905551234567`), checked against the
//! numbering plans of the `phonenumber` crate (libphonenumber's metadata), so a number
//! that cannot exist is refused before anything is stored or sent.

use model::error::AppError;

/// The longest text looked at: E.164 numbers have at most 15 digits, and spaces or
/// dashes between groups are allowed.
const MAX_CHARS: usize = 32;

/// `text` as an E.164 number (`+` and digits only), or a field error that says why.
pub fn e164(field: &str, text: &str) -> Result<String, AppError> {
    let t = text.trim();
    let shown: String = t.chars().take(MAX_CHARS).collect();
    let wrong = || {
        AppError::validation(
            field,
            format!("{shown} is not a phone number in international form, such as +905551234567."),
        )
    };
    if t.is_empty() {
        return Err(AppError::validation(
            field,
            "Enter a phone number in international form, such as +905551234567.",
        ));
    }
    if t.chars().count() > MAX_CHARS
        || !t.starts_with('+')
        || !t[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(wrong());
    }
    let n = phonenumber::parse(None, t).map_err(|_| wrong())?;
    if !phonenumber::is_valid(&n) {
        return Err(wrong());
    }
    Ok(n.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_to_e164() {
        assert_eq!(e164("n", "+90 555 123 45 67").unwrap(), "+905551234567");
        assert_eq!(e164("n", " +1 (415) 555-2671 ").unwrap(), "+14155552671");
        assert_eq!(e164("n", "+447911123456").unwrap(), "+447911123456");
    }

    #[test]
    fn numbers_that_cannot_exist_are_refused() {
        for bad in [
            "",
            "05551234567",
            "+1",
            "+999123456",
            "+90555123456789012",
            "+90abc",
            "++905551234567",
            "+905551234567\n+1",
            &format!("+{}", "9".repeat(200)),
        ] {
            assert!(e164("n", bad).is_err(), "{bad:?} was accepted");
        }
    }
}
