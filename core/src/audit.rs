//! The audit log: one function records an event; each row carries the hash of the row
//! before it, so editing or deleting a past row breaks the chain where it happened.
//!
//! The chain head (`audit_chain`, one row) is updated first in the event's transaction:
//! that takes the row lock on PostgreSQL and the write lock on SQLite, so concurrent
//! writers take turns and the chain never forks.

use crate::infra::db::Db;
use sha2::{Digest, Sha256};

pub mod alerts;
pub mod read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    User(i64),
    Key(&'a str),
    System,
    /// Someone not (yet) signed in, e.g. a failed sign-in.
    Anonymous,
}

impl Actor<'_> {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::User(id) => ("user", Some(id.to_string())),
            Actor::Key(id) => ("key", Some((*id).to_owned())),
            Actor::System => ("system", None),
            Actor::Anonymous => ("anonymous", None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One event. `details` is JSON kept server-side (e.g. the real reason a sign-in failed);
/// it must never hold a secret, a code, a password or a session ID.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: Actor<'a>,
    pub action: &'a str,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

/// Where a request came from, copied onto the audit rows it causes.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<'a> Event<'a> {
    /// A successful action by `actor` from `origin`.
    pub fn success(
        actor: Actor<'a>,
        action: &'a str,
        origin: &Origin,
        target: Option<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            actor,
            action,
            target,
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            outcome: Outcome::Success,
            details,
        }
    }
}

fn chain_hash(prev: &str, seq: i64, at: i64, fields: &[Option<&str>]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for f in fields {
        match f {
            // Length-prefixed so that moving text between fields changes the hash.
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
            None => h.update([0u8]),
        }
    }
    hex::encode(h.finalize())
}

/// An event's columns as stored, in the order the chain hashes them: the one place
/// that order is written (recording and verifying both hash through it).
pub(crate) struct Stored<'a> {
    pub actor_type: &'a str,
    pub actor_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub outcome: &'a str,
    pub details: &'a str,
}

impl Stored<'_> {
    /// The event's hash, chained to `prev` (the hash of the event before it).
    pub(crate) fn hash(&self, prev: &str, seq: i64, at: i64) -> String {
        chain_hash(
            prev,
            seq,
            at,
            &[
                Some(self.actor_type),
                self.actor_id,
                Some(self.action),
                self.target,
                self.ip,
                self.user_agent,
                Some(self.outcome),
                Some(self.details),
            ],
        )
    }
}

/// The last step of every audited write: records `ev` in the write's transaction and
/// commits both, so a change is never kept without its audit row (nor the other way).
pub async fn commit(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    now: i64,
    ev: &Event<'_>,
) -> Result<(), sqlx::Error> {
    record_in(&mut tx, now, ev).await?;
    tx.commit().await
}

/// Records an event inside the caller's transaction (so it commits or rolls back with
/// the change it describes).
pub async fn record_in(
    tx: &mut sqlx::AnyConnection,
    now: i64,
    ev: &Event<'_>,
) -> Result<(), sqlx::Error> {
    let (seq, prev): (i64, String) =
        sqlx::query_as("update audit_chain set seq = seq + 1, updated_at = $1 where id = 1 returning seq, last_hash")
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
    let (actor_type, actor_id) = ev.actor.parts();
    let details = ev.details.to_string();
    let ua = ev.user_agent.as_deref().map(|s| truncate(s, 512));
    let hash = Stored {
        actor_type,
        actor_id: actor_id.as_deref(),
        action: ev.action,
        target: ev.target.as_deref(),
        ip: ev.ip.as_deref(),
        user_agent: ua,
        outcome: ev.outcome.as_str(),
        details: &details,
    }
    .hash(&prev, seq, now);
    sqlx::query(
        "insert into audit_events (seq, occurred_at, actor_type, actor_id, action, target, ip, user_agent, outcome, details, prev_hash, hash, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $2, $2)",
    )
    .bind(seq)
    .bind(now)
    .bind(actor_type)
    .bind(actor_id)
    .bind(ev.action)
    .bind(ev.target.clone())
    .bind(ev.ip.clone())
    .bind(ua.map(str::to_owned))
    .bind(ev.outcome.as_str())
    .bind(details)
    .bind(prev)
    .bind(hash.clone())
    .execute(&mut *tx)
    .await?;
    sqlx::query("update audit_chain set last_hash = $1 where id = 1")
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    crate::infra::metrics::audited(ev.action, matches!(ev.outcome, Outcome::Success));
    Ok(())
}

/// Records an event in its own transaction.
pub async fn record(db: &Db, now: i64, ev: &Event<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    record_in(&mut tx, now, ev).await?;
    tx.commit().await
}

/// The audited actions that count as failed authentication (the overview's alerts).
pub const AUTH_FAILURES: &[&str] = &[
    "auth.sign_in",
    "auth.code_failed",
    "auth.password_check",
    "api_key.refused",
    "auth.alert",
];

/// A failed-authentication event, as the overview lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailureRow {
    pub occurred_at: i64,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub details: String,
}

/// The newest failed-authentication events since `since`, newest first, at most `limit`.
pub async fn auth_failures(
    db: &Db,
    since: i64,
    limit: i64,
) -> Result<Vec<FailureRow>, sqlx::Error> {
    let list = AUTH_FAILURES
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query_as(&format!(
        "select occurred_at, action, target, ip, details from audit_events \
         where occurred_at >= $1 and outcome = 'failure' and action in ({list}) \
         order by id desc limit $2"
    ))
    .bind(since)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The `seq` of the first event that does not follow from the one before it, or
/// `None` when the chain is intact (see [`read::verify`], which says how it broke).
pub async fn verify_chain(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    Ok(read::verify(db).await?.broken.map(|b| b.seq))
}
