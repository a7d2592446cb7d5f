//! Apps and API keys: the domain code both doors call (the panel's `/apps` and `/keys`
//! server functions and the REST API's `/api/v1/keys`).
//!
//! Rules: a key's role never holds more than its creator's; a key is visible to its
//! owner with `api.key.view` and to everyone with `api.key.view_all`, and only a visible
//! key can be changed; the secret exists only in the value returned by `create` and
//! `roll` (the database keeps its SHA-256 and last four characters); revoking is
//! immediate and final; rolling makes a new key with every setting of the old one, and
//! the old one keeps working until the grace deadline. Every change is audited, and
//! every change bumps the verification cache's generation (`KeyCache`).

use super::{
    access::{role_permissions, Grant, Principal},
    audit::{self, Event, Origin},
    config::parse_cidr,
    db::{is_unique_violation, Db},
    key_format::{self, Environment, Visibility},
};
use ipnet::IpNet;
use model::error::AppError;
use model::keys::{AppInfo, KeyFilter, KeyInfo, KeyPage, DEFAULT_PAGE, MAX_PAGE};
use model::roles::{BuiltinRole, Permission};
use std::sync::Arc;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_REASON_CHARS: usize = 500;

fn name_of(field: &str, input: &str) -> Result<String, AppError> {
    super::text::label(field, input, MAX_NAME_CHARS, "A name")
}

/// Parses an allow-list typed one entry per line (or comma-separated): each an IPv4 or
/// IPv6 address or CIDR; the error names the offending line.
pub fn parse_networks(field: &str, text: &str) -> Result<Vec<IpNet>, AppError> {
    let mut out: Vec<IpNet> = Vec::new();
    for (i, line) in text.split(['\n', ',']).enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let net = parse_cidr(line).ok_or_else(|| {
            AppError::validation(
                field,
                format!(
                    "Entry {} ({line}) is not an IP address or a range such as 10.0.0.0/8 or 2001:db8::/32.",
                    i + 1
                ),
            )
        })?;
        if !out.contains(&net) {
            out.push(net);
        }
        if out.len() > 500 {
            return Err(AppError::validation(field, "At most 500 entries."));
        }
    }
    Ok(out)
}

fn join(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn split(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---- apps ----

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
         where kind = 'sdk' and revoked_at is null and public_value is not null order by environment",
    )
    .fetch_all(&db.pool)
    .await?;
    let hooks: Vec<(i64, String)> = sqlx::query_as(
        "select app_id, url from webhook_endpoints where removed_at is null order by url",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, networks)| AppInfo {
            webhook_urls: hooks
                .iter()
                .filter(|(a, _)| *a == id)
                .map(|(_, u)| u.clone())
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
/// transaction), revoking the one it replaces.
async fn new_sdk_key(
    tx: &mut sqlx::AnyConnection,
    now: i64,
    by: i64,
    app_id: i64,
    env: Environment,
) -> Result<String, AppError> {
    sqlx::query(
        "update api_keys set revoked_at = $3, revoked_by = $4, revoke_reason = 'regenerated', updated_at = $3 \
         where app_id = $1 and environment = $2 and kind = 'sdk' and revoked_at is null",
    )
    .bind(app_id)
    .bind(env.as_str())
    .bind(now)
    .bind(by)
    .execute(&mut *tx)
    .await
    .map_err(AppError::internal)?;
    let value = key_format::generate(Visibility::Public, env);
    let key_id = key_format::new_key_id();
    sqlx::query(
        "insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, secret_hash, last4, public_value, networks, created_at, updated_at) \
         values ($1, 'sdk', $2, $3, null, $4, null, $5, $6, $7, '', $8, $8)",
    )
    .bind(&key_id)
    .bind(app_id)
    .bind(env.as_str())
    .bind(format!("SDK key ({})", env.as_str()))
    .bind(key_format::hash(&value))
    .bind(key_format::last4(&value))
    .bind(&value)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(AppError::internal)?;
    Ok(key_id)
}

/// Replaces an app's public SDK key for one environment (the old one stops at once).
pub async fn regenerate_sdk_key(
    db: &Db,
    cache: &KeyCache,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    app_id: i64,
    environment: &str,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let env = Environment::parse(environment)
        .ok_or_else(|| AppError::validation("environment", "Choose live or test."))?;
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    let app: Option<(String,)> = sqlx::query_as("select name from apps where id = $1")
        .bind(app_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(AppError::internal)?;
    let (name,) = app.ok_or(AppError::NotFound)?;
    let key_id = new_sdk_key(&mut tx, now, p.user_id(), app_id, env).await?;
    let ev = Event::success(
        p.actor(),
        "app.sdk_key_regenerated",
        origin,
        Some(name),
        serde_json::json!({ "app_id": app_id, "environment": env.as_str(), "key_id": key_id }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)?;
    cache.bump();
    Ok(())
}

/// Records an event sent by an SDK (or a server) for the key's app.
pub async fn record_event(
    db: &Db,
    now: i64,
    key: &VerifiedKey,
    name: &str,
    properties: &serde_json::Value,
) -> Result<(), AppError> {
    let name = super::text::label("name", name, 100, "An event name")?;
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
    .execute(&db.pool)
    .await
    .map_err(AppError::internal)?;
    Ok(())
}

pub async fn create_app(
    db: &Db,
    cache: &KeyCache,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    name: &str,
    networks: &str,
) -> Result<i64, AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let name = name_of("name", name)?;
    let nets = parse_networks("networks", networks)?;
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
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
    let id = match res {
        Ok((id,)) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(AppError::validation(
                "name",
                "An app with this name already exists.",
            ))
        }
        Err(e) => return Err(AppError::internal(e)),
    };
    // One public SDK key per environment from the start.
    for env in [Environment::Live, Environment::Test] {
        new_sdk_key(&mut tx, now, p.user_id(), id, env).await?;
    }
    let ev = Event::success(
        p.actor(),
        "app.created",
        origin,
        Some(name),
        serde_json::json!({ "app_id": id, "networks": join(&nets) }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)?;
    cache.bump();
    Ok(id)
}

/// Renames an app and replaces its REST allow-list.
#[allow(clippy::too_many_arguments)]
pub async fn update_app(
    db: &Db,
    cache: &KeyCache,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    id: i64,
    name: &str,
    networks: &str,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let name = name_of("name", name)?;
    let nets = parse_networks("networks", networks)?;
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
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
    match res {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => return Err(AppError::NotFound),
        Err(e) if is_unique_violation(&e) => {
            return Err(AppError::validation(
                "name",
                "An app with this name already exists.",
            ))
        }
        Err(e) => return Err(AppError::internal(e)),
    }
    let ev = Event::success(
        p.actor(),
        "app.updated",
        origin,
        Some(name),
        serde_json::json!({ "app_id": id, "networks": join(&nets) }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)?;
    cache.bump();
    Ok(())
}

// ---- keys ----

const KEY_SELECT: &str = "select k.key_id, k.kind, k.app_id, a.name as app, k.environment, k.owner_id, u.email as owner, k.name, \
     k.role_id, r.name as role, k.last4, k.networks, k.expires_at, k.revoked_at, k.revoke_reason, k.rolled_from, \
     k.replaced_by, k.created_at, k.last_used_at, k.last_used_ip \
     from api_keys k join apps a on a.id = k.app_id left join users u on u.id = k.owner_id \
     left join roles r on r.id = k.role_id";

#[derive(sqlx::FromRow)]
struct KeyRow {
    key_id: String,
    kind: String,
    app_id: i64,
    app: String,
    environment: String,
    owner_id: Option<i64>,
    owner: Option<String>,
    name: String,
    role_id: Option<i64>,
    role: Option<String>,
    last4: String,
    networks: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
    rolled_from: Option<String>,
    replaced_by: Option<String>,
    created_at: i64,
    last_used_at: Option<i64>,
    last_used_ip: Option<String>,
}

fn status(now: i64, revoked_at: Option<i64>, expires_at: Option<i64>) -> &'static str {
    if revoked_at.is_some() {
        "revoked"
    } else if expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn key_info(now: i64, r: KeyRow) -> KeyInfo {
    KeyInfo {
        status: status(now, r.revoked_at, r.expires_at).to_owned(),
        key_id: r.key_id,
        kind: r.kind,
        app_id: r.app_id,
        app: r.app,
        environment: r.environment,
        owner_id: r.owner_id,
        owner: r.owner,
        name: r.name,
        role_id: r.role_id,
        role: r.role,
        last4: r.last4,
        networks: split(&r.networks),
        expires_at: r.expires_at,
        created_at: r.created_at,
        last_used_at: r.last_used_at,
        last_used_ip: r.last_used_ip,
        revoked_at: r.revoked_at,
        revoke_reason: r.revoke_reason,
        rolled_from: r.rolled_from,
        replaced_by: r.replaced_by,
    }
}

/// The keys `p` may see (everyone's with `api.key.view_all`, else their own) that match
/// `f`, newest first, one page at a time: at most `f.limit` (1..=[`MAX_PAGE`], default
/// [`DEFAULT_PAGE`]) after the key `f.after`, and the key to continue after when there
/// are more.
pub async fn list_keys(
    db: &Db,
    now: i64,
    p: &Principal,
    f: &KeyFilter,
) -> Result<KeyPage, AppError> {
    if !p.has(Permission::ApiKeyView) {
        return Err(AppError::Forbidden);
    }
    // Clauses with numbered parameters, bound in order below.
    enum Arg {
        Int(i64),
        Text(String),
    }
    let mut args = Vec::new();
    let mut sql = format!("{KEY_SELECT} where k.kind = 'rest'");
    let mut push = |clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if !p.has(Permission::ApiKeyViewAll) {
        push(" and k.owner_id = ?", Arg::Int(p.user_id()));
    }
    if let Some(app) = f.app_id {
        push(" and k.app_id = ?", Arg::Int(app));
    }
    if let Some(env) = f.environment.as_deref().filter(|e| !e.is_empty()) {
        if !["live", "test"].contains(&env) {
            return Err(AppError::validation("environment", "Choose live or test."));
        }
        push(" and k.environment = ?", Arg::Text(env.to_owned()));
    }
    if let Some(after) = f.after.as_deref().filter(|a| !a.is_empty()) {
        if !key_format::is_key_id(after) {
            return Err(AppError::validation("after", "Not a key ID."));
        }
        push(
            " and k.id < coalesce((select id from api_keys where key_id = ?), 0)",
            Arg::Text(after.to_owned()),
        );
    }
    match f.status.as_deref().unwrap_or_default() {
        "" => {}
        "active" => push(
            " and k.revoked_at is null and (k.expires_at is null or k.expires_at > ?)",
            Arg::Int(now),
        ),
        "revoked" => sql.push_str(" and k.revoked_at is not null"),
        "expired" => push(
            " and k.revoked_at is null and k.expires_at <= ?",
            Arg::Int(now),
        ),
        _ => {
            return Err(AppError::validation(
                "status",
                "Choose active, revoked or expired.",
            ))
        }
    }
    let limit = f.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("Ask for 1 to {MAX_PAGE} keys at a time."),
        ));
    }
    // The page and one more row, to know whether there is a next page.
    args.push(Arg::Int(limit + 1));
    sql.push_str(&format!(" order by k.id desc limit ${}", args.len()));
    let mut q = sqlx::query_as::<_, KeyRow>(&sql);
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(i),
            Arg::Text(t) => q.bind(t),
        };
    }
    let mut rows = q.fetch_all(&db.pool).await.map_err(AppError::internal)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let keys: Vec<KeyInfo> = rows.into_iter().map(|r| key_info(now, r)).collect();
    let next = more
        .then(|| keys.last().map(|k| k.key_id.clone()))
        .flatten();
    Ok(KeyPage { keys, next })
}

/// The overview's key panels: `p`'s own active keys (newest first, at most `limit`,
/// with their total), and the active keys `p` may see that expire before `soon`
/// (soonest first, at most `limit`). Both are bounded queries, however many keys exist.
pub async fn overview(
    db: &Db,
    now: i64,
    soon: i64,
    p: &Principal,
    limit: i64,
) -> Result<(Vec<KeyInfo>, i64, Vec<KeyInfo>), AppError> {
    if !p.has(Permission::ApiKeyView) {
        return Err(AppError::Forbidden);
    }
    let active =
        "k.kind = 'rest' and k.revoked_at is null and (k.expires_at is null or k.expires_at > $2)";
    let mine: Vec<KeyRow> = sqlx::query_as(&format!(
        "{KEY_SELECT} where k.owner_id = $1 and {active} order by k.created_at desc, k.id desc limit $3"
    ))
    .bind(p.user_id())
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
    .map_err(AppError::internal)?;
    let (mine_total,): (i64,) = sqlx::query_as(&format!(
        "select count(*) from api_keys k where k.owner_id = $1 and {active}"
    ))
    .bind(p.user_id())
    .bind(now)
    .fetch_one(&db.pool)
    .await
    .map_err(AppError::internal)?;
    // Everyone's with api.key.view_all (-1 matches no owner: ids start at 1).
    let owner = if p.has(Permission::ApiKeyViewAll) {
        -1
    } else {
        p.user_id()
    };
    let expiring: Vec<KeyRow> = sqlx::query_as(&format!(
        "{KEY_SELECT} where ($1 = -1 or k.owner_id = $1) and {active} and k.expires_at <= $3 \
         order by k.expires_at, k.id limit $4"
    ))
    .bind(owner)
    .bind(now)
    .bind(soon)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
    .map_err(AppError::internal)?;
    let info = |rows: Vec<KeyRow>| rows.into_iter().map(|r| key_info(now, r)).collect();
    Ok((info(mine), mine_total, info(expiring)))
}

/// A key `p` may see, or NotFound (a key one cannot see does not exist for one).
pub async fn visible_key(
    db: &Db,
    now: i64,
    p: &Principal,
    key_id: &str,
) -> Result<KeyInfo, AppError> {
    if !key_format::is_key_id(key_id) {
        return Err(AppError::NotFound);
    }
    let row: Option<KeyRow> = sqlx::query_as(&format!(
        "{KEY_SELECT} where k.key_id = $1 and k.kind = 'rest'"
    ))
    .bind(key_id)
    .fetch_optional(&db.pool)
    .await
    .map_err(AppError::internal)?;
    let key = row.map(|r| key_info(now, r)).ok_or(AppError::NotFound)?;
    if super::access::may_view_key(p, key.owner_id) {
        Ok(key)
    } else {
        Err(AppError::NotFound)
    }
}

/// The role a user holds now and its permissions (`NotFound` for no such user).
async fn owner_role(
    db: &Db,
    owner_id: i64,
) -> Result<(i64, std::collections::BTreeSet<Permission>), AppError> {
    let row: Option<(i64,)> = sqlx::query_as("select role_id from users where id = $1")
        .bind(owner_id)
        .fetch_optional(&db.pool)
        .await
        .map_err(AppError::internal)?;
    let role = row.ok_or(AppError::NotFound)?.0;
    let perms = role_permissions(db, role)
        .await
        .map_err(AppError::internal)?;
    Ok((role, perms))
}

/// Refuses a change to someone else's key when they hold more than the actor
/// (`access::may_act_on_key`).
async fn check_key_owner(db: &Db, actor: &Principal, key: &KeyInfo) -> Result<(), AppError> {
    let Some(owner) = key.owner_id.filter(|o| *o != actor.user_id()) else {
        return Ok(());
    };
    let (role, perms) = owner_role(db, owner).await?;
    super::access::may_act_on_key(actor, key.owner_id, role, &perms)
}

/// Refuses a key role above what the person setting it holds or above what the key's
/// owner holds now (`access::may_set_key_role`).
async fn check_key_role(
    db: &Db,
    actor: &Principal,
    owner_id: i64,
    role_id: i64,
) -> Result<(), AppError> {
    let Some((_, perms)) = super::roles::find(db, role_id)
        .await
        .map_err(AppError::internal)?
    else {
        return Err(AppError::validation(
            "role_id",
            "Choose a role that exists.",
        ));
    };
    let (owner_role, owner_perms) = owner_role(db, owner_id).await?;
    super::access::may_set_key_role(actor, owner_role, &owner_perms, role_id, &perms)
}

pub struct NewKey<'a> {
    pub name: &'a str,
    pub app_id: i64,
    pub environment: &'a str,
    pub role_id: i64,
    /// Unix seconds; None: never.
    pub expires_at: Option<i64>,
    pub networks: &'a str,
}

/// Creates a REST key owned by the acting user; returns it and its secret (the only
/// time the secret exists outside the caller's hands).
pub async fn create_key(
    db: &Db,
    cache: &KeyCache,
    mailer: &super::mail::Mailer,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    k: &NewKey<'_>,
) -> Result<(KeyInfo, String), AppError> {
    let p = grant.ensure(Permission::ApiKeyCreate)?;
    let name = name_of("name", k.name)?;
    let env = Environment::parse(k.environment)
        .ok_or_else(|| AppError::validation("environment", "Choose live or test."))?;
    let nets = parse_networks("networks", k.networks)?;
    if let Some(e) = k.expires_at {
        if e <= now {
            return Err(AppError::validation(
                "expires_at",
                "The expiry must be in the future.",
            ));
        }
    }
    check_key_role(db, p, p.user_id(), k.role_id).await?;
    let limits = super::settings::keys(db)
        .await
        .map_err(AppError::internal)?;
    if limits.max_expiry_days > 0 {
        let latest = now + i64::from(limits.max_expiry_days) * 86_400;
        if k.expires_at.is_none_or(|e| e > latest) {
            return Err(AppError::validation(
                "expires_at",
                format!(
                    "Keys must expire within {} days (Settings > Keys).",
                    limits.max_expiry_days
                ),
            ));
        }
    }
    let app: Option<(i64,)> = sqlx::query_as("select id from apps where id = $1")
        .bind(k.app_id)
        .fetch_optional(&db.pool)
        .await
        .map_err(AppError::internal)?;
    if app.is_none() {
        return Err(AppError::validation("app_id", "Choose an app that exists."));
    }
    let secret = key_format::generate(Visibility::Secret, env);
    let key_id = key_format::new_key_id();
    insert_key(
        db,
        now,
        p,
        origin,
        &key_id,
        &secret,
        &name,
        k.app_id,
        env,
        k.role_id,
        &nets,
        k.expires_at,
        None,
        "api_key.created",
        Some(limits.max_active_per_user_per_app),
    )
    .await?;
    cache.bump();
    let key = visible_key(db, now, p, &key_id).await?;
    if let Some(owner) = &key.owner {
        super::notify::account(
            mailer,
            owner,
            super::notify::AccountEvent::KeyCreated {
                key_id: key.key_id.clone(),
                name: key.name.clone(),
            },
            origin,
            now,
        )
        .await;
    }
    Ok((key, secret))
}

#[allow(clippy::too_many_arguments)]
async fn insert_key(
    db: &Db,
    now: i64,
    p: &Principal,
    origin: &Origin,
    key_id: &str,
    secret: &str,
    name: &str,
    app_id: i64,
    env: Environment,
    role_id: i64,
    nets: &[IpNet],
    expires_at: Option<i64>,
    rolled_from: Option<(&str, i64)>,
    action: &str,
    active_limit: Option<u32>,
) -> Result<(), AppError> {
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    if let Some(limit) = active_limit {
        // The app's row is written first: concurrent creations for it take turns, so
        // the count below cannot be raced past the limit.
        sqlx::query("update apps set updated_at = updated_at where id = $1")
            .bind(app_id)
            .execute(&mut *tx)
            .await
            .map_err(AppError::internal)?;
        // Keys still in a roll's grace period count: rolling again and again must not
        // multiply working keys past the limit. The key being rolled itself does not
        // (its replacement takes its place).
        let (active,): (i64,) = sqlx::query_as(
            "select count(*) from api_keys where kind = 'rest' and owner_id = $1 and app_id = $2 \
             and revoked_at is null and (expires_at is null or expires_at > $3) and key_id <> $4",
        )
        .bind(p.user_id())
        .bind(app_id)
        .bind(now)
        .bind(rolled_from.map_or("", |r| r.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(AppError::internal)?;
        if active >= i64::from(limit) {
            return Err(AppError::Conflict(format!(
                "You already have {active} active keys for this app; the limit is {limit}. Revoke a key you no longer use to free a slot (keys still in a roll's grace period count)."
            )));
        }
    }
    if let Some((old, deadline)) = rolled_from {
        // The old key ends at the grace deadline (or earlier, if it was to end sooner).
        let r = sqlx::query(
            "update api_keys set replaced_by = $2, expires_at = case when expires_at is not null and expires_at < $3 then expires_at else $3 end, updated_at = $4 \
             where key_id = $1 and revoked_at is null and replaced_by is null",
        )
        .bind(old)
        .bind(key_id)
        .bind(deadline)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(AppError::internal)?;
        if r.rows_affected() != 1 {
            return Err(AppError::Conflict(
                "This key was already rolled or revoked.".into(),
            ));
        }
    }
    sqlx::query(
        "insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, secret_hash, last4, networks, expires_at, rolled_from, created_at, updated_at) \
         values ($1, 'rest', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(key_id)
    .bind(app_id)
    .bind(env.as_str())
    .bind(p.user_id())
    .bind(name)
    .bind(role_id)
    .bind(key_format::hash(secret))
    .bind(key_format::last4(secret))
    .bind(join(nets))
    .bind(expires_at)
    .bind(rolled_from.map(|r| r.0))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(AppError::internal)?;
    let ev = Event::success(
        p.actor(),
        action,
        origin,
        Some(key_id.to_owned()),
        serde_json::json!({ "app_id": app_id, "environment": env.as_str(), "role_id": role_id, "expires_at": expires_at, "rolled_from": rolled_from.map(|r| r.0) }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)
}

/// Revokes a key at once, for good, with a reason.
pub async fn revoke(
    db: &Db,
    cache: &KeyCache,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    key_id: &str,
    reason: &str,
) -> Result<KeyInfo, AppError> {
    let p = grant.ensure(Permission::ApiKeyDelete)?;
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AppError::validation(
            "reason",
            format!("At most {MAX_REASON_CHARS} characters."),
        ));
    }
    let key = visible_key(db, now, p, key_id).await?;
    check_key_owner(db, p, &key).await?;
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    let r = sqlx::query(
        "update api_keys set revoked_at = $2, revoked_by = $3, revoke_reason = $4, updated_at = $2 where key_id = $1 and revoked_at is null",
    )
    .bind(&key.key_id)
    .bind(now)
    .bind(p.user_id())
    .bind(reason)
    .execute(&mut *tx)
    .await
    .map_err(AppError::internal)?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict("This key is already revoked.".into()));
    }
    let ev = Event::success(
        p.actor(),
        "api_key.revoked",
        origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "reason": reason }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)?;
    cache.bump();
    visible_key(db, now, p, key_id).await
}

/// Renames a key and/or changes its role (never above the editor's permissions).
#[allow(clippy::too_many_arguments)]
pub async fn update(
    db: &Db,
    cache: &KeyCache,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    key_id: &str,
    name: Option<&str>,
    role_id: Option<i64>,
) -> Result<KeyInfo, AppError> {
    let p = grant.ensure(Permission::ApiKeyUpdate)?;
    let key = visible_key(db, now, p, key_id).await?;
    check_key_owner(db, p, &key).await?;
    let name = match name {
        Some(n) => name_of("name", n)?,
        None => key.name.clone(),
    };
    let role_id = match role_id {
        // Unchanged: nothing to check (a rename of a key whose owner has since been
        // demoted still works; the key does only what the owner may do anyway).
        Some(r) if Some(r) == key.role_id => Some(r),
        Some(r) => {
            let owner = key.owner_id.ok_or(AppError::NotFound)?;
            check_key_role(db, p, owner, r).await?;
            Some(r)
        }
        None => key.role_id,
    };
    let mut tx = db.pool.begin().await.map_err(AppError::internal)?;
    sqlx::query("update api_keys set name = $2, role_id = $3, updated_at = $4 where key_id = $1")
        .bind(&key.key_id)
        .bind(&name)
        .bind(role_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(AppError::internal)?;
    let ev = Event::success(
        p.actor(),
        "api_key.updated",
        origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "name": name, "role_id": role_id }),
    );
    audit::record_in(&mut tx, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tx.commit().await.map_err(AppError::internal)?;
    cache.bump();
    visible_key(db, now, p, key_id).await
}

/// Rolls a key: a new key with every setting of the old one; the old one keeps working
/// for `grace_secs` (0: ends now). Returns the new key and its secret.
#[allow(clippy::too_many_arguments)]
pub async fn roll(
    db: &Db,
    cache: &KeyCache,
    mailer: &super::mail::Mailer,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    key_id: &str,
    grace_secs: i64,
) -> Result<(KeyInfo, String), AppError> {
    let p = grant.ensure(Permission::ApiKeyUpdate)?;
    if !(0..=7 * 86_400).contains(&grace_secs) {
        return Err(AppError::validation(
            "grace_seconds",
            "The grace period is between 0 and 604800 seconds (7 days).",
        ));
    }
    let old = visible_key(db, now, p, key_id).await?;
    super::access::may_roll_key(p, old.owner_id)?;
    if old.status != "active" {
        return Err(AppError::Conflict(format!(
            "This key is {}; only an active key can be rolled.",
            old.status
        )));
    }
    let env = Environment::parse(&old.environment).ok_or(AppError::Internal)?;
    let nets = parse_networks("networks", &old.networks.join("\n"))?;
    let role_id = old.role_id.unwrap_or(BuiltinRole::Viewer.id());
    // The new key gets the old one's role: still never above what its owner holds now.
    check_key_role(db, p, p.user_id(), role_id).await?;
    let limits = super::settings::keys(db)
        .await
        .map_err(AppError::internal)?;
    let secret = key_format::generate(Visibility::Secret, env);
    let new_id = key_format::new_key_id();
    insert_key(
        db,
        now,
        p,
        origin,
        &new_id,
        &secret,
        &old.name,
        old.app_id,
        env,
        role_id,
        &nets,
        old.expires_at,
        Some((&old.key_id, now + grace_secs)),
        "api_key.rolled",
        Some(limits.max_active_per_user_per_app),
    )
    .await?;
    cache.bump();
    let key = visible_key(db, now, p, &new_id).await?;
    if let Some(owner) = &key.owner {
        super::notify::account(
            mailer,
            owner,
            super::notify::AccountEvent::KeyRolled {
                old: old.key_id.clone(),
                new: key.key_id.clone(),
            },
            origin,
            now,
        )
        .await;
    }
    Ok((key, secret))
}

// ---- verification (the REST API's door) ----

/// A verified key as the REST API needs it.
#[derive(Debug)]
pub struct VerifiedKey {
    pub key_id: String,
    pub kind: String,
    pub environment: String,
    pub app_id: i64,
    pub app: String,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub role_id: Option<i64>,
    /// The owner's role now (None for SDK keys).
    pub owner_role_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    /// False when the owner's account is disabled (or no longer active): a key acts
    /// for its owner, so it stops with them.
    pub owner_active: bool,
    pub app_networks: Vec<IpNet>,
    pub key_networks: Vec<IpNet>,
    /// What the key may do now: its role's permissions that its owner also holds
    /// (`access::key_permissions`).
    pub permissions: std::collections::BTreeSet<Permission>,
    /// The `GET /api/v1/whoami` body of this key, rendered on first use: everything in
    /// it is fixed for as long as this cache entry lives.
    pub whoami: std::sync::OnceLock<bytes::Bytes>,
    /// The second of the last use noted (see `KeyCache::touch`).
    pub last_touched: std::sync::atomic::AtomicI64,
}

/// Why a known key is refused before any permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Revoked,
    Expired,
    OwnerDisabled,
}

impl VerifiedKey {
    /// A copy with its own rendered body and use marker (see `LOCAL`).
    fn copy_for_thread(&self) -> Self {
        Self {
            key_id: self.key_id.clone(),
            kind: self.kind.clone(),
            environment: self.environment.clone(),
            app_id: self.app_id,
            app: self.app.clone(),
            owner_id: self.owner_id,
            owner: self.owner.clone(),
            role_id: self.role_id,
            owner_role_id: self.owner_role_id,
            expires_at: self.expires_at,
            revoked: self.revoked,
            owner_active: self.owner_active,
            app_networks: self.app_networks.clone(),
            key_networks: self.key_networks.clone(),
            permissions: self.permissions.clone(),
            whoami: std::sync::OnceLock::new(),
            last_touched: std::sync::atomic::AtomicI64::new(
                self.last_touched.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }

    /// Revoked, or expired at `now` (a key whose expiry is T works at T−1 s and is
    /// refused from T on; a rolled key's expiry is its grace deadline).
    pub fn refusal(&self, now: i64) -> Option<Refusal> {
        if self.revoked {
            Some(Refusal::Revoked)
        } else if !self.owner_active {
            Some(Refusal::OwnerDisabled)
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some(Refusal::Expired)
        } else {
            None
        }
    }

    /// True when `ip` is inside the app's allow-list and the key's own (an empty list
    /// allows any address). `ip` is already normalised (IPv4-mapped IPv6 → IPv4).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let inside = |nets: &[IpNet]| nets.is_empty() || nets.iter().any(|n| n.contains(&ip));
        inside(&self.app_networks) && inside(&self.key_networks)
    }
}

/// Verification answers from memory after the first lookup of a key (by the SHA-256 of
/// the secret). Every change to keys, apps or roles made through this instance bumps
/// the generation, and an entry of an older generation is looked up again: a revoke,
/// role change or allow-list change is enforced at the very next request. Changes made
/// on another instance arrive through PostgreSQL: triggers NOTIFY `keyward_keys` and
/// [`listen_for_changes`] bumps the generation here (within a second). On SQLite there
/// is one instance.
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    inner: Arc<KeyCacheInner>,
}

/// Failed authentications per client address: past the allowance, that address gets
/// 429 `rate_limited` (with `Retry-After`) instead of 401 until it slows down. Keys are
/// 190-bit random strings, so this is not what stops guessing; it keeps a scanner or a
/// misconfigured client from flooding the log with failures.
struct AuthFailures(governor::DefaultKeyedRateLimiter<std::net::IpAddr>);

impl std::fmt::Debug for AuthFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthFailures")
    }
}

impl Default for AuthFailures {
    /// 60 failures at once, then one a second.
    fn default() -> Self {
        let quota = governor::Quota::per_second(std::num::NonZeroU32::MIN)
            .allow_burst(std::num::NonZeroU32::MIN.saturating_add(59));
        Self(governor::RateLimiter::keyed(quota))
    }
}

/// (generation it was read at, the key or `None` for an unknown secret).
type CacheEntry = (u64, Option<Arc<VerifiedKey>>);

#[derive(Debug)]
struct KeyCacheInner {
    /// Tells this cache's entries apart in the per-thread copies (`LOCAL`).
    id: u64,
    generation: std::sync::atomic::AtomicU64,
    entries: std::sync::RwLock<std::collections::HashMap<[u8; 32], CacheEntry>>,
    /// Last use per key since the last flush: written to the database in batches.
    last_used: std::sync::Mutex<std::collections::HashMap<String, (i64, std::net::IpAddr)>>,
    /// Refused requests per key and code since the last flush: audited as one row per
    /// key per flush, never one per request.
    refused: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
    auth_failures: AuthFailures,
}

impl Default for KeyCacheInner {
    fn default() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            generation: Default::default(),
            entries: Default::default(),
            last_used: Default::default(),
            refused: Default::default(),
            auth_failures: Default::default(),
        }
    }
}

const CACHE_MAX: usize = 100_000;
const LOCAL_MAX: usize = 10_000;

/// (cache id, digest) → (generation, this thread's copy of the key).
type LocalMap = std::collections::HashMap<(u64, [u8; 32]), (u64, Arc<VerifiedKey>)>;

thread_local! {
    /// Per-thread copies of the keys in use. A hit here writes no memory another
    /// thread reads or writes — no lock word, no shared reference count, no shared
    /// "last used" — so the hot path does not bounce cache lines between cores.
    static LOCAL: std::cell::RefCell<LocalMap> = std::cell::RefCell::new(LocalMap::new());
}

impl KeyCache {
    /// Invalidates every entry (called after any change to keys, apps or roles).
    pub fn bump(&self) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Notes a key's use (in memory; `flush_last_used` writes it). Times are whole
    /// seconds, so the shared map is written at most once per key per second (the first
    /// address of that second is the one kept); other requests only read an atomic.
    pub fn touch(&self, key: &VerifiedKey, now: i64, ip: std::net::IpAddr) {
        use std::sync::atomic::Ordering::Relaxed;
        // Read first: within the second, nothing is written at all.
        if key.last_touched.load(Relaxed) == now || key.last_touched.swap(now, Relaxed) == now {
            return;
        }
        if let Ok(mut m) = self.inner.last_used.lock() {
            match m.get_mut(&key.key_id) {
                Some(e) => *e = (now, ip),
                None => {
                    m.insert(key.key_id.clone(), (now, ip));
                }
            }
        }
    }

    /// Counts a failed authentication from `ip` (an IPv6 address as its /64: one host
    /// usually holds the whole network); `Some(seconds to wait)` when that address is
    /// over its allowance.
    pub fn auth_failure(&self, ip: std::net::IpAddr) -> Option<u64> {
        use governor::clock::Clock as _;
        let scope = match ip {
            std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                std::net::IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into())
            }
            other => other,
        };
        self.inner
            .auth_failures
            .0
            .check_key(&scope)
            .err()
            .map(|not_until| {
                not_until
                    .wait_time_from(governor::clock::DefaultClock::default().now())
                    .as_secs()
                    .max(1)
            })
    }

    /// Counts a refused request of an identified key (revoked, expired, wrong address,
    /// missing permission).
    pub fn refused(&self, key_id: &str, code: &'static str) {
        if let Ok(mut m) = self.inner.refused.lock() {
            *m.entry((key_id.to_owned(), code)).or_insert(0) += 1;
        }
    }

    /// Audits the refusals counted since the last flush: one `api_key.refused` row per
    /// key with the count per code. Returns the number of rows.
    pub async fn flush_refused(&self, db: &Db, now: i64) -> Result<usize, sqlx::Error> {
        let counts: std::collections::BTreeMap<(String, &'static str), u64> =
            match self.inner.refused.lock() {
                Ok(mut m) => std::mem::take(&mut *m),
                Err(_) => return Ok(0),
            };
        let mut per_key: std::collections::BTreeMap<
            String,
            serde_json::Map<String, serde_json::Value>,
        > = Default::default();
        for ((key, code), n) in counts {
            per_key
                .entry(key)
                .or_default()
                .insert(code.to_owned(), n.into());
        }
        let rows = per_key.len();
        for (key_id, codes) in per_key {
            let total: u64 = codes.values().filter_map(|v| v.as_u64()).sum();
            let ev = Event {
                actor: audit::Actor::Key(&key_id),
                action: "api_key.refused",
                target: Some(key_id.clone()),
                ip: None,
                user_agent: None,
                outcome: audit::Outcome::Failure,
                details: serde_json::json!({ "requests": total, "by_code": codes }),
            };
            audit::record(db, now, &ev).await?;
        }
        Ok(rows)
    }

    /// Writes the uses noted since the last flush in one transaction (never a write per
    /// request); returns how many keys were updated.
    pub async fn flush_last_used(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let batch: Vec<(String, (i64, std::net::IpAddr))> = match self.inner.last_used.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tx = db.pool.begin().await?;
        for (key_id, (at, ip)) in &batch {
            sqlx::query("update api_keys set last_used_at = $2, last_used_ip = $3 where key_id = $1 and (last_used_at is null or last_used_at <= $2)")
                .bind(key_id)
                .bind(at)
                .bind(ip.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(batch.len())
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Option<Arc<VerifiedKey>>> {
        let gen = self
            .inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let local_key = (self.inner.id, *digest);
        let local = LOCAL.with_borrow(|m| match m.get(&local_key) {
            Some((g, v)) if *g == gen => Some(v.clone()),
            _ => None,
        });
        if let Some(v) = local {
            return Some(Some(v));
        }
        let shared = {
            let map = self.inner.entries.read().ok()?;
            match map.get(digest) {
                Some((g, v)) if *g == gen => v.clone(),
                _ => return None,
            }
        };
        // Unknown keys stay in the shared map only; a known one gets this thread's copy.
        Some(shared.map(|k| {
            let mine = Arc::new(k.copy_for_thread());
            LOCAL.with_borrow_mut(|m| {
                if m.len() >= LOCAL_MAX {
                    m.clear();
                }
                m.insert(local_key, (gen, mine.clone()));
            });
            mine
        }))
    }

    fn put(&self, digest: [u8; 32], gen: u64, v: Option<Arc<VerifiedKey>>) {
        if let Ok(mut map) = self.inner.entries.write() {
            if map.len() >= CACHE_MAX {
                map.clear();
            }
            map.insert(digest, (gen, v));
        }
    }
}

/// Looks a well-formed key up (from memory when it can); `None` when no key has this
/// secret.
pub async fn lookup(
    db: &Db,
    cache: &KeyCache,
    secret: &str,
) -> Result<Option<Arc<VerifiedKey>>, sqlx::Error> {
    let digest = key_format::digest(secret);
    if let Some(hit) = cache.get(&digest) {
        return Ok(hit);
    }
    let hash = hex::encode(digest);
    let gen = cache
        .inner
        .generation
        .load(std::sync::atomic::Ordering::SeqCst);
    type Row = (
        String,
        String,
        String,
        i64,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        String,
        Option<String>,
        Option<i64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select k.key_id, k.kind, k.environment, k.app_id, a.name, a.networks, k.owner_id, u.email, k.role_id, k.expires_at, k.revoked_at, k.networks, u.status, u.role_id \
         from api_keys k join apps a on a.id = k.app_id left join users u on u.id = k.owner_id where k.secret_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&db.pool)
    .await?;
    let v = match row {
        None => None,
        Some((
            key_id,
            kind,
            environment,
            app_id,
            app,
            app_nets,
            owner_id,
            owner,
            role_id,
            expires_at,
            revoked_at,
            key_nets,
            owner_status,
            owner_role_id,
        )) => {
            // What the key may do: its role's permissions that its owner holds now.
            let permissions = match (role_id, owner_role_id) {
                (Some(r), Some(o)) => super::access::key_permissions(
                    &role_permissions(db, r).await?,
                    &role_permissions(db, o).await?,
                ),
                _ => Default::default(),
            };
            let parse = |t: &str| t.lines().filter_map(parse_cidr).collect::<Vec<_>>();
            Some(Arc::new(VerifiedKey {
                key_id,
                kind,
                environment,
                app_id,
                app,
                owner_id,
                owner,
                role_id,
                owner_role_id,
                expires_at,
                revoked: revoked_at.is_some(),
                // SDK keys have no owner; a secret key's owner must be active.
                owner_active: owner_id.is_none() || owner_status.as_deref() == Some("active"),
                app_networks: parse(&app_nets),
                key_networks: parse(&key_nets),
                permissions,
                whoami: std::sync::OnceLock::new(),
                last_touched: std::sync::atomic::AtomicI64::new(0),
            }))
        }
    };
    cache.put(digest, gen, v.clone());
    Ok(v)
}

/// PostgreSQL: drops `cache` whenever another instance (or anyone) changes what a
/// verification depends on — migration 0005's triggers send `NOTIFY keyward_keys`.
/// Reconnects on its own; after a reconnect (notifications may have been missed) the
/// cache is dropped too. Runs until the process ends.
pub async fn listen_for_changes(database_url: String, cache: KeyCache) {
    use sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&database_url).await {
            Ok(mut listener) => match listener.listen("keyward_keys").await {
                Ok(()) => {
                    cache.bump();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(_)) => cache.bump(),
                            // The connection was lost and re-made: anything may have changed.
                            Ok(None) => cache.bump(),
                            Err(e) => {
                                tracing::warn!(error = %e, "key change listener lost its connection");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN keyward_keys failed"),
            },
            Err(e) => tracing::warn!(error = %e, "key change listener cannot connect"),
        }
        cache.bump();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
