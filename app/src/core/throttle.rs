//! Sign-in throttling with growing delays that end on their own.
//!
//! Every password check (sign-in, and re-entry for sensitive actions) first counts an
//! attempt against three scopes, before argon2 runs:
//! - the account from this address: `throttle_account_attempts` free failures, then
//!   delays of 1, 2, 4 … seconds up to `throttle_max_delay_secs`;
//! - this address, any account: `throttle_ip_attempts` free failures, same delays;
//! - the account from anywhere: ten times the per-address allowance, with delays of at
//!   most a minute. This slows a guesser who spreads over many addresses, while the real
//!   user, from their own address, never waits more than a minute: an attacker can slow
//!   an account down but never lock its owner out.
//!
//! The attempt is counted *before* the password is checked (and cleared on success), so
//! a burst of parallel requests cannot slip past the limit. Scopes are stored as SHA-256
//! hashes (no emails or addresses in this table); failures are forgotten an hour after
//! the last one. A scope under delay answers `RateLimited` with the seconds to wait,
//! whatever the account: unknown, wrong password and disabled look the same.

use super::db::Db;
use crate::error::AppError;
use crate::settings::SecuritySettings;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Failures are forgotten this long after the last attempt.
const WINDOW_SECS: i64 = 3600;
/// The longest delay of the account-wide scope.
const ACCOUNT_WIDE_MAX_DELAY: i64 = 60;

struct Scope {
    key: String,
    free: i64,
    max_delay: i64,
}

fn scopes(s: &SecuritySettings, account: &str, ip: IpAddr) -> Vec<Scope> {
    let h = |text: String| hex::encode(Sha256::digest(text.as_bytes()));
    let max = i64::from(s.throttle_max_delay_secs);
    let per_account = i64::from(s.throttle_account_attempts);
    let mut v = vec![
        Scope {
            key: h(format!("account+ip\0{account}\0{ip}")),
            free: per_account,
            max_delay: max,
        },
        Scope {
            key: h(format!("account\0{account}")),
            free: per_account * 10,
            max_delay: max.min(ACCOUNT_WIDE_MAX_DELAY),
        },
        Scope {
            key: h(format!("ip\0{ip}")),
            free: i64::from(s.throttle_ip_attempts),
            max_delay: max,
        },
    ];
    // A fixed order, so two transactions never wait on each other's rows in a cycle.
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

/// 1, 2, 4 … seconds for the first, second, third … failure over the allowance.
fn delay(over: i64, max: i64) -> i64 {
    if over <= 0 {
        return 0;
    }
    let exp = (over - 1).min(30) as u32;
    (1i64 << exp).min(max)
}

/// Counts one attempt for `account` (the normalised email, or what was typed) from
/// `ip`. Refuses with the seconds to wait when any scope is under delay.
pub async fn attempt(
    db: &Db,
    s: &SecuritySettings,
    now: i64,
    account: &str,
    ip: IpAddr,
) -> Result<(), AppError> {
    let scopes = scopes(s, account, ip);
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    let mut rows = Vec::with_capacity(scopes.len());
    let mut wait = 0;
    for sc in &scopes {
        // Creates the row or touches it: either way this transaction now holds its lock.
        sqlx::query(
            "insert into sign_in_throttle (scope, failures, locked_until, last_attempt_at, created_at, updated_at) \
             values ($1, 0, 0, $2, $2, $2) on conflict (scope) do update set updated_at = excluded.updated_at",
        )
        .bind(&sc.key)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(AppError::internal)?;
        let (failures, locked_until, last): (i64, i64, i64) = sqlx::query_as(
            "select failures, locked_until, last_attempt_at from sign_in_throttle where scope = $1",
        )
        .bind(&sc.key)
        .fetch_one(&mut *tx)
        .await
        .map_err(AppError::internal)?;
        wait = wait.max(locked_until - now);
        rows.push((failures, last));
    }
    if wait > 0 {
        tx.commit().await.map_err(AppError::internal)?;
        return Err(AppError::RateLimited {
            retry_after_secs: wait as u64,
        });
    }
    for (sc, (failures, last)) in scopes.iter().zip(rows) {
        let failures = if now - last >= WINDOW_SECS {
            1
        } else {
            failures + 1
        };
        let d = delay(failures - sc.free, sc.max_delay);
        let locked_until = if d > 0 { now + d } else { 0 };
        sqlx::query(
            "update sign_in_throttle set failures = $2, locked_until = $3, last_attempt_at = $4, updated_at = $4 where scope = $1",
        )
        .bind(&sc.key)
        .bind(failures)
        .bind(locked_until)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(AppError::internal)?;
    }
    tx.commit().await.map_err(AppError::internal)
}

/// The attempt was right: forget the account's failures, and take this attempt back
/// from the address's count.
pub async fn succeeded(
    db: &Db,
    s: &SecuritySettings,
    account: &str,
    ip: IpAddr,
) -> Result<(), AppError> {
    let all = scopes(s, account, ip);
    let ip_key = hex::encode(Sha256::digest(format!("ip\0{ip}").as_bytes()));
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    for sc in &all {
        let sql = if sc.key == ip_key {
            "update sign_in_throttle set failures = case when failures > 0 then failures - 1 else 0 end where scope = $1"
        } else {
            "delete from sign_in_throttle where scope = $1"
        };
        sqlx::query(sql)
            .bind(&sc.key)
            .execute(&mut *tx)
            .await
            .map_err(AppError::internal)?;
    }
    tx.commit().await.map_err(AppError::internal)
}

/// Forgets rows whose last attempt is older than the window (run now and then).
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query(
            "delete from sign_in_throttle where last_attempt_at < $1 and locked_until < $2",
        )
        .bind(now - WINDOW_SECS)
        .bind(now)
        .execute(&db.pool)
        .await?
        .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::delay;

    #[test]
    fn delays_double_up_to_the_cap() {
        assert_eq!(delay(0, 900), 0);
        assert_eq!(delay(1, 900), 1);
        assert_eq!(delay(2, 900), 2);
        assert_eq!(delay(5, 900), 16);
        assert_eq!(delay(11, 900), 900);
        assert_eq!(delay(1_000, 900), 900);
    }
}
