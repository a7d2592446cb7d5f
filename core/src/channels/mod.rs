//! Channel keys (`/channels`): keys that send messages of one channel only, under
//! policies an administrator sets (Settings > Channels). A channel key authenticates on
//! the REST API like a REST key but only for `POST /api/v1/messages` of its own channel
//! (an email key only with its `send` event) and `GET /api/v1/messages/{id}` of the
//! messages it wrote (with `status`); anything else is 403 `channel_not_allowed`
//! (`channel_allows`, checked by the REST layer).
//!
//! A policy says, per channel, who may create keys (a permission), how many may be
//! active (per user or for the whole deployment), whether the secret can be revealed
//! again, whether a key can be regenerated, the longest expiry, and whether an IP
//! allow-list is required. The count is taken with the policies' settings row locked
//! (an upsert that leaves it as it is), so concurrent creations cannot pass the limit.
//!
//! Revealable keys also keep their secret sealed (XChaCha20-Poly1305 with the master
//! key, bound to the key id): a reveal is audited and asks for the password again when
//! the last check is stale (the adapter's sudo check). Other channel keys keep only the
//! SHA-256, like REST keys. A key acts for its owner: what it may do is bounded by the
//! owner's current `message.create`.
//!
//! SMS keys are one per sender number (`numbers`): made when an app's number is added,
//! revoked when it is removed, and they send only from their own number.

use crate::{
    access::{Grant, Principal},
    audit::{self, Event},
    infra::{crypto, db::Db},
    keys::{self, format, format::Visibility},
    messages::events,
    state::Ctx,
};
use ipnet::IpNet;
use model::error::AppError;
use model::keys::KeyInfo;
use model::roles::Permission;
use model::settings::{ChannelPolicy, ChannelSettings};

pub mod numbers;

/// The channels keys can be made for, in the panel's order.
pub const CHANNELS: [&str; 4] = ChannelSettings::CHANNELS;

/// What a channel key may be used for (`key_events`).
pub const KEY_EVENTS: [&str; 2] = ["send", "status"];

const POLICIES: &str = "channels";

/// The policies now (the presets when never saved).
pub async fn policies(db: &Db) -> Result<ChannelSettings, sqlx::Error> {
    crate::settings::channels(db).await
}

/// The additional data a revealable key's secret is sealed with.
pub(crate) fn aad(key_id: &str) -> Vec<u8> {
    format!("channel-key:{key_id}").into_bytes()
}

/// One channel as `/channels` shows it to `p`.
#[derive(Debug, Clone)]
pub struct ChannelView {
    pub channel: &'static str,
    pub policy: ChannelPolicy,
    /// A page of the channel's keys that `p` may see, newest first.
    pub keys: Vec<KeyInfo>,
    /// The key to continue after when there are more (`ChannelQuery::after`).
    pub next: Option<String>,
    /// Whether `p` may create a key here now (permission; the count is checked then).
    pub can_create: bool,
    /// Whether `p` may reveal, regenerate or revoke keys they do not own here.
    pub manages_all: bool,
}

/// Keys each channel shows when `/channels` shows every channel; the rest are a link
/// away, on the channel's own pages.
pub const PREVIEW_KEYS: i64 = 10;

/// What `/channels` lists: every channel (the newest [`PREVIEW_KEYS`] keys of each), or
/// one channel a page at a time; either filtered by a search.
#[derive(Debug, Clone, Default)]
pub struct ChannelQuery<'a> {
    /// One of [`CHANNELS`]; `None`: all of them.
    pub channel: Option<&'a str>,
    /// A key whose name or owner's email contains this, or whose key ID is this (as on
    /// `/keys`).
    pub q: Option<&'a str>,
    /// With `channel`: continue after this key (the previous page's `next`).
    pub after: Option<&'a str>,
}

/// The channels of `query` with the keys `p` may see (`access::sees_every_key`): all of
/// them with `api.key.view_all` or `channel.key.manage`, else their own.
pub async fn list(
    db: &Db,
    now: i64,
    p: &Principal,
    query: &ChannelQuery<'_>,
) -> Result<Vec<ChannelView>, AppError> {
    if !p.has(Permission::ApiKeyView) {
        return Err(AppError::Forbidden);
    }
    let shown: Vec<&'static str> = match query.channel {
        None => CHANNELS.to_vec(),
        Some(c) => vec![CHANNELS.into_iter().find(|x| *x == c).ok_or_else(|| {
            AppError::validation("channel", "Choose email, sms, rcs or whatsapp.")
        })?],
    };
    if query.after.is_some() && query.channel.is_none() {
        return Err(AppError::validation(
            "after",
            "Pages continue within one channel: choose it.",
        ));
    }
    let filter = model::keys::KeyFilter {
        q: query.q.map(str::to_owned),
        after: query.after.map(str::to_owned),
        limit: Some(if query.channel.is_some() {
            model::keys::DEFAULT_PAGE
        } else {
            PREVIEW_KEYS
        }),
        ..Default::default()
    };
    let all = policies(db).await?;
    let mut views = Vec::with_capacity(shown.len());
    for c in shown {
        let page = keys::list_page(db, now, p, keys::Listing::Channel(c), &filter).await?;
        let policy = all.get(c).clone();
        views.push(ChannelView {
            channel: c,
            can_create: crate::access::may_create_channel_key(p, &policy),
            manages_all: p.has(Permission::ChannelKeyManage),
            keys: page.keys,
            next: page.next,
            policy,
        });
    }
    Ok(views)
}

/// A new channel key, as typed.
pub struct NewChannelKey<'a> {
    pub channel: &'a str,
    pub name: &'a str,
    pub app_id: i64,
    pub environment: format::Environment,
    /// Unix seconds; None: never.
    pub expires_at: Option<i64>,
    pub networks: Vec<IpNet>,
    /// Email keys: `send` and/or `status`; other channels get both.
    pub events: Vec<String>,
}

/// The permission creating a key of `channel` takes now (its policy's; a name this
/// version does not know: Forbidden).
pub async fn create_permission(db: &Db, channel: &str) -> Result<Permission, AppError> {
    let channel = channel_of(channel)?;
    let policy = policies(db).await?.get(channel).clone();
    Permission::parse(&policy.create_permission).ok_or(AppError::Forbidden)
}

fn channel_of(text: &str) -> Result<&'static str, AppError> {
    CHANNELS
        .iter()
        .copied()
        .find(|c| *c == text)
        .ok_or_else(|| AppError::validation("channel", "Choose email, SMS, RCS or WhatsApp."))
}

/// Creates a channel key owned by the acting user under the channel's policy; returns
/// it and its secret.
pub async fn create(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    k: &NewChannelKey<'_>,
) -> Result<(KeyInfo, String), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.principal();
    let channel = channel_of(k.channel)?;
    if channel == "sms" {
        return Err(AppError::Refused(
            "SMS keys are made when a sender number is added (the SMS section of this page), one per number.".into(),
        ));
    }
    let policy = policies(db).await?.get(channel).clone();
    if !crate::access::may_create_channel_key(p, &policy) {
        return Err(AppError::Refused(format!(
            "The {channel} policy lets only holders of {} create its keys (Settings > Channels).",
            policy.create_permission
        )));
    }
    let name = keys::name_of("name", k.name)?;
    let nets = keys::dedup(&k.networks)?;
    if policy.require_networks && nets.is_empty() {
        return Err(AppError::validation(
            "networks",
            format!("The {channel} policy requires an IP allow-list: give at least one address or range."),
        ));
    }
    if let Some(e) = k.expires_at {
        if e <= now || e > model::keys::LATEST_EXPIRY {
            return Err(AppError::validation(
                "expires_at",
                "Choose an expiry in the future, before the year 10000.",
            ));
        }
    }
    if policy.max_expiry_days > 0 {
        let latest = now + i64::from(policy.max_expiry_days) * 86_400;
        if k.expires_at.is_none_or(|e| e > latest) {
            return Err(AppError::validation(
                "expires_at",
                format!(
                    "The {channel} policy wants keys to expire within {} days.",
                    policy.max_expiry_days
                ),
            ));
        }
    }
    let events = events_of(channel, &k.events)?;
    let app: Option<(i64,)> = sqlx::query_as("select id from apps where id = $1")
        .bind(k.app_id)
        .fetch_optional(&db.pool)
        .await?;
    if app.is_none() {
        return Err(AppError::validation("app_id", "Choose an app that exists."));
    }
    let secret = format::generate(Visibility::Secret, k.environment);
    let key_id = format::new_key_id();
    let row = Row {
        key_id: &key_id,
        secret: &secret,
        channel,
        name: &name,
        app_id: k.app_id,
        environment: k.environment.as_str(),
        nets: &nets,
        expires_at: k.expires_at,
        events: &events,
        owner_id: p.user_id(),
        replaces: None,
        grace_secs: 0,
        sender: None,
    };
    insert(cx, p, &policy, &row).await?;
    let key = keys::find_any(db, now, &key_id)
        .await?
        .ok_or(AppError::Internal)?;
    tell_owner(cx, &key, None).await;
    Ok((key, secret))
}

/// Mails a key's owner that a key was made or regenerated in their name, as for REST
/// keys: a session someone else is using shows in its owner's mail. A key that waits
/// for approval is also told to those who may approve it.
pub(crate) async fn tell_owner(cx: &Ctx<'_>, key: &KeyInfo, replaced: Option<&str>) {
    use crate::identity::notify::{self, AccountEvent};
    if key.status == "pending" {
        keys::lifecycle::tell_approvers(cx, key);
    }
    let Some(owner) = &key.owner else {
        return;
    };
    let event = match replaced {
        None => AccountEvent::KeyCreated {
            key_id: key.key_id.clone(),
            name: key.name.clone(),
        },
        Some(old) => AccountEvent::KeyRolled {
            old: old.to_owned(),
            new: key.key_id.clone(),
        },
    };
    notify::account(&cx.st.mailer, owner, event, cx.origin, cx.now).await;
}

fn events_of(channel: &str, asked: &[String]) -> Result<String, AppError> {
    if channel != "email" {
        return Ok(KEY_EVENTS.join(","));
    }
    let mut out: Vec<&str> = Vec::new();
    for e in asked {
        let e = KEY_EVENTS
            .iter()
            .find(|k| **k == e.as_str())
            .ok_or_else(|| {
                AppError::validation("events", "An email key may send and/or read status.")
            })?;
        if !out.contains(e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        return Err(AppError::validation(
            "events",
            "Choose what the key may do: send, read status, or both.",
        ));
    }
    Ok(out.join(","))
}

/// The row [`insert`] writes.
struct Row<'a> {
    key_id: &'a str,
    secret: &'a str,
    channel: &'static str,
    name: &'a str,
    app_id: i64,
    environment: &'a str,
    nets: &'a [IpNet],
    expires_at: Option<i64>,
    events: &'a str,
    /// Whose key it is: the creator's, or (regenerating) the replaced key's owner's, so
    /// that a manager regenerating someone's key does not take it over.
    owner_id: i64,
    /// Regenerating: the key this one replaces (revoked in the same transaction, or
    /// with `grace_secs` ending then).
    replaces: Option<&'a str>,
    /// Regenerating: how long the replaced key keeps working (0: it is revoked now).
    grace_secs: i64,
    /// SMS keys: their sender number.
    sender: Option<&'a str>,
}

/// Writes a channel key within its policy's limit, with its audit row and event.
async fn insert(
    cx: &Ctx<'_>,
    p: &Principal,
    policy: &ChannelPolicy,
    r: &Row<'_>,
) -> Result<(), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    if policy.reveal {
        crate::infra::sealing::ensure_current(db, now, cx.st.master_key.expose()).await?;
    }
    let mut tx = db.pool.begin().await?;
    let ev = insert_in(&mut tx, cx, p, policy, r).await?;
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    Ok(())
}

/// [`insert`] inside the caller's transaction (adding a sender number writes its key in
/// the number's); returns the audit event for the caller to commit with. (A revealable
/// policy's master-key check comes first, outside.)
async fn insert_in<'p>(
    tx: &mut sqlx::AnyConnection,
    cx: &Ctx<'_>,
    p: &'p Principal,
    policy: &ChannelPolicy,
    r: &Row<'_>,
) -> Result<Event<'p>, AppError> {
    let now = cx.now;
    // The policies' row, locked (written unchanged, or made with the presets): every
    // creation takes its turn here, so the count below cannot be raced past the limit.
    let presets = serde_json::to_string(&ChannelSettings::default()).map_err(AppError::internal)?;
    sqlx::query(
        "insert into settings (name, value, created_at, updated_at) values ($1, $2, $3, $3) \
         on conflict (name) do update set updated_at = settings.updated_at",
    )
    .bind(POLICIES)
    .bind(&presets)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // An SMS key: its number's row, locked (and still there). A removal of the number at
    // the same moment waits for this key and then revokes it, or comes first and this
    // is NotFound: never a key left for a number that is gone.
    if let Some(number) = r.sender {
        let held: Option<(i64,)> = sqlx::query_as(
            "update sender_numbers set updated_at = $2 where number = $1 returning id",
        )
        .bind(number)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Err(AppError::NotFound);
        }
    }
    // The replaced key's end: now, or at the grace deadline (the earlier of it and its
    // own expiry), as a rolled REST key's: a service reading the secret from its
    // settings gets the time to take the new one. Either way it is not revealed again.
    let mut old_until = None;
    if let Some(old) = r.replaces {
        let ended: Option<(i64,)> = if r.grace_secs == 0 {
            sqlx::query_as(
                "update api_keys set revoked_at = $2, revoked_by = $3, revoke_reason = 'Regenerated', replaced_by = $4, secret_sealed = null, updated_at = $2 \
                 where key_id = $1 and kind = 'channel' and revoked_at is null and replaced_by is null returning revoked_at",
            )
            .bind(old)
            .bind(now)
            .bind(p.user_id())
            .bind(r.key_id)
        } else {
            sqlx::query_as(
                "update api_keys set replaced_by = $2, secret_sealed = null, updated_at = $3, \
                 expires_at = case when expires_at is not null and expires_at < $4 then expires_at else $4 end \
                 where key_id = $1 and kind = 'channel' and revoked_at is null and replaced_by is null returning expires_at",
            )
            .bind(old)
            .bind(r.key_id)
            .bind(now)
            .bind(now + r.grace_secs)
        }
        .fetch_optional(&mut *tx)
        .await?;
        let Some((until,)) = ended else {
            return Err(AppError::Conflict(
                "This key was revoked or regenerated meanwhile.".into(),
            ));
        };
        old_until = Some(until);
    }
    // Counted per user, per sender number, or for the whole deployment.
    let per_user = policy.per == "user";
    let per_number = r.sender.filter(|_| policy.per == "number");
    let (active,): (i64,) = sqlx::query_as(
        "select count(*) from api_keys where kind = 'channel' and channel = $1 and revoked_at is null \
         and (expires_at is null or expires_at > $2) and (owner_id = $3 or $4 = 0) \
         and (sender = $5 or $6 = 0)",
    )
    .bind(r.channel)
    .bind(now)
    .bind(r.owner_id)
    .bind(i64::from(per_user))
    .bind(per_number.unwrap_or_default())
    .bind(i64::from(per_number.is_some()))
    .fetch_one(&mut *tx)
    .await?;
    if active >= i64::from(policy.max_active) {
        let whose = if per_user {
            "You have"
        } else if per_number.is_some() {
            "This number has"
        } else {
            "The deployment has"
        };
        return Err(AppError::Conflict(format!(
            "{whose} {active} active {} keys; the {} policy allows {}. Revoke one first (a key regenerated with a grace period counts until it ends: regenerate with no grace, or revoke the key it replaced).",
            r.channel, r.channel, policy.max_active
        )));
    }
    let sealed = policy.reveal.then(|| {
        crypto::seal(
            cx.st.master_key.expose(),
            &aad(r.key_id),
            r.secret.as_bytes(),
        )
    });
    // With Settings > Keys' approval on, a new key waits for it, as a REST key does (a
    // regeneration's replacement never waits: only a working key is regenerated).
    let pending = r.replaces.is_none() && crate::settings::keys(&cx.st.db).await?.require_approval;
    sqlx::query(
        "insert into api_keys (key_id, kind, channel, app_id, environment, owner_id, name, role_id, secret_hash, last4, \
         networks, expires_at, key_events, secret_sealed, rolled_from, sender, pending_at, created_at, updated_at) \
         values ($1, 'channel', $2, $3, $4, $5, $6, null, $7, $8, $9, $10, $11, $12, $13, $15, $16, $14, $14)",
    )
    .bind(r.key_id)
    .bind(r.channel)
    .bind(r.app_id)
    .bind(r.environment)
    .bind(r.owner_id)
    .bind(r.name)
    .bind(format::hash(r.secret))
    .bind(format::last4(r.secret))
    .bind(keys::join(r.nets))
    .bind(r.expires_at)
    .bind(r.events)
    .bind(sealed)
    .bind(r.replaces)
    .bind(now)
    .bind(r.sender)
    .bind(pending.then_some(now))
    .execute(&mut *tx)
    .await?;
    let (action, event) = match r.replaces {
        None => ("channel_key.created", "key.created"),
        Some(_) => ("channel_key.regenerated", "key.rolled"),
    };
    let mut details = serde_json::json!({ "channel": r.channel, "app_id": r.app_id, "environment": r.environment, "events": r.events, "sender": r.sender });
    let mut extra = serde_json::json!({ "channel": r.channel });
    // A regeneration: the key replaced, the grace asked for, and when that key ends.
    if let (Some(old), Some(until)) = (r.replaces, old_until) {
        for (k, v) in [
            ("replaces", serde_json::json!(old)),
            ("grace_seconds", serde_json::json!(r.grace_secs)),
            ("old_key_works_until", serde_json::json!(until)),
        ] {
            details[k] = v;
        }
        extra["rolled_from"] = serde_json::json!(old);
        extra["old_key_works_until"] = serde_json::json!(until);
    }
    let ev = Event::success(
        p.actor(),
        action,
        cx.origin,
        Some(r.key_id.to_owned()),
        details,
    );
    events::key_event(&mut *tx, now, event, r.key_id, extra).await?;
    Ok(ev)
}

/// What is being done to a channel key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Reveal,
    Regenerate,
    Revoke,
}

/// A channel key `p` may `act` on (`access::may_act_on_channel_key`): NotFound when it
/// is not theirs and they do not manage channel keys (as for a key that does not
/// exist); Refused when it is someone else's and they would reveal or regenerate it, or
/// revoke the key of someone who holds more, or when it is theirs but revealing or
/// regenerating needs the channel's create permission, which they no longer hold.
async fn actionable(
    db: &Db,
    now: i64,
    p: &Principal,
    key_id: &str,
    act: Act,
) -> Result<(KeyInfo, ChannelPolicy), AppError> {
    let key = keys::find_any(db, now, key_id)
        .await?
        .filter(|k| k.kind == "channel")
        .ok_or(AppError::NotFound)?;
    let channel = key.channel.clone().unwrap_or_default();
    let policy = policies(db).await?.get(&channel).clone();
    // Someone else's key: what its owner holds now, which a manager must hold too.
    let owner = match key.owner_id.filter(|o| *o != p.user_id()) {
        Some(o) if act == Act::Revoke && p.has(Permission::ChannelKeyManage) => {
            keys::owner_role(db, o).await.map(Some)?
        }
        _ => None,
    };
    crate::access::may_act_on_channel_key(
        p,
        key.owner_id,
        owner.as_ref().map(|(role, perms)| (*role, perms)),
        &policy,
        act == Act::Revoke,
    )?;
    if key.status != "active" {
        return Err(AppError::Conflict(format!(
            "This key is {}: only an active key can be changed.",
            key.status
        )));
    }
    // A key in its grace period after a regeneration: revoked early, never revealed or
    // regenerated again (its replacement is).
    if let (Some(new), true) = (&key.replaced_by, act != Act::Revoke) {
        return Err(AppError::Conflict(format!(
            "This key was regenerated: {new} replaces it."
        )));
    }
    Ok((key, policy))
}

/// The secret of a revealable key (the adapter checks the password first), audited.
pub async fn reveal(cx: &Ctx<'_>, grant: &Grant<'_>, key_id: &str) -> Result<String, AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyView)?;
    let (key, policy) = actionable(db, now, p, key_id, Act::Reveal).await?;
    if !policy.reveal {
        return Err(AppError::Refused(
            "This channel's keys are shown once, when they are made: regenerate it if it was lost."
                .into(),
        ));
    }
    let sealed: Option<(Option<String>,)> =
        sqlx::query_as("select secret_sealed from api_keys where key_id = $1")
            .bind(&key.key_id)
            .fetch_optional(&db.pool)
            .await?;
    let Some((Some(sealed),)) = sealed else {
        return Err(AppError::Refused(
            "This key was made when its channel's keys were shown once: it cannot be revealed. Regenerate it instead.".into(),
        ));
    };
    crate::infra::sealing::ensure_current(db, now, cx.st.master_key.expose()).await?;
    let secret = crypto::open(cx.st.master_key.expose(), &aad(&key.key_id), &sealed).map_err(|_| {
        tracing::error!(key_id = %key.key_id, "a sealed channel key does not open with the current master key (altered?)");
        AppError::Conflict(
            "This key's stored secret cannot be opened: regenerate the key (or revoke it and make another).".into(),
        )
    })?;
    let secret = String::from_utf8(secret).map_err(AppError::internal)?;
    let ev = Event::success(
        p.actor(),
        "channel_key.revealed",
        cx.origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "channel": key.channel }),
    );
    audit::record(db, now, &ev).await?;
    Ok(secret)
}

/// Replaces a key with a new one of the same settings, when the channel's policy allows
/// it; the old one stops at once, or keeps working for `grace_secs` (at most 7 days).
/// Returns the new key and its secret.
pub async fn regenerate(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    key_id: &str,
    grace_secs: i64,
) -> Result<(KeyInfo, String), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    keys::check_grace("grace", grace_secs)?;
    let p = grant.ensure(Permission::ApiKeyView)?;
    let (old, policy) = actionable(db, now, p, key_id, Act::Regenerate).await?;
    if !policy.regenerate {
        return Err(AppError::Refused(format!(
            "The {} policy does not allow regenerating its keys.",
            old.channel.as_deref().unwrap_or_default()
        )));
    }
    let channel = channel_of(old.channel.as_deref().unwrap_or_default())?;
    let env = format::Environment::parse(&old.environment).ok_or(AppError::Internal)?;
    let nets = keys::networks_of("networks", &old.networks)?;
    let secret = format::generate(Visibility::Secret, env);
    let new_id = format::new_key_id();
    let events = old.key_events.join(",");
    let row = Row {
        key_id: &new_id,
        secret: &secret,
        channel,
        name: &old.name,
        app_id: old.app_id,
        environment: env.as_str(),
        nets: &nets,
        expires_at: old.expires_at,
        events: &events,
        owner_id: old.owner_id.unwrap_or(p.user_id()),
        replaces: Some(&old.key_id),
        grace_secs,
        sender: old.sender.as_deref(),
    };
    // The old key leaves the count as the new one enters it.
    let mut unlimited = policy.clone();
    unlimited.max_active = unlimited.max_active.saturating_add(1);
    insert(cx, p, &unlimited, &row).await?;
    let key = keys::find_any(db, now, &new_id)
        .await?
        .ok_or(AppError::Internal)?;
    tell_owner(cx, &key, Some(&old.key_id)).await;
    Ok((key, secret))
}

/// Revokes a channel key at once, for good.
pub async fn revoke(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    key_id: &str,
    reason: &str,
) -> Result<(), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyView)?;
    let (key, _) = actionable(db, now, p, key_id, Act::Revoke).await?;
    let reason = reason.trim();
    if reason.chars().count() > keys::MAX_REASON_CHARS {
        return Err(AppError::validation("reason", "At most 500 characters."));
    }
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update api_keys set revoked_at = $2, revoked_by = $3, revoke_reason = $4, secret_sealed = null, updated_at = $2 \
         where key_id = $1 and revoked_at is null",
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
        cx.origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "reason": reason, "channel": key.channel }),
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
    cx.st.keys.bump();
    Ok(())
}
