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
    accept(listener, app, HEAD_TIMEOUT, shutdown()).await;
    crate::jobs::at_shutdown(&at_shutdown).await;
    Ok(())
}

/// How long a client may take to send a request's head (line and headers), and its body
/// (between two of its pieces): a connection that trickles them in (slowloris) is
/// closed, so one client cannot hold the server's connections open as long as it likes.
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `app` on `listener` until a shutdown signal, then lets the open connections
/// finish. (What `axum::serve` does, with hyper's timer and a limit on the time a
/// request's head may take, which `axum::serve` does not set: without it, a client that
/// never finishes its headers keeps its connection for ever.)
async fn accept<S>(
    listener: tokio::net::TcpListener,
    app: S,
    head_timeout: std::time::Duration,
    until: impl std::future::Future<Output = ()>,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut signal = std::pin::pin!(until);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        // The peer's address for `ConnectInfo`; then the body, which must arrive within
        // `HEAD_TIMEOUT` too (an error to whatever reads it: a 4xx).
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                req
            })
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                head_timeout,
            ))
            .map_request(
                |req: http::Request<tower_http::timeout::TimeoutBody<hyper::body::Incoming>>| {
                    req.map(axum::body::Body::new)
                },
            )
            .service(app.clone());
        // HTTP/1.1, as `axum::serve` without its http2 feature (no upgrades: nothing
        // here speaks websockets).
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .serve_connection(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A client that never finishes its request's head, or its body, loses the
    /// connection after the timeout; one that does is answered.
    #[tokio::test]
    async fn a_request_trickled_in_past_the_timeout_loses_its_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|| async { "ok" }).post(|body: String| async move { body }),
        );
        let timeout = std::time::Duration::from_millis(300);
        tokio::spawn(accept(listener, app, timeout, std::future::pending()));
        // Within the time: answered.
        let mut fine = tokio::net::TcpStream::connect(addr).await.unwrap();
        fine.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        fine.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "{answer}"
        );
        // A head never finished, a body never sent: the server ends both.
        for partial in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello"[..],
        ] {
            let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
            slow.write_all(partial).await.unwrap();
            let started = std::time::Instant::now();
            let mut rest = Vec::new();
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                slow.read_to_end(&mut rest),
            )
            .await;
            assert!(read.is_ok(), "the connection was still open after 10 s");
            let took = started.elapsed();
            assert!(took >= timeout / 2, "closed too soon: {took:?}");
            // (Nothing, or a refusal: never the request's answer.)
            let text = String::from_utf8_lossy(&rest);
            assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
        }
    }
}
