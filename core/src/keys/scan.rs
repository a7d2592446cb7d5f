//! Finding Keyward secret keys in text (`keyward scan`): every `kw_live_` / `kw_test_`
//! followed by exactly 38 letters and digits, not inside a longer word, whose checksum
//! holds. The checksum is what keeps look-alikes (examples, placeholders, a key with a
//! typo) from being reported. Public SDK keys (`kwpub_…`) are meant to ship inside
//! client apps and are not reported.

use super::format::{self, Visibility, BODY_LEN, CHECKSUM_LEN};

/// A key found: the line it is on (from 1) and the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub line: usize,
    pub key: String,
}

/// Every secret key in `text` (bytes: a file need not be UTF-8), in order.
pub fn find(text: &[u8]) -> Vec<Found> {
    const PREFIXES: [&[u8]; 2] = [b"kw_live_", b"kw_test_"];
    let body = BODY_LEN + CHECKSUM_LEN;
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        let starts_word = i == 0 || !word(text[i - 1]);
        let hit = starts_word
            .then(|| PREFIXES.iter().find(|p| text[i..].starts_with(p)))
            .flatten()
            .and_then(|p| {
                let end = i + p.len() + body;
                let tail = text.get(i + p.len()..end)?;
                let ends_word = text.get(end).is_none_or(|b| !word(*b));
                (tail.iter().all(u8::is_ascii_alphanumeric) && ends_word).then_some(end)
            });
        match hit {
            Some(end) => {
                // ASCII by the checks above.
                let key = String::from_utf8_lossy(&text[i..end]).into_owned();
                if matches!(format::parse(&key), Some((Visibility::Secret, _))) {
                    out.push(Found { line, key });
                }
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

/// What this instance knows of a found key: its id and whether it is revoked, or
/// `None` when it is not one of this instance's keys.
pub async fn known(
    db: &crate::infra::db::Db,
    key: &str,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("select key_id, revoked_at from api_keys where secret_hash = $1")
            .bind(format::hash(key))
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(id, revoked)| (id, revoked.is_some())))
}

/// How a found key is printed: its prefix and last four characters, never the rest.
pub fn redacted(key: &str) -> String {
    let prefix = if key.starts_with("kw_live_") {
        "kw_live_"
    } else {
        "kw_test_"
    };
    format!("{prefix}…{}", format::last4(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::format::{generate, Environment};

    #[test]
    fn finds_real_keys_by_line_and_nothing_that_only_looks_like_one() {
        let live = generate(Visibility::Secret, Environment::Live);
        let test = generate(Visibility::Secret, Environment::Test);
        let public = generate(Visibility::Public, Environment::Live);
        let mut typo = live.clone().into_bytes();
        typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        let mut text = format!(
            "first line\nAPI_KEY=\"{live}\"\n{typo}\nx{test}\n{test}x\n{public}\n\
             kw_live_EXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPL\n"
        )
        .into_bytes();
        text.extend_from_slice(b"\xff\xfe binary ");
        text.extend_from_slice(test.as_bytes());
        text.push(b'\n');
        let found = find(&text);
        assert_eq!(
            found,
            vec![
                Found {
                    line: 2,
                    key: live.clone()
                },
                Found {
                    line: 8,
                    key: test.clone()
                },
            ]
        );
        assert_eq!(
            redacted(&live),
            format!("kw_live_…{}", &live[live.len() - 4..])
        );
        assert!(find(b"").is_empty());
        assert!(find(b"kw_live_").is_empty());
    }
}
