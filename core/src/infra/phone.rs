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

/// `text` as the E.164 number of a mobile phone: where an SMS may go (recipients, a
/// user's phone for codes). Premium-rate, shared-cost, toll-free, landline and other
/// kinds of numbers are refused: sending to them costs money or reaches nobody, and an
/// attacker could make the deployment pay for them.
pub fn mobile(field: &str, text: &str) -> Result<String, AppError> {
    let number = e164(field, text)?;
    let n = phonenumber::parse(None, &number).map_err(|_| AppError::Internal)?;
    // Satellite and international networks (Inmarsat, Iridium, Globalstar, …): typed as
    // mobiles by the numbering plans, but costly destinations and a known route of SMS
    // toll fraud.
    if matches!(n.code().value(), 870 | 881 | 882 | 883) {
        return Err(AppError::validation(
            field,
            format!(
                "{number} is a satellite or international-network number: SMS do not go there."
            ),
        ));
    }
    match n.number_type(&phonenumber::metadata::DATABASE) {
        // Some countries (the US among them) do not tell mobile numbers from others.
        phonenumber::Type::Mobile | phonenumber::Type::FixedLineOrMobile => Ok(number),
        _ => Err(AppError::validation(
            field,
            format!("{number} is not a mobile number: SMS go only to mobile phones (not premium-rate, toll-free or landline numbers)."),
        )),
    }
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
    fn sms_go_only_to_mobile_numbers() {
        for ok in ["+447911123456", "+905551234567", "+14155552671"] {
            assert!(mobile("n", ok).is_ok(), "{ok}");
        }
        for premium_or_fixed in [
            "+449098790000",
            "+19005550123",
            "+979123456789",
            "+882130000000",
            "+870301234567",
            "+881612345678",
            "+8823421234",
            "+442071234567",
            "+18005550123",
        ] {
            assert!(mobile("n", premium_or_fixed).is_err(), "{premium_or_fixed}");
        }
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
