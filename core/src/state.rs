//! `Core`: the services every domain call needs (configuration, database, mail,
//! hashing, clock, sessions, the key cache, the master key). One `Arc`, so the clone
//! each request makes is a single reference-count increment. The web layers wrap it
//! with what only they need (Leptos options, the OpenAPI document).

use crate::{
    audit::Origin,
    infra::clock::Clock,
    infra::config::{Config, Secret},
    infra::db::Db,
    infra::mail::Mailer,
    infra::password::Hasher,
    infra::session_store::DbSessionStore,
    keys::cache::KeyCache,
};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Core(Arc<Services>);

impl std::ops::Deref for Core {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

#[derive(Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub hasher: Hasher,
    pub clock: Clock,
    pub sessions: DbSessionStore,
    pub mailer: Arc<Mailer>,
    /// API key verification cache (see `keys`).
    pub keys: KeyCache,
    /// Key for data encrypted at rest (TOTP seeds, webhook secrets).
    pub master_key: Secret<[u8; 32]>,
    /// Wakes the outbox worker when a message is queued (`delivery`).
    pub outbox: Arc<tokio::sync::Notify>,
    /// Wakes the leak-report worker when a report is stored (`keys::leaks`).
    pub leaks: Arc<tokio::sync::Notify>,
    /// Leak reports allowed per address (`keys::leaks`).
    pub leak_limits: crate::keys::leaks::Limits,
    /// App events allowed per address and per key (`keys::apps::record_event`).
    pub event_limits: crate::keys::apps::EventLimits,
}

impl Core {
    pub fn new(config: Config, db: Db, clock: Clock, master_key: Secret<[u8; 32]>) -> Self {
        Self::build(config, db, clock, master_key, |_| {})
    }

    /// Like `new`, with `adjust` run on the services before they are shared (tests swap
    /// the mailer).
    #[allow(clippy::expect_used, reason = "the built-in sender address is valid")]
    pub fn build(
        config: Config,
        db: Db,
        clock: Clock,
        master_key: Secret<[u8; 32]>,
        adjust: impl FnOnce(&mut Services),
    ) -> Self {
        // Two argon2 runs at once on a 2-core machine; more would only queue in the kernel.
        let hasher = Hasher::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        );
        let sessions = DbSessionStore::new(db.clone());
        // The configuration was validated at load (SMTP URL form, sender address), so
        // this only fails on what lettre alone rejects; fall back to the outbox then,
        // loudly, rather than refuse to start.
        let mailer = Mailer::from_config(&config).unwrap_or_else(|e| {
            tracing::error!(error = %e, "mail configuration rejected; writing mail to the outbox");
            Mailer::new(None, "keyward@localhost", config.outbox_dir.clone())
                .expect("the built-in sender address is valid")
        });
        let mut services = Services {
            config: Arc::new(config),
            db,
            hasher,
            clock,
            sessions,
            mailer: Arc::new(mailer),
            keys: KeyCache::default(),
            master_key,
            outbox: Arc::new(tokio::sync::Notify::new()),
            leaks: Arc::new(tokio::sync::Notify::new()),
            leak_limits: Default::default(),
            event_limits: Default::default(),
        };
        adjust(&mut services);
        Self(Arc::new(services))
    }
}

/// What a domain call runs with: the services, the time of the request (read once from
/// the injected clock, so one call sees one instant) and where the request came from
/// (written to the audit log).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub st: &'a Services,
    pub now: i64,
    pub origin: &'a Origin,
}

impl<'a> Ctx<'a> {
    pub fn new(st: &'a Services, origin: &'a Origin) -> Self {
        Self {
            st,
            now: st.clock.now(),
            origin,
        }
    }
}
