//! `/healthz` (the process answers) and `/readyz` (the database answers too).

use app::state::AppState;
use axum::{extract::State, http::StatusCode, response::IntoResponse};
use std::time::Duration;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // Each probe asks the database afresh: a pool that lost its database recovers as soon
    // as the database is back, without a restart.
    match tokio::time::timeout(Duration::from_secs(3), state.db.ping()).await {
        Ok(true) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n"),
    }
}

/// `keyward healthcheck`: GET /healthz on the configured listen address.
pub async fn check(
    config: &app::core::infra::config::Config,
) -> Result<(), crate::setup::CliError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let fail = |m: String| {
        crate::setup::CliError::Message(format!("healthcheck of http://{addr}/healthz failed: {m}"))
    };
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.take(4096).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .map_err(|_| fail("timed out".into()))?
        .map_err(|e| fail(e.to_string()))?;
    let head = String::from_utf8_lossy(&buf);
    if head.starts_with("HTTP/1.1 200") {
        println!("ok");
        Ok(())
    } else {
        Err(fail(head.lines().next().unwrap_or("no answer").to_owned()))
    }
}
