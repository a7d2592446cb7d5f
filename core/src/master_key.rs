//! `keyward master-key rotate`: re-seals everything sealed with the master key — TOTP
//! seeds, webhook signing secrets, revealable channel keys — with a new key, in one
//! transaction (all or nothing), and says how many of each.
//!
//! Every sealed value is opened with the current key first: one that does not open
//! stops the rotation before anything is written (the current key is not the one the
//! data was sealed with, or a row was tampered with). The master key also derives the
//! tags of known browsers and of signed form errors: after a rotation those are
//! unknown, so each browser's next sign-in is announced as a first one.
//!
//! The database records which key it is sealed with (`infra::sealing`): the rotation
//! changes that record first, in its transaction, so an instance still running with the
//! old key seals nothing more (it answers 503 until restarted with the new key).

use crate::{
    audit::{self, Actor, Event, Origin},
    channels,
    identity::totp,
    infra::{crypto, db::Db, sealing},
    messages::webhooks,
};
use model::error::AppError;

/// What a rotation re-sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub totp_seeds: usize,
    pub webhook_secrets: usize,
    pub channel_keys: usize,
}

fn reseal(
    old: &[u8; 32],
    new: &[u8; 32],
    aad: &[u8],
    sealed: &str,
    what: &str,
) -> Result<String, AppError> {
    let plain = crypto::open(old, aad, sealed).map_err(|_| {
        AppError::Refused(format!(
            "{what} does not open with the current master key: is KEYWARD_MASTER_KEY the key this data was sealed with? Nothing was changed."
        ))
    })?;
    Ok(crypto::seal(new, aad, &plain))
}

/// Re-seals every sealed value from `old` to `new` in one transaction, audited as
/// `master_key.rotated` by Keyward.
pub async fn rotate(
    db: &Db,
    now: i64,
    old: &[u8; 32],
    new: &[u8; 32],
) -> Result<Rotated, AppError> {
    if old == new {
        return Err(AppError::validation(
            "new_key_file",
            "The new master key is the current one.",
        ));
    }
    if !sealing::is_current(db, now, old).await? {
        return Err(AppError::Refused(
            "The current master key (KEYWARD_MASTER_KEY) is not the one this database is sealed with. Nothing was changed.".into(),
        ));
    }
    let mut tx = db.pool.begin().await?;
    // The record of the key first: an instance still running with the old key waits
    // for this transaction, then seals nothing more with it.
    sealing::record(&mut tx, now, new).await?;
    let seeds: Vec<(i64, String)> =
        sqlx::query_as("select user_id, secret_enc from user_totp order by user_id")
            .fetch_all(&mut *tx)
            .await?;
    for (user_id, sealed) in &seeds {
        let fresh = reseal(
            old,
            new,
            &totp::aad(*user_id),
            sealed,
            &format!("The TOTP seed of user {user_id}"),
        )?;
        sqlx::query("update user_totp set secret_enc = $2, updated_at = $3 where user_id = $1")
            .bind(user_id)
            .bind(fresh)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let hooks: Vec<(i64, i64, String, String)> =
        sqlx::query_as("select id, app_id, url, secret_sealed from webhook_endpoints order by id")
            .fetch_all(&mut *tx)
            .await?;
    for (id, app_id, url, sealed) in &hooks {
        let what = format!("The secret of webhook URL #{id}");
        let fresh = reseal(
            old,
            new,
            &webhooks::webhook_aad(*app_id, url),
            sealed,
            &what,
        )?;
        sqlx::query(
            "update webhook_endpoints set secret_sealed = $2, updated_at = $3 where id = $1",
        )
        .bind(id)
        .bind(fresh)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let keys: Vec<(String, String)> = sqlx::query_as(
        "select key_id, secret_sealed from api_keys where secret_sealed is not null order by id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (key_id, sealed) in &keys {
        let what = format!("The secret of channel key {key_id}");
        let fresh = reseal(old, new, &channels::aad(key_id), sealed, &what)?;
        sqlx::query("update api_keys set secret_sealed = $2, updated_at = $3 where key_id = $1")
            .bind(key_id)
            .bind(fresh)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let done = Rotated {
        totp_seeds: seeds.len(),
        webhook_secrets: hooks.len(),
        channel_keys: keys.len(),
    };
    let ev = Event::success(
        Actor::System,
        "master_key.rotated",
        &Origin::default(),
        None,
        serde_json::json!({ "totp_seeds": done.totp_seeds, "webhook_secrets": done.webhook_secrets, "channel_keys": done.channel_keys }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(done)
}
