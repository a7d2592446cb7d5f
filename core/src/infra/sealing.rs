//! Which master key the database is sealed with: a tag of a constant under the key
//! (`settings` row `master_key`; never the key itself). An instance starts only with
//! that key, and checks it again before it seals or opens anything, so an instance left
//! running with an old key after `keyward master-key rotate` seals nothing the new key
//! could not open: it answers 503 and logs why until it is restarted.

use super::{crypto, db::Db};
use model::error::AppError;

const ROW: &str = "master_key";

fn fingerprint(key: &[u8; 32]) -> String {
    crypto::tag(key, "master-key-check", &[])
}

/// Whether `key` is the one the database is sealed with: true when it is, or when no
/// key is recorded yet (then `key` is recorded).
pub async fn is_current(db: &Db, now: i64, key: &[u8; 32]) -> Result<bool, sqlx::Error> {
    let mine = serde_json::Value::String(fingerprint(key)).to_string();
    sqlx::query(
        "insert into settings (name, value, created_at, updated_at) values ($1, $2, $3, $3) \
         on conflict (name) do nothing",
    )
    .bind(ROW)
    .bind(&mine)
    .bind(now)
    .execute(&db.pool)
    .await?;
    let (stored,): (String,) = sqlx::query_as("select value from settings where name = $1")
        .bind(ROW)
        .fetch_one(&db.pool)
        .await?;
    Ok(stored == mine)
}

/// Refuses to seal or open with a key the database no longer uses.
pub async fn ensure_current(db: &Db, now: i64, key: &[u8; 32]) -> Result<(), AppError> {
    if is_current(db, now, key).await? {
        Ok(())
    } else {
        tracing::error!("this instance runs with a master key the database no longer uses (it was rotated): restart it with the new key");
        Err(AppError::Unavailable {
            retry_after_secs: 60,
        })
    }
}

/// Records `key` as the one the database is sealed with, inside the caller's
/// transaction (a rotation's first write).
pub async fn record(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    key: &[u8; 32],
) -> Result<(), sqlx::Error> {
    sqlx::query("update settings set value = $2, updated_at = $3 where name = $1")
        .bind(ROW)
        .bind(serde_json::Value::String(fingerprint(key)).to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
