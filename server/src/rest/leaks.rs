//! `POST /api/v1/leaks`: anyone reports tokens found where they should not be (a secret
//! scanner, a person). No key: the reporter need not be a user. The answer says only how
//! many tokens were received, whatever they were (see `core::keys::leaks`).

use super::{auth::Api, error::ApiError};
use axum::{extract::rejection::JsonRejection, http::StatusCode, Json};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LeakReport {
    /// The tokens found: 1 to 100, each at most 200 characters. Anything that is not a
    /// Keyward secret key with a valid checksum is ignored.
    #[schema(min_items = 1, max_items = 100)]
    tokens: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct LeakReceipt {
    /// How many tokens the report held (the same answer whatever they were).
    received: usize,
}

/// Report leaked tokens (no authentication).
#[utoipa::path(post, path = "/api/v1/leaks", tag = "leaks", request_body = LeakReport,
    description = "Reports tokens found in a public place. No authentication. Every token that is a Keyward secret key with a valid checksum and names an active key is revoked shortly after (its owner and the administrators are emailed, and the revocation is audited with the reporter's address). The answer is the same whatever the tokens were: it never says whether one was a key. Limited per address (10 reports, then one every 6 seconds; an IPv6 address counts as its /64).",
    responses(
        (status = 202, description = "The report was received", body = LeakReceipt),
        (status = 400, description = "`validation_failed`: not 1 to 100 tokens of at most 200 characters, or not this JSON shape", body = super::error::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = super::error::ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = super::error::ErrorBody),
        (status = 500, description = "`internal`", body = super::error::ErrorBody),
        (status = 503, description = "`unavailable`, with `Retry-After`", body = super::error::ErrorBody),
    ))]
pub(super) async fn report_leaks(
    api: Api,
    body: Result<Json<LeakReport>, JsonRejection>,
) -> Result<(StatusCode, Json<LeakReceipt>), ApiError> {
    let b = api.body(body)?;
    let st = api.state.core();
    let received = app::core::keys::leaks::report(st, st.clock.now(), api.ip(), &b.tokens)
        .await
        .map_err(|e| api.app_err(e))?;
    Ok((StatusCode::ACCEPTED, Json(LeakReceipt { received })))
}
