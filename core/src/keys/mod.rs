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

pub mod apps;
pub mod cache;
pub mod format;
pub mod leaks;
pub mod lifecycle;
pub mod refusals;
pub mod reminders;
pub mod scan;
pub mod usage;
pub mod verified;
pub mod verify;

use crate::{
    access::{role_permissions, Grant, Principal},
    audit::{self, Event},
    identity::notify::{self, AccountEvent},
    infra::config::parse_cidr,
    infra::db::Db,
    messages::events,
    state::Ctx,
};
use format::{Environment, Visibility};
use ipnet::IpNet;
use model::error::AppError;
use model::keys::{KeyFilter, KeyInfo, KeyPage, DEFAULT_PAGE, MAX_PAGE};
use model::roles::{BuiltinRole, Permission};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_REASON_CHARS: usize = 500;

pub(crate) fn name_of(field: &str, input: &str) -> Result<String, AppError> {
    crate::infra::text::label(field, input, MAX_NAME_CHARS, "A name")
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
            // The entry is quoted back shortened: an error message is no place for
            // pages of someone's text.
            let shown: String = line.chars().take(50).collect();
            let more = if shown.len() < line.len() { "…" } else { "" };
            AppError::validation(
                field,
                format!(
                    "Entry {} ({shown}{more}) is not an IP address or a range such as 10.0.0.0/8 or 2001:db8::/32 (a range is written from its first address).",
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

/// A typed allow-list, checked like a typed one: no duplicates, at most 500 entries.
pub(crate) fn dedup(nets: &[IpNet]) -> Result<Vec<IpNet>, AppError> {
    let mut out: Vec<IpNet> = Vec::new();
    for n in nets {
        if !out.contains(n) {
            out.push(*n);
        }
    }
    if out.len() > 500 {
        return Err(AppError::validation("networks", "At most 500 entries."));
    }
    Ok(out)
}

pub(crate) fn join(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn split(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) const KEY_SELECT: &str = "select k.key_id, k.kind, k.app_id, a.name as app, k.environment, k.owner_id, u.email as owner, k.name, \
     k.role_id, r.name as role, k.last4, k.networks, k.expires_at, k.revoked_at, k.revoke_reason, k.rolled_from, \
     k.replaced_by, k.created_at, k.last_used_at, k.last_used_ip, k.leak_flagged_at, \
     k.disabled_at, k.pending_at, ua.email as approved_by, k.approved_at, k.channel, k.key_events, k.sender \
     from api_keys k join apps a on a.id = k.app_id left join users u on u.id = k.owner_id \
     left join roles r on r.id = k.role_id left join users ua on ua.id = k.approved_by";

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
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
    leak_flagged_at: Option<i64>,
    disabled_at: Option<i64>,
    pending_at: Option<i64>,
    approved_by: Option<String>,
    approved_at: Option<i64>,
    channel: Option<String>,
    key_events: Option<String>,
    sender: Option<String>,
}

impl KeyRow {
    /// Revoked and expired are final; a pending key waits for approval, a disabled one
    /// for someone to enable it.
    fn status(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if self.pending_at.is_some() {
            "pending"
        } else if self.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        }
    }
}

/// The SQL condition (over `api_keys k`) of each status [`KeyRow::status`] names but
/// `revoked` (which needs no time); `?` stands for now.
fn status_clause(status: &str) -> Option<&'static str> {
    Some(match status {
        "active" => " and k.revoked_at is null and (k.expires_at is null or k.expires_at > ?) and k.pending_at is null and k.disabled_at is null",
        "pending" => " and k.revoked_at is null and (k.expires_at is null or k.expires_at > ?) and k.pending_at is not null",
        "disabled" => " and k.revoked_at is null and (k.expires_at is null or k.expires_at > ?) and k.pending_at is null and k.disabled_at is not null",
        "expired" => " and k.revoked_at is null and k.expires_at <= ?",
        _ => return None,
    })
}

pub(crate) fn key_info(now: i64, r: KeyRow) -> KeyInfo {
    KeyInfo {
        status: r.status(now).to_owned(),
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
        leak_flagged_at: r.leak_flagged_at,
        disabled_at: r.disabled_at,
        approved_by: r.approved_by,
        approved_at: r.approved_at,
        channel: r.channel,
        key_events: r
            .key_events
            .as_deref()
            .map(|e| {
                e.split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        sender: r.sender,
    }
}

/// Which keys a listing holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// REST keys (`/keys`, `GET /api/v1/keys`).
    Rest,
    /// The keys of one channel (`/channels`), by its name (`email`, `sms`, …).
    Channel(&'a str),
}

/// The REST keys `p` may see (everyone's with `api.key.view_all`, else their own) that
/// match `f`, one page at a time: see [`list_page`].
pub async fn list_keys(
    db: &Db,
    now: i64,
    p: &Principal,
    f: &KeyFilter,
) -> Result<KeyPage, AppError> {
    list_page(db, now, p, Listing::Rest, f).await
}

/// The keys of `listing` that `p` may see (`access::sees_every_key`: everyone's, else
/// their own) and that match `f`, in `f.sort`'s order (newest first by default), one
/// page at a time: at most `f.limit` (1..=[`MAX_PAGE`], default [`DEFAULT_PAGE`]) after
/// the key `f.after`, and the key to continue after when there are more.
pub async fn list_page(
    db: &Db,
    now: i64,
    p: &Principal,
    listing: Listing<'_>,
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
    let mut sql = format!("{KEY_SELECT} where ");
    // (A channel's keys in id order come from `api_keys_channel_idx`, however many REST
    // keys there are.)
    let channel_keys = match listing {
        Listing::Rest => {
            sql.push_str("k.kind = 'rest'");
            false
        }
        Listing::Channel(c) => {
            args.push(Arg::Text(c.to_owned()));
            sql.push_str("k.kind = 'channel' and k.channel = $1");
            true
        }
    };
    // What the cursor may name: a key of this listing that `p` may see, like every row
    // listed (else `after` would tell of keys `p` may not see: whether one exists, and
    // by the sort, its name, expiry or last use). Integers from the principal, and the
    // channel bound as `$1` above.
    let sees_every = crate::access::sees_every_key(p, channel_keys);
    let mut cursor_scope = if channel_keys {
        String::from(" and c.kind = 'channel' and c.channel = $1")
    } else {
        String::from(" and c.kind = 'rest'")
    };
    if !sees_every {
        cursor_scope.push_str(&format!(" and c.owner_id = {}", p.user_id()));
    }
    if let Some(app) = p.app_scope() {
        cursor_scope.push_str(&format!(" and c.app_id = {app}"));
    }
    let mut push = |clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if !sees_every {
        push(" and k.owner_id = ?", Arg::Int(p.user_id()));
    }
    // A key lists its own app's keys only (`Principal::acts_for_app`).
    if let Some(app) = p.app_scope() {
        push(" and k.app_id = ?", Arg::Int(app));
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
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().count() > 100 || q.chars().any(char::is_control) {
            return Err(AppError::validation(
                "q",
                "Search for at most 100 characters, without control characters.",
            ));
        }
        // `like` with its wildcards escaped: the search is for the text as typed.
        let needle = format!(
            "%{}%",
            q.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        push(
            " and (lower(k.name) like ? escape '\\'",
            Arg::Text(needle.clone()),
        );
        push(" or k.key_id = ?", Arg::Text(q.to_owned()));
        push(
            " or lower(coalesce(u.email, '')) like ? escape '\\')",
            Arg::Text(needle),
        );
    }
    // The order: a sort key (an expression over `api_keys`, written for the alias `k`
    // and again for the cursor's row `c`) and its direction; the id breaks ties, so the
    // order is total and a page continues exactly after the previous one's last key.
    let sort = f
        .sort
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("newest");
    let (by, desc) = match sort {
        "newest" => (None, true),
        "oldest" => (None, false),
        "name" => (Some("lower(#.name)"), false),
        // Never-expiring keys last, never-used keys last.
        "expires" => (Some("coalesce(#.expires_at, 9223372036854775807)"), false),
        "last_used" => (Some("coalesce(#.last_used_at, -1)"), true),
        _ => {
            return Err(AppError::validation(
                "sort",
                "Sort by newest, oldest, name, expires or last_used.",
            ))
        }
    };
    let (cmp, dir) = if desc { ("<", "desc") } else { (">", "asc") };
    if let Some(after) = f.after.as_deref().filter(|a| !a.is_empty()) {
        if !format::is_key_id(after) {
            return Err(AppError::validation("after", "Not a key ID."));
        }
        // An unknown cursor continues from nowhere: an empty page.
        let clause = match by {
            None => format!(" and k.id {cmp} coalesce((select c.id from api_keys c where c.key_id = ?{cursor_scope}), {})", if desc { "0" } else { "9223372036854775807" }),
            Some(e) => format!(
                " and exists (select 1 from api_keys c where c.key_id = ?{cursor_scope} and ({}, k.id) {cmp} ({}, c.id))",
                e.replace('#', "k"),
                e.replace('#', "c")
            ),
        };
        push(&clause, Arg::Text(after.to_owned()));
    }
    match f.status.as_deref().unwrap_or_default() {
        "" => {}
        "revoked" => sql.push_str(" and k.revoked_at is not null"),
        other => {
            let clause = status_clause(other).ok_or_else(|| {
                AppError::validation(
                    "status",
                    "Choose active, pending, disabled, revoked or expired.",
                )
            })?;
            push(clause, Arg::Int(now));
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
    let order = match by {
        None => format!("k.id {dir}"),
        Some(e) => format!("{} {dir}, k.id {dir}", e.replace('#', "k")),
    };
    sql.push_str(&format!(" order by {order} limit ${}", args.len()));
    let mut q = sqlx::query_as::<_, KeyRow>(&sql);
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(i),
            Arg::Text(t) => q.bind(t),
        };
    }
    // A filter other than the owner may have to read every key before it finds a page
    // (a search matching nothing reads them all): such queries take a scan slot, so a
    // burst of them is refused with 429 instead of holding every pooled connection.
    let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    let _slot =
        if f.app_id.is_some() || set(&f.q) || set(&f.environment) || set(&f.status) || by.is_some()
        {
            Some(db.scans.enter(p.user_id()).await?)
        } else {
            None
        };
    let mut rows = q.fetch_all(&db.pool).await?;
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
    .await?;
    // Counted up to a cap, so the page costs the same with 10,000 keys as with 10.
    let (mine_total,): (i64,) = sqlx::query_as(&format!(
        "select count(*) from (select 1 from api_keys k where k.owner_id = $1 and {active} limit $3) c"
    ))
    .bind(p.user_id())
    .bind(now)
    .bind(model::keys::COUNT_CAP + 1)
    .fetch_one(&db.pool)
    .await?;
    // Everyone's with api.key.view_all, else the user's own: two shapes, each walking its
    // own index in expiry order, from now (`api_keys_expires_at_idx`,
    // `api_keys_owner_active_idx`; the repeated `expires_at > $2` is the range's start).
    let expiring: Vec<KeyRow> = if p.has(Permission::ApiKeyViewAll) {
        sqlx::query_as(&format!(
            "{KEY_SELECT} where {active} and k.expires_at > $2 and k.expires_at <= $3 \
             order by k.expires_at, k.id limit $1"
        ))
        .bind(limit)
        .bind(now)
        .bind(soon)
        .fetch_all(&db.pool)
        .await?
    } else {
        sqlx::query_as(&format!(
            "{KEY_SELECT} where k.owner_id = $4 and {active} and k.expires_at > $2 \
             and k.expires_at <= $3 order by k.expires_at, k.id limit $1"
        ))
        .bind(limit)
        .bind(now)
        .bind(soon)
        .bind(p.user_id())
        .fetch_all(&db.pool)
        .await?
    };
    let info = |rows: Vec<KeyRow>| rows.into_iter().map(|r| key_info(now, r)).collect();
    Ok((info(mine), mine_total, info(expiring)))
}

/// The key `key_id` of any kind, whoever may see it (callers check).
pub(crate) async fn find_any(
    db: &Db,
    now: i64,
    key_id: &str,
) -> Result<Option<KeyInfo>, sqlx::Error> {
    if !format::is_key_id(key_id) {
        return Ok(None);
    }
    let row: Option<KeyRow> = sqlx::query_as(&format!("{KEY_SELECT} where k.key_id = $1"))
        .bind(key_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| key_info(now, r)))
}

/// The REST key `key_id`, whoever may see it (callers check).
async fn find_key(db: &Db, now: i64, key_id: &str) -> Result<Option<KeyInfo>, sqlx::Error> {
    if !format::is_key_id(key_id) {
        return Ok(None);
    }
    let row: Option<KeyRow> = sqlx::query_as(&format!(
        "{KEY_SELECT} where k.key_id = $1 and k.kind = 'rest'"
    ))
    .bind(key_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| key_info(now, r)))
}

/// A key `p` may see, or NotFound (a key one cannot see does not exist for one).
pub async fn visible_key(
    db: &Db,
    now: i64,
    p: &Principal,
    key_id: &str,
) -> Result<KeyInfo, AppError> {
    let key = find_key(db, now, key_id).await?.ok_or(AppError::NotFound)?;
    if crate::access::may_view_key(p, key.owner_id, key.app_id) {
        Ok(key)
    } else {
        Err(AppError::NotFound)
    }
}

/// The role a user holds now and its permissions (`NotFound` for no such user).
pub(crate) async fn owner_role(
    db: &Db,
    owner_id: i64,
) -> Result<(i64, std::collections::BTreeSet<Permission>), AppError> {
    let row: Option<(i64,)> = sqlx::query_as("select role_id from users where id = $1")
        .bind(owner_id)
        .fetch_optional(&db.pool)
        .await?;
    let role = row.ok_or(AppError::NotFound)?.0;
    let perms = role_permissions(db, role).await?;
    Ok((role, perms))
}

/// The roles `actor` may give a key owned by `owner_id` (their own key: `owner_id` is
/// theirs), by the one rule of [`check_key_role`]: what a form offers is exactly what
/// the server accepts.
pub async fn role_choices(
    db: &Db,
    actor: &Principal,
    owner_id: i64,
) -> Result<Vec<(i64, String)>, AppError> {
    let (owner_role, owner_perms) = owner_role(db, owner_id).await?;
    Ok(crate::identity::roles::list(db)
        .await?
        .into_iter()
        .filter(|r| {
            let perms = r.permissions.iter().copied().collect();
            crate::access::may_set_key_role(actor, owner_role, &owner_perms, r.id, &perms).is_ok()
        })
        .map(|r| (r.id, r.name))
        .collect())
}

/// Refuses a change to someone else's key when they hold more than the actor
/// (`access::may_act_on_key`).
async fn check_key_owner(db: &Db, actor: &Principal, key: &KeyInfo) -> Result<(), AppError> {
    let Some(owner) = key.owner_id.filter(|o| *o != actor.user_id()) else {
        return Ok(());
    };
    let (role, perms) = owner_role(db, owner).await?;
    crate::access::may_act_on_key(actor, key.owner_id, role, &perms)
}

/// Refuses a key role above what the person setting it holds or above what the key's
/// owner holds now (`access::may_set_key_role`).
async fn check_key_role(
    db: &Db,
    actor: &Principal,
    owner_id: i64,
    role_id: i64,
) -> Result<(), AppError> {
    let Some((_, perms)) = crate::identity::roles::find(db, role_id).await? else {
        return Err(AppError::validation(
            "role_id",
            "Choose a role that exists.",
        ));
    };
    let (owner_role, owner_perms) = owner_role(db, owner_id).await?;
    crate::access::may_set_key_role(actor, owner_role, &owner_perms, role_id, &perms)
}

pub struct NewKey<'a> {
    pub name: &'a str,
    pub app_id: i64,
    pub environment: Environment,
    pub role_id: i64,
    /// Unix seconds; None: never.
    pub expires_at: Option<i64>,
    /// The key's own allow-list (on top of the app's); empty: any address.
    pub networks: Vec<IpNet>,
}

/// A rename and/or a new role for a key (`None`: unchanged).
pub struct KeyChange<'a> {
    pub key_id: &'a str,
    pub name: Option<&'a str>,
    pub role_id: Option<i64>,
    /// The key's own allow-list (on top of its app's); `None`: unchanged.
    pub networks: Option<Vec<IpNet>>,
}

/// The row `insert_key` writes (a new key, or the replacement a roll makes).
struct Insert<'a> {
    key_id: &'a str,
    secret: &'a str,
    name: &'a str,
    app_id: i64,
    env: Environment,
    role_id: i64,
    nets: &'a [IpNet],
    expires_at: Option<i64>,
    /// The key being rolled and its grace deadline.
    rolled_from: Option<(&'a str, i64)>,
    action: &'a str,
    active_limit: Option<u32>,
    /// Settings > Keys require approval: the key waits for it (`lifecycle::approve`).
    pending: bool,
}

/// "live" or "test", as a form or a request names it.
pub fn parse_environment(text: &str) -> Result<Environment, AppError> {
    Environment::parse(text)
        .ok_or_else(|| AppError::validation("environment", "Choose live or test."))
}

/// An allow-list sent as a list (the REST API): each entry an address or a CIDR.
pub fn networks_of(field: &str, entries: &[String]) -> Result<Vec<IpNet>, AppError> {
    let mut out: Vec<IpNet> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        // One address or range per entry: a blank entry or a list in one entry is a
        // mistake to point out, never an "any address" or two networks.
        let net = parse_cidr(entry)
            .filter(|_| !entry.trim().is_empty() && !entry.contains([',', '\n']))
            .ok_or_else(|| {
                AppError::validation(
                    field,
                    format!(
                        "{field}[{i}] ({}) is not one IP address or range such as 10.0.0.0/8 or 2001:db8::/32 (a range is written from its first address).",
                        entry.chars().take(60).collect::<String>()
                    ),
                )
            })?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    dedup(&out)
}

/// Creates a REST key owned by the acting user; returns it and its secret (the only
/// time the secret exists outside the caller's hands).
pub async fn create_key(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    k: &NewKey<'_>,
) -> Result<(KeyInfo, String), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyCreate)?;
    p.require_app(k.app_id)?;
    let name = name_of("name", k.name)?;
    let env = k.environment;
    let nets = dedup(&k.networks)?;
    if let Some(e) = k.expires_at {
        if e <= now {
            return Err(AppError::validation(
                "expires_at",
                "The expiry must be in the future.",
            ));
        }
        if e > model::keys::LATEST_EXPIRY {
            return Err(AppError::validation(
                "expires_at",
                "Choose an expiry before the year 10000.",
            ));
        }
    }
    check_key_role(db, p, p.user_id(), k.role_id).await?;
    let limits = crate::settings::keys(db).await?;
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
        .await?;
    if app.is_none() {
        return Err(AppError::validation("app_id", "Choose an app that exists."));
    }
    let secret = format::generate(Visibility::Secret, env);
    let key_id = format::new_key_id();
    let key = insert_key(
        cx,
        p,
        &Insert {
            key_id: &key_id,
            secret: &secret,
            name: &name,
            app_id: k.app_id,
            env,
            role_id: k.role_id,
            nets: &nets,
            expires_at: k.expires_at,
            rolled_from: None,
            action: "api_key.created",
            active_limit: Some(limits.max_active_per_user_per_app),
            pending: limits.require_approval,
        },
    )
    .await?;
    Ok((key, secret))
}

/// Writes a key (with its audit row, in one transaction; a roll also ends the old key
/// there), drops the verification cache and tells the owner. Returns the key as `p`
/// sees it.
async fn insert_key(cx: &Ctx<'_>, p: &Principal, k: &Insert<'_>) -> Result<KeyInfo, AppError> {
    let (db, now, origin) = (&cx.st.db, cx.now, cx.origin);
    let Insert {
        key_id,
        secret,
        name,
        app_id,
        env,
        role_id,
        nets,
        expires_at,
        rolled_from,
        action,
        active_limit,
        pending,
    } = *k;
    let mut tx = db.pool.begin().await?;
    if let Some(limit) = active_limit {
        // The app's row is written first: concurrent creations for it take turns, so
        // the count below cannot be raced past the limit.
        sqlx::query("update apps set updated_at = updated_at where id = $1")
            .bind(app_id)
            .execute(&mut *tx)
            .await?;
        // Keys still in a roll's grace period count: rolling again and again must not
        // multiply working keys past the limit. The key being rolled itself does not
        // (its replacement takes its place). Keys waiting for approval count (else
        // requests for approval could pile up without limit); disabled keys do not, and
        // enabling one checks the limit again (`lifecycle::enable`).
        let (active,): (i64,) = sqlx::query_as(
            "select count(*) from api_keys where kind = 'rest' and owner_id = $1 and app_id = $2 \
             and revoked_at is null and (expires_at is null or expires_at > $3) and disabled_at is null and key_id <> $4",
        )
        .bind(p.user_id())
        .bind(app_id)
        .bind(now)
        .bind(rolled_from.map_or("", |r| r.0))
        .fetch_one(&mut *tx)
        .await?;
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
        .await?;
        if r.rows_affected() != 1 {
            return Err(AppError::Conflict(
                "This key was already rolled or revoked.".into(),
            ));
        }
    }
    sqlx::query(
        "insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, secret_hash, last4, networks, expires_at, rolled_from, pending_at, created_at, updated_at) \
         values ($1, 'rest', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, $12, $12)",
    )
    .bind(key_id)
    .bind(app_id)
    .bind(env.as_str())
    .bind(p.user_id())
    .bind(name)
    .bind(role_id)
    .bind(format::hash(secret))
    .bind(format::last4(secret))
    .bind(join(nets))
    .bind(expires_at)
    .bind(rolled_from.map(|r| r.0))
    .bind(now)
    .bind(pending.then_some(now))
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        p.actor(),
        action,
        origin,
        Some(key_id.to_owned()),
        serde_json::json!({ "app_id": app_id, "environment": env.as_str(), "role_id": role_id, "expires_at": expires_at, "rolled_from": rolled_from.map(|r| r.0), "pending_approval": pending }),
    );
    let status = if pending { "pending" } else { "active" };
    match rolled_from {
        None => {
            events::key_event(
                &mut tx,
                now,
                "key.created",
                key_id,
                serde_json::json!({ "status": status }),
            )
            .await?
        }
        Some((old, deadline)) => {
            events::key_event(
                &mut tx,
                now,
                "key.rolled",
                key_id,
                serde_json::json!({ "rolled_from": old, "old_key_works_until": deadline }),
            )
            .await?
        }
    };
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    let key = visible_key(db, now, p, key_id).await?;
    if pending {
        lifecycle::tell_approvers(cx, &key);
    }
    if let Some(owner) = &key.owner {
        let event = match rolled_from {
            None => AccountEvent::KeyCreated {
                key_id: key.key_id.clone(),
                name: key.name.clone(),
            },
            Some((old, _)) => AccountEvent::KeyRolled {
                old: old.to_owned(),
                new: key.key_id.clone(),
            },
        };
        notify::account(&cx.st.mailer, owner, event, origin, now).await;
    }
    Ok(key)
}

/// Revokes a key at once, for good, with a reason.
pub async fn revoke(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    key_id: &str,
    reason: &str,
) -> Result<KeyInfo, AppError> {
    let (db, now, origin, cache) = (&cx.st.db, cx.now, cx.origin, &cx.st.keys);
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
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update api_keys set revoked_at = $2, revoked_by = $3, revoke_reason = $4, updated_at = $2 where key_id = $1 and revoked_at is null",
    )
    .bind(&key.key_id)
    .bind(now)
    .bind(p.user_id())
    .bind(reason)
    .execute(&mut *tx)
    .await?;
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
    events::key_event(
        &mut tx,
        now,
        "key.revoked",
        &key.key_id,
        serde_json::json!({ "reason": reason }),
    )
    .await?;
    audit::commit(tx, now, &ev).await?;
    cache.bump();
    visible_key(db, now, p, key_id).await
}

/// Renames a key and/or changes its role (never above the editor's permissions).
pub async fn update(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    change: &KeyChange<'_>,
) -> Result<KeyInfo, AppError> {
    let (db, now, origin, cache) = (&cx.st.db, cx.now, cx.origin, &cx.st.keys);
    let KeyChange {
        key_id,
        name,
        role_id,
        ref networks,
    } = *change;
    let p = grant.ensure(Permission::ApiKeyUpdate)?;
    let key = visible_key(db, now, p, key_id).await?;
    check_key_owner(db, p, &key).await?;
    if key.status != "active" {
        return Err(AppError::Conflict(format!(
            "This key is {}; only an active key can be changed.",
            key.status
        )));
    }
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
    let networks = match networks {
        Some(n) => join(&dedup(n)?),
        None => key.networks.join("\n"),
    };
    // Nothing changed (a form saved as it was): nothing to write, nothing to audit.
    if name == key.name && role_id == key.role_id && split(&networks) == key.networks {
        return Ok(key);
    }
    // With approval required, a change that lets the key do more than what was
    // approved (a role with a permission the old one lacked, an allow-list that admits
    // an address the old one did not) sends it back to the approvers.
    let wider = crate::settings::keys(db).await?.require_approval
        && (widens_role(db, key.role_id, role_id).await?
            || widens_networks(&key.networks, &split(&networks)));
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "update api_keys set name = $2, role_id = $3, networks = $4, updated_at = $5, \
         pending_at = case when $6 = 1 then $5 else pending_at end, \
         approved_by = case when $6 = 1 then null else approved_by end, \
         approved_at = case when $6 = 1 then null else approved_at end where key_id = $1",
    )
    .bind(&key.key_id)
    .bind(&name)
    .bind(role_id)
    .bind(&networks)
    .bind(now)
    .bind(i64::from(wider))
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        p.actor(),
        "api_key.updated",
        origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "name": name, "role_id": role_id, "networks": split(&networks), "pending_approval_again": wider }),
    );
    audit::commit(tx, now, &ev).await?;
    cache.bump();
    visible_key(db, now, p, key_id).await
}

/// Whether the role `to` holds a permission the role `from` does not.
async fn widens_role(db: &Db, from: Option<i64>, to: Option<i64>) -> Result<bool, AppError> {
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(from != to);
    };
    if from == to {
        return Ok(false);
    }
    let old = role_permissions(db, from).await?;
    Ok(role_permissions(db, to)
        .await?
        .iter()
        .any(|p| !old.contains(p)))
}

/// Whether the allow-list `to` admits an address `from` did not (an empty list admits
/// any): `from` listed some, and `to` lists none or an entry `from` did not.
fn widens_networks(from: &[String], to: &[String]) -> bool {
    !from.is_empty() && (to.is_empty() || to.iter().any(|n| !from.contains(n)))
}

/// A key's history from the audit log (created, updated, rolled, revoked…), newest
/// first, at most `limit` events, for whoever may see the key. Batches of refused
/// requests are left out: anyone holding the secret, even revoked, can make one every
/// few seconds, and they would push the key's real history off the page (its usage
/// section lists them: `usage::of_key`).
pub async fn history(
    db: &Db,
    now: i64,
    p: &Principal,
    key_id: &str,
    limit: i64,
) -> Result<Vec<model::keys::KeyEvent>, AppError> {
    let key = visible_key(db, now, p, key_id).await?;
    // Where others acted from is the audit log's to show (`audit.view`); anyone who
    // sees the key sees where they themselves acted from.
    let sees_addresses = p.has(Permission::AuditView);
    let me = p.user_id().to_string();
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        Option<String>,
    );
    // A rolled key's history ends with the roll, which the audit log files under the
    // replacement it made.
    let replacement = key.replaced_by.clone().unwrap_or_default();
    let rows: Vec<Row> = sqlx::query_as(
        "select e.occurred_at, e.action, e.actor_type, e.actor_id, u.email, e.ip, e.outcome, e.details, e.target \
         from audit_events e left join users u on e.actor_type = 'user' and cast(u.id as text) = e.actor_id \
         where (e.target = $1 and e.action <> 'api_key.refused') \
         or (e.target = $3 and e.action = 'api_key.rolled') order by e.seq desc limit $2",
    )
    .bind(&key.key_id)
    .bind(limit)
    .bind(&replacement)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(at, action, actor_type, actor_id, email, ip, outcome, details, target)| {
                // The roll, as this key saw it: it was replaced.
                let details = match target {
                    Some(t) if t != key.key_id => format!("replaced by {t}: {details}"),
                    _ => details,
                };
                let own = actor_type == "user" && actor_id.as_deref() == Some(me.as_str());
                let ip = ip.filter(|_| sees_addresses || own);
                let actor = match (actor_type.as_str(), email, actor_id) {
                    ("user", Some(email), _) => email,
                    ("key", _, Some(id)) => id,
                    ("system", _, _) => "Keyward".to_owned(),
                    (_, _, Some(id)) => format!("{actor_type} {id}"),
                    _ => "not signed in".to_owned(),
                };
                model::keys::KeyEvent {
                    at,
                    action,
                    actor,
                    ip,
                    outcome,
                    details,
                }
            },
        )
        .collect())
}

/// A rolled key's expiry: the lifetime the old key was given (its expiry less its
/// creation), counted again from now, so that rolling a key about to expire gives a key
/// that lasts; never beyond the longest expiry Settings > Keys allows now (`max_days`,
/// 0: no maximum). A key that never expired keeps never expiring unless there is now a
/// maximum.
pub fn fresh_expiry(
    now: i64,
    created_at: i64,
    expires_at: Option<i64>,
    max_days: u32,
) -> Option<i64> {
    let latest = (max_days > 0).then(|| now + i64::from(max_days) * 86_400);
    let fresh = expires_at.map(|e| now.saturating_add((e - created_at).max(0)));
    let fresh = match (fresh, latest) {
        (Some(f), Some(l)) => Some(f.min(l)),
        (f, l) => f.or(l),
    };
    fresh.map(|f| f.min(model::keys::LATEST_EXPIRY))
}

/// How long a replaced key (rolled, or a regenerated SDK or channel key) may keep
/// working: 0 (it ends now) to 7 days. `field` names the form's or the API's field.
pub fn check_grace(field: &'static str, secs: i64) -> Result<(), AppError> {
    if (0..=7 * 86_400).contains(&secs) {
        Ok(())
    } else {
        Err(AppError::validation(
            field,
            "The grace period is between 0 and 604800 seconds (7 days).",
        ))
    }
}

/// Rolls a key: a new key with every setting of the old one and a fresh expiry
/// (`fresh_expiry`); the old one keeps working for `grace_secs` (0: ends now). Returns
/// the new key and its secret.
pub async fn roll(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    key_id: &str,
    grace_secs: i64,
) -> Result<(KeyInfo, String), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyUpdate)?;
    check_grace("grace_seconds", grace_secs)?;
    let old = visible_key(db, now, p, key_id).await?;
    crate::access::may_roll_key(p, old.owner_id)?;
    if old.status != "active" {
        return Err(AppError::Conflict(format!(
            "This key is {}; only an active key can be rolled.",
            old.status
        )));
    }
    let env = Environment::parse(&old.environment).ok_or(AppError::Internal)?;
    let nets = networks_of("networks", &old.networks)?;
    let role_id = old.role_id.unwrap_or(BuiltinRole::Viewer.id());
    // The new key gets the old one's role: still never above what its owner holds now.
    check_key_role(db, p, p.user_id(), role_id).await?;
    let limits = crate::settings::keys(db).await?;
    let secret = format::generate(Visibility::Secret, env);
    let new_id = format::new_key_id();
    let key = insert_key(
        cx,
        p,
        &Insert {
            key_id: &new_id,
            secret: &secret,
            name: &old.name,
            app_id: old.app_id,
            env,
            role_id,
            nets: &nets,
            expires_at: fresh_expiry(now, old.created_at, old.expires_at, limits.max_expiry_days),
            rolled_from: Some((&old.key_id, now + grace_secs)),
            action: "api_key.rolled",
            active_limit: Some(limits.max_active_per_user_per_app),
            // Only an active (so approved) key rolls, and its replacement takes its
            // place with the same settings: it works at once, so a roll's grace period
            // never ends before the new key can be used.
            pending: false,
        },
    )
    .await?;
    Ok((key, secret))
}

#[cfg(test)]
mod tests {
    use super::fresh_expiry;

    const DAY: i64 = 86_400;

    #[test]
    fn a_rolled_key_gets_its_lifetime_again_from_now_within_the_maximum() {
        let (created, now) = (1_000 * DAY, 1_006 * DAY);
        // A 7-day key rolled on its sixth day lasts 7 days from the roll.
        assert_eq!(
            fresh_expiry(now, created, Some(created + 7 * DAY), 0),
            Some(now + 7 * DAY)
        );
        // Never beyond the longest expiry the settings allow now.
        assert_eq!(
            fresh_expiry(now, created, Some(created + 90 * DAY), 30),
            Some(now + 30 * DAY)
        );
        // A key that never expired: never, unless there is now a maximum.
        assert_eq!(fresh_expiry(now, created, None, 0), None);
        assert_eq!(fresh_expiry(now, created, None, 30), Some(now + 30 * DAY));
        // Never past the year 9999, however long the lifetime.
        let latest = model::keys::LATEST_EXPIRY;
        assert_eq!(
            fresh_expiry(latest - DAY, created, Some(latest), 0),
            Some(latest)
        );
    }
}
