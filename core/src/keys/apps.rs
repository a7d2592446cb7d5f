//! Apps: their IP allow-lists, SDK keys (one per environment) and SDK events.

use super::{
    dedup,
    format::{self, Environment, Visibility},
    join, name_of, split,
    verified::VerifiedKey,
};
use crate::{
    access::Grant,
    audit::{self, Event},
    infra::db::{Db, OnUnique as _},
    state::Ctx,
};
use ipnet::IpNet;
use model::error::AppError;
use model::keys::AppInfo;
use model::roles::Permission;

fn name_taken() -> AppError {
    AppError::validation("name", "An app with this name already exists.")
}

/// Every app's id and name (for forms that pick an app), by name.
pub async fn app_choices(db: &Db) -> Result<Vec<model::keys::AppChoice>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as("select id, name from apps order by name_key")
        .fetch_all(&db.pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| model::keys::AppChoice { id, name })
        .collect())
}

pub async fn list_apps(db: &Db) -> Result<Vec<AppInfo>, sqlx::Error> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("select id, name, networks from apps order by name_key")
            .fetch_all(&db.pool)
            .await?;
    let sdk: Vec<(i64, String, String)> = sqlx::query_as(
        "select app_id, environment, public_value from api_keys \
         where kind = 'sdk' and revoked_at is null and expires_at is null and public_value is not null \
         order by environment",
    )
    .fetch_all(&db.pool)
    .await?;
    let hooks: Vec<(i64, String)> = sqlx::query_as(
        "select app_id, url from webhook_endpoints where removed_at is null order by url",
    )
    .fetch_all(&db.pool)
    .await?;
    let subscribed = crate::messages::events::subscriptions(db).await?;
    let numbers: Vec<(i64, String)> =
        sqlx::query_as("select app_id, number from sender_numbers order by number")
            .fetch_all(&db.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, networks)| AppInfo {
            sender_numbers: numbers
                .iter()
                .filter(|(a, _)| *a == id)
                .map(|(_, n)| n.clone())
                .collect(),
            webhook_urls: hooks
                .iter()
                .filter(|(a, _)| *a == id)
                .map(|(_, u)| u.clone())
                .collect(),
            webhook_events: hooks
                .iter()
                .filter(|(a, _)| *a == id)
                .map(|(_, u)| {
                    let events = subscribed
                        .iter()
                        .filter(|(a, url, _)| *a == id && url == u)
                        .map(|(_, _, e)| e.clone())
                        .collect();
                    (u.clone(), events)
                })
                .collect(),
            id,
            name,
            networks: split(&networks),
            sdk_keys: sdk
                .iter()
                .filter(|(a, _, _)| *a == id)
                .map(|(_, env, v)| (env.clone(), v.clone()))
                .collect(),
        })
        .collect())
}

/// Inserts a fresh public SDK key for an app's environment (inside the caller's
/// transaction). The one it replaces is revoked, or with `grace_secs` keeps working
/// until then (client apps in users' hands update slowly): it expires, and is no longer
/// shown. A key already in its grace period keeps the earlier of its two deadlines.
async fn new_sdk_key(
    tx: &mut sqlx::AnyConnection,
    now: i64,
    by: i64,
    app_id: i64,
    env: Environment,
    grace_secs: i64,
) -> Result<String, AppError> {
    if grace_secs == 0 {
        sqlx::query(
            "update api_keys set revoked_at = $3, revoked_by = $4, revoke_reason = 'regenerated', updated_at = $3 \
             where app_id = $1 and environment = $2 and kind = 'sdk' and revoked_at is null",
        )
        .bind(app_id)
        .bind(env.as_str())
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "update api_keys set expires_at = case when expires_at is not null and expires_at < $3 \
             then expires_at else $3 end, updated_at = $4 \
             where app_id = $1 and environment = $2 and kind = 'sdk' and revoked_at is null",
        )
        .bind(app_id)
        .bind(env.as_str())
        .bind(now + grace_secs)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let value = format::generate(Visibility::Public, env);
    let key_id = format::new_key_id();
    sqlx::query(
        "insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, secret_hash, last4, public_value, networks, created_at, updated_at) \
         values ($1, 'sdk', $2, $3, null, $4, null, $5, $6, $7, '', $8, $8)",
    )
    .bind(&key_id)
    .bind(app_id)
    .bind(env.as_str())
    .bind(format!("SDK key ({})", env.as_str()))
    .bind(format::hash(&value))
    .bind(format::last4(&value))
    .bind(&value)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(key_id)
}

/// Replaces an app's public SDK key for one environment; the old one stops at once, or
/// keeps working for `grace_secs` (at most 7 days).
pub async fn regenerate_sdk_key(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    app_id: i64,
    env: Environment,
    grace_secs: i64,
) -> Result<(), AppError> {
    let (db, now, origin, cache) = (&cx.st.db, cx.now, cx.origin, &cx.st.keys);
    let p = grant.ensure(Permission::AppManage)?;
    super::check_grace("grace", grace_secs)?;
    let mut tx = db.pool.begin().await?;
    let app: Option<(String,)> = sqlx::query_as("select name from apps where id = $1")
        .bind(app_id)
        .fetch_optional(&mut *tx)
        .await?;
    let (name,) = app.ok_or(AppError::NotFound)?;
    let key_id = new_sdk_key(&mut tx, now, p.user_id(), app_id, env, grace_secs).await?;
    let ev = Event::success(
        p.actor(),
        "app.sdk_key_regenerated",
        origin,
        Some(name),
        serde_json::json!({ "app_id": app_id, "environment": env.as_str(), "key_id": key_id, "grace_seconds": grace_secs }),
    );
    audit::commit(tx, now, &ev).await?;
    cache.bump();
    Ok(())
}

/// Records an event sent by an SDK (or a server) for the key's app.
pub async fn record_event(
    st: &crate::state::Core,
    now: i64,
    from: std::net::IpAddr,
    key: &VerifiedKey,
    name: &str,
    properties: &serde_json::Value,
) -> Result<(), AppError> {
    // Before any work: an SDK key is public, so anyone may hold it.
    if let Err(secs) = st.event_limits.check(from, &key.key_id) {
        return Err(AppError::RateLimited {
            retry_after_secs: secs,
        });
    }
    let name = crate::infra::text::label("name", name, 100, "An event name")?;
    let name = name.as_str();
    if !properties.is_object() && !properties.is_null() {
        return Err(AppError::validation(
            "properties",
            "Properties are a JSON object.",
        ));
    }
    let props = properties.to_string();
    if props.len() > 4096 {
        return Err(AppError::validation(
            "properties",
            "Properties are at most 4096 bytes of JSON.",
        ));
    }
    sqlx::query(
        "insert into app_events (app_id, key_id, name, properties, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)",
    )
    .bind(key.app_id)
    .bind(&key.key_id)
    .bind(name)
    .bind(props)
    .bind(now)
    .execute(&st.db.pool)
    .await?;
    Ok(())
}

/// Deletes app events older than usage is kept (`usage::KEEP_SECS`, 90 days), so the
/// events a public key may write are bounded in time as well as in rate; returns how
/// many rows (`app_events_created_at_idx`).
pub async fn prune_events(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("delete from app_events where created_at < $1")
        .bind(now - super::usage::KEEP_SECS)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}

/// App events recorded per client address (an IPv6 address counted as its /64) and per
/// key. An SDK key ships inside every copy of an app, so anyone may send with it: one
/// address gets a small share (5 a second, bursts of 50), and all addresses together at
/// most 100 a second per key (bursts of 1,000): a flood from one place cannot take the
/// key's allowance from its real users, and what all of them may write is bounded (and
/// kept 90 days, `prune_events`).
pub struct EventLimits {
    by_address: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    by_key: governor::DefaultKeyedRateLimiter<String>,
}

/// Addresses (and keys) remembered before the idle ones are dropped.
const REMEMBERED: usize = 100_000;

impl Default for EventLimits {
    fn default() -> Self {
        let quota = |per_sec: u32, burst: u32| {
            governor::Quota::per_second(
                std::num::NonZeroU32::new(per_sec).unwrap_or(std::num::NonZeroU32::MIN),
            )
            .allow_burst(std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN))
        };
        Self {
            by_address: governor::RateLimiter::keyed(quota(5, 50)),
            by_key: governor::RateLimiter::keyed(quota(100, 1_000)),
        }
    }
}

impl std::fmt::Debug for EventLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("apps::EventLimits")
    }
}

impl EventLimits {
    /// `Err(seconds to wait)` when `ip`, or `key_id` from everywhere, is past its
    /// allowance.
    pub fn check(&self, ip: std::net::IpAddr, key_id: &str) -> Result<(), u64> {
        use governor::clock::Clock as _;
        let wait = |not_until: governor::NotUntil<governor::clock::QuantaInstant>| {
            not_until
                .wait_time_from(governor::clock::DefaultClock::default().now())
                .as_secs()
                .max(1)
        };
        if self.by_address.len() > REMEMBERED {
            self.by_address.retain_recent();
        }
        if self.by_key.len() > REMEMBERED {
            self.by_key.retain_recent();
        }
        self.by_address
            .check_key(&crate::keys::refusals::scope(ip))
            .map_err(wait)?;
        self.by_key.check_key(&key_id.to_owned()).map_err(wait)
    }
}

/// An app as a form or a request gives it.
pub struct AppInput<'a> {
    pub name: &'a str,
    /// The REST allow-list; empty: any address.
    pub networks: Vec<IpNet>,
}

pub async fn create_app(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    app: &AppInput<'_>,
) -> Result<i64, AppError> {
    let (db, now, origin, cache) = (&cx.st.db, cx.now, cx.origin, &cx.st.keys);
    let p = grant.ensure(Permission::AppManage)?;
    let name = name_of("name", app.name)?;
    let nets = dedup(&app.networks)?;
    let mut tx = db.pool.begin().await?;
    let res: Result<(i64,), _> = sqlx::query_as(
        "insert into apps (name, name_key, networks, created_by, created_at, updated_at) values ($1, $2, $3, $4, $5, $5) returning id",
    )
    .bind(&name)
    .bind(name.to_lowercase())
    .bind(join(&nets))
    .bind(p.user_id())
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let (id,) = res.on_unique(name_taken)?;
    // One public SDK key per environment from the start.
    for env in [Environment::Live, Environment::Test] {
        new_sdk_key(&mut tx, now, p.user_id(), id, env, 0).await?;
    }
    let ev = Event::success(
        p.actor(),
        "app.created",
        origin,
        Some(name),
        serde_json::json!({ "app_id": id, "networks": join(&nets) }),
    );
    audit::commit(tx, now, &ev).await?;
    cache.bump();
    Ok(id)
}

/// Renames an app and replaces its REST allow-list.
pub async fn update_app(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    id: i64,
    app: &AppInput<'_>,
) -> Result<(), AppError> {
    let (db, now, origin, cache) = (&cx.st.db, cx.now, cx.origin, &cx.st.keys);
    let p = grant.ensure(Permission::AppManage)?;
    let name = name_of("name", app.name)?;
    let nets = dedup(&app.networks)?;
    let mut tx = db.pool.begin().await?;
    let res = sqlx::query(
        "update apps set name = $2, name_key = $3, networks = $4, updated_at = $5 where id = $1",
    )
    .bind(id)
    .bind(&name)
    .bind(name.to_lowercase())
    .bind(join(&nets))
    .bind(now)
    .execute(&mut *tx)
    .await;
    if res.on_unique(name_taken)?.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    let ev = Event::success(
        p.actor(),
        "app.updated",
        origin,
        Some(name),
        serde_json::json!({ "app_id": id, "networks": join(&nets) }),
    );
    audit::commit(tx, now, &ev).await?;
    cache.bump();
    Ok(())
}
