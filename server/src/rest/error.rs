//! The REST API's one error type: the contract's `{"error":{"code","message",
//! "request_id"}}` body, with the request id also in `X-Request-Id` and the log line.

use app::error::AppError;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    pub(super) details: Option<Value>,
    request_id: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            request_id: String::new(),
            retry_after: None,
        }
    }

    pub fn with_request_id(mut self, rid: &str) -> Self {
        rid.clone_into(&mut self.request_id);
        self
    }

    pub(super) fn from_app(e: AppError, rid: &str) -> Self {
        let err = match e {
            AppError::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "The API key is not valid.",
            ),
            AppError::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "insufficient_permissions",
                "This key's role does not allow that (a key never holds more than its owner).",
            ),
            AppError::Refused(m) => Self::new(StatusCode::FORBIDDEN, "insufficient_permissions", m),
            AppError::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", "Not found."),
            AppError::Validation { field, message } => {
                let mut e = Self::new(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    message.clone(),
                );
                e.details = Some(json!({ "fields": { field: message } }));
                e
            }
            AppError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AppError::RateLimited { retry_after_secs } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "Too many requests. Try again in {}.",
                        app::error::seconds(retry_after_secs)
                    ),
                );
                e.retry_after = Some(retry_after_secs);
                e
            }
            AppError::Unavailable { retry_after_secs } => {
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!(
                        "Keyward is busy or cannot reach its database right now. Try again in {}.",
                        app::error::seconds(retry_after_secs)
                    ),
                );
                e.retry_after = Some(retry_after_secs);
                e
            }
            AppError::Internal => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side.",
            ),
        };
        err.with_request_id(rid)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Refusals reach the log as counted summaries (`core::keys::refusals`), never a
        // line each: a flood must not fill the disk.
        tracing::debug!(
            request_id = %self.request_id,
            status = self.status.as_u16(),
            code = self.code,
            "api request refused"
        );
        let mut body = json!({
            "error": { "code": self.code, "message": self.message, "request_id": self.request_id }
        });
        if let Some(d) = self.details {
            body["error"]["details"] = d;
        }
        let mut res = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// The error shape of every refusal.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct ErrorDetail {
    /// One of the contract's codes, e.g. `invalid_api_key`.
    #[schema(max_length = 64)]
    code: String,
    #[schema(max_length = 2000)]
    message: String,
    /// Also in the `X-Request-Id` header.
    #[schema(max_length = 64)]
    request_id: String,
}
