//! Event webhooks: an app's registered webhook URLs (`webhooks`) can be subscribed
//! (`app.manage`) to key events — `key.created`, `key.rolled`, `key.revoked`,
//! `key.expiring`, `key.leaked`, `key.disabled` — and to `auth.alert`.
//!
//! Written once: [`emit`] inserts one `event_deliveries` row per subscribed URL inside
//! the transaction of the change it reports (a transactional outbox: the event exists
//! exactly when the change does). Delivered as message webhooks are: the outbox worker
//! claims a row (`for update skip locked` on PostgreSQL, the single writer on SQLite),
//! leases it, POSTs it signed with the URL's own secret (`delivery::post_signed`:
//! `X-Keyward-Timestamp`, `X-Keyward-Signature`, plus `X-Keyward-Event` and
//! `X-Keyward-Delivery` = the event's `evt_…` id), and records the outcome with a
//! conditional update naming the attempt; temporary failures retry with the same
//! back-off up to `MAX_ATTEMPTS`. A receiver sees an event at least once, and drops
//! repeats by its id.
//!
//! Payloads name a key by its public id, never its secret:
//! `{"id":"evt_…","type":"key.revoked","created_at":…,"app_id":…,"data":{…}}`.
//! Key events go to the key's app; a sign-in alert belongs to no app and goes to every
//! URL subscribed to `auth.alert`.

use super::delivery::{self, Failure, Signed};
use crate::{
    access::Grant,
    audit::{self, Event, Origin},
    infra::db::{Backend, Db},
    state::Services,
};
use model::error::AppError;
use model::roles::Permission;
use rand::Rng as _;

pub use model::keys::EVENTS;

fn event_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("evt_{body}")
}

/// Queues `event` (one of [`EVENTS`]) with `data` for every URL of app `app_id`
/// subscribed to it (`None`: of every app), in the caller's transaction. Returns how
/// many deliveries it queued.
pub async fn emit(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    app_id: Option<i64>,
    event: &'static str,
    data: serde_json::Value,
) -> Result<usize, sqlx::Error> {
    debug_assert!(EVENTS.iter().any(|(e, _)| *e == event));
    let targets: Vec<(i64,)> = match app_id {
        Some(app) => {
            sqlx::query_as(
                "select s.webhook_id from event_subscriptions s join webhook_endpoints w on w.id = s.webhook_id \
                 where s.event = $1 and w.removed_at is null and w.app_id = $2 order by s.webhook_id",
            )
            .bind(event)
            .bind(app)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as(
                "select s.webhook_id from event_subscriptions s join webhook_endpoints w on w.id = s.webhook_id \
                 where s.event = $1 and w.removed_at is null order by s.webhook_id",
            )
            .bind(event)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    if targets.is_empty() {
        return Ok(0);
    }
    let id = event_id();
    let payload = serde_json::json!({
        "id": id,
        "type": event,
        "created_at": now,
        "app_id": app_id,
        "data": data,
    })
    .to_string();
    for (webhook_id,) in &targets {
        sqlx::query(
            "insert into event_deliveries (event_id, webhook_id, event, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             values ($1, $2, $3, $4, 'queued', 0, $5, $5, $5)",
        )
        .bind(&id)
        .bind(webhook_id)
        .bind(event)
        .bind(&payload)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(targets.len())
}

/// [`emit`] for an event of the key `key_id`, to its app's URLs: `data` names the key
/// (id, name, environment, owner's email, expiry; never the secret) with `extra`'s
/// fields added.
pub async fn key_event(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    event: &'static str,
    key_id: &str,
    extra: serde_json::Value,
) -> Result<usize, sqlx::Error> {
    type Row = (i64, String, String, Option<String>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "select k.app_id, k.name, k.environment, u.email, k.expires_at from api_keys k          left join users u on u.id = k.owner_id where k.key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((app_id, name, environment, owner, expires_at)) = row else {
        return Ok(0);
    };
    let mut data = serde_json::json!({
        "key_id": key_id,
        "name": name,
        "environment": environment,
        "owner": owner,
        "expires_at": expires_at,
    });
    if let (Some(d), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
        d.extend(more);
    }
    emit(conn, now, Some(app_id), event, data).await
}

/// Subscribes app `app_id`'s registered `url` to exactly `events` (none: to nothing),
/// audited as `webhook.events_changed`.
pub async fn subscribe(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    app_id: i64,
    url: &str,
    events: &[String],
) -> Result<Vec<String>, AppError> {
    let p = grant.ensure(Permission::AppManage)?;
    let mut chosen: Vec<&'static str> = Vec::new();
    for e in events {
        let known = EVENTS
            .iter()
            .find(|(name, _)| *name == e.as_str())
            .ok_or_else(|| {
                AppError::validation(
                    "events",
                    format!("Choose among {}.", EVENTS.map(|(e, _)| e).join(", ")),
                )
            })?;
        if !chosen.contains(&known.0) {
            chosen.push(known.0);
        }
    }
    let mut tx = db.pool.begin().await?;
    let hook: Option<(i64,)> = sqlx::query_as(
        "select id from webhook_endpoints where app_id = $1 and url = $2 and removed_at is null",
    )
    .bind(app_id)
    .bind(url.trim())
    .fetch_optional(&mut *tx)
    .await?;
    let (webhook_id,) = hook.ok_or(AppError::NotFound)?;
    sqlx::query("delete from event_subscriptions where webhook_id = $1")
        .bind(webhook_id)
        .execute(&mut *tx)
        .await?;
    for e in &chosen {
        sqlx::query(
            "insert into event_subscriptions (webhook_id, event, created_by, created_at, updated_at) \
             values ($1, $2, $3, $4, $4)",
        )
        .bind(webhook_id)
        .bind(*e)
        .bind(p.user_id())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let ev = Event::success(
        p.actor(),
        "webhook.events_changed",
        origin,
        Some(url.trim().to_owned()),
        serde_json::json!({ "app_id": app_id, "events": chosen }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(chosen.into_iter().map(str::to_owned).collect())
}

/// Every registered URL's events, per app: (app_id, url, events).
pub async fn subscriptions(db: &Db) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select w.app_id, w.url, s.event from event_subscriptions s join webhook_endpoints w on w.id = s.webhook_id \
         where w.removed_at is null order by w.app_id, w.url, s.event",
    )
    .fetch_all(&db.pool)
    .await
}

/// A claimed delivery.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub event_id: String,
    pub webhook_id: i64,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
}

fn claim_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "update event_deliveries set status = 'sending', attempts = attempts + 1, lease_until = $2, updated_at = $1 \
             where id = (select id from event_deliveries where (status = 'queued' and next_attempt_at <= $1) \
               or (status = 'sending' and lease_until <= $1) order by id limit 1) \
             returning id, event_id, webhook_id, event, payload, attempts",
        Backend::Postgres => "update event_deliveries set status = 'sending', attempts = attempts + 1, lease_until = $2, updated_at = $1 \
             where id = (select id from event_deliveries where (status = 'queued' and next_attempt_at <= $1) \
               or (status = 'sending' and lease_until <= $1) order by id limit 1 for update skip locked) \
             and (status = 'queued' or (status = 'sending' and lease_until <= $1)) \
             returning id, event_id, webhook_id, event, payload, attempts",
    }
}

/// Records the outcome of attempt `c.attempts` (dropped when another worker took the
/// row over after the lease ran out: its outcome wins).
async fn finish(
    db: &Db,
    now: i64,
    c: &Claimed,
    result: &Result<(), Failure>,
) -> Result<(), sqlx::Error> {
    let (status, next, error) = match result {
        Ok(()) => ("sent", None, None),
        Err(f) if !f.permanent && c.attempts < delivery::MAX_ATTEMPTS => (
            "queued",
            Some(now + delivery::backoff(c.attempts)),
            Some(f.error.as_str()),
        ),
        Err(f) => ("failed", None, Some(f.error.as_str())),
    };
    crate::infra::metrics::DELIVERIES.count(match status {
        "queued" => "retry",
        other => other,
    });
    let r = sqlx::query(
        "update event_deliveries set status = $3, next_attempt_at = $4, last_error = $5, lease_until = null, \
         sent_at = case when $3 = 'sent' then $6 else sent_at end, updated_at = $6 \
         where id = $1 and status = 'sending' and attempts = $2",
    )
    .bind(c.id)
    .bind(c.attempts)
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(now)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() != 1 {
        tracing::warn!(event = %c.event_id, attempt = c.attempts, "event delivery outcome dropped: the claim was lost");
    }
    Ok(())
}

/// Delivers every due event, one at a time; returns how many attempts were made.
pub async fn run_once(st: &Services) -> Result<usize, sqlx::Error> {
    let timeout = st.config.delivery_timeout;
    let lease_secs = delivery::lease(timeout);
    let mut n = 0;
    loop {
        let now = st.clock.now();
        let claimed: Option<Claimed> = sqlx::query_as(claim_sql(st.db.backend))
            .bind(now)
            .bind(now + lease_secs)
            .fetch_optional(&st.db.pool)
            .await?;
        let Some(c) = claimed else { return Ok(n) };
        let to = Signed {
            webhook_id: c.webhook_id,
            delivery: &c.event_id,
            event: Some(&c.event),
            body: c.payload.clone().into_bytes(),
        };
        let result =
            match tokio::time::timeout(timeout, delivery::post_signed(st, &to, timeout)).await {
                Ok(r) => r,
                Err(_) => Err(Failure {
                    permanent: false,
                    error: format!("no answer within {} s", timeout.as_secs()),
                }),
            };
        match &result {
            Ok(()) => {
                tracing::info!(event = %c.event_id, kind = %c.event, "event webhook delivered");
            }
            Err(f) => {
                tracing::warn!(event = %c.event_id, attempt = c.attempts, error = %f.error, "event webhook delivery failed");
            }
        }
        finish(&st.db, st.clock.now(), &c, &result).await?;
        n += 1;
    }
}

/// The background loop: delivers due events every 2 s (they are written in the
/// transactions of the changes they report, on any instance).
pub async fn worker(st: crate::state::Core) {
    loop {
        if let Err(e) = run_once(&st).await {
            tracing::warn!(error = %e, "delivering event webhooks hit a database error");
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Delivered and failed deliveries are kept this long (what was sent when), then
/// pruned.
const KEEP_SECS: i64 = 30 * 86_400;

/// Deletes finished deliveries older than [`KEEP_SECS`]; returns how many.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "delete from event_deliveries where status in ('sent', 'failed') and updated_at < $1",
    )
    .bind(now - KEEP_SECS)
    .execute(&db.pool)
    .await?
    .rows_affected())
}
