//! Leaked keys reported by anyone (`POST /api/v1/leaks`: a secret scanner, a person who
//! found one in a public repository).
//!
//! The report is answered the same whatever it held: each token is checked for its
//! format and checksum without database work, the checksum-valid secret ones are stored
//! as the SHA-256 a key is stored by (never the token), and the answer goes. What
//! matched is found afterwards by [`work`], which claims reported rows once across
//! instances, revokes every active key they name, audits `api_key.leaked` with the
//! reporter's address, and mails the key's owner and every Owner and Admin (a row is
//! leased while it is handled, and marked done after: a worker that stops mid-way
//! leaves it to the next). So neither
//! the answer nor its timing says whether a token was a live key.
//!
//! Public SDK keys (`kwpub_…`) are meant to be public: a report of one is ignored.
//! Reports are limited per address (an IPv6 address as its /64) and in size.

use crate::audit::{self, Actor, Event, Origin};
use crate::identity::notify::{self, AccountEvent};
use crate::infra::db::{Backend, Db};
use crate::keys::format::{self, Visibility};
use crate::state::Core;
use model::error::AppError;
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Tokens one report may carry.
pub const MAX_TOKENS: usize = 100;
/// Characters one token may have (a key has 46 to 49).
pub const MAX_TOKEN_CHARS: usize = 200;
/// Reported rows one claim takes.
const CLAIM: i64 = 50;

/// Reports per address: 10 at once, then one every 6 seconds.
pub struct Limits(governor::DefaultKeyedRateLimiter<IpAddr>);

impl Default for Limits {
    fn default() -> Self {
        let burst = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::with_period(std::time::Duration::from_secs(6))
            .map(|q| q.allow_burst(burst))
            .unwrap_or_else(|| governor::Quota::per_minute(NonZeroU32::MIN));
        Self(governor::RateLimiter::keyed(quota))
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("leaks::Limits")
    }
}

impl Limits {
    /// `Err(seconds to wait)` when `ip` is past its allowance.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        use governor::clock::Clock as _;
        self.0
            .check_key(&crate::keys::refusals::scope(ip))
            .map_err(|not_until| {
                not_until
                    .wait_time_from(governor::clock::DefaultClock::default().now())
                    .as_secs()
                    .max(1)
            })
    }
}

/// Takes a report: checks its size, keeps the hash of each distinct checksum-valid
/// secret token, and wakes the worker. Returns how many tokens the report held (what
/// the answer says, whatever matched).
pub async fn report(
    st: &Core,
    now: i64,
    reporter: IpAddr,
    tokens: &[String],
) -> Result<usize, AppError> {
    if let Err(secs) = st.leak_limits.check(reporter) {
        return Err(AppError::RateLimited {
            retry_after_secs: secs,
        });
    }
    if tokens.is_empty() || tokens.len() > MAX_TOKENS {
        return Err(AppError::validation(
            "tokens",
            format!("Send 1 to {MAX_TOKENS} tokens."),
        ));
    }
    if tokens.iter().any(|t| t.chars().count() > MAX_TOKEN_CHARS) {
        return Err(AppError::validation(
            "tokens",
            format!("A token has at most {MAX_TOKEN_CHARS} characters."),
        ));
    }
    let mut hashes: Vec<String> = tokens
        .iter()
        .map(|t| t.trim())
        .filter(|t| matches!(format::parse(t), Some((Visibility::Secret, _))))
        .map(format::hash)
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    if !hashes.is_empty() {
        let mut tx = st.db.pool.begin().await?;
        for h in &hashes {
            sqlx::query(
                "insert into leak_reports (token_hash, reporter_ip, done_at, created_at, updated_at) \
                 values ($1, $2, null, $3, $3)",
            )
            .bind(h)
            .bind(reporter.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        st.leaks.notify_one();
    }
    Ok(tokens.len())
}

/// A claimed row is the worker's for this long; then it is due again (its worker died).
const LEASE_SECS: i64 = 120;

const CLAIM_SQLITE: &str = "update leak_reports set claimed_until = $3, updated_at = $1 \
     where id in (select id from leak_reports where done_at is null \
       and (claimed_until is null or claimed_until <= $1) order by id limit $2) \
     returning id, token_hash, reporter_ip";

const CLAIM_POSTGRES: &str = "update leak_reports set claimed_until = $3, updated_at = $1 \
     where id in (select id from leak_reports where done_at is null \
       and (claimed_until is null or claimed_until <= $1) order by id limit $2 \
       for update skip locked) \
     returning id, token_hash, reporter_ip";

/// Handles every reported row not yet handled; returns how many keys it revoked.
pub async fn work(st: &Core) -> Result<usize, AppError> {
    let mut revoked = 0;
    loop {
        let now = st.clock.now();
        let sql = match st.db.backend {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(sql)
            .bind(now)
            .bind(CLAIM)
            .bind(now + LEASE_SECS)
            .fetch_all(&st.db.pool)
            .await?;
        if rows.is_empty() {
            return Ok(revoked);
        }
        for (id, hash, reporter) in rows {
            if revoke_leaked(st, now, &hash, reporter).await? {
                revoked += 1;
            }
            sqlx::query("update leak_reports set done_at = $2, updated_at = $2 where id = $1")
                .bind(id)
                .bind(now)
                .execute(&st.db.pool)
                .await?;
        }
    }
}

/// Revokes (or, with Settings > Keys' leak action "flag", flags) the active key stored
/// as `hash`, if there is one; audits and mails.
async fn revoke_leaked(
    st: &Core,
    now: i64,
    hash: &str,
    reporter: Option<String>,
) -> Result<bool, AppError> {
    let db = &st.db;
    let key: Option<(String, String, Option<i64>)> = sqlx::query_as(
        "select key_id, name, owner_id from api_keys where secret_hash = $1 and kind <> 'sdk' \
         and revoked_at is null and (expires_at is null or expires_at > $2)",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    let Some((key_id, name, owner_id)) = key else {
        return Ok(false);
    };
    let origin = Origin {
        ip: reporter,
        user_agent: None,
    };
    let flag = crate::settings::keys(db).await?.leak_action == "flag";
    let mut tx = db.pool.begin().await?;
    let r = if flag {
        sqlx::query(
            "update api_keys set leak_flagged_at = $2, updated_at = $2 \
             where key_id = $1 and revoked_at is null and leak_flagged_at is null",
        )
        .bind(&key_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query(
            "update api_keys set revoked_at = $2, revoked_by = null, revoke_reason = $3, secret_sealed = null, updated_at = $2 \
             where key_id = $1 and revoked_at is null",
        )
        .bind(&key_id)
        .bind(now)
        .bind("Reported as leaked")
        .execute(&mut *tx)
        .await?
    };
    if r.rows_affected() != 1 {
        // Revoked (or flagged) meanwhile: by someone, or by this report's twin on
        // another instance.
        return Ok(false);
    }
    let action = if flag { "flagged" } else { "revoked" };
    let ev = Event::success(
        Actor::System,
        "api_key.leaked",
        &origin,
        Some(key_id.clone()),
        serde_json::json!({ "action": action, "reported_from": origin.ip }),
    );
    let extra = serde_json::json!({ "action": action });
    crate::messages::events::key_event(&mut tx, now, "key.leaked", &key_id, extra).await?;
    audit::commit(tx, now, &ev).await?;
    st.keys.bump();
    tracing::warn!(key_id = %key_id, action, "an API key was reported as leaked");
    notify_people(st, now, &origin, &key_id, &name, owner_id, !flag).await?;
    Ok(true)
}

/// Mails the key's owner and every active Owner and Admin (once each).
async fn notify_people(
    st: &Core,
    now: i64,
    origin: &Origin,
    key_id: &str,
    name: &str,
    owner_id: Option<i64>,
    revoked: bool,
) -> Result<(), AppError> {
    let db = &st.db;
    let owner: Option<(String,)> = match owner_id {
        Some(id) => {
            sqlx::query_as("select email from users where id = $1 and status = 'active'")
                .bind(id)
                .fetch_optional(&db.pool)
                .await?
        }
        None => None,
    };
    let owner = owner.map(|(e,)| e);
    let make = |whose: Option<String>| AccountEvent::KeyLeaked {
        key_id: key_id.to_owned(),
        name: name.to_owned(),
        owner: whose,
        revoked,
    };
    let to = notify::Recipients {
        owner: owner.as_deref(),
        whose: "a user no longer active",
        admins: true,
    };
    notify::owner_and_admins(st, now, origin, to, make).await?;
    Ok(())
}

/// Handled reports are kept this long (what was reported when, for an investigation),
/// then pruned: made-up tokens with valid checksums cost nothing to make, so the table
/// must not grow for ever.
const KEEP_SECS: i64 = 30 * 86_400;

/// Deletes reports handled more than [`KEEP_SECS`] ago; returns how many.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("delete from leak_reports where done_at is not null and done_at < $1")
            .bind(now - KEEP_SECS)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// The worker: handles reports as they arrive (woken by [`report`]) and every 10
/// seconds (another instance's reports, and rows left by a stopped process).
pub async fn worker(st: Core) {
    loop {
        match work(&st).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(revoked = n, "leak reports handled"),
            Err(e) => tracing::warn!(error = %e, "handling leak reports failed"),
        }
        tokio::select! {
            _ = st.leaks.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
        }
    }
}
