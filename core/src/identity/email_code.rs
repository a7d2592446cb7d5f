//! One-time codes by email or SMS: the second step of a sign-in for users without an
//! authenticator app (or who chose another factor) when Settings > General requires a
//! second factor, and the code that confirms a user's phone number.
//!
//! Six digits from the OS CSPRNG, stored as SHA-256 bound to the one sign-in attempt
//! that asked for it (a random id kept in that browser's session), valid 10 minutes,
//! used once — the conditional `update … where used_at is null` decides, so the same
//! code submitted twice at the same instant is accepted once —, burnt after 5 wrong
//! tries. A new code for the same attempt replaces the old one; resending waits 30 s.

use crate::{
    audit::{self, Actor, Event, Origin},
    infra::config::Config,
    infra::db::Db,
    infra::mail::{Mail, Mailer},
};
use model::error::AppError;
use rand::Rng as _;
use sha2::{Digest, Sha256};

pub const VALID_SECS: i64 = 10 * 60;
pub const TRIES: i64 = 5;
pub const RESEND_AFTER_SECS: i64 = 30;

fn hash(attempt_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{attempt_id}:{}", code.trim()).as_bytes(),
    ))
}

/// The sign-in attempt a code is for: its random id and, when the browser signed in to
/// the account before, its device id (its own allowance of codes).
pub struct Attempt<'a> {
    pub id: &'a str,
    pub device: Option<&'a str>,
}

/// How a code reaches its user.
pub enum Via<'a> {
    Email(&'a Mailer),
    /// To `to`, from the sender number `from`.
    Sms {
        config: &'a Config,
        to: &'a str,
        from: &'a str,
    },
}

/// What a code is for (the text that comes with it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    ConfirmPhone,
}

/// Whose code, sent how, for what.
pub struct Send<'a> {
    pub user_id: i64,
    /// The account's email: the audit row's target, and where an email code goes.
    pub email: &'a str,
    pub via: Via<'a>,
    pub purpose: Purpose,
}

/// Makes a code for this attempt, sends it, and audits it.
pub async fn issue(
    db: &Db,
    now: i64,
    to: &Send<'_>,
    attempt: &Attempt<'_>,
    origin: &Origin,
) -> Result<(), AppError> {
    let (user_id, email) = (to.user_id, to.email);
    let attempt_id = attempt.id;
    let last: Option<(i64,)> = sqlx::query_as(
        "select max(created_at) from email_codes where attempt_id = $1 having count(*) > 0",
    )
    .bind(attempt_id)
    .fetch_optional(&db.pool)
    .await?;
    if let Some((at,)) = last {
        let wait = at + RESEND_AFTER_SECS - now;
        if wait > 0 {
            return Err(AppError::RateLimited {
                retry_after_secs: wait as u64,
            });
        }
    }
    // At most CODE_SENDS_PER_HOUR codes an hour per account, however many sign-ins ask.
    crate::identity::throttle::code_send(db, now, user_id, attempt.device).await?;
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
    let mut tx = db.pool.begin().await?;
    sqlx::query("update email_codes set used_at = $2, updated_at = $2 where attempt_id = $1 and used_at is null")
        .bind(attempt_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into email_codes (user_id, attempt_id, code_hash, expires_at, tries_left, used_at, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, null, $6, $6)",
    )
    .bind(user_id)
    .bind(attempt_id)
    .bind(hash(attempt_id, &code))
    .bind(now + VALID_SECS)
    .bind(TRIES)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let via = match to.via {
        Via::Email(_) => "email",
        Via::Sms { .. } => "sms",
    };
    let ev = Event::success(
        Actor::User(user_id),
        "auth.code_sent",
        origin,
        Some(email.to_owned()),
        serde_json::json!({ "via": via, "purpose": match to.purpose { Purpose::SignIn => "sign_in", Purpose::ConfirmPhone => "confirm_phone" } }),
    );
    audit::commit(tx, now, &ev).await?;
    let ip = origin.ip.clone().unwrap_or_default();
    let mailer = match to.via {
        Via::Email(mailer) => mailer,
        Via::Sms {
            config,
            to: number,
            from,
        } => {
            let body = match to.purpose {
                Purpose::SignIn => format!(
                    "Your Keyward sign-in code is {code}. It is valid for 10 minutes. If you did not ask for it, tell your administrator."
                ),
                Purpose::ConfirmPhone => format!(
                    "Your Keyward code to confirm this phone number is {code}. It is valid for 10 minutes."
                ),
            };
            // A random id: one derived from the code would let whoever sees it test
            // guesses of the code.
            let id = format!("code-{:016x}", rand::rngs::OsRng.gen::<u64>());
            let sms = crate::infra::sms::Sms {
                id: &id,
                to: number,
                from,
                body: &body,
            };
            return crate::infra::sms::send(config, now, &sms)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e.error, "an SMS code was not accepted by the gateway");
                    AppError::Conflict(
                        "The SMS could not be sent right now. Try again in a minute, or use another way to sign in.".into(),
                    )
                });
        }
    };
    let (subject, lead) = match to.purpose {
        Purpose::SignIn => ("Your Keyward sign-in code", "Your Keyward sign-in code is"),
        Purpose::ConfirmPhone => ("Your Keyward code", "Your Keyward code is"),
    };
    mailer
        .send(Mail {
            to: email,
            subject,
            text: format!(
                "{lead} {code}\n\nIt is valid for 10 minutes, for the sign-in that asked for it (from {ip}).\nIf that was not you, ignore this message and tell your administrator.\n"
            ),
            html: maud::html! {
                p { (lead) }
                p style="font-size:24px;font-weight:bold;letter-spacing:4px" { (code) }
                p { "It is valid for 10 minutes, for the sign-in that asked for it (from " (ip) ")." }
                p { "If that was not you, ignore this message and tell your administrator." }
            }
            .into_string(),
        })
        .await
        .map_err(AppError::internal)
}

/// True when `code` is this attempt's live code (and uses it up); a wrong code costs
/// one of the tries.
pub async fn check(
    db: &Db,
    now: i64,
    user_id: i64,
    attempt_id: &str,
    code: &str,
) -> Result<bool, AppError> {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let r = sqlx::query(
            "update email_codes set used_at = $4, updated_at = $4 \
             where attempt_id = $1 and user_id = $2 and code_hash = $3 and used_at is null and expires_at > $4 and tries_left > 0",
        )
        .bind(attempt_id)
        .bind(user_id)
        .bind(hash(attempt_id, code))
        .bind(now)
        .execute(&db.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(true);
        }
    }
    sqlx::query(
        "update email_codes set tries_left = tries_left - 1, updated_at = $3 \
         where attempt_id = $1 and user_id = $2 and used_at is null and tries_left > 0",
    )
    .bind(attempt_id)
    .bind(user_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(false)
}
