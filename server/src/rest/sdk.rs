//! `/api/v1/sdk/events`: the one write a public SDK key may make.

use super::{
    auth::AnyKey,
    error::{ApiError, ErrorBody},
};
use app::core::keys;
use axum::{extract::rejection::JsonRejection, http::StatusCode, Json};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// A JSON object of at most 4096 bytes.
    #[serde(default)]
    #[schema(value_type = Object)]
    properties: Value,
}

/// The one write a public SDK key may make: an event for its app.
#[utoipa::path(post, path = "/api/v1/sdk/events", tag = "sdk", security(("bearer" = [])), request_body = EventBody,
    description = "Records an event for the key's app: the one write a public SDK key may make.",
    responses((status = 202, description = "`{\"accepted\": true}`", body = Object), (status = 400, body = ErrorBody),
        (status = 429, description = "Too many events from this address, or with this key from everywhere (`Retry-After` says when to send again)", body = ErrorBody)))]
pub(super) async fn sdk_event(
    AnyKey { api, key }: AnyKey,
    body: Result<Json<EventBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b = api.body(body)?;
    let st = api.state.core();
    keys::apps::record_event(st, st.clock.now(), api.ip(), &key, &b.name, &b.properties)
        .await
        .map_err(|e| api.app_err(e))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": true }))))
}
