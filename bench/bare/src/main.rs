//! A bare axum 0.8 server: the yardstick `scripts/bench.sh` and `scripts/callgrind.sh`
//! measure Keyward's key check against. One route, `GET /api/v1/whoami`, that answers a
//! fixed JSON body (401 without an `Authorization` header), on the same multi-threaded
//! tokio runtime, with no middleware, state or database.
//!
//! Listens on `BARE_LISTEN` (default 127.0.0.1:3939). `BARE_BODY` is the body (the
//! benchmarks pass Keyward's own whoami answer, so both send the same bytes); without
//! it, a body of the same shape.

use axum::{
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use std::process::ExitCode;

const BODY: &str = r#"{"key_id":"key_0123456789abcdef","kind":"rest","environment":"live","app":{"id":1,"name":"Bench"},"owner":{"id":1,"email":"bench@example.com"},"permissions":["api.key.view","api.key.create","api.key.update","api.key.delete","message.create"],"expires_at":null}"#;

async fn whoami(body: &'static str, headers: HeaderMap) -> axum::response::Response {
    if headers.contains_key(header::AUTHORIZATION) {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"invalid_key"}"#,
        )
            .into_response()
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
    // Kept for the life of the process: answering with it touches no shared counter.
    let body: &'static str = match std::env::var("BARE_BODY") {
        Ok(b) if b.is_empty() => {
            eprintln!("bench-bare: BARE_BODY is empty");
            return ExitCode::FAILURE;
        }
        Ok(b) => Box::leak(b.into_boxed_str()),
        Err(_) => BODY,
    };
    let app = Router::new().route(
        "/api/v1/whoami",
        get(move |headers: HeaderMap| whoami(body, headers)),
    );
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-bare: {e}");
            ExitCode::FAILURE
        }
    }
}
