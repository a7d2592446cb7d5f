//! `AppState`: everything a request handler or server function needs, cloned cheaply.

use super::{
    clock::Clock,
    config::{Config, Secret},
    db::Db,
    password::Hasher,
    session_store::DbSessionStore,
};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef, Debug)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub db: Db,
    pub hasher: Hasher,
    pub clock: Clock,
    pub sessions: DbSessionStore,
    /// Key for data encrypted at rest (TOTP seeds, revealable channel keys).
    pub master_key: Secret<[u8; 32]>,
}

impl AppState {
    pub fn new(
        leptos_options: LeptosOptions,
        config: Config,
        db: Db,
        clock: Clock,
        master_key: Secret<[u8; 32]>,
    ) -> Self {
        // Two argon2 runs at once on a 2-core machine; more would only queue in the kernel.
        let hasher = Hasher::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        );
        let sessions = DbSessionStore::new(db.clone());
        Self {
            leptos_options,
            config: Arc::new(config),
            db,
            hasher,
            clock,
            sessions,
            master_key,
        }
    }
}
