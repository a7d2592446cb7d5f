//! Email addresses and domains in the one form Keyward compares, so that a user, an
//! invitation and the sign-in domain list agree on who is who.

use crate::infra::text;

/// A domain in the one form Keyward compares: lowercase, without a trailing dot,
/// international names in their ASCII (Punycode) form, checked against the DNS rules
/// (STD3 characters, label and name lengths). At least two labels.
pub fn normalise_domain(input: &str) -> Result<String, &'static str> {
    const BAD: &str = "Enter a domain such as example.com.";
    let d = input.trim();
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() || d.contains(['@', '*', '/', ':']) || d.starts_with('.') {
        return Err(BAD);
    }
    let ascii = idna::domain_to_ascii_strict(d).map_err(|_| BAD)?;
    if !ascii.contains('.') || ascii.split('.').any(str::is_empty) {
        return Err(BAD);
    }
    Ok(ascii)
}

/// Trims an email, lowercases it and checks that it is one plain address; the domain is
/// normalised by `normalise_domain`, so `Ada@Bücher.Example.` and
/// `ada@xn--bcher-kva.example` are the same user.
pub fn normalise_email(input: &str) -> Result<String, &'static str> {
    const BAD: &str = "Enter a single email address such as name@example.com.";
    let e = input.trim();
    if e.is_empty() {
        return Err("Enter an email address.");
    }
    if e.len() > 254
        || e.chars().any(|c| {
            c.is_whitespace()
                || text::is_hidden_or_control(c)
                || matches!(
                    c,
                    ',' | ';' | '<' | '>' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        })
    {
        return Err(BAD);
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(BAD);
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(BAD);
    }
    let domain = normalise_domain(domain).map_err(|_| BAD)?;
    Ok(format!("{}@{domain}", local.to_lowercase()))
}

/// The (normalised) domain of a normalised email.
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalisation() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a@b@c.com",
            "ada@example.com, eve@evil.com",
            "ada @example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "ada@example.com\r\nBcc: x@y.z",
            "ada@exa_mple.com",
            "ada@.example.com",
            "ada@example..com",
            "ada@*.example.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?} accepted");
        }
        // International names compare in their ASCII form; a trailing dot is dropped.
        assert_eq!(
            normalise_email("Ada@Bücher.Example.").unwrap(),
            "ada@xn--bcher-kva.example"
        );
        assert_eq!(
            normalise_email("ada@xn--bcher-kva.example").unwrap(),
            "ada@xn--bcher-kva.example"
        );
    }

    #[test]
    fn domain_normalisation() {
        assert_eq!(normalise_domain(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalise_domain("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "com",
            ".",
            "*.example.com",
            "a@b.com",
            "exa mple.com",
            "example..com",
            "http://example.com",
        ] {
            assert!(normalise_domain(bad).is_err(), "{bad:?} accepted");
        }
    }
}
