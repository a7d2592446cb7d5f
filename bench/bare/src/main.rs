//! A bare axum 0.8 server: the yardstick `scripts/bench.sh` and `scripts/callgrind.sh`
//! measure Keyward's key check against. One route, `GET /api/v1/whoami`, that answers a
//! fixed JSON body of the size of Keyward's (401 without an `Authorization` header), on
//! the same multi-threaded tokio runtime, with no middleware, state or database.
//!
//! Listens on `BARE_LISTEN` (default 127.0.0.1:3939).

use axum::{
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use std::process::ExitCode;

const BODY: &str = r#"{"key_id":"key_0123456789abcdef","kind":"rest","app_id":1,"environment":"live","name":"bench","permissions":["api.key.view","message.create","message.view"],"expires_at":null}"#;

async fn whoami(headers: HeaderMap) -> impl IntoResponse {
    if headers.contains_key(header::AUTHORIZATION) {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            BODY,
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"invalid_key"}"#,
        )
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3939".into());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-bare: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new().route("/api/v1/whoami", get(whoami));
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-bare: {e}");
            ExitCode::FAILURE
        }
    }
}
