//! Server-side sessions in the database, so every instance sees the same sessions and a
//! user's sessions can be listed and ended.
//!
//! Rows are keyed by the SHA-256 of the session ID: the ID itself lives only in the
//! user's cookie, so a read of the database does not hand out live sessions. The
//! signed-in user's id is copied to its own column so "end all of this user's sessions"
//! is one indexed delete.

use crate::infra::db::Db;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions_core::{
    session::{Id, Record},
    session_store::{Error, Result},
    ExpiredDeletion, SessionStore,
};

/// The session key that holds the signed-in user's id.
pub const USER_ID_KEY: &str = "uid";

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Ends every session of a user (password change, disable, 2FA reset).
    pub async fn delete_for_user(&self, user_id: i64) -> std::result::Result<u64, sqlx::Error> {
        Ok(sqlx::query("delete from sessions where user_id = $1")
            .bind(user_id)
            .execute(&self.db.pool)
            .await?
            .rows_affected())
    }
}

impl DbSessionStore {
    /// A user's live sessions, most recently used first: (id_hash, data, created_at,
    /// last seen).
    pub async fn list_for_user(
        &self,
        user_id: i64,
    ) -> std::result::Result<Vec<SessionRow>, sqlx::Error> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "select id_hash, data, created_at, updated_at from sessions \
             where user_id = $1 and expires_at > $2 order by updated_at desc",
        )
        .bind(user_id)
        .bind(now())
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id_hash, data, created_at, last_seen_at)| {
                let data: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&data).unwrap_or_default();
                let text = |k: &str| data.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                SessionRow {
                    id_hash,
                    ip: text("ip"),
                    user_agent: text("ua"),
                    created_at,
                    last_seen_at,
                }
            })
            .collect())
    }

    /// Ends one of a user's sessions (by the hash /account shows); false when there was
    /// no such session of theirs.
    pub async fn delete_one(
        &self,
        user_id: i64,
        id_hash: &str,
    ) -> std::result::Result<bool, sqlx::Error> {
        Ok(
            sqlx::query("delete from sessions where user_id = $1 and id_hash = $2")
                .bind(user_id)
                .bind(id_hash)
                .execute(&self.db.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// Ends every session of a user but one (password change).
    pub async fn delete_others(
        &self,
        user_id: i64,
        keep_hash: &str,
    ) -> std::result::Result<u64, sqlx::Error> {
        Ok(
            sqlx::query("delete from sessions where user_id = $1 and id_hash <> $2")
                .bind(user_id)
                .bind(keep_hash)
                .execute(&self.db.pool)
                .await?
                .rows_affected(),
        )
    }
}

/// A session as /account lists it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id_hash: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
}

pub fn id_hash(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn user_of(record: &Record) -> Option<i64> {
    record.data.get(USER_ID_KEY).and_then(|v| v.as_i64())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // An empty anonymous session (any cookie a client makes up, any page visit) holds
        // nothing worth a row: none is written until something is put in it.
        if record.data.is_empty() {
            return Ok(());
        }
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        // A collision of 128-bit random IDs is practically impossible; if the unique key
        // ever refuses one, draw another.
        loop {
            let res = sqlx::query(
                "insert into sessions (id_hash, user_id, data, expires_at, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)",
            )
            .bind(id_hash(&record.id))
            .bind(user_of(record))
            .bind(&data)
            .bind(record.expiry_date.unix_timestamp())
            .bind(now())
            .execute(&self.db.pool)
            .await;
            match res {
                Ok(_) => return Ok(()),
                Err(e) if crate::infra::db::is_unique_violation(&e) => record.id = Id::default(),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        let t = now();
        let updated = sqlx::query("update sessions set user_id = $2, data = $3, expires_at = $4, updated_at = $5 where id_hash = $1")
            .bind(id_hash(&record.id))
            .bind(user_of(record))
            .bind(&data)
            .bind(record.expiry_date.unix_timestamp())
            .bind(t)
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        if updated.rows_affected() == 0 {
            // Saved after being deleted elsewhere (e.g. "end all sessions"): do not resurrect
            // a session another request ended, unless it carries no sign-in; and an empty
            // anonymous session (any cookie a client makes up) is never written at all.
            if user_of(record).is_none() && !record.data.is_empty() {
                let mut r = record.clone();
                return self.create(&mut r).await;
            }
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "select data, expires_at from sessions where id_hash = $1 and expires_at > $2",
        )
        .bind(id_hash(id))
        .bind(now())
        .fetch_optional(&self.db.pool)
        .await
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?,
            expiry_date: time::OffsetDateTime::from_unix_timestamp(expires_at)
                .map_err(|e| Error::Decode(e.to_string()))?,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        sqlx::query("delete from sessions where id_hash = $1")
            .bind(id_hash(id))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> Result<()> {
        sqlx::query("delete from sessions where expires_at <= $1")
            .bind(now())
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
