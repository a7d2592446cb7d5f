//! `keyward serve`: open the database, migrate, listen.

use crate::cli::{open_db, CliError};
use app::core::{
    clock::Clock,
    config::{Config, MasterKey, Secret},
    state::AppState,
};
use base64::Engine as _;
use leptos::config::LeptosOptions;
use std::{net::SocketAddr, path::Path, time::Duration};
use tower_sessions::ExpiredDeletion as _;

pub async fn serve(config: Config) -> Result<(), CliError> {
    let db = open_db(&config).await?;
    let master_key = load_master_key(&config.master_key)?;
    if app::core::users::count(&db)
        .await
        .map_err(|e| CliError::Message(format!("database: {e}")))?
        == 0
    {
        eprintln!("keyward: no users yet; create the first Owner with: keyward admin create --email you@example.com");
    }
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    if !Path::new(&site_root).join("pkg/keyward.wasm").exists() {
        tracing::warn!(site_root, "the browser bundle is missing: pages will work without JavaScript only; build it with scripts/build.sh");
    }
    let leptos_options = LeptosOptions::builder()
        .output_name("keyward")
        .site_root(site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build();
    let listen = config.listen;
    let public = config.public_url.url.clone();
    let api_doc = std::sync::Arc::new(
        crate::api::openapi()
            .to_pretty_json()
            .map_err(|e| CliError::Message(format!("OpenAPI document: {e}")))?,
    );
    let state = AppState::build(
        leptos_options,
        config,
        db,
        Clock::system(),
        master_key,
        |s| s.api_doc = api_doc,
    );

    // Expired sessions are cleaned up in the background (every instance may do it; the
    // delete is idempotent).
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

    // API key "last used" is written in batches, never once per request; also the
    // throttling rows that have aged out are pruned.
    let (keys, db) = (state.keys.clone(), state.db.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = keys.flush_last_used(&db).await {
                tracing::warn!(error = %e, "writing API key last-used times failed");
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if let Err(e) = keys.flush_refused(&db, now).await {
                tracing::warn!(error = %e, "auditing refused API requests failed");
            }
            n += 1;
            if n % 60 == 0 {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                if let Err(e) = app::core::throttle::prune(&db, now).await {
                    tracing::warn!(error = %e, "pruning sign-in throttling failed");
                }
            }
        }
    });
    let flush_keys = (state.keys.clone(), state.db.clone());

    // PostgreSQL: other instances' key, app, role and user changes drop this
    // instance's key verification cache (within a second).
    if state.db.backend == app::core::db::Backend::Postgres {
        tokio::spawn(app::core::keys::listen_for_changes(
            state.config.database_url.expose().clone(),
            state.keys.clone(),
        ));
    }

    // The outbox worker: delivers approved messages and expires pending ones. Every
    // instance runs one; row claims keep them from sending a message twice.
    tokio::spawn(app::core::delivery::worker(state.clone()));

    let app = crate::router::build(state);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        CliError::Message(format!("cannot listen on {listen} (KEYWARD_LISTEN): {e}"))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::Message(e.to_string()))?;
    tracing::info!("Keyward listening on http://{bound} (public URL {public})");
    eprintln!("keyward: listening on http://{bound}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| CliError::Message(format!("server error: {e}")))?;
    // Last uses noted since the last tick.
    if let Err(e) = flush_keys.0.flush_last_used(&flush_keys.1).await {
        tracing::warn!(error = %e, "writing API key last-used times at shutdown failed");
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The given key, or (development) the key kept beside the database, generated on first start.
pub fn load_master_key(mk: &MasterKey) -> Result<Secret<[u8; 32]>, CliError> {
    let path = match mk {
        MasterKey::Given(k) => return Ok(k.clone()),
        MasterKey::GenerateBeside(p) => p,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Message(format!(
                "cannot read the master key {}: {e}",
                path.display()
            ))
        })?;
        let bytes = b64.decode(text.trim()).map_err(|_| {
            CliError::Message(format!(
                "the master key file {} is not base64",
                path.display()
            ))
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            CliError::Message(format!(
                "the master key file {} does not hold 32 bytes",
                path.display()
            ))
        })?;
        return Ok(Secret::new(key));
    }
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| {
        CliError::Message(format!(
            "cannot create the development master key {}: {e}",
            path.display()
        ))
    })?;
    std::io::Write::write_all(&mut f, format!("{}\n", b64.encode(key)).as_bytes())
        .map_err(|e| CliError::Message(e.to_string()))?;
    tracing::warn!(path = %path.display(), "generated a development master key; in production set KEYWARD_MASTER_KEY");
    Ok(Secret::new(key))
}
