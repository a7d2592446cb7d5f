//! The verification cache and what drops it (local changes and, on PostgreSQL, other
//! instances' changes through LISTEN/NOTIFY).

use super::{refusals::Refusals, verified::VerifiedKey};
use crate::{
    audit::{self, Event},
    infra::db::Db,
};
use std::sync::Arc;

/// Verification answers from memory after the first lookup of a key (by the SHA-256 of
/// the secret). Every change to keys, apps or roles made through this instance bumps
/// the generation, and an entry of an older generation is looked up again: a revoke,
/// role change or allow-list change is enforced at the very next request. Changes made
/// on another instance arrive through PostgreSQL: triggers NOTIFY `keyward_keys` and
/// [`listen_for_changes`] bumps the generation here (within a second). On SQLite there
/// is one instance.
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    inner: Arc<KeyCacheInner>,
}

/// (generation it was read at, the key or `None` for an unknown secret).
type CacheEntry = (u64, Option<Arc<VerifiedKey>>);

#[derive(Debug)]
struct KeyCacheInner {
    /// Tells this cache's entries apart in the per-thread copies (`LOCAL`).
    id: u64,
    generation: std::sync::atomic::AtomicU64,
    entries: std::sync::RwLock<std::collections::HashMap<[u8; 32], CacheEntry, Hasher>>,
    /// Last use per key since the last flush: written to the database in batches.
    last_used: std::sync::Mutex<std::collections::HashMap<String, (i64, std::net::IpAddr)>>,
    /// Refused requests per key and code since the last flush: audited as one row per
    /// key per flush, never one per request.
    refused: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
    /// Allowances for refusals, per address and per key, and their log counts.
    refusals: Refusals,
}

impl Default for KeyCacheInner {
    fn default() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            generation: Default::default(),
            entries: Default::default(),
            last_used: Default::default(),
            refused: Default::default(),
            refusals: Default::default(),
        }
    }
}

const CACHE_MAX: usize = 100_000;
const LOCAL_MAX: usize = 10_000;

/// The maps keyed by a key's digest hash it with foldhash, randomly seeded per process:
/// a SHA-256 digest needs no SipHash (a third of the lookup's cost on the hot path),
/// and the seed keeps a caller who grinds secrets from aiming at one bucket.
type Hasher = foldhash::quality::RandomState;

/// (cache id, digest) → (generation, this thread's copy of the key).
type LocalMap = std::collections::HashMap<(u64, [u8; 32]), (u64, Arc<VerifiedKey>), Hasher>;

thread_local! {
    /// Per-thread copies of the keys in use. A hit here writes no memory another
    /// thread reads or writes — no lock word, no shared reference count, no shared
    /// "last used" — so the hot path does not bounce cache lines between cores.
    static LOCAL: std::cell::RefCell<LocalMap> = std::cell::RefCell::new(LocalMap::default());
}

impl KeyCache {
    /// Invalidates every entry (called after any change to keys, apps or roles).
    pub fn bump(&self) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Notes a key's use (in memory; `flush_last_used` writes it). Times are whole
    /// seconds, so the shared map is written at most once per key per second (the first
    /// address of that second is the one kept); other requests only read an atomic.
    pub fn touch(&self, key: &VerifiedKey, now: i64, ip: std::net::IpAddr) {
        use std::sync::atomic::Ordering::Relaxed;
        // Read first: within the second, nothing is written at all.
        if key.last_touched.load(Relaxed) == now || key.last_touched.swap(now, Relaxed) == now {
            return;
        }
        if let Ok(mut m) = self.inner.last_used.lock() {
            match m.get_mut(&key.key_id) {
                Some(e) => *e = (now, ip),
                None => {
                    m.insert(key.key_id.clone(), (now, ip));
                }
            }
        }
    }

    /// The allowances for refusals (see `refusals`).
    pub fn refusals(&self) -> &Refusals {
        &self.inner.refusals
    }

    /// Counts a refused request of an identified key (revoked, expired, wrong address,
    /// missing permission).
    pub fn refused(&self, key_id: &str, code: &'static str) {
        if let Ok(mut m) = self.inner.refused.lock() {
            *m.entry((key_id.to_owned(), code)).or_insert(0) += 1;
        }
    }

    /// Audits the refusals counted since the last flush: one `api_key.refused` row per
    /// key with the count per code. Returns the number of rows.
    pub async fn flush_refused(&self, db: &Db, now: i64) -> Result<usize, sqlx::Error> {
        let counts: std::collections::BTreeMap<(String, &'static str), u64> =
            match self.inner.refused.lock() {
                Ok(mut m) => std::mem::take(&mut *m),
                Err(_) => return Ok(0),
            };
        let mut per_key: std::collections::BTreeMap<
            String,
            serde_json::Map<String, serde_json::Value>,
        > = Default::default();
        for ((key, code), n) in counts {
            per_key
                .entry(key)
                .or_default()
                .insert(code.to_owned(), n.into());
        }
        let rows = per_key.len();
        for (key_id, codes) in per_key {
            let total: u64 = codes.values().filter_map(|v| v.as_u64()).sum();
            let ev = Event {
                actor: audit::Actor::Key(&key_id),
                action: "api_key.refused",
                target: Some(key_id.clone()),
                ip: None,
                user_agent: None,
                outcome: audit::Outcome::Failure,
                details: serde_json::json!({ "requests": total, "by_code": codes }),
            };
            audit::record(db, now, &ev).await?;
        }
        Ok(rows)
    }

    /// Writes the uses noted since the last flush in one transaction (never a write per
    /// request); returns how many keys were updated.
    pub async fn flush_last_used(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let batch: Vec<(String, (i64, std::net::IpAddr))> = match self.inner.last_used.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tx = db.pool.begin().await?;
        for (key_id, (at, ip)) in &batch {
            sqlx::query("update api_keys set last_used_at = $2, last_used_ip = $3 where key_id = $1 and (last_used_at is null or last_used_at <= $2)")
                .bind(key_id)
                .bind(at)
                .bind(ip.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(batch.len())
    }

    /// The current generation (see the type's documentation).
    pub(super) fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<Option<Arc<VerifiedKey>>> {
        let gen = self
            .inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let local_key = (self.inner.id, *digest);
        let local = LOCAL.with_borrow(|m| match m.get(&local_key) {
            Some((g, v)) if *g == gen => Some(v.clone()),
            _ => None,
        });
        if let Some(v) = local {
            return Some(Some(v));
        }
        let shared = {
            let map = self.inner.entries.read().ok()?;
            match map.get(digest) {
                Some((g, v)) if *g == gen => v.clone(),
                _ => return None,
            }
        };
        // Unknown keys stay in the shared map only; a known one gets this thread's copy.
        Some(shared.map(|k| {
            let mine = Arc::new(k.copy_for_thread());
            LOCAL.with_borrow_mut(|m| {
                if m.len() >= LOCAL_MAX {
                    m.clear();
                }
                m.insert(local_key, (gen, mine.clone()));
            });
            mine
        }))
    }

    /// True when `digest` named a working key at some generation (the entry may be
    /// stale): such a key may be looked up again even for an address over its
    /// allowance, so a change elsewhere does not lock a working key out.
    pub(super) fn was_known(&self, digest: &[u8; 32]) -> bool {
        self.inner
            .entries
            .read()
            .is_ok_and(|map| matches!(map.get(digest), Some((_, Some(_)))))
    }

    pub(super) fn put(&self, digest: [u8; 32], gen: u64, v: Option<Arc<VerifiedKey>>) {
        if let Ok(mut map) = self.inner.entries.write() {
            if map.len() >= CACHE_MAX {
                // Unknown secrets go first: a flood of made-up keys must not push the
                // working keys out (nor what `was_known` remembers of them).
                map.retain(|_, (_, k)| k.is_some());
                if map.len() >= CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(digest, (gen, v));
        }
    }
}

/// PostgreSQL: drops `cache` whenever another instance (or anyone) changes what a
/// verification depends on — migration 0005's triggers send `NOTIFY keyward_keys`.
/// Reconnects on its own; after a reconnect (notifications may have been missed) the
/// cache is dropped too. Runs until the process ends.
pub async fn listen_for_changes(database_url: String, cache: KeyCache) {
    use sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&database_url).await {
            Ok(mut listener) => match listener.listen("keyward_keys").await {
                Ok(()) => {
                    cache.bump();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(_)) => cache.bump(),
                            // The connection was lost and re-made: anything may have changed.
                            Ok(None) => cache.bump(),
                            Err(e) => {
                                tracing::warn!(error = %e, "key change listener lost its connection");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN keyward_keys failed"),
            },
            Err(e) => tracing::warn!(error = %e, "key change listener cannot connect"),
        }
        cache.bump();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
