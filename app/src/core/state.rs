//! `AppState`: everything a request handler or server function needs. One `Arc`, so
//! the clone that each middleware layer and extractor makes per request is a single
//! reference-count increment.

use super::{
    clock::Clock,
    config::{Config, Secret},
    db::Db,
    keys::KeyCache,
    mail::Mailer,
    password::Hasher,
    session_store::DbSessionStore,
};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// leptos_axum reads the options from the router state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.leptos_options.clone()
    }
}

#[derive(Debug)]
pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub db: Db,
    pub hasher: Hasher,
    pub clock: Clock,
    pub sessions: DbSessionStore,
    pub mailer: Arc<Mailer>,
    /// API key verification cache (see `core::keys`).
    pub keys: KeyCache,
    /// The REST API's OpenAPI document (JSON), set by the server at start-up.
    pub api_doc: Arc<String>,
    /// Key for data encrypted at rest (TOTP seeds, webhook secrets).
    pub master_key: Secret<[u8; 32]>,
    /// Wakes the outbox worker when a message is queued (`core::delivery`).
    pub outbox: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new(
        leptos_options: LeptosOptions,
        config: Config,
        db: Db,
        clock: Clock,
        master_key: Secret<[u8; 32]>,
    ) -> Self {
        Self::build(leptos_options, config, db, clock, master_key, |_| {})
    }

    /// Like `new`, with `adjust` run on the parts before they are shared (the server
    /// sets the OpenAPI document; tests swap the mailer).
    pub fn build(
        leptos_options: LeptosOptions,
        config: Config,
        db: Db,
        clock: Clock,
        master_key: Secret<[u8; 32]>,
        adjust: impl FnOnce(&mut Shared),
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
        let mut shared = Shared {
            leptos_options,
            config: Arc::new(config),
            db,
            hasher,
            clock,
            sessions,
            mailer: Arc::new(mailer),
            keys: KeyCache::default(),
            api_doc: Arc::new(String::new()),
            master_key,
            outbox: Arc::new(tokio::sync::Notify::new()),
        };
        adjust(&mut shared);
        Self(Arc::new(shared))
    }
}
