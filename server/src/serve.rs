//! `keyward serve`: open the database, migrate, listen.

use crate::setup::{load_master_key, open_db, CliError};
use app::core::{infra::clock::Clock, infra::config::Config, state::Core};
use app::state::AppState;
use leptos::config::LeptosOptions;
use std::{net::SocketAddr, path::Path};

pub async fn serve(config: Config) -> Result<(), CliError> {
    // Before anything is counted: the domain's counters keep the handles they get first.
    crate::http::metrics::install(crate::http::router::route_templates())
        .map_err(|e| CliError::Message(format!("metrics: {e}")))?;
    if config.env == app::core::infra::config::RunMode::Production && config.metrics_token.is_none()
    {
        tracing::warn!("KEYWARD_METRICS_TOKEN is unset: /metrics answers loopback clients that connect directly; a TCP forwarder on this host that adds no X-Forwarded-For would expose it. Set a token to scrape it.");
    }
    let db = open_db(&config).await?;
    let master_key = load_master_key(&config.master_key)?;
    let started = Clock::system().now();
    if !app::core::infra::sealing::is_current(&db, started, master_key.expose())
        .await
        .map_err(|e| CliError::Message(format!("database: {e}")))?
    {
        return Err(CliError::Message(
            "the master key is not the one this database is sealed with (was it rotated with `keyward master-key rotate`?): start with the new key".into(),
        ));
    }
    if app::core::identity::users::count(&db)
        .await
        .map_err(|e| CliError::Message(format!("database: {e}")))?
        == 0
    {
        eprintln!("keyward: no users yet; create the first Owner with: keyward admin create --email you@example.com");
    }
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    // The pages load the content-addressed bundle `scripts/build.sh` wrote
    // (`pkg/keyward-<hash>/keyward.{js,wasm,css}` and the pages' chunks): Leptos names
    // the script, the wasm and (in `app::shell`) the stylesheet after `output_name`.
    let bundle = crate::http::bundle::hashed_name(&Path::new(&site_root).join("pkg"));
    if bundle.is_none() {
        tracing::warn!(site_root, "the browser bundle is missing: pages will work without JavaScript only; build it with scripts/build.sh");
    }
    let leptos_options = LeptosOptions::builder()
        .output_name(bundle.map_or_else(|| "keyward".to_owned(), |dir| format!("{dir}/keyward")))
        .site_root(site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build();
    let listen = config.listen;
    let public = config.public_url.url.clone();
    let api_doc = std::sync::Arc::new(
        crate::rest::openapi()
            .to_pretty_json()
            .map_err(|e| CliError::Message(format!("OpenAPI document: {e}")))?,
    );
    let state = AppState::new(
        leptos_options,
        Core::new(config, db, Clock::system(), master_key),
        api_doc,
    )
    .forever();

    crate::jobs::spawn(&state);
    let at_shutdown = state.clone();

    let app = crate::http::router::build(state);
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
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            SocketAddr,
        >(app),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| CliError::Message(format!("server error: {e}")))?;
    crate::jobs::at_shutdown(&at_shutdown).await;
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
