//! Sign-in throttling with growing delays that end on their own.
//!
//! Every password check (sign-in, and re-entry for sensitive actions) first counts an
//! attempt against its scopes, before argon2 runs:
//! - the account from this address: `throttle_account_attempts` free failures, then
//!   delays of 1, 2, 4 … seconds up to `throttle_max_delay_secs`;
//! - this address, any account: `throttle_ip_attempts` free failures, same delays;
//! - the account from anywhere: ten times the per-address allowance, with delays of at
//!   most a minute, which slows a guesser who spreads over many addresses.
//!
//! Addresses are counted as IPv4 addresses or IPv6 /64 networks (one host usually
//! holds a whole /64, so single IPv6 addresses would give it 2^64 allowances).
//!
//! **An attacker cannot keep the owner out** (the OWASP "device cookie" pattern): a
//! browser that completed a sign-in to an account carries a signed device token for it
//! (`auth::ssr` issues and checks it). Its attempts count against that device alone,
//! never against the account-wide or address scopes an attacker can fill, so wrong
//! passwords from elsewhere never delay it; a device that fails gets delays of its own.
//!
//! **The second step** (TOTP, recovery or emailed code) has a counter of its own per
//! account, across sign-ins and addresses: a correct password does not clear it, only a
//! completed sign-in does. `SECOND_STEP_FREE` failures, then delays doubling up to an
//! hour, remembered for a day; the owner is emailed when it reaches the threshold.
//! Emailed codes are capped at `CODE_SENDS_PER_HOUR` per account.
//!
//! Attempts are counted *before* they are checked (and cleared on success), so a burst
//! of parallel requests cannot slip past the limit. Scopes are stored as SHA-256 hashes
//! (no emails or addresses in this table). A scope under delay answers `RateLimited`
//! with the seconds to wait, whatever the account: unknown, wrong password and disabled
//! look the same.

use crate::infra::db::Db;
use model::error::AppError;
use model::settings::SecuritySettings;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Failures are forgotten this long after the last attempt.
const WINDOW_SECS: i64 = 3600;
/// The longest delay of the account-wide scope.
const ACCOUNT_WIDE_MAX_DELAY: i64 = 60;
/// Wrong second-step codes an account gets before delays start (and its owner is told).
pub const SECOND_STEP_FREE: i64 = 5;
/// The longest delay between second-step attempts.
const SECOND_STEP_MAX_DELAY: i64 = 3600;
/// Second-step failures are remembered this long after the last one.
const SECOND_STEP_WINDOW_SECS: i64 = 24 * 3600;
/// Emailed (or texted) codes per account per hour.
pub const CODE_SENDS_PER_HOUR: i64 = 5;
/// Scope prefixes of the second-step and code-send counters (their windows differ).
const SECOND_STEP: &str = "2fa:";
const CODE_SEND: &str = "send:";

struct Scope {
    key: String,
    free: i64,
    max_delay: i64,
}

fn h(text: String) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// An address as throttling counts it: IPv4 as itself, IPv6 as its /64.
pub fn address_scope(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The scopes a password attempt counts against: a known device's own, else the
/// account from this address, the account from anywhere and this address.
fn scopes(s: &SecuritySettings, account: &str, ip: IpAddr, device: Option<&str>) -> Vec<Scope> {
    let max = i64::from(s.throttle_max_delay_secs);
    let per_account = i64::from(s.throttle_account_attempts);
    let addr = address_scope(ip);
    let mut v = match device {
        Some(d) => vec![Scope {
            key: h(format!("account+device\0{account}\0{d}")),
            free: per_account,
            max_delay: max,
        }],
        None => vec![
            Scope {
                key: h(format!("account+ip\0{account}\0{addr}")),
                free: per_account,
                max_delay: max,
            },
            Scope {
                key: h(format!("account\0{account}")),
                free: per_account * 10,
                max_delay: max.min(ACCOUNT_WIDE_MAX_DELAY),
            },
            Scope {
                key: ip_key(ip),
                free: i64::from(s.throttle_ip_attempts),
                max_delay: max,
            },
        ],
    };
    // A fixed order, so two transactions never wait on each other's rows in a cycle.
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

fn ip_key(ip: IpAddr) -> String {
    h(format!("ip\0{}", address_scope(ip)))
}

/// 1, 2, 4 … seconds for the first, second, third … failure over the allowance.
fn delay(over: i64, max: i64) -> i64 {
    if over <= 0 {
        return 0;
    }
    let exp = (over - 1).min(30) as u32;
    (1i64 << exp).min(max)
}

/// Creates a scope's row or touches it (either way the transaction now holds its lock)
/// and returns (failures, locked_until, last_attempt_at).
async fn lock_row(
    tx: &mut sqlx::AnyConnection,
    key: &str,
    now: i64,
) -> Result<(i64, i64, i64), AppError> {
    sqlx::query(
        "insert into sign_in_throttle (scope, failures, locked_until, last_attempt_at, created_at, updated_at) \
         values ($1, 0, 0, $2, $2, $2) on conflict (scope) do update set updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query_as(
        "select failures, locked_until, last_attempt_at from sign_in_throttle where scope = $1",
    )
    .bind(key)
    .fetch_one(&mut *tx)
    .await
    .map_err(AppError::internal)
}

async fn write_row(
    tx: &mut sqlx::AnyConnection,
    key: &str,
    failures: i64,
    locked_until: i64,
    at: i64,
) -> Result<(), AppError> {
    sqlx::query(
        "update sign_in_throttle set failures = $2, locked_until = $3, last_attempt_at = $4, updated_at = $4 where scope = $1",
    )
    .bind(key)
    .bind(failures)
    .bind(locked_until)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Counts one attempt for `account` (the normalised email, or what was typed) from
/// `ip`, or from the known browser `device` (its token's id). Refuses with the seconds
/// to wait when any scope is under delay.
pub async fn attempt(
    db: &Db,
    s: &SecuritySettings,
    now: i64,
    account: &str,
    ip: IpAddr,
    device: Option<&str>,
) -> Result<(), AppError> {
    let scopes = scopes(s, account, ip, device);
    let mut tx = db.pool.begin().await?;
    let mut rows = Vec::with_capacity(scopes.len());
    let mut wait = 0;
    for sc in &scopes {
        let (failures, locked_until, last) = lock_row(&mut tx, &sc.key, now).await?;
        wait = wait.max(locked_until - now);
        rows.push((failures, last));
    }
    if wait > 0 {
        tx.commit().await?;
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
        write_row(&mut tx, &sc.key, failures, locked_until, now).await?;
    }
    tx.commit().await.map_err(AppError::internal)
}

/// The attempt was right: forget the failures of the scopes it counted against, and
/// take this attempt back from the address's count. A known device clears only its own
/// scope: the account-wide failures were someone else's, and stay.
pub async fn succeeded(
    db: &Db,
    s: &SecuritySettings,
    account: &str,
    ip: IpAddr,
    device: Option<&str>,
) -> Result<(), AppError> {
    let all = scopes(s, account, ip, device);
    let ip_key = ip_key(ip);
    let mut tx = db.pool.begin().await?;
    for sc in &all {
        let sql = if sc.key == ip_key {
            "update sign_in_throttle set failures = case when failures > 0 then failures - 1 else 0 end where scope = $1"
        } else {
            "delete from sign_in_throttle where scope = $1"
        };
        sqlx::query(sql).bind(&sc.key).execute(&mut *tx).await?;
    }
    tx.commit().await.map_err(AppError::internal)
}

/// The second-step scope: the account's, or a known device's own (so someone who has
/// the password cannot lock the owner's browsers out by failing codes elsewhere).
fn second_step_key(user_id: i64, device: Option<&str>) -> String {
    let scope = match device {
        Some(d) => format!("second-step\0{user_id}\0{d}"),
        None => format!("second-step\0{user_id}"),
    };
    format!("{SECOND_STEP}{}", h(scope))
}

/// Counts one second-step attempt for the account (before the code is checked);
/// refuses with the seconds to wait while it is under delay. Returns the account's
/// failures including this attempt (so a wrong code's caller knows when the threshold
/// is reached).
pub async fn second_step_attempt(
    db: &Db,
    now: i64,
    user_id: i64,
    device: Option<&str>,
) -> Result<i64, AppError> {
    let key = second_step_key(user_id, device);
    let mut tx = db.pool.begin().await?;
    let (failures, locked_until, last) = lock_row(&mut tx, &key, now).await?;
    if locked_until > now {
        tx.commit().await?;
        return Err(AppError::RateLimited {
            retry_after_secs: (locked_until - now) as u64,
        });
    }
    let failures = if now - last >= SECOND_STEP_WINDOW_SECS {
        1
    } else {
        failures + 1
    };
    let d = delay(failures - SECOND_STEP_FREE, SECOND_STEP_MAX_DELAY);
    write_row(
        &mut tx,
        &key,
        failures,
        if d > 0 { now + d } else { 0 },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(failures)
}

/// A sign-in was completed: the second-step failures of the scope it counted against
/// are forgotten (a known device's own only: the account's were someone else's).
pub async fn second_step_succeeded(
    db: &Db,
    user_id: i64,
    device: Option<&str>,
) -> Result<(), AppError> {
    sqlx::query("delete from sign_in_throttle where scope = $1")
        .bind(second_step_key(user_id, device))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Counts one emailed (or texted) code for the account (or, from a known device, for
/// that device): at most `CODE_SENDS_PER_HOUR` an hour, else `RateLimited` until the
/// hour is over.
pub async fn code_send(
    db: &Db,
    now: i64,
    user_id: i64,
    device: Option<&str>,
) -> Result<(), AppError> {
    let scope = match device {
        Some(d) => format!("code-send\0{user_id}\0{d}"),
        None => format!("code-send\0{user_id}"),
    };
    let key = format!("{CODE_SEND}{}", h(scope));
    let mut tx = db.pool.begin().await?;
    // failures: codes sent in the hour that began at last_attempt_at.
    let (sent, _, started) = lock_row(&mut tx, &key, now).await?;
    let (sent, started) = if now - started >= WINDOW_SECS || sent == 0 {
        (0, now)
    } else {
        (sent, started)
    };
    if sent >= CODE_SENDS_PER_HOUR {
        tx.commit().await?;
        return Err(AppError::RateLimited {
            retry_after_secs: (started + WINDOW_SECS - now).max(1) as u64,
        });
    }
    write_row(&mut tx, &key, sent + 1, 0, started).await?;
    tx.commit().await.map_err(AppError::internal)
}

/// Forgets rows whose last attempt is older than their window (run now and then).
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "delete from sign_in_throttle where locked_until < $2 and \
         ((scope like '2fa:%' and last_attempt_at < $3) or (scope not like '2fa:%' and last_attempt_at < $1))",
    )
    .bind(now - WINDOW_SECS)
    .bind(now)
    .bind(now - SECOND_STEP_WINDOW_SECS)
    .execute(&db.pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::{address_scope, delay};

    #[test]
    fn ipv6_addresses_count_per_64() {
        let a = address_scope("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_scope("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let c = address_scope("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            address_scope("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1"
        );
        assert_ne!(
            address_scope("10.0.0.1".parse().unwrap()),
            address_scope("10.0.0.2".parse().unwrap())
        );
    }

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
