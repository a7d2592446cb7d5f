//! One data layer for both databases.
//!
//! Keyward talks to SQLite and PostgreSQL through sqlx's `Any` driver with one set of
//! portable SQL: `$1` placeholders (both engines accept them), lowercase statements,
//! explicit column lists, integers for times (Unix seconds, UTC) and `bigint` ids.
//! Each backend has its own migration folder with the same file names, since DDL
//! (identity columns, blob types) is the one place the dialects differ.

use model::error::AppError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};
use std::{path::PathBuf, str::FromStr, time::Duration};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// Admission for queries that may read every row of a table (a search): see
    /// [`ScanGate`].
    pub scans: ScanGate,
    /// One walk over the whole audit chain at a time per instance (a walk reads every
    /// event, for seconds): apart from the scan slots, so walks never hold up searches.
    pub walks: ScanGate,
}

/// Bounds how many queries that may scan a whole table (a text search over every key)
/// run at once on this instance, so that a burst of them cannot hold every pooled
/// connection and starve sign-ins and key checks (the pool's other users wait at most
/// its acquire timeout, then fail). A scan waits briefly for a slot; when none frees
/// up it is refused with 429 and `Retry-After`, and the pool stays free.
///
/// One user (or one user's keys) holds at most one slot at a time: a second scan of
/// theirs while one runs is refused at once, so that nobody can take every slot and
/// deny searches to everyone else.
#[derive(Debug, Clone)]
pub struct ScanGate {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    scanning: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    wait: Duration,
}

/// A scan slot, given back when dropped.
#[derive(Debug)]
pub struct ScanSlot<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    who: i64,
    gate: &'a ScanGate,
}

impl Drop for ScanSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.gate.scanning.lock() {
            s.remove(&self.who);
        }
    }
}

impl ScanGate {
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots)),
            scanning: Default::default(),
            wait,
        }
    }

    /// A slot for one scan on behalf of user `who`, held until the slot is dropped.
    pub async fn enter(&self, who: i64) -> Result<ScanSlot<'_>, AppError> {
        let busy = AppError::RateLimited {
            retry_after_secs: 1,
        };
        // Claimed before waiting, so that a user's second scan cannot queue either.
        if !self
            .scanning
            .lock()
            .map_err(|_| AppError::Internal)?
            .insert(who)
        {
            return Err(busy);
        }
        match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(ScanSlot {
                _permit: permit,
                who,
                gate: self,
            }),
            _ => {
                if let Ok(mut s) = self.scanning.lock() {
                    s.remove(&who);
                }
                Err(busy)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database at {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

const SQLITE_CONNECTIONS: u32 = 8;
const POSTGRES_CONNECTIONS: u32 = 16;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The file behind a `sqlite://` URL, if it is one (`None` for in-memory databases).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// Where a URL points, with any password removed (for messages).
pub fn describe(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl Db {
    /// Connects (creating a SQLite file when missing) and checks the connection.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let target = describe(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let mut opts = AnyConnectOptions::from_str(&url).map_err(|source| DbError::Connect {
            target: target.clone(),
            source,
        })?;
        opts = opts.disable_statement_logging();
        let mut pool = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        pool = match backend {
            // WAL lets readers proceed during a write; a busy timeout queues writers instead of failing.
            Backend::Sqlite => pool.max_connections(SQLITE_CONNECTIONS).after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor as _;
                    conn.execute("pragma journal_mode = wal; pragma busy_timeout = 5000; pragma foreign_keys = on; pragma synchronous = normal;").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool.max_connections(POSTGRES_CONNECTIONS),
        };
        let pool = pool
            .connect_with(opts)
            .await
            .map_err(|source| DbError::Connect { target, source })?;
        // A quarter of the connections at most for scans: the rest stay for the
        // indexed work (sessions, key checks, writes).
        let slots = match backend {
            Backend::Sqlite => SQLITE_CONNECTIONS,
            Backend::Postgres => POSTGRES_CONNECTIONS,
        } as usize
            / 4;
        Ok(Self {
            pool,
            backend,
            scans: ScanGate::new(slots, Duration::from_secs(1)),
            walks: ScanGate::new(1, Duration::from_secs(1)),
        })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// `select 1`: true when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }
}

/// Seconds since the Unix epoch, the one time representation in the database.
pub type UnixTime = i64;

/// True when a database error is a UNIQUE violation (the races the indexes decide).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// The one place a unique violation becomes an answer the user can act on (a field
/// error, a conflict); any other database error is logged and becomes `Internal`.
pub trait OnUnique<T> {
    fn on_unique(self, answer: impl FnOnce() -> AppError) -> Result<T, AppError>;
}

impl<T> OnUnique<T> for Result<T, sqlx::Error> {
    fn on_unique(self, answer: impl FnOnce() -> AppError) -> Result<T, AppError> {
        self.map_err(|e| {
            if is_unique_violation(&e) {
                answer()
            } else {
                AppError::from(e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 0022 rebuilds SQLite's messages table (to allow `sms`): messages and
    /// their approvals made before it are all there after it, still linked, and foreign
    /// keys are still enforced.
    #[tokio::test]
    async fn the_sqlite_messages_rebuild_keeps_every_message_and_approval() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let db = Db::connect(&url).await.unwrap();
        let before = sqlx::migrate::Migrator {
            migrations: SQLITE_MIGRATIONS
                .migrations
                .iter()
                .filter(|m| m.version < 22)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before.run(&db.pool).await.unwrap();
        for sql in [
            "insert into users (email, display_name, password_hash, status, role_id, created_at, updated_at) values ('a@example.com', 'A', '', 'active', 1, 0, 0)",
            "insert into users (email, display_name, password_hash, status, role_id, created_at, updated_at) values ('b@example.com', 'B', '', 'active', 4, 0, 0)",
            "insert into apps (name, name_key, networks, created_at, updated_at) values ('App', 'app', '', 0, 0)",
            "insert into messages (message_id, app_id, channel, recipients, subject, body, payload_hash, status, author_id, approvals_needed, attempts, created_at, updated_at) \
             values ('msg_a', 1, 'email', 'x@example.com', 's', 'b', 'h', 'queued', 1, 1, 0, 0, 0)",
            "insert into messages (message_id, app_id, channel, recipients, subject, body, payload_hash, status, author_id, approvals_needed, attempts, created_at, updated_at) \
             values ('msg_b', 1, 'email', 'x@example.com', 's', 'b', 'h', 'pending_approval', 1, 2, 0, 0, 0)",
            "insert into message_approvals (message_id, approver_id, payload_hash, decision, reason, created_at, updated_at) values (2, 2, 'h', 'approved', '', 0, 0)",
        ] {
            sqlx::query(sql).execute(&db.pool).await.unwrap();
        }
        db.migrate().await.unwrap();
        let kept: Vec<(i64, String, i64)> = sqlx::query_as(
            "select m.id, m.message_id, a.approver_id from message_approvals a join messages m on m.id = a.message_id",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(kept, [(2, "msg_b".to_owned(), 2)]);
        let (n,): (i64,) = sqlx::query_as("select count(*) from messages")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
        // New ids continue after the old ones; `sms` is allowed; references are checked.
        sqlx::query(
            "insert into messages (message_id, app_id, channel, recipients, subject, body, payload_hash, status, author_id, approvals_needed, attempts, created_at, updated_at) \
             values ('msg_c', 1, 'sms', '+905559876543', '', 'b', 'h', 'queued', 1, 1, 0, 0, 0)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let (id,): (i64,) = sqlx::query_as("select id from messages where message_id = 'msg_c'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(id, 3);
        let dangling = sqlx::query(
            "insert into message_approvals (message_id, approver_id, payload_hash, decision, reason, created_at, updated_at) values (99, 2, 'h', 'approved', '', 0, 0)",
        )
        .execute(&db.pool)
        .await;
        assert!(dangling.is_err());
    }

    #[tokio::test]
    async fn a_scan_waits_for_a_slot_then_is_refused_with_429() {
        let gate = ScanGate::new(2, Duration::from_millis(50));
        let a = gate.enter(1).await.unwrap();
        let _b = gate.enter(2).await.unwrap();
        let refused = gate.enter(3).await.unwrap_err();
        assert_eq!((refused.status(), refused.retry_after()), (429, Some(1)));
        // A slot given back is taken by the next scan.
        drop(a);
        assert!(gate.enter(3).await.is_ok());
    }

    #[tokio::test]
    async fn one_user_holds_one_slot_at_a_time() {
        let gate = ScanGate::new(4, Duration::from_millis(50));
        let mine = gate.enter(1).await.unwrap();
        // The same user's second scan is refused at once, with slots free for others.
        let refused = gate.enter(1).await.unwrap_err();
        assert_eq!(refused.status(), 429);
        let theirs = gate.enter(2).await.unwrap();
        drop(mine);
        let again = gate.enter(1).await.unwrap();
        // A refusal for want of a slot does not leave the user marked as scanning.
        let tight = ScanGate::new(1, Duration::from_millis(20));
        let _held = tight.enter(7).await.unwrap();
        assert!(tight.enter(8).await.is_err());
        drop(_held);
        assert!(tight.enter(8).await.is_ok());
        drop((theirs, again));
    }
}
