//! One answer per rendered form: every create form of the panel carries a token made
//! when the form was rendered, and the server acts on a token once.
//!
//! A double click, a browser that resends a form post, or a second tab with the same
//! page would otherwise create two keys (only the second secret would be seen) or two
//! messages. The first submission *claims* the token (an insert into a table whose key is
//! the token's hash, so two instances racing on one PostgreSQL see one winner); when its
//! action fails the claim is released, so the user can correct the form and send it
//! again; when it succeeds, the claim keeps what it made (a key id, an app's name), so
//! a replay can say what happened instead of acting twice. Claims are pruned after a day.
//!
//! The token is not a secret (it only names a form) and grants nothing: the request is
//! still signed in and checked as any other. The table keeps its SHA-256, so a database
//! reader cannot replay a form that is still on someone's screen.

use super::db::{is_unique_violation, Db};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// How long a claim is kept: a form older than this can be submitted again.
pub const KEEP_SECS: i64 = 24 * 3600;

/// A form token as the browser sent it, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormToken(String);

/// 16 random bytes, base64url without padding.
const TOKEN_LEN: usize = 22;

impl FormToken {
    /// A new token for a form being rendered.
    pub fn issue() -> String {
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// `None` for an empty field (a caller that is not a rendered form: nothing to
    /// protect); an error for anything that is not a token this server made.
    pub fn parse(s: &str) -> Result<Option<Self>, MalformedToken> {
        if s.is_empty() {
            return Ok(None);
        }
        let ok = s.len() == TOKEN_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Some(Self(s.to_owned())))
        } else {
            Err(MalformedToken)
        }
    }

    fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the form token is malformed")]
pub struct MalformedToken;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The first submission of this form: act, then `complete` or `release`.
    First,
    /// The form was submitted before. `made`: what that submission made, when it
    /// succeeded and was the same user's; `None` while it is still running, or when its
    /// request was cut off before it could say (`since`: when it was claimed).
    Replayed { made: Option<String>, since: i64 },
    /// The user has too many submissions that never finished (requests cut off while
    /// running): a flood, refused before it fills the table.
    TooMany,
}

/// Unfinished claims one user may hold within `KEEP_SECS`. A finished submission
/// records what it made and a failed one is released, so only requests cut off while
/// running stay unfinished: a person never gets near this.
pub const MAX_UNFINISHED: i64 = 100;

/// Claims `token` for `user_id`. A unique violation is the replay.
pub async fn claim(
    db: &Db,
    token: &FormToken,
    user_id: i64,
    now: i64,
) -> Result<Claim, sqlx::Error> {
    let hash = token.hash();
    let (unfinished,): (i64,) = sqlx::query_as(
        "select count(*) from form_submissions where user_id = $1 and made is null and created_at > $2",
    )
    .bind(user_id)
    .bind(now - KEEP_SECS)
    .fetch_one(&db.pool)
    .await?;
    if unfinished >= MAX_UNFINISHED {
        return Ok(Claim::TooMany);
    }
    let inserted = sqlx::query(
        "insert into form_submissions (token_hash, user_id, made, created_at, updated_at) \
         values ($1, $2, null, $3, $3)",
    )
    .bind(&hash)
    .bind(user_id)
    .bind(now)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(Claim::First),
        Err(e) if is_unique_violation(&e) => {
            let row: Option<(Option<String>, i64)> = sqlx::query_as(
                "select made, created_at from form_submissions where token_hash = $1 and user_id = $2",
            )
            .bind(&hash)
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
            Ok(match row {
                Some((made, since)) => Claim::Replayed { made, since },
                // Another user's token (or one released a moment ago): say nothing of it.
                None => Claim::Replayed {
                    made: None,
                    since: now,
                },
            })
        }
        Err(e) => Err(e),
    }
}

/// Records what the first submission made (shown to a replay).
pub async fn complete(db: &Db, token: &FormToken, made: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update form_submissions set made = $2, updated_at = $3 where token_hash = $1")
        .bind(token.hash())
        .bind(made)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Gives the token back after the action failed: the corrected form can be sent again.
pub async fn release(db: &Db, token: &FormToken) -> Result<(), sqlx::Error> {
    sqlx::query("delete from form_submissions where token_hash = $1 and made is null")
        .bind(token.hash())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forgets claims older than `KEEP_SECS` (run now and then).
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("delete from form_submissions where created_at < $1")
            .bind(now - KEEP_SECS)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::FormToken;

    #[test]
    fn an_issued_token_parses_and_others_do_not() {
        let t = FormToken::issue();
        assert_eq!(t.len(), 22);
        assert!(FormToken::parse(&t).unwrap().is_some());
        assert!(FormToken::parse("").unwrap().is_none());
        for bad in [
            "short",
            "aaaaaaaaaaaaaaaaaaaaa=",
            "aaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaa aaaaaaaaaaa",
        ] {
            assert!(FormToken::parse(bad).is_err(), "{bad}");
        }
    }
}
