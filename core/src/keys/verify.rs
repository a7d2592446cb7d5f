//! Verification, the REST API's door: the refusal policy, in the order the contract
//! gives, from a missing key to a public key on a server endpoint. The REST layer maps
//! each [`Refusal`] to its status and code and nothing else.
//!
//! A key is looked up in the cache ([`KeyCache`]) by its hash first; one the cache does
//! not know is checked for its format and checksum before any database work, so a
//! made-up or mistyped key never reaches the database (a text of another length than a
//! key's is refused before it is even hashed). Refusals of a known
//! key are counted per key (audited in batches by `KeyCache::flush_refused`, and added to
//! the key's usage by `KeyCache::flush_usage`); a use is
//! noted at most once a second per key (`KeyCache::touch`).

use super::{
    cache::KeyCache,
    format,
    verified::{Refusal, VerifiedKey},
};
use crate::{access::role_permissions, infra::config::parse_cidr, infra::db::Db};
use std::net::IpAddr;
use std::sync::Arc;

/// Which endpoints a key is presented to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Server endpoints: secret keys only.
    Server,
    /// Endpoints a public SDK key may call too.
    Sdk,
}

/// The whole check of a request's key: `Ok(Ok(key))` when it may proceed to the
/// permission check; `Ok(Err(refusal))` otherwise; `Err` only when the database cannot
/// be read (never "unknown key").
pub async fn verify(
    db: &Db,
    cache: &KeyCache,
    secret: Option<&str>,
    ip: IpAddr,
    now: i64,
    door: Door,
) -> Result<Result<Arc<VerifiedKey>, Refusal>, sqlx::Error> {
    let verdict = check(db, cache, secret, ip, now, door).await;
    if let Ok(v) = &verdict {
        crate::infra::metrics::KEY_VERIFICATIONS.count(match v {
            Ok(_) => "ok",
            Err(r) => r.code(),
        });
    }
    verdict
}

/// [`verify`] without its count.
async fn check(
    db: &Db,
    cache: &KeyCache,
    secret: Option<&str>,
    ip: IpAddr,
    now: i64,
    door: Door,
) -> Result<Result<Arc<VerifiedKey>, Refusal>, sqlx::Error> {
    let limits = cache.refusals();
    // Every refusal counts against the address (and a known key); past the allowance
    // the answer is `RateLimited` instead (see `refusals`).
    let refuse = |key_id: Option<&str>, r: Refusal| match limits.count(ip, key_id, r.code()) {
        Some(wait) => Refusal::RateLimited {
            retry_after_secs: wait,
        },
        None => r,
    };
    let Some(secret) = secret else {
        return Ok(Err(refuse(None, Refusal::Missing)));
    };
    // A text of another length than a key's is refused before it is hashed.
    if !format::has_key_length(secret) {
        return Ok(Err(refuse(None, Refusal::Invalid)));
    }
    // The cache answers for secrets it has seen (every one of them passed the format
    // check below before it was looked up): a working key's call skips the check.
    let digest = format::digest(secret);
    let found = match cache.get(&digest) {
        Some(hit) => {
            crate::infra::metrics::KEY_CACHE.count("hit");
            hit
        }
        None => {
            // Format and checksum before the database: a made-up key costs no lookup
            // (and is no cache miss: nothing is read for it).
            if format::parse(secret).is_none() {
                return Ok(Err(refuse(None, Refusal::Invalid)));
            }
            crate::infra::metrics::KEY_CACHE.count("miss");
            // An address over its allowance gets no database work, except to read again
            // a working key the cache knew before a change dropped it.
            if limits.penalty(ip).is_some() && !cache.was_known(&digest) {
                return Ok(Err(Refusal::RateLimited {
                    retry_after_secs: limits.refuse_penalised(ip),
                }));
            }
            load(db, cache, digest).await?
        }
    };
    let Some(key) = found else {
        return Ok(Err(refuse(None, Refusal::Invalid)));
    };
    let refusal = key.refusal(now).or_else(|| {
        if !key.allows(ip) {
            Some(Refusal::IpNotAllowed)
        } else if key.kind == "sdk" && door == Door::Server {
            Some(Refusal::SdkNotAllowed)
        } else {
            None
        }
    });
    if let Some(r) = refusal {
        // Counted as answered (a refusal past the allowance is `rate_limited`), as the
        // client saw it and as `/metrics` counts it.
        let answered = refuse(Some(&key.key_id), r);
        cache.refused(&key.key_id, answered.code(), ip);
        return Ok(Err(answered));
    }
    cache.touch(&key, now, ip);
    Ok(Ok(key))
}

/// Looks a well-formed key up (from memory when it can); `None` when no key has this
/// secret.
pub async fn lookup(
    db: &Db,
    cache: &KeyCache,
    secret: &str,
) -> Result<Option<Arc<VerifiedKey>>, sqlx::Error> {
    let digest = format::digest(secret);
    match cache.get(&digest) {
        Some(hit) => Ok(hit),
        None => load(db, cache, digest).await,
    }
}

/// What [`load`] reads of a key.
#[derive(sqlx::FromRow)]
struct Row {
    key_id: String,
    kind: String,
    environment: String,
    app_id: i64,
    app: String,
    app_nets: String,
    owner_id: Option<i64>,
    owner: Option<String>,
    role_id: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    key_nets: String,
    owner_status: Option<String>,
    owner_role_id: Option<i64>,
    pending_at: Option<i64>,
    disabled_at: Option<i64>,
    channel: Option<String>,
    key_events: Option<String>,
    sender: Option<String>,
}

/// Reads a key from the database into the cache.
async fn load(
    db: &Db,
    cache: &KeyCache,
    digest: [u8; 32],
) -> Result<Option<Arc<VerifiedKey>>, sqlx::Error> {
    let hash = hex::encode(digest);
    let gen = cache.generation();
    let row: Option<Row> = sqlx::query_as(
        "select k.key_id, k.kind, k.environment, k.app_id, a.name as app, a.networks as app_nets, k.owner_id, u.email as owner, \
         k.role_id, k.expires_at, k.revoked_at, k.networks as key_nets, u.status as owner_status, u.role_id as owner_role_id, \
         k.pending_at, k.disabled_at, k.channel, k.key_events, k.sender \
         from api_keys k join apps a on a.id = k.app_id left join users u on u.id = k.owner_id where k.secret_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&db.pool)
    .await?;
    let v = match row {
        None => None,
        Some(Row {
            key_id,
            kind,
            environment,
            app_id,
            app,
            app_nets,
            owner_id,
            owner,
            role_id,
            expires_at,
            revoked_at,
            key_nets,
            owner_status,
            owner_role_id,
            pending_at,
            disabled_at,
            channel,
            key_events,
            sender,
        }) => {
            // What the key may do: its role's permissions that its owner holds now (a
            // channel key: writing messages, if its owner still may).
            let permissions = match (channel.is_some(), role_id, owner_role_id) {
                (false, Some(r), Some(o)) => crate::access::key_permissions(
                    &role_permissions(db, r).await?,
                    &role_permissions(db, o).await?,
                ),
                (true, _, Some(o)) => crate::access::key_permissions(
                    &[model::roles::Permission::MessageCreate]
                        .into_iter()
                        .collect(),
                    &role_permissions(db, o).await?,
                ),
                _ => Default::default(),
            };
            let channel_events = key_events
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
            let parse = |t: &str| t.lines().filter_map(parse_cidr).collect::<Vec<_>>();
            let tally = cache.new_tally(&key_id);
            Some(Arc::new(VerifiedKey {
                key_id,
                kind,
                environment,
                app_id,
                app,
                owner_id,
                owner,
                role_id,
                owner_role_id,
                expires_at,
                revoked: revoked_at.is_some(),
                pending: pending_at.is_some(),
                channel,
                channel_events,
                sender,
                disabled: disabled_at.is_some(),
                // SDK keys have no owner; a secret key's owner must be active.
                owner_active: owner_id.is_none() || owner_status.as_deref() == Some("active"),
                app_networks: parse(&app_nets),
                key_networks: parse(&key_nets),
                permissions,
                whoami: std::sync::OnceLock::new(),
                last_touched: std::sync::atomic::AtomicI64::new(0),
                tally,
            }))
        }
    };
    cache.put(digest, gen, v.clone());
    Ok(v)
}
