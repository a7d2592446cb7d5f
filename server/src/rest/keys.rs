//! `/api/v1/whoami` and `/api/v1/keys`: the key making the call, and keys (list,
//! create, rename and change role, revoke, roll).

use super::{
    auth::{AnyKey, Authed, CreateKeys, DeleteKeys, UpdateKeys, ViewKeys},
    error::{ApiError, ErrorBody},
    schema::Cidr,
};
use app::core::keys::{self, NewKey};
use app::core::state::Ctx;
use app::keys::KeyFilter;
use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        Path, Query,
    },
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[utoipa::path(get, path = "/api/v1/whoami", tag = "keys", security(("bearer" = [])),
    description = "The key making the call: id, kind, environment, app, owner, permissions, expiry. SDK keys may call it.",
    responses((status = 200, description = "The key", body = WhoAmI), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn whoami(AnyKey { key, .. }: AnyKey) -> Result<Response, ApiError> {
    // The body depends on the cached key only: rendered once per cache entry.
    let body = key.whoami.get_or_init(|| {
        let w = WhoAmI {
            key_id: key.key_id.clone(),
            kind: key.kind.clone(),
            environment: key.environment.clone(),
            app: AppRef {
                id: key.app_id,
                name: key.app.clone(),
            },
            owner: key.owner_id.map(|id| OwnerRef {
                id,
                email: key.owner.clone(),
            }),
            permissions: key.permissions.iter().map(|x| x.as_str()).collect(),
            expires_at: key.expires_at,
        };
        serde_json::to_vec(&w).unwrap_or_default().into()
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.clone(),
    )
        .into_response())
}

/// 201 with a new key's secret: never stored, never compressed (see
/// `app::auth::ssr::carries_secret`).
fn new_secret(info: app::keys::KeyInfo, secret: String) -> Response {
    (
        StatusCode::CREATED,
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(app::auth::ssr::SECRET_CACHE_CONTROL),
        )],
        Json(json!({ "key": info, "secret": secret })),
    )
        .into_response()
}

/// `GET /whoami`: the key making the call.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct WhoAmI {
    key_id: String,
    /// `rest` or `sdk`.
    kind: String,
    /// `live` or `test`.
    environment: String,
    app: AppRef,
    /// The panel user who owns the key (null for SDK keys).
    owner: Option<OwnerRef>,
    permissions: Vec<&'static str>,
    /// Unix seconds; null: never.
    expires_at: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AppRef {
    id: i64,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct OwnerRef {
    id: i64,
    email: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])), params(KeyFilter),
    description = "The keys of the calling key's app: its owner's own (everyone's with api.key.view_all), newest first, filtered by the optional query parameters. Needs api.key.view. One page at a time: `next` is the key ID to pass as `after` for the following page (absent on the last page).",
    responses((status = 200, description = "`{\"keys\": [Key], \"next\": \"key_…\"}`", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list_keys(
    Authed { api, principal, .. }: Authed<ViewKeys>,
    filter: Result<Query<KeyFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let filter = api.query(filter)?;
    let page = keys::list_keys(&api.state.db, api.state.clock.now(), &principal, &filter)
        .await
        .map_err(|e| api.app_err(e))?;
    let mut body = json!({ "keys": page.keys });
    if let Some(next) = page.next {
        body["next"] = json!(next);
    }
    Ok(Json(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    /// One line of visible text.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    app_id: i64,
    #[schema(pattern = "^(live|test)$", max_length = 4)]
    environment: String,
    /// Defaults to the role of the key making the call; never above what the caller's
    /// owner holds.
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    role_id: Option<i64>,
    /// Unix seconds; absent or null: never.
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    expires_at: Option<i64>,
    /// The key's own IP allow-list: addresses or CIDRs (empty: any address).
    #[serde(default)]
    #[schema(max_items = 500, value_type = Vec<Cidr>)]
    networks: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])), request_body = CreateBody,
    description = "Creates a key of the calling key's own app (another app_id: 403 insufficient_permissions), owned by the caller's owner. The secret is in this response only (Cache-Control: no-store). Needs api.key.create; the role never holds more than the caller's.",
    responses((status = 201, description = "`{\"key\": Key, \"secret\": \"kw_…\"}`", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "`conflict`: the caller's owner already holds the most active keys Settings > Keys allow for this app", body = ErrorBody)))]
pub(super) async fn create_key(
    authed: Authed<CreateKeys>,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (api, key, grant) = (&authed.api, &authed.key, authed.grant()?);
    let b = api.body(body)?;
    let new = NewKey {
        name: &b.name,
        app_id: b.app_id,
        environment: keys::parse_environment(&b.environment).map_err(|e| api.app_err(e))?,
        role_id: b.role_id.or(key.role_id).unwrap_or(-1),
        expires_at: b.expires_at,
        networks: keys::networks_of("networks", &b.networks).map_err(|e| api.app_err(e))?,
    };
    let origin = api.origin();
    let (info, secret) = keys::create_key(&Ctx::new(&api.state, &origin), &grant, &new)
        .await
        .map_err(|e| api.app_err(e))?;
    Ok(new_secret(info, secret))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateBody {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Never above what the key's owner, or the caller's owner, holds.
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    role_id: Option<i64>,
    /// The key's own allow-list, replacing the one it has (addresses or CIDRs; empty:
    /// only the app's list applies).
    #[schema(max_items = 500, value_type = Option<Vec<Cidr>>)]
    networks: Option<Vec<String>>,
}

#[utoipa::path(patch, path = "/api/v1/keys/{key_id}", tag = "keys", security(("bearer" = [])), request_body = UpdateBody,
    params(("key_id" = String, Path, description = "key_…", pattern = "^key_[a-z2-7]{16}$", max_length = 20)),
    description = "Renames a key of the calling key's app, changes its role or replaces its own IP allow-list (an active key only: 409 otherwise; another app's key: 404). Needs api.key.update.",
    responses((status = 200, description = "`{\"key\": Key}`", body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn update_key(
    authed: Authed<UpdateKeys>,
    Path(key_id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (api, grant) = (&authed.api, authed.grant()?);
    let b = api.body(body)?;
    let networks = match &b.networks {
        Some(n) => Some(keys::networks_of("networks", n).map_err(|e| api.app_err(e))?),
        None => None,
    };
    let change = keys::KeyChange {
        key_id: &key_id,
        name: b.name.as_deref(),
        role_id: b.role_id,
        networks,
    };
    let origin = api.origin();
    let info = keys::update(&Ctx::new(&api.state, &origin), &grant, &change)
        .await
        .map_err(|e| api.app_err(e))?;
    Ok(Json(json!({ "key": info })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    #[serde(default)]
    #[schema(max_length = 500)]
    reason: String,
}

#[utoipa::path(delete, path = "/api/v1/keys/{key_id}", tag = "keys", security(("bearer" = [])), request_body(content = RevokeBody, description = "Optional"),
    params(("key_id" = String, Path, description = "key_…", pattern = "^key_[a-z2-7]{16}$", max_length = 20)),
    description = "Revokes a key of the calling key's app at once, for good (another app's key: 404). Needs api.key.delete.",
    responses((status = 200, description = "`{\"key\": Key}`", body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn revoke_key(
    authed: Authed<DeleteKeys>,
    Path(key_id): Path<String>,
    // Read as bytes: the body is optional, and a bad one must get the contract's
    // `validation_failed` after authentication, not the extractor's plain-text refusal.
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let (api, grant) = (&authed.api, authed.grant()?);
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        api.body(Json::<RevokeBody>::from_bytes(&body))?.reason
    };
    let origin = api.origin();
    let info = keys::revoke(&Ctx::new(&api.state, &origin), &grant, &key_id, &reason)
        .await
        .map_err(|e| api.app_err(e))?;
    Ok(Json(json!({ "key": info })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RollBody {
    /// 0 to 604800 (7 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    grace_seconds: i64,
}

#[utoipa::path(post, path = "/api/v1/keys/{key_id}/roll", tag = "keys", security(("bearer" = [])), request_body = RollBody,
    params(("key_id" = String, Path, description = "key_…", pattern = "^key_[a-z2-7]{16}$", max_length = 20)),
    description = "Makes a new key with every setting of this one and a fresh expiry (the lifetime this one was given, counted from now, within the settings' maximum); this one keeps working for grace_seconds. A key of the calling key's app only (another app's: 404). Needs api.key.update.",
    responses((status = 201, description = "`{\"key\": Key, \"secret\": \"kw_…\"}`", body = Object), (status = 409, body = ErrorBody)))]
pub(super) async fn roll_key(
    authed: Authed<UpdateKeys>,
    Path(key_id): Path<String>,
    body: Result<Json<RollBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (api, grant) = (&authed.api, authed.grant()?);
    let b = api.body(body)?;
    let origin = api.origin();
    let (info, secret) = keys::roll(
        &Ctx::new(&api.state, &origin),
        &grant,
        &key_id,
        b.grace_seconds,
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok(new_secret(info, secret))
}
