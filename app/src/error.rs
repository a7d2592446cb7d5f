//! The error type that crosses the edge is `model::error::AppError`; here, what only the
//! panel's server side adds to it: answering with its HTTP status.

pub use model::error::{seconds, AppError};

/// Sets the HTTP status of the server-function response to match this error
/// (server functions answer 500 for every error otherwise) and returns it.
///
/// A plain form post (a browser without JavaScript, asking for HTML) is left alone:
/// it is answered with a redirect back to its page carrying the error, and a 4xx
/// status would stop the browser from following it.
#[cfg(feature = "ssr")]
pub fn reply(e: AppError) -> AppError {
    let plain_form_post = leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false);
    if plain_form_post {
        return e;
    }
    if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        set_status(&opts, &e);
    }
    e
}

/// The error's HTTP status, and its `Retry-After` when it has one.
#[cfg(feature = "ssr")]
pub fn set_status(opts: &leptos_axum::ResponseOptions, e: &AppError) {
    if let Ok(code) = http::StatusCode::from_u16(e.status()) {
        opts.set_status(code);
    }
    if let Some(secs) = e.retry_after() {
        opts.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
}
