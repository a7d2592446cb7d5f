//! The verification cache and what drops it (local changes and, on PostgreSQL, other
//! instances' changes through LISTEN/NOTIFY).

use super::{
    refusals::Refusals,
    usage::{self, Tallies, Tally},
    verified::VerifiedKey,
};
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
    /// Refused requests per key since the last flushes: audited as one row per key
    /// per flush (never one per request), and added to the key's usage.
    refused: std::sync::Mutex<std::collections::HashMap<String, KeyRefusals>>,
    /// Accepted requests, one counter per copy of a key (see `usage`).
    tallies: Tallies,
    /// Usage counted but not yet written (kept when a write fails).
    unwritten: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
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
            tallies: Default::default(),
            unwritten: Default::default(),
            refusals: Default::default(),
        }
    }
}

/// One key's refusals since the last flushes.
#[derive(Debug, Default)]
struct KeyRefusals {
    /// Per code: (not yet audited, not yet added to usage).
    by_code: std::collections::BTreeMap<&'static str, (u64, u64)>,
    /// The first few distinct addresses since the last audit row.
    addresses: Vec<std::net::IpAddr>,
}

/// One key's refusals as one `api_key.refused` row audited them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalBatch {
    pub key_id: String,
    pub requests: u64,
    pub first_address: Option<String>,
}

/// Addresses kept per key per audited batch of refusals.
const REFUSAL_ADDRESSES: usize = 5;

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
    /// missing permission) from `ip`, under the code it was answered with.
    pub fn refused(&self, key_id: &str, code: &'static str, ip: std::net::IpAddr) {
        let Ok(mut m) = self.inner.refused.lock() else {
            return;
        };
        // Looked up by reference first: a flood of one key's refusals allocates nothing.
        let entry = match m.get_mut(key_id) {
            Some(e) => e,
            None => m.entry(key_id.to_owned()).or_default(),
        };
        let (audit, usage) = entry.by_code.entry(code).or_insert((0, 0));
        *audit += 1;
        *usage += 1;
        if entry.addresses.len() < REFUSAL_ADDRESSES && !entry.addresses.contains(&ip) {
            entry.addresses.push(ip);
        }
    }

    /// A new accepted-request counter for a copy of `key_id` (see `usage`).
    pub(super) fn new_tally(&self, key_id: &str) -> Arc<Tally> {
        self.inner.tallies.new_tally(key_id)
    }

    /// Audits the refusals counted since the last flush: one `api_key.refused` row per
    /// key with the count per code and the first few addresses. Returns what was
    /// audited, one batch per key (for the alerts).
    pub async fn flush_refused(&self, db: &Db, now: i64) -> Result<Vec<RefusalBatch>, sqlx::Error> {
        let mut batch: Vec<(
            String,
            serde_json::Map<String, serde_json::Value>,
            Vec<std::net::IpAddr>,
        )> = Vec::new();
        if let Ok(mut m) = self.inner.refused.lock() {
            for (key_id, r) in m.iter_mut() {
                let mut codes = serde_json::Map::new();
                for (code, (audit, _)) in r.by_code.iter_mut() {
                    if *audit > 0 {
                        codes.insert((*code).to_owned(), (*audit).into());
                        *audit = 0;
                    }
                }
                if !codes.is_empty() {
                    batch.push((key_id.clone(), codes, std::mem::take(&mut r.addresses)));
                }
            }
            forget_counted(&mut m);
        }
        let mut out = Vec::with_capacity(batch.len());
        for (key_id, codes, addresses) in batch {
            let total: u64 = codes.values().filter_map(|v| v.as_u64()).sum();
            let ev = Event {
                actor: audit::Actor::Key(&key_id),
                action: "api_key.refused",
                target: Some(key_id.clone()),
                ip: addresses.first().map(|ip| ip.to_string()),
                user_agent: None,
                outcome: audit::Outcome::Failure,
                details: serde_json::json!({
                    "requests": total,
                    "by_code": codes,
                    "addresses": addresses.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                }),
            };
            audit::record(db, now, &ev).await?;
            out.push(RefusalBatch {
                key_id,
                requests: total,
                first_address: addresses.first().map(ToString::to_string),
            });
        }
        Ok(out)
    }

    /// Adds the requests counted since the last flush (accepted, and refused by code)
    /// to each key's usage for the hour of `now`, in one transaction; counts a failed
    /// write could not add are kept for the next flush. Returns the number of rows
    /// written.
    pub async fn flush_usage(&self, db: &Db, now: i64) -> Result<usize, sqlx::Error> {
        let accepted = self.inner.tallies.take();
        let mut refused = Vec::new();
        if let Ok(mut m) = self.inner.refused.lock() {
            for (key_id, r) in m.iter_mut() {
                for (code, (_, usage)) in r.by_code.iter_mut() {
                    if *usage > 0 {
                        refused.push((key_id.clone(), *code, std::mem::take(usage)));
                    }
                }
            }
            forget_counted(&mut m);
        }
        let rows: Vec<(String, &'static str, u64)> = {
            let Ok(mut pending) = self.inner.unwritten.lock() else {
                return Ok(0);
            };
            for (key_id, n) in accepted {
                *pending.entry((key_id, usage::ACCEPTED)).or_insert(0) += n;
            }
            for (key_id, code, n) in refused {
                *pending.entry((key_id, code)).or_insert(0) += n;
            }
            pending
                .iter()
                .map(|((k, c), n)| (k.clone(), *c, *n))
                .collect()
        };
        usage::add(db, now, &rows).await?;
        // Written: take off what was written (more may have been added meanwhile).
        if let Ok(mut pending) = self.inner.unwritten.lock() {
            for (key_id, code, n) in &rows {
                if let Some(left) = pending.get_mut(&(key_id.clone(), *code)) {
                    *left -= n;
                    if *left == 0 {
                        pending.remove(&(key_id.clone(), *code));
                    }
                }
            }
        }
        Ok(rows.len())
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
            let mine = Arc::new(k.copy_for_thread(self.new_tally(&k.key_id)));
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

/// Drops the keys whose refusals are all audited and added to usage.
fn forget_counted(m: &mut std::collections::HashMap<String, KeyRefusals>) {
    m.retain(|_, r| r.by_code.values().any(|(a, u)| *a > 0 || *u > 0));
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
