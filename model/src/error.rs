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
    #[error("Too many requests. Try again in {}.", seconds(*retry_after_secs))]
    RateLimited { retry_after_secs: u64 },
    /// The server is busy or cannot reach its database (a pool that stayed exhausted, a
    /// connection lost): nothing the caller did wrong, and worth retrying.
    #[error("Keyward is busy or cannot reach its database right now. Try again in {}.", seconds(*retry_after_secs))]
    Unavailable { retry_after_secs: u64 },
    #[error("Something went wrong on our side. Try again, and tell your administrator if it keeps happening.")]
    Internal,
}

/// "1 second", "5 seconds".
pub fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".to_owned()
    } else {
        format!("{n} seconds")
    }
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
            Self::Unavailable { .. } => 503,
            Self::Internal => 500,
        }
    }

    /// Seconds the caller should wait before trying again (`Retry-After`), when the
    /// refusal is about timing rather than the request itself.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } | Self::Unavailable { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            _ => None,
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
            Self::Unavailable { .. } => "unavailable",
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
/// span, so it joins the `X-Request-Id` the user sees) and the client gets `Internal`,
/// or `Unavailable` (503 with `Retry-After`) when the database could not be reached in
/// time: every connection busy past the pool's wait, or the connection lost. Handlers
/// and domain code use plain `?`; a unique violation that means something to the user
/// is turned into a field error first (`core::infra::db::OnUnique`).
/// The database could not do the work in time, through nobody's fault in the request:
/// no pooled connection freed up, the connection was lost, or the rows were locked by
/// another writer past the wait (SQLite's "database is locked" after its busy timeout;
/// PostgreSQL's `lock_not_available`).
#[cfg(feature = "server")]
pub fn unreachable_database(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => {
            d.code().as_deref() == Some("55P03")
                || d.message().starts_with("database is locked")
                || d.message().starts_with("database table is locked")
        }
        _ => false,
    }
}

#[cfg(feature = "server")]
impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            e if unreachable_database(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable {
                    retry_after_secs: 5,
                }
            }
            e => Self::internal(e),
        }
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
                // A field the form always sends that was left out (a crafted or truncated
                // post) is named as that field's error, beside it on the page.
                if let Some(field) = missing_field(&m) {
                    return Self::validation(
                        field,
                        format!("Required: the form was sent without its {field} field."),
                    );
                }
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

/// The field named by serde's "missing field `name`" (a form field name: letters,
/// digits and `_`, at most 64).
#[cfg(feature = "server_fn")]
fn missing_field(message: &str) -> Option<&str> {
    let name = message.strip_prefix("missing field `")?.strip_suffix('`')?;
    let plain = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    plain.then_some(name)
}

#[cfg(feature = "server_fn")]
mod server_fn_error {
    pub use server_fn::codec::JsonEncoding;
    pub use server_fn::error::{FromServerFnError, ServerFnErrorErr};
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::AppError;

    #[test]
    fn an_unreachable_database_is_503_not_500() {
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let e = AppError::from(e);
            assert_eq!((e.status(), e.code()), (503, "unavailable"));
        }
        let e = AppError::from(sqlx::Error::RowNotFound);
        assert_eq!((e.status(), e.code()), (500, "internal"));
    }
}
