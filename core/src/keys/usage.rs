//! Usage per key: requests accepted and refused (by code) per UTC hour, kept 90 days.
//!
//! Counted in memory on the hot path and added to the database in batches by
//! [`KeyCache::flush_usage`](super::cache::KeyCache::flush_usage) (never a write per
//! request). An accepted request adds one to a counter that only the thread serving it
//! writes ([`Tally`], one per per-thread copy of a key), so counting bounces no cache
//! line between cores; refusals are counted with the audit's refusal counts. Each
//! instance adds its own counts with an upsert that adds (`requests = requests +
//! excluded.requests`), so the rows are the sum over every instance. Counts are
//! attributed to the hour in which they are written (at most a flush interval late).

use crate::infra::db::Db;
use model::keys::{KeyUsage, RecentRefusal, UsageBucket};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// The code an accepted request is counted under.
pub const ACCEPTED: &str = "ok";

/// How long usage rows are kept.
pub const KEEP_SECS: i64 = 90 * 86_400;

/// Hours shown per hour on a key's page, and days per day.
pub const HOURS_SHOWN: i64 = 48;
pub const DAYS_SHOWN: i64 = 90;

/// Refusal audit rows shown on a key's page.
pub const RECENT_REFUSALS: i64 = 20;

/// Accepted requests of one copy of a key (see the module's documentation).
#[derive(Debug)]
pub struct Tally {
    key_id: String,
    accepted: AtomicU64,
}

impl Tally {
    /// Counts one accepted request.
    pub fn add(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }
}

/// Every live [`Tally`] of an instance, so that a flush can read them all.
#[derive(Debug, Default)]
pub(super) struct Tallies {
    cells: Mutex<Vec<Arc<Tally>>>,
}

impl Tallies {
    /// A new counter for a copy of `key_id`, registered for the next flush.
    pub(super) fn new_tally(&self, key_id: &str) -> Arc<Tally> {
        let t = Arc::new(Tally {
            key_id: key_id.to_owned(),
            accepted: AtomicU64::new(0),
        });
        if let Ok(mut cells) = self.cells.lock() {
            cells.push(t.clone());
        }
        t
    }

    /// The accepted requests counted since the last call, per key; forgets the counters
    /// no copy holds any more (after reading what they last counted).
    pub(super) fn take(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let Ok(mut cells) = self.cells.lock() else {
            return out;
        };
        cells.retain(|t| {
            // Read whether anyone else holds it first: a counter nobody else holds can
            // no longer change, so what is read next is its last count.
            let alive = Arc::strong_count(t) > 1;
            let n = t.accepted.swap(0, Relaxed);
            if n > 0 {
                *out.entry(t.key_id.clone()).or_insert(0) += n;
            }
            alive
        });
        out
    }
}

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: i64) -> i64 {
    at - at.rem_euclid(3600)
}

/// Adds `rows` (key id, code, requests) to the hour of `now`, in one transaction.
pub async fn add(
    db: &Db,
    now: i64,
    rows: &[(String, &'static str, u64)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let hour = hour_of(now);
    let mut tx = db.pool.begin().await?;
    for (key_id, code, n) in rows {
        sqlx::query(
            "insert into key_usage (key_id, hour, code, requests) values ($1, $2, $3, $4) \
             on conflict (key_id, hour, code) do update set requests = key_usage.requests + excluded.requests",
        )
        .bind(key_id)
        .bind(hour)
        .bind(*code)
        .bind(i64::try_from(*n).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Deletes usage older than [`KEEP_SECS`]; returns how many rows.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("delete from key_usage where hour < $1")
        .bind(hour_of(now) - KEEP_SECS)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}

/// A key's usage: the last [`HOURS_SHOWN`] hours and [`DAYS_SHOWN`] UTC days (oldest
/// first, every period present, empty ones with zeros), and its latest refusals from
/// the audit log. The caller has checked that the viewer may see the key.
pub async fn of_key(db: &Db, key_id: &str, now: i64) -> Result<KeyUsage, sqlx::Error> {
    let this_hour = hour_of(now);
    let today = now - now.rem_euclid(86_400);
    let first_day = today - (DAYS_SHOWN - 1) * 86_400;
    let first_hour = this_hour - (HOURS_SHOWN - 1) * 3600;
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "select hour, code, requests from key_usage where key_id = $1 and hour >= $2 order by hour",
    )
    .bind(key_id)
    .bind(first_day.min(first_hour))
    .fetch_all(&db.pool)
    .await?;
    let empty = |start: i64| UsageBucket {
        start,
        accepted: 0,
        refused: 0,
        by_code: Vec::new(),
    };
    let mut hours: Vec<UsageBucket> = (0..HOURS_SHOWN)
        .map(|i| empty(first_hour + i * 3600))
        .collect();
    let mut days: Vec<UsageBucket> = (0..DAYS_SHOWN)
        .map(|i| empty(first_day + i * 86_400))
        .collect();
    let count = |b: &mut UsageBucket, code: &str, n: u64| {
        if code == ACCEPTED {
            b.accepted += n;
        } else {
            b.refused += n;
            match b.by_code.iter_mut().find(|(c, _)| c == code) {
                Some((_, m)) => *m += n,
                None => b.by_code.push((code.to_owned(), n)),
            }
        }
    };
    for (hour, code, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        if let Ok(i) = usize::try_from((hour - first_hour).div_euclid(3600)) {
            if let Some(b) = hours.get_mut(i) {
                count(b, &code, n);
            }
        }
        if let Ok(i) = usize::try_from((hour - first_day).div_euclid(86_400)) {
            if let Some(b) = days.get_mut(i) {
                count(b, &code, n);
            }
        }
    }
    for b in hours.iter_mut().chain(days.iter_mut()) {
        b.by_code.sort();
    }
    let refusals: Vec<(i64, Option<String>, String)> = sqlx::query_as(
        "select occurred_at, ip, details from audit_events \
         where target = $1 and action = 'api_key.refused' order by seq desc limit $2",
    )
    .bind(key_id)
    .bind(RECENT_REFUSALS)
    .fetch_all(&db.pool)
    .await?;
    let recent_refusals = refusals
        .into_iter()
        .map(|(at, ip, details)| {
            let d: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
            let mut by_code: Vec<(String, u64)> = d["by_code"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(c, n)| (c.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default();
            by_code.sort();
            let mut addresses: Vec<String> = d["addresses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if addresses.is_empty() {
                addresses.extend(ip);
            }
            RecentRefusal {
                at,
                requests: d["requests"].as_u64().unwrap_or(0),
                by_code,
                addresses,
            }
        })
        .collect();
    Ok(KeyUsage {
        now,
        hours,
        days,
        recent_refusals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_nobody_holds_is_read_once_more_then_forgotten() {
        let t = Tallies::default();
        let a = t.new_tally("key_a");
        let b = t.new_tally("key_a");
        a.add();
        a.add();
        b.add();
        assert_eq!(t.take().get("key_a"), Some(&3));
        assert!(t.take().is_empty(), "counts are taken once");
        b.add();
        drop(b);
        assert_eq!(
            t.take().get("key_a"),
            Some(&1),
            "the last count of a dropped copy"
        );
        assert_eq!(t.cells.lock().unwrap().len(), 1, "then it is forgotten");
        drop(a);
        t.take();
        assert!(t.cells.lock().unwrap().is_empty());
    }

    #[test]
    fn hours_are_utc() {
        assert_eq!(hour_of(7_200), 7_200);
        assert_eq!(hour_of(7_199), 3_600);
        assert_eq!(hour_of(-1), -3_600);
    }
}
