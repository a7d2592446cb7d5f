//! A key's life after its creation, beyond roll and revoke: approval before it works,
//! and disabling when it goes unused (both Settings > Keys, both off by default).
//!
//! Approval: with `require_approval` on, a new key is written `pending` (`pending_at`)
//! and verification refuses it with `key_pending`. Someone holding `api.key.approve`
//! who is not its owner, and who holds every permission the key would have
//! (`access::may_decide_key`), approves it (it works from then on) or rejects it with a
//! reason (it is revoked, for good). Channel keys wait the same way (what they would do
//! is write their channel's messages: deciding on one takes `message.create`). The decision is a conditional update on
//! `pending_at is not null`, in one transaction with its audit row, so two approvers
//! clicking at once decide once; the owner is mailed. A roll's replacement is never
//! pending: only an approved key rolls, and the replacement must work before the grace
//! period of the key it replaces ends.
//!
//! Disuse: with `disable_unused_days` = N > 0, the job ([`disable_unused`]) disables
//! every active key whose latest of creation, last use and last (re-)enabling is N days
//! or more ago; verification refuses it with `key_disabled`. Each key is claimed by the
//! statement that disables it (`for update skip locked` on PostgreSQL, the single
//! writer on SQLite), audited as `api_key.disabled` by the system in the same
//! transaction, and its owner mailed: however many instances run the job, once.
//! Its owner, or someone who may act on the owner's keys, enables it again
//! ([`enable`]) within the active-key limit (disabled keys do not count towards it).

use super::{check_key_owner, visible_key, KeyInfo};
use crate::{
    access::{role_permissions, Grant, Principal},
    audit::{self, Actor, Event, Origin},
    identity::notify::{self, AccountEvent},
    infra::db::{Backend, Db},
    messages::events,
    state::{Core, Ctx},
};
use model::error::AppError;
use model::roles::Permission;

/// Pending keys the queue shows at most.
pub const QUEUE_LIMIT: i64 = 100;

/// The keys waiting for `p`'s approval: pending, not expired, not `p`'s own, oldest
/// first, at most [`QUEUE_LIMIT`].
pub async fn queue(db: &Db, now: i64, p: &Principal) -> Result<Vec<KeyInfo>, AppError> {
    if !p.has(Permission::ApiKeyApprove) {
        return Err(AppError::Forbidden);
    }
    let rows: Vec<super::KeyRow> = sqlx::query_as(&format!(
        "{} where k.pending_at is not null and k.revoked_at is null \
         and (k.expires_at is null or k.expires_at > $1) and coalesce(k.owner_id, 0) <> $2 \
         order by k.pending_at, k.id limit $3",
        super::KEY_SELECT
    ))
    .bind(now)
    .bind(p.user_id())
    .bind(QUEUE_LIMIT)
    .fetch_all(&db.pool)
    .await?;
    // Only the keys `p` may approve: nobody is shown a request (an owner, a role,
    // networks) they could not decide on.
    let mut out = Vec::new();
    for r in rows {
        let key = super::key_info(now, r);
        if may_decide(db, p, &key, false).await?.is_ok() {
            out.push(key);
        }
    }
    Ok(out)
}

/// How many keys wait for `p`'s decision (those [`queue`] lists); 0 without
/// `api.key.approve`.
pub async fn waiting(db: &Db, now: i64, p: &Principal) -> Result<i64, AppError> {
    if !p.has(Permission::ApiKeyApprove) {
        return Ok(0);
    }
    Ok(queue(db, now, p).await?.len() as i64)
}

/// A pending key `p` may decide on: it exists and waits (else NotFound or Conflict),
/// and `access::may_decide_key` allows it.
async fn decidable(
    db: &Db,
    now: i64,
    p: &Principal,
    key_id: &str,
    rejecting: bool,
) -> Result<KeyInfo, AppError> {
    // (REST or channel keys: both may wait.)
    let key = super::find_any(db, now, key_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if key.status != "pending" {
        return Err(AppError::Conflict(format!(
            "This key is {}: only a key waiting for approval can be approved or rejected.",
            key.status
        )));
    }
    may_decide(db, p, &key, rejecting).await??;
    Ok(key)
}

/// Whether `p` may approve `key` (`Ok(Err(why))` when not): never their own key, and
/// only a role they could give themselves (`access::may_decide_key`). Rejecting it (a
/// revocation) also follows the rule of revoking (`access::may_act_on_key`: not the key
/// of someone holding more).
async fn may_decide(
    db: &Db,
    p: &Principal,
    key: &KeyInfo,
    rejecting: bool,
) -> Result<Result<(), AppError>, AppError> {
    let Some(owner) = key.owner_id else {
        return Ok(Err(AppError::NotFound));
    };
    // What the key would do: its role's permissions; a channel key (no role) only
    // writes its channel's messages for its owner (role 0: no built-in role).
    let (role, role_perms) = match (key.role_id, key.kind.as_str()) {
        (Some(role), _) => (role, role_permissions(db, role).await?),
        (None, "channel") => (
            0,
            std::collections::BTreeSet::from([Permission::MessageCreate]),
        ),
        _ => return Ok(Err(AppError::NotFound)),
    };
    let verdict = crate::access::may_decide_key(p, key.owner_id, role, &role_perms);
    if verdict.is_err() || !rejecting {
        return Ok(verdict);
    }
    let (owner_role, owner_perms) = super::owner_role(db, owner).await?;
    Ok(crate::access::may_act_on_key(
        p,
        key.owner_id,
        owner_role,
        &owner_perms,
    ))
}

/// Approves a pending key: it works from now on. Returns it.
pub async fn approve(cx: &Ctx<'_>, grant: &Grant<'_>, key_id: &str) -> Result<KeyInfo, AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyApprove)?;
    let key = decidable(db, now, p, key_id, false).await?;
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update api_keys set pending_at = null, approved_by = $2, approved_at = $3, enabled_at = $3, updated_at = $3 \
         where key_id = $1 and pending_at is not null and revoked_at is null",
    )
    .bind(&key.key_id)
    .bind(p.user_id())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "Someone decided on this key meanwhile.".into(),
        ));
    }
    let ev = Event::success(
        p.actor(),
        "api_key.approved",
        cx.origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "owner_id": key.owner_id }),
    );
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    tell_owner(
        cx,
        &key,
        AccountEvent::KeyApproved {
            key_id: key.key_id.clone(),
            name: key.name.clone(),
        },
    )
    .await;
    Ok(super::find_any(db, now, key_id).await?.unwrap_or(key))
}

/// Rejects a pending key with a reason (required: its owner reads it): it is revoked,
/// for good.
pub async fn reject(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    key_id: &str,
    reason: &str,
) -> Result<KeyInfo, AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyApprove)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::validation(
            "reason",
            "Say why, for the key's owner.",
        ));
    }
    if reason.chars().count() > super::MAX_REASON_CHARS {
        return Err(AppError::validation(
            "reason",
            format!("At most {} characters.", super::MAX_REASON_CHARS),
        ));
    }
    let key = decidable(db, now, p, key_id, true).await?;
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "update api_keys set pending_at = null, revoked_at = $2, revoked_by = $3, revoke_reason = $4, updated_at = $2 \
         where key_id = $1 and pending_at is not null and revoked_at is null",
    )
    .bind(&key.key_id)
    .bind(now)
    .bind(p.user_id())
    .bind(format!("Not approved: {reason}"))
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "Someone decided on this key meanwhile.".into(),
        ));
    }
    let ev = Event::success(
        p.actor(),
        "api_key.rejected",
        cx.origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "owner_id": key.owner_id, "reason": reason }),
    );
    let why = serde_json::json!({ "reason": format!("Not approved: {reason}") });
    events::key_event(&mut tx, now, "key.revoked", &key.key_id, why).await?;
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    tell_owner(
        cx,
        &key,
        AccountEvent::KeyRejected {
            key_id: key.key_id.clone(),
            name: key.name.clone(),
            reason: reason.to_owned(),
        },
    )
    .await;
    Ok(super::find_any(db, now, key_id).await?.unwrap_or(key))
}

/// Approvers mailed about one waiting key, at most (the rest see it on the overview).
const APPROVERS_MAILED: i64 = 20;

/// Mails everyone who holds `api.key.approve`, but the key's owner, that `key` waits
/// for them; in the background (the creation does not wait for the mail server).
pub(crate) fn tell_approvers(cx: &Ctx<'_>, key: &KeyInfo) {
    let (db, mailer, now) = (cx.st.db.clone(), cx.st.mailer.clone(), cx.now);
    let (origin, public) = (cx.origin.clone(), cx.st.config.public_url.url.clone());
    let (key_id, name, owner_id) = (key.key_id.clone(), key.name.clone(), key.owner_id);
    let owner = key.owner.clone().unwrap_or_else(|| "someone".into());
    tokio::spawn(async move {
        let to = match crate::identity::users::holders_of(
            &db,
            Permission::ApiKeyApprove,
            APPROVERS_MAILED + 1,
        )
        .await
        {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(error = %e, "the approvers were not told of a waiting key (database)");
                return;
            }
        };
        let link = format!("{}/approvals", public.trim_end_matches('/'));
        for (_, email) in to
            .into_iter()
            .filter(|(id, _)| Some(*id) != owner_id)
            .take(APPROVERS_MAILED as usize)
        {
            let ev = AccountEvent::KeyAwaitsApproval {
                key_id: key_id.clone(),
                name: name.clone(),
                owner: owner.clone(),
                link: link.clone(),
            };
            notify::account(&mailer, &email, ev, &origin, now).await;
        }
    });
}

/// Mails the key's owner, when their account is active.
async fn tell_owner(cx: &Ctx<'_>, key: &KeyInfo, ev: AccountEvent) {
    let Some(owner) = key.owner_id else { return };
    let to: Result<Option<(String,)>, _> =
        sqlx::query_as("select email from users where id = $1 and status = 'active'")
            .bind(owner)
            .fetch_optional(&cx.st.db.pool)
            .await;
    match to {
        Ok(Some((to,))) => notify::account(&cx.st.mailer, &to, ev, cx.origin, cx.now).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "the key's owner was not told (database)"),
    }
}

/// Enables a key disabled for disuse: its owner, or someone who may change the owner's
/// keys (`api.key.update`, and `access::may_act_on_key`), within Settings > Keys' limit
/// of active keys per user and app. Disuse is counted again from now.
pub async fn enable(cx: &Ctx<'_>, grant: &Grant<'_>, key_id: &str) -> Result<KeyInfo, AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let p = grant.ensure(Permission::ApiKeyUpdate)?;
    let key = visible_key(db, now, p, key_id).await?;
    check_key_owner(db, p, &key).await?;
    if key.status != "disabled" {
        return Err(AppError::Conflict(format!(
            "This key is {}: only a disabled key can be enabled.",
            key.status
        )));
    }
    let limit = crate::settings::keys(db).await?.max_active_per_user_per_app;
    let mut tx = db.pool.begin().await?;
    // The app's row first: creations and enablings for it take turns, so the count
    // below cannot be raced past the limit (as in `insert_key`).
    sqlx::query("update apps set updated_at = updated_at where id = $1")
        .bind(key.app_id)
        .execute(&mut *tx)
        .await?;
    let (active,): (i64,) = sqlx::query_as(
        "select count(*) from api_keys where kind = 'rest' and owner_id = $1 and app_id = $2 \
         and revoked_at is null and (expires_at is null or expires_at > $3) and disabled_at is null",
    )
    .bind(key.owner_id)
    .bind(key.app_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if active >= i64::from(limit) {
        return Err(AppError::Conflict(format!(
            "The key's owner already has {active} active keys for this app; the limit is {limit}. Revoke one no longer used, then enable this one."
        )));
    }
    let r = sqlx::query(
        "update api_keys set disabled_at = null, enabled_at = $2, updated_at = $2 \
         where key_id = $1 and disabled_at is not null and revoked_at is null",
    )
    .bind(&key.key_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "This key changed meanwhile: reload the page.".into(),
        ));
    }
    let ev = Event::success(
        p.actor(),
        "api_key.enabled",
        cx.origin,
        Some(key.key_id.clone()),
        serde_json::json!({ "disabled_at": key.disabled_at }),
    );
    audit::commit(tx, now, &ev).await?;
    cx.st.keys.bump();
    visible_key(db, now, p, key_id).await
}

/// Keys one claim takes.
const CLAIM: i64 = 50;

/// A key the job disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub key_id: String,
    pub owner_id: Option<i64>,
}

fn claim_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => " for update skip locked",
        Backend::Sqlite => "",
    };
    // Unused since `$2`: created, last used and last enabled (or approved) all at or
    // before it. Pending keys wait for a decision, not for use.
    format!(
        "update api_keys set disabled_at = $1, updated_at = $1 where id in (\
           select id from api_keys where kind = 'rest' and revoked_at is null \
           and disabled_at is null and pending_at is null \
           and (expires_at is null or expires_at > $1) \
           and created_at <= $2 and coalesce(last_used_at, 0) <= $2 and coalesce(enabled_at, 0) <= $2 \
           order by id limit $3{lock}) \
         and disabled_at is null \
         returning key_id, name, owner_id, last_used_at"
    )
}

/// Disables every key unused for Settings > Keys' `disable_unused_days` (nothing when
/// 0); audits each and mails its owner. Returns what it disabled.
pub async fn disable_unused(st: &Core) -> Result<Vec<Disabled>, AppError> {
    let days = crate::settings::keys(&st.db).await?.disable_unused_days;
    let mut out = Vec::new();
    if days == 0 {
        return Ok(out);
    }
    loop {
        let now = st.clock.now();
        let since = now - i64::from(days) * 86_400;
        let mut tx = st.db.pool.begin().await?;
        let rows: Vec<(String, String, Option<i64>, Option<i64>)> =
            sqlx::query_as(&claim_sql(st.db.backend))
                .bind(now)
                .bind(since)
                .bind(CLAIM)
                .fetch_all(&mut *tx)
                .await?;
        if rows.is_empty() {
            return Ok(out);
        }
        for (key_id, _, _, last_used_at) in &rows {
            let ev = Event::success(
                Actor::System,
                "api_key.disabled",
                &Origin::default(),
                Some(key_id.clone()),
                serde_json::json!({ "unused_days": days, "last_used_at": last_used_at }),
            );
            audit::record_in(&mut tx, now, &ev).await?;
            let extra = serde_json::json!({ "unused_days": days, "last_used_at": last_used_at });
            events::key_event(&mut tx, now, "key.disabled", key_id, extra).await?;
        }
        tx.commit().await?;
        st.keys.bump();
        for (key_id, name, owner_id, _) in rows {
            if let Some(owner) = owner_id {
                let to: Option<(String,)> =
                    sqlx::query_as("select email from users where id = $1 and status = 'active'")
                        .bind(owner)
                        .fetch_optional(&st.db.pool)
                        .await?;
                if let Some((to,)) = to {
                    let ev = AccountEvent::KeyDisabled {
                        key_id: key_id.clone(),
                        name,
                        days,
                        link: format!(
                            "{}/keys/{key_id}",
                            st.config.public_url.url.trim_end_matches('/')
                        ),
                    };
                    notify::account(&st.mailer, &to, ev, &Origin::default(), now).await;
                }
            }
            tracing::info!(key_id = %key_id, days, "an API key unused for too long was disabled");
            out.push(Disabled { key_id, owner_id });
        }
    }
}
