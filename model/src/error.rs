//! The one error type that crosses the edge (server functions, REST, pages).
//!
//! Only client-safe variants exist here: the real cause of an `Internal` error is logged
//! on the server with the request's context and never serialised to the browser.

use serde::{Deserialize, Serialize};
#[cfg(feature = "server")]
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("You need to sign in.")]
    Unauthenticated,
    #[error("You do not have permission to do that.")]
    Forbidden,
    /// Forbidden, with the reason and what to do instead.
    #[error("{0}")]
    Refused(String),
    #[error("Not found.")]
    NotFound,
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("Too many attempts. Try again in {retry_after_secs} seconds.")]
    RateLimited { retry_after_secs: u64 },
    #[error("Something went wrong on our side. Try again, and tell your administrator if it keeps happening.")]
    Internal,
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden | Self::Refused(_) => 403,
            Self::NotFound => 404,
            Self::Validation { .. } => 400,
            Self::Conflict(_) => 409,
            Self::RateLimited { .. } => 429,
            Self::Internal => 500,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden | Self::Refused(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::Validation { .. } => "validation_failed",
            Self::Conflict(_) => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal => "internal",
        }
    }

    /// Logs the real cause and returns the client-safe `Internal`.
    #[cfg(feature = "server")]
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal
    }
}

/// A database error never reaches the client: its cause is logged (inside the request's
/// span, so it joins the `X-Request-Id` the user sees) and the client gets `Internal`.
/// Handlers and domain code use plain `?`; a unique violation that means something to
/// the user is turned into a field error first (`core::infra::db::OnUnique`).
#[cfg(feature = "server")]
impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

#[cfg(feature = "server_fn")]
impl server_fn_error::FromServerFnError for AppError {
    type Encoder = server_fn_error::JsonEncoding;

    fn from_server_fn_error(value: server_fn_error::ServerFnErrorErr) -> Self {
        use server_fn_error::ServerFnErrorErr as E;
        match value {
            // The request's arguments could not be decoded (missing, duplicated or
            // mistyped fields, a body of another format, invalid UTF-8): the caller's
            // mistake, answered 400 (the server's middleware sets the status).
            E::Args(m) | E::MissingArg(m) | E::Deserialization(m) => {
                let m: String = m.chars().take(300).collect();
                Self::validation("form", format!("The form could not be read: {m}"))
            }
            E::UnsupportedRequestMethod(m) => Self::validation(
                "form",
                format!("This endpoint does not take that request: {m}"),
            ),
            // Transport failures seen in the browser.
            other => {
                #[cfg(feature = "server")]
                tracing::warn!(error = %other, "server function failure");
                let _ = other;
                Self::Internal
            }
        }
    }
}

#[cfg(feature = "server_fn")]
mod server_fn_error {
    pub use server_fn::codec::JsonEncoding;
    pub use server_fn::error::{FromServerFnError, ServerFnErrorErr};
}
