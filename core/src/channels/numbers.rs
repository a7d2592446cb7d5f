//! Sender numbers: the E.164 numbers an app sends SMS from (`app.manage`), unique in the
//! deployment. Each has one SMS channel key, written in the same transaction as the
//! number (a number never exists without its key being counted, nor the other way):
//! adding a number makes its key and shows the secret once; removing the number revokes
//! its key; a number whose key was revoked gets a new one with "Make its key". The key
//! sends only from its own number (`VerifiedKey::may_write`).

use super::{insert_in, policies, Row};
use crate::{
    access::{Grant, Principal},
    audit::{self, Event},
    infra::db::{Db, OnUnique as _},
    infra::phone,
    keys::{self, format, format::Visibility},
    messages::events,
    state::Ctx,
};
use ipnet::IpNet;
use model::error::AppError;
use model::keys::{KeyInfo, SenderNumber};
use model::roles::Permission;

/// Numbers an app may have (a bound on what one form can make the panel list).
pub const MAX_PER_APP: i64 = 100;

#[derive(sqlx::FromRow)]
struct NumberRow {
    id: i64,
    app_id: i64,
    app: String,
    number: String,
    key_id: Option<String>,
    created_at: i64,
}

/// `$1` is now: a key past its expiry is no longer the number's key (it sends nothing,
/// and the policy's count lets "Make its key" make another).
const SELECT: &str = "select n.id, n.app_id, a.name as app, n.number, n.created_at, \
     (select k.key_id from api_keys k where k.kind = 'channel' and k.channel = 'sms' and k.sender = n.number \
       and k.revoked_at is null and k.replaced_by is null and (k.expires_at is null or k.expires_at > $1) \
       order by k.id desc limit 1) as key_id \
     from sender_numbers n join apps a on a.id = n.app_id";

impl From<NumberRow> for SenderNumber {
    fn from(r: NumberRow) -> Self {
        Self {
            id: r.id,
            app_id: r.app_id,
            app: r.app,
            number: r.number,
            key_id: r.key_id,
            created_at: r.created_at,
        }
    }
}

/// Every sender number (numbers are not secret: anyone who sees channel keys sees them).
pub async fn list(db: &Db, now: i64, p: &Principal) -> Result<Vec<SenderNumber>, AppError> {
    if !p.has(Permission::ApiKeyView) {
        return Err(AppError::Forbidden);
    }
    let rows: Vec<NumberRow> = sqlx::query_as(&format!("{SELECT} order by a.name, n.number"))
        .bind(now)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The sender numbers of one app, for the compose form and the REST check.
pub async fn of_app(db: &Db, app_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("select number from sender_numbers where app_id = $1 order by number")
            .bind(app_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// Every sender number (Settings > General: the one SMS codes come from).
pub async fn all(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("select number from sender_numbers order by number")
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// A number to add, as typed.
pub struct NewNumber<'a> {
    pub app_id: i64,
    pub number: &'a str,
    pub environment: format::Environment,
    /// The key's own allow-list (required when the SMS policy says so).
    pub networks: Vec<IpNet>,
}

/// Adds a sender number to an app and makes its SMS key; returns both and the key's
/// secret (shown once unless the SMS policy makes keys revealable).
pub async fn add(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    n: &NewNumber<'_>,
) -> Result<(SenderNumber, KeyInfo, String), AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let (db, now) = (&cx.st.db, cx.now);
    let number = phone::e164("number", n.number)?;
    let app: Option<(i64,)> = sqlx::query_as("select id from apps where id = $1")
        .bind(n.app_id)
        .fetch_optional(&db.pool)
        .await?;
    if app.is_none() {
        return Err(AppError::validation("app_id", "Choose an app that exists."));
    }
    let (count,): (i64,) = sqlx::query_as("select count(*) from sender_numbers where app_id = $1")
        .bind(n.app_id)
        .fetch_one(&db.pool)
        .await?;
    if count >= MAX_PER_APP {
        return Err(AppError::Conflict(format!(
            "This app has {count} sender numbers, the most one app may have. Remove one first."
        )));
    }
    let nets = keys::dedup(&n.networks)?;
    let policy = policies(db).await?.sms;
    if policy.reveal {
        crate::infra::sealing::ensure_current(db, now, cx.st.master_key.expose()).await?;
    }
    let mut tx = db.pool.begin().await?;
    let inserted = sqlx::query(
        "insert into sender_numbers (app_id, number, created_by, created_at, updated_at) values ($1, $2, $3, $4, $4)",
    )
    .bind(n.app_id)
    .bind(&number)
    .bind(p.user_id())
    .bind(now)
    .execute(&mut *tx)
    .await;
    inserted.on_unique(|| {
        AppError::validation(
            "number",
            format!("{number} is already a sender number (of this or another app)."),
        )
    })?;
    let (key_ev, key_id, secret) =
        key_for(&mut tx, cx, p, &number, n.app_id, n.environment, &nets).await?;
    audit::record_in(&mut tx, now, &key_ev).await?;
    let ev = Event::success(
        p.actor(),
        "sender_number.added",
        cx.origin,
        Some(number.clone()),
        serde_json::json!({ "app_id": n.app_id, "key_id": key_id }),
    );
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    let key = keys::find_any(db, now, &key_id)
        .await?
        .ok_or(AppError::Internal)?;
    super::tell_owner(cx, &key, None).await;
    let row = find(db, now, &number).await?.ok_or(AppError::Internal)?;
    Ok((row, key, secret))
}

async fn find(db: &Db, now: i64, number: &str) -> Result<Option<SenderNumber>, sqlx::Error> {
    let row: Option<NumberRow> = sqlx::query_as(&format!("{SELECT} where n.number = $2"))
        .bind(now)
        .bind(number)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(Into::into))
}

/// Writes the SMS key of `number` in the caller's transaction, under the SMS policy (its
/// expiry, allow-list and one-per-number count); returns the audit event, key id and
/// secret.
async fn key_for<'p>(
    tx: &mut sqlx::AnyConnection,
    cx: &Ctx<'_>,
    p: &'p Principal,
    number: &str,
    app_id: i64,
    environment: format::Environment,
    nets: &[IpNet],
) -> Result<(Event<'p>, String, String), AppError> {
    let policy = policies(&cx.st.db).await?.sms;
    if policy.require_networks && nets.is_empty() {
        return Err(AppError::validation(
            "networks",
            "The SMS policy requires an IP allow-list: give at least one address or range.",
        ));
    }
    let expires_at =
        (policy.max_expiry_days > 0).then(|| cx.now + i64::from(policy.max_expiry_days) * 86_400);
    let secret = format::generate(Visibility::Secret, environment);
    let key_id = format::new_key_id();
    let name = format!("SMS {number}");
    let events = super::KEY_EVENTS.join(",");
    let row = Row {
        key_id: &key_id,
        secret: &secret,
        channel: "sms",
        name: &name,
        app_id,
        environment: environment.as_str(),
        nets,
        expires_at,
        events: &events,
        owner_id: p.user_id(),
        replaces: None,
        grace_secs: 0,
        sender: Some(number),
    };
    let ev = insert_in(tx, cx, p, &policy, &row).await?;
    Ok((ev, key_id, secret))
}

/// A number by its id, else NotFound.
async fn by_id(db: &Db, now: i64, id: i64) -> Result<SenderNumber, AppError> {
    let row: Option<NumberRow> = sqlx::query_as(&format!("{SELECT} where n.id = $2"))
        .bind(now)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.map(Into::into).ok_or(AppError::NotFound)
}

/// Makes a new key for a number whose key was revoked (or expired).
pub async fn new_key(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    id: i64,
    environment: format::Environment,
    networks: Vec<IpNet>,
) -> Result<(KeyInfo, String), AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let (db, now) = (&cx.st.db, cx.now);
    let number = by_id(db, now, id).await?;
    // One key per number, whatever the SMS policy counts by (a second would be made
    // by a hand-made post only: the page offers this for a number without a key).
    if let Some(key_id) = &number.key_id {
        return Err(AppError::Conflict(format!(
            "{} already has a working key ({key_id}): regenerate it, or revoke it first.",
            number.number
        )));
    }
    let nets = keys::dedup(&networks)?;
    if policies(db).await?.sms.reveal {
        crate::infra::sealing::ensure_current(db, now, cx.st.master_key.expose()).await?;
    }
    // The number's row is locked by the key's insert (`insert_in`).
    let mut tx = db.pool.begin().await?;
    let (ev, key_id, secret) = key_for(
        &mut tx,
        cx,
        p,
        &number.number,
        number.app_id,
        environment,
        &nets,
    )
    .await?;
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    let key = keys::find_any(db, now, &key_id)
        .await?
        .ok_or(AppError::Internal)?;
    super::tell_owner(cx, &key, None).await;
    Ok((key, secret))
}

/// Removes a sender number: its keys are revoked at once, in the same transaction;
/// messages still waiting to go from it fail when their turn comes.
pub async fn remove(cx: &Ctx<'_>, grant: &Grant<'_>, id: i64) -> Result<(), AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let (db, now) = (&cx.st.db, cx.now);
    let number = by_id(db, now, id).await?;
    let mut tx = db.pool.begin().await?;
    // Settings > General's row first: a save naming this number waits, or is seen.
    crate::settings::lock_security(&mut tx, &cx.st.config, now).await?;
    let rules = crate::settings::security_in(&mut tx, &cx.st.config).await?;
    if rules.accept_sms_code && rules.sms_code_from == number.number {
        return Err(AppError::Conflict(format!(
            "{} sends the sign-in codes (Settings > General): choose another number there, or turn SMS codes off, first.",
            number.number
        )));
    }
    let gone = sqlx::query("delete from sender_numbers where id = $1 and number = $2")
        .bind(id)
        .bind(&number.number)
        .execute(&mut *tx)
        .await?;
    if gone.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    let revoked: Vec<(String,)> = sqlx::query_as(
        "update api_keys set revoked_at = $2, revoked_by = $3, revoke_reason = 'Sender number removed', secret_sealed = null, updated_at = $2 \
         where kind = 'channel' and channel = 'sms' and sender = $1 and revoked_at is null returning key_id",
    )
    .bind(&number.number)
    .bind(now)
    .bind(p.user_id())
    .fetch_all(&mut *tx)
    .await?;
    for (key_id,) in &revoked {
        events::key_event(
            &mut tx,
            now,
            "key.revoked",
            key_id,
            serde_json::json!({ "reason": "Sender number removed" }),
        )
        .await?;
    }
    let ev = Event::success(
        p.actor(),
        "sender_number.removed",
        cx.origin,
        Some(number.number.clone()),
        serde_json::json!({ "app_id": number.app_id, "revoked": revoked.iter().map(|(k,)| k).collect::<Vec<_>>() }),
    );
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    Ok(())
}
