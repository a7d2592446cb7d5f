//! Every background loop of an instance, in one place, on the injected clock. Each is
//! safe to run on every instance at once: deletes are idempotent, the outbox worker
//! claims rows, and the key-change listener only drops this instance's cache.

use app::state::AppState;
use std::time::Duration;
use tower_sessions::ExpiredDeletion as _;

/// Starts the loops: expired sessions deleted (every 5 minutes); API key "last used",
/// refused requests and usage per key written in batches (every 5 seconds, never once
/// per request),
/// refusals summarised in the log (every minute)
/// and aged-out sign-in throttling rows, form submissions, handled leak reports and
/// usage older than 90 days pruned (every 5 minutes); on PostgreSQL the
/// key-change listener; the outbox worker (approved messages delivered, pending ones
/// expired); the leak-report worker (reported keys revoked); expiry reminders and
/// unused keys disabled (every minute).
pub fn spawn(state: &AppState) {
    let store = state.sessions.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "deleting expired sessions failed");
            }
        }
    });

    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = st.keys.flush_last_used(&st.db).await {
                tracing::warn!(error = %e, "writing API key last-used times failed");
            }
            match st.keys.flush_refused(&st.db, st.clock.now()).await {
                Ok(batches) => {
                    for b in batches {
                        let alert = app::core::audit::alerts::key_refused(
                            st.core(),
                            st.clock.now(),
                            &b.key_id,
                            b.requests,
                            b.first_address,
                        );
                        if let Err(e) = alert.await {
                            tracing::warn!(error = %e, "counting refused requests for alerts failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "auditing refused API requests failed"),
            }
            if let Err(e) = st.keys.flush_usage(&st.db, st.clock.now()).await {
                tracing::warn!(error = %e, "writing API key usage failed (kept for the next try)");
            }
            crate::http::metrics::upkeep();
            n += 1;
            if n % 12 == 0 {
                st.keys.refusals().log_counts();
            }
            if n % 60 == 0 {
                if let Err(e) = app::core::identity::throttle::prune(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning sign-in throttling failed");
                }
                if let Err(e) = app::core::infra::submissions::prune(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning form submissions failed");
                }
                if let Err(e) = app::core::keys::leaks::prune(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning handled leak reports failed");
                }
                if let Err(e) = app::core::keys::usage::prune(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning API key usage failed");
                }
                if let Err(e) = app::core::keys::apps::prune_events(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning app events failed");
                }
                if let Err(e) = app::core::messages::events::prune(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning event webhook deliveries failed");
                }
                if let Err(e) = app::core::audit::alerts::prune(&st.db, st.clock.now()).await {
                    tracing::warn!(error = %e, "pruning alert counts failed");
                }
            }
        }
    });

    // PostgreSQL: other instances' key, app, role and user changes drop this
    // instance's key verification cache (within a second).
    if state.db.backend == app::core::infra::db::Backend::Postgres {
        tokio::spawn(app::core::keys::cache::listen_for_changes(
            state.config.database_url.expose().clone(),
            state.keys.clone(),
        ));
    }

    // Every instance runs one outbox worker; row claims keep them from sending a
    // message twice.
    tokio::spawn(app::core::messages::delivery::worker(state.core().clone()));
    // Event webhooks, likewise claimed row by row.
    tokio::spawn(app::core::messages::events::worker(state.core().clone()));

    // Leak reports: the keys they name are revoked by whichever instance claims them.
    tokio::spawn(app::core::keys::leaks::worker(state.core().clone()));

    // The key lifecycle, every minute on the injected clock: expiry reminders, and keys
    // unused for Settings > Keys' days disabled; each claimed as it is marked, so done
    // once across instances.
    let st = state.core().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match app::core::keys::reminders::run(&st).await {
                Ok(sent) if !sent.is_empty() => {
                    tracing::info!(sent = sent.len(), "expiry reminders sent");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sending expiry reminders failed"),
            }
            match app::core::keys::lifecycle::disable_unused(&st).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(disabled = done.len(), "unused API keys disabled");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "disabling unused API keys failed"),
            }
        }
    });
}

/// What must not be lost when the process stops: the uses, refusals and usage noted
/// since the last tick, and the refusals counted since the last log summary.
pub async fn at_shutdown(state: &AppState) {
    state.keys.refusals().log_counts();
    if let Err(e) = state.keys.flush_last_used(&state.db).await {
        tracing::warn!(error = %e, "writing API key last-used times at shutdown failed");
    }
    if let Err(e) = state.keys.flush_refused(&state.db, state.clock.now()).await {
        tracing::warn!(error = %e, "auditing refused API requests at shutdown failed");
    }
    if let Err(e) = state.keys.flush_usage(&state.db, state.clock.now()).await {
        tracing::warn!(error = %e, "writing API key usage at shutdown failed");
    }
    // The server's state is never dropped (`AppState::forever`): its connections are
    // closed here (SQLite's last one folds its write-ahead log into the database). This
    // waits for a job still holding one; a job that starts after this logs that the pool
    // is closed, which at shutdown is expected.
    state.db.pool.close().await;
}
