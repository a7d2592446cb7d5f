//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps) and recovery codes.
//!
//! Enrolment: a 160-bit seed from the OS CSPRNG is stored encrypted with the master key
//! (`core::infra::crypto`, bound to the user's id) and shown once as a QR code and as text; it
//! becomes active when the user confirms it with a code. Verification accepts the
//! current step and one step either side, and only a step later than the last accepted
//! one: the `update … where last_step < $step` decides atomically, so the same code
//! submitted twice at the same instant is accepted once. Ten single-use recovery codes
//! are made at confirmation, stored as SHA-256, shown once.

use crate::{
    access::Grant,
    audit::{self, Actor, Event},
    identity::notify::{self, AccountEvent},
    infra::crypto,
    infra::db::Db,
    state::Ctx,
};
use model::error::AppError;
use model::roles::Permission;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

pub const STEP_SECS: i64 = 30;
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "Keyward";

pub(crate) fn aad(user_id: i64) -> Vec<u8> {
    format!("keyward:totp:{user_id}").into_bytes()
}

fn totp(secret: &[u8], account: &str) -> Result<totp_rs::TOTP, AppError> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        STEP_SECS as u64,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(AppError::internal)
}

/// The code for a Unix time (tests and the enrolment check use it).
pub fn code_at(secret: &[u8], unix: i64) -> String {
    totp(secret, "x")
        .map(|t| t.generate(unix.max(0) as u64))
        .unwrap_or_default()
}

/// The time step `code` matches within ±1 step of `now`, compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now.div_euclid(STEP_SECS);
    let mut found = None;
    // Every candidate is computed and compared, whichever matches.
    for s in [step - 1, step, step + 1] {
        let expected = code_at(secret, s * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(s);
        }
    }
    found
}

/// What the enrolment page shows while a seed waits for its confirming code.
#[derive(Debug, Clone)]
pub struct Pending {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

fn pending_view(secret: &[u8], email: &str) -> Result<Pending, AppError> {
    let t = totp(secret, email)?;
    let url = t.get_url();
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(AppError::internal)?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(Pending {
        secret_base32: t.get_secret_base32(),
        otpauth_url: url,
        qr_svg: svg,
    })
}

async fn row(db: &Db, user_id: i64) -> Result<Option<(String, Option<i64>)>, AppError> {
    sqlx::query_as("select secret_enc, confirmed_at from user_totp where user_id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await
        .map_err(AppError::internal)
}

fn decrypt(key: &[u8; 32], user_id: i64, enc: &str) -> Result<Vec<u8>, AppError> {
    crypto::open(key, &aad(user_id), enc).map_err(AppError::internal)
}

/// True when the user has a confirmed authenticator.
/// When the user's authenticator was confirmed (None: none is set up).
pub async fn enrolled_at(db: &Db, user_id: i64) -> Result<Option<i64>, AppError> {
    Ok(row(db, user_id).await?.and_then(|(_, at)| at))
}

pub async fn is_enrolled(db: &Db, user_id: i64) -> Result<bool, AppError> {
    Ok(matches!(row(db, user_id).await?, Some((_, Some(_)))))
}

/// The seed waiting for confirmation, if any.
pub async fn pending(
    db: &Db,
    key: &[u8; 32],
    user_id: i64,
    email: &str,
) -> Result<Option<Pending>, AppError> {
    match row(db, user_id).await? {
        Some((enc, None)) => Ok(Some(pending_view(&decrypt(key, user_id, &enc)?, email)?)),
        _ => Ok(None),
    }
}

/// Starts (or restarts) enrolment with a fresh seed. Refused while an authenticator is
/// active: it must be reset first.
pub async fn start(
    db: &Db,
    key: &[u8; 32],
    now: i64,
    user_id: i64,
    email: &str,
) -> Result<Pending, AppError> {
    crate::infra::sealing::ensure_current(db, now, key).await?;
    let mut secret = [0u8; 20];
    rand::rngs::OsRng.fill(&mut secret);
    let enc = crypto::seal(key, &aad(user_id), &secret);
    let r = sqlx::query(
        "insert into user_totp (user_id, secret_enc, confirmed_at, last_step, created_at, updated_at) \
         values ($1, $2, null, -1, $3, $3) \
         on conflict (user_id) do update set secret_enc = excluded.secret_enc, last_step = -1, updated_at = excluded.updated_at \
         where user_totp.confirmed_at is null",
    )
    .bind(user_id)
    .bind(&enc)
    .bind(now)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "An authenticator app is already set up for this account.".into(),
        ));
    }
    pending_view(&secret, email)
}

fn hash_recovery(user_id: i64, code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(format!("{user_id}:{normal}").as_bytes()))
}

fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
}

/// Confirms the pending seed with a code; returns the recovery codes (shown once). The
/// account's owner (`email`) is told an authenticator was added.
pub async fn confirm(
    cx: &Ctx<'_>,
    user_id: i64,
    email: &str,
    code: &str,
) -> Result<Vec<String>, AppError> {
    let (db, key, now, origin) = (&cx.st.db, cx.st.master_key.expose(), cx.now, cx.origin);
    let Some((enc, None)) = row(db, user_id).await? else {
        return Err(AppError::validation(
            "code",
            "Start the set-up again: there is no authenticator waiting for confirmation.",
        ));
    };
    let secret = decrypt(key, user_id, &enc)?;
    let Some(step) = matching_step(&secret, code, now) else {
        return Err(AppError::validation(
            "code",
            "That code is not right. Enter the 6 digits your app shows now.",
        ));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update user_totp set confirmed_at = $2, last_step = $3, updated_at = $2 \
         where user_id = $1 and confirmed_at is null and secret_enc = $4",
    )
    .bind(user_id)
    .bind(now)
    .bind(step)
    .bind(&enc)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "The set-up changed meanwhile. Start it again.".into(),
        ));
    }
    sqlx::query("delete from recovery_codes where user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for c in &codes {
        sqlx::query(
            "insert into recovery_codes (user_id, code_hash, used_at, created_at, updated_at) values ($1, $2, null, $3, $3)",
        )
        .bind(user_id)
        .bind(hash_recovery(user_id, c))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let ev = Event::success(
        Actor::User(user_id),
        "totp.enrolled",
        origin,
        None,
        serde_json::json!({ "user_id": user_id }),
    );
    audit::commit(tx, now, &ev).await?;
    notify::account(
        &cx.st.mailer,
        email,
        AccountEvent::AuthenticatorAdded,
        origin,
        now,
    )
    .await;
    Ok(codes)
}

/// Checks a sign-in code: a TOTP code of a step later than the last accepted one
/// (atomically), or an unused recovery code (used up atomically).
pub async fn verify(
    db: &Db,
    key: &[u8; 32],
    now: i64,
    user_id: i64,
    code: &str,
) -> Result<Option<&'static str>, AppError> {
    let Some((enc, Some(_))) = row(db, user_id).await? else {
        return Ok(None);
    };
    let secret = decrypt(key, user_id, &enc)?;
    if let Some(step) = matching_step(&secret, code, now) {
        let r = sqlx::query(
            "update user_totp set last_step = $2, updated_at = $3 where user_id = $1 and last_step < $2",
        )
        .bind(user_id)
        .bind(step)
        .bind(now)
        .execute(&db.pool)
        .await?;
        return Ok((r.rows_affected() == 1).then_some("totp"));
    }
    let r = sqlx::query(
        "update recovery_codes set used_at = $3, updated_at = $3 where user_id = $1 and code_hash = $2 and used_at is null",
    )
    .bind(user_id)
    .bind(hash_recovery(user_id, code))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok((r.rows_affected() == 1).then_some("recovery_code"))
}

/// Unused recovery codes left.
pub async fn recovery_codes_left(db: &Db, user_id: i64) -> Result<i64, AppError> {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from recovery_codes where user_id = $1 and used_at is null",
    )
    .bind(user_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// An admin (`user.manage`, sudo checked by the caller) removes another user's second
/// factors (authenticator and recovery codes, and the phone for SMS codes, which may be
/// lost or taken over too); that user's sessions end. The rules of
/// `access::may_act_on_user` apply. Returns the user's email (for the notification).
pub async fn reset(cx: &Ctx<'_>, grant: &Grant<'_>, target_id: i64) -> Result<(), AppError> {
    let (db, now, origin) = (&cx.st.db, cx.now, cx.origin);
    let p = grant.ensure(Permission::UserManage)?;
    if p.user_id() == target_id {
        return Err(AppError::validation(
            "user",
            "Ask another administrator to reset your own second factor.",
        ));
    }
    let target = crate::identity::users::target_of(db, p, target_id, "second factor").await?;
    let phone = crate::identity::phone::confirmed(db, target_id).await?;
    if !is_enrolled(db, target_id).await? && phone.is_none() {
        return Err(AppError::validation(
            "user",
            "This user has no authenticator app or phone for SMS codes set up.",
        ));
    }
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "update users set phone = null, phone_confirmed_at = null, updated_at = $2 where id = $1",
    )
    .bind(target_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from user_totp where user_id = $1")
        .bind(target_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from recovery_codes where user_id = $1")
        .bind(target_id)
        .execute(&mut *tx)
        .await?;
    let ev = Event::success(
        Actor::User(p.user_id()),
        "totp.reset",
        origin,
        Some(target.email.clone()),
        serde_json::json!({ "user_id": target_id, "phone_removed": phone.is_some() }),
    );
    audit::commit(tx, now, &ev).await?;
    cx.st.sessions.delete_for_user(target_id).await?;
    let removed = AccountEvent::AuthenticatorRemoved;
    notify::account(&cx.st.mailer, &target.email, removed, origin, now).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector_and_skew() {
        // RFC 6238 appendix B, SHA-1, seed "12345678901234567890": T=59 → 94287082 (8
        // digits); the 6-digit code is its last six.
        let seed = b"12345678901234567890";
        assert_eq!(code_at(seed, 59), "287082");
        assert_eq!(code_at(seed, 1_111_111_109), "081804");
        let now = 1_111_111_109;
        let step = now / STEP_SECS;
        assert_eq!(matching_step(seed, "081804", now), Some(step));
        assert_eq!(matching_step(seed, " 081 804 ", now), Some(step));
        // One step either side, not two.
        let next = code_at(seed, now + STEP_SECS);
        assert_eq!(matching_step(seed, &next, now), Some(step + 1));
        let far = code_at(seed, now + 2 * STEP_SECS);
        assert_eq!(matching_step(seed, &far, now), None);
        assert_eq!(matching_step(seed, "12345", now), None);
        assert_eq!(matching_step(seed, "abcdef", now), None);
    }

    #[test]
    fn recovery_codes_are_long_and_normalised() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 14);
        assert_eq!(
            hash_recovery(1, &c),
            hash_recovery(1, &c.to_uppercase().replace('-', " "))
        );
        assert_ne!(hash_recovery(1, &c), hash_recovery(2, &c));
    }
}
