//! Failed-authentication alerts (Settings > Alerts): refused requests of one key, and
//! failed sign-in steps of one account, past a threshold within a window → one email to
//! the key's owner (or the account) and to every Owner and Admin, and an `auth.alert`
//! event; at most once per subject per window.
//!
//! Windows are fixed (aligned to the Unix epoch, `window` minutes long). Every instance
//! adds its failures to the subject's row of the window with an upsert that returns the
//! new count; the one addition that takes the count from below the threshold to at or
//! above it sends the alert, so two instances never both send it. A burst that straddles
//! two windows is counted in both halves (up to twice the threshold may pass unalerted:
//! the price of a count kept in one row).

use crate::audit::{self, Actor, Event, Origin, Outcome};
use crate::identity::notify::{self, AccountEvent};
use crate::infra::db::Db;
use crate::state::Services;
use model::error::AppError;

/// Rows older than this are pruned (longer than the longest window).
const KEEP_SECS: i64 = 2 * 86_400;

/// Adds `n` failures of `subject` to the window of `now`; the new count when this
/// addition took it across `threshold`, else `None`.
async fn crossed(
    db: &Db,
    subject: &str,
    now: i64,
    window_minutes: u32,
    n: u64,
    threshold: u32,
) -> Result<Option<i64>, sqlx::Error> {
    if threshold == 0 || n == 0 {
        return Ok(None);
    }
    let window = i64::from(window_minutes.max(1)) * 60;
    let start = now - now.rem_euclid(window);
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let (count,): (i64,) = sqlx::query_as(
        "insert into alert_counts (subject, window_start, failures) values ($1, $2, $3) \
         on conflict (subject, window_start) do update set failures = alert_counts.failures + excluded.failures \
         returning failures",
    )
    .bind(subject)
    .bind(start)
    .bind(n)
    .fetch_one(&db.pool)
    .await?;
    let threshold = i64::from(threshold);
    Ok((count - n < threshold && count >= threshold).then_some(count))
}

/// Counts `n` refused requests of `key_id` (a batch the refusal audit just wrote); past
/// the threshold, alerts its owner and the administrators. `from`: the first address
/// the refusals came from.
pub async fn key_refused(
    st: &Services,
    now: i64,
    key_id: &str,
    n: u64,
    from: Option<String>,
) -> Result<(), AppError> {
    let db = &st.db;
    let settings = crate::settings::alerts(db).await?;
    let subject = format!("key:{key_id}");
    let Some(count) = crossed(
        db,
        &subject,
        now,
        settings.key_window_minutes,
        n,
        settings.key_refusals,
    )
    .await?
    else {
        return Ok(());
    };
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "select k.name, u.email from api_keys k left join users u on u.id = k.owner_id and u.status = 'active' \
         where k.key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(&db.pool)
    .await?;
    let Some((name, owner)) = row else {
        return Ok(());
    };
    let origin = Origin {
        ip: from,
        user_agent: None,
    };
    let ev = Event {
        actor: Actor::System,
        action: "auth.alert",
        target: Some(key_id.to_owned()),
        ip: origin.ip.clone(),
        user_agent: None,
        outcome: Outcome::Failure,
        details: serde_json::json!({
            "reason": "key_refusals",
            "count": count,
            "window_minutes": settings.key_window_minutes,
            "threshold": settings.key_refusals,
        }),
    };
    let mut tx = db.pool.begin().await?;
    audit::record_in(&mut tx, now, &ev).await?;
    let extra = serde_json::json!({ "reason": "key_refusals", "count": count, "window_minutes": settings.key_window_minutes });
    crate::messages::events::key_event(&mut tx, now, "auth.alert", key_id, extra).await?;
    tx.commit().await?;
    let link = format!(
        "{}/keys/{key_id}",
        st.config.public_url.url.trim_end_matches('/')
    );
    let make = |whose: Option<String>| AccountEvent::KeyRefusals {
        key_id: key_id.to_owned(),
        name: name.clone(),
        owner: whose,
        count,
        minutes: settings.key_window_minutes,
        link: link.clone(),
    };
    let admins = admins_budget(db, now, "key", settings.key_window_minutes).await?;
    let to = notify::Recipients {
        owner: owner.as_deref(),
        whose: "a user no longer active",
        admins,
    };
    notify::owner_and_admins(st, now, &origin, to, make)
        .await
        .map_err(AppError::from)
}

/// Counts one failed sign-in step of the account `user_id` (`email`; `active`: whether
/// it may still sign in); past the threshold, alerts the account (when active) and the
/// administrators.
pub async fn sign_in_failed(
    st: &Services,
    now: i64,
    origin: &Origin,
    user_id: i64,
    email: &str,
    active: bool,
) -> Result<(), AppError> {
    let db = &st.db;
    let settings = crate::settings::alerts(db).await?;
    let subject = format!("user:{user_id}");
    let Some(count) = crossed(
        db,
        &subject,
        now,
        settings.sign_in_window_minutes,
        1,
        settings.sign_in_failures,
    )
    .await?
    else {
        return Ok(());
    };
    let ev = Event {
        actor: Actor::System,
        action: "auth.alert",
        target: Some(email.to_owned()),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        outcome: Outcome::Failure,
        details: serde_json::json!({
            "reason": "sign_in_failures",
            "count": count,
            "window_minutes": settings.sign_in_window_minutes,
            "threshold": settings.sign_in_failures,
        }),
    };
    let mut tx = db.pool.begin().await?;
    audit::record_in(&mut tx, now, &ev).await?;
    // A sign-in belongs to no app: every URL subscribed to alerts hears of it.
    let data = serde_json::json!({ "reason": "sign_in_failures", "account": email, "count": count, "window_minutes": settings.sign_in_window_minutes });
    crate::messages::events::emit(&mut tx, now, None, "auth.alert", data).await?;
    tx.commit().await?;
    let link = format!(
        "{}/audit?target={}",
        st.config.public_url.url.trim_end_matches('/'),
        form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
    );
    let make = |account: Option<String>| AccountEvent::SignInFailures {
        account,
        count,
        minutes: settings.sign_in_window_minutes,
        link: link.clone(),
    };
    let admins = admins_budget(db, now, "sign_in", settings.sign_in_window_minutes).await?;
    // A disabled account's mailbox (perhaps a former colleague's) is not written to.
    let to = notify::Recipients {
        owner: active.then_some(email),
        whose: email,
        admins,
    };
    notify::owner_and_admins(st, now, origin, to, make)
        .await
        .map_err(AppError::from)
}

/// Alerts of one kind the administrators are mailed about per window, at most: past it
/// the alerts are still audited (and the key's owner or the account still mailed), so
/// that nobody can flood the administrators' mailboxes by cycling through accounts or
/// keys. The audit log and the overview list them all.
const ADMIN_MAILS_PER_WINDOW: i64 = 10;

/// Whether this alert may still mail the administrators in its window.
async fn admins_budget(
    db: &Db,
    now: i64,
    kind: &str,
    window_minutes: u32,
) -> Result<bool, sqlx::Error> {
    let window = i64::from(window_minutes.max(1)) * 60;
    let start = now - now.rem_euclid(window);
    let (sent,): (i64,) = sqlx::query_as(
        "insert into alert_counts (subject, window_start, failures) values ($1, $2, 1) \
         on conflict (subject, window_start) do update set failures = alert_counts.failures + 1 \
         returning failures",
    )
    .bind(format!("admin-mails:{kind}"))
    .bind(start)
    .fetch_one(&db.pool)
    .await?;
    Ok(sent <= ADMIN_MAILS_PER_WINDOW)
}

/// Deletes counts of windows that ended long ago; returns how many rows.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("delete from alert_counts where window_start < $1")
        .bind(now - KEEP_SECS)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}
