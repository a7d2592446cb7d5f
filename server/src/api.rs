//! REST API v1 (`/api/v1`): the contract of PRODUCT.md. Bearer keys only (no cookies,
//! so no cross-origin check); every error is
//! `{"error":{"code","message","request_id"}}` with the request id also in
//! `X-Request-Id` and the log line.
//!
//! Authentication order: a key in the query string is refused (400 `key_in_query`);
//! no `Authorization: Bearer` → 401 `missing_api_key`; the format and checksum are
//! checked before any database work, and malformed, bad-checksum and unknown keys all
//! get the same 401 `invalid_api_key`, none sooner than 20 ms after arrival (so the
//! database lookup of an unknown key does not show in the timing); then `key_revoked`, `key_expired`; then the
//! app's and the key's IP allow-lists against the client address (trusted-proxy rules,
//! IPv4-mapped normalised) → 403 `ip_not_allowed`; SDK keys only where allowed →
//! 403 `sdk_key_not_allowed`; then the permission the route needs →
//! 403 `insufficient_permissions`. The handlers call the same domain code as the panel.

use crate::middleware::RequestId;
use app::auth::ssr::ClientIp;
use app::core::{
    access::{Grant, Principal, Subject},
    audit::Origin,
    key_format,
    keys::{self, NewKey, Refusal, VerifiedKey},
    state::AppState,
};
use app::error::AppError;
use app::keys::KeyFilter;
use app::roles::Permission;
use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        FromRequestParts, Path, Query,
    },
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
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

    fn from_app(e: AppError, rid: &str) -> Self {
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
                    format!("Too many requests. Try again in {retry_after_secs} seconds."),
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
        tracing::info!(
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

/// What every handler starts from: the state, the request id, the client address and
/// the Authorization header (checked by `authenticate`).
pub struct Api {
    state: AppState,
    rid: String,
    ip: IpAddr,
    user_agent: Option<String>,
    bearer: Result<Option<String>, BadAuth>,
    started: tokio::time::Instant,
}

/// See `Api::invalid`.
const INVALID_KEY_FLOOR: std::time::Duration = std::time::Duration::from_millis(20);

/// Query parameter names that would carry a key (compared case-insensitively).
const KEY_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "key",
    "token",
    "access_token",
    "secret",
    "authorization",
    "bearer",
];

/// The prefixes every Keyward key starts with.
const KEY_PREFIXES: &[&str] = &["kw_live_", "kw_test_", "kwpub_live_", "kwpub_test_"];

fn looks_like_key(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    KEY_PREFIXES.iter().any(|p| lower.contains(p))
}

/// True when the URL carries a key anywhere: the path, or a query parameter's name or
/// value, each read after percent-decoding (so `%6Bw_live_…` or `+` tricks do not hide
/// one), or a parameter named like one of [`KEY_PARAMS`].
fn url_has_key(uri: &axum::http::Uri) -> bool {
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    if looks_like_key(&path) {
        return true;
    }
    uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(name, value)| {
            KEY_PARAMS.contains(&name.to_ascii_lowercase().as_str())
                || looks_like_key(&name)
                || looks_like_key(&value)
        })
    })
}

/// The `Authorization` header: `Ok(None)` when absent; `Err` when it is sent twice, is
/// not text, or is not the Bearer scheme (matched case-insensitively, RFC 9110).
fn bearer_of(headers: &axum::http::HeaderMap) -> Result<Option<String>, BadAuth> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(BadAuth::Duplicate);
    }
    let v = v.to_str().map_err(|_| BadAuth::Malformed)?;
    let (scheme, token) = v.trim().split_once(' ').ok_or(BadAuth::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BadAuth::Malformed);
    }
    Ok(Some(token.trim().to_owned()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadAuth {
    /// Two `Authorization` headers: which one would count is ambiguous (400).
    Duplicate,
    /// Not a Bearer credential (401 `invalid_api_key`).
    Malformed,
}

impl FromRequestParts<AppState> for Api {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let rid = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let ip = ClientIp::from_parts(parts, state).0;
        let bearer = bearer_of(&parts.headers);
        Ok(Self {
            state: state.clone(),
            rid,
            ip,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
            bearer,
            started: tokio::time::Instant::now(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Door {
    /// Server endpoints: secret keys only.
    Server,
    /// Endpoints an SDK (public) key may call too.
    Sdk,
}

impl Api {
    fn err(&self, status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(status, code, message).with_request_id(&self.rid)
    }

    /// A failed authentication: counted per address; past the allowance the answer is
    /// 429 instead.
    fn failed(&self, e: ApiError) -> ApiError {
        match self.state.keys.auth_failure(self.ip) {
            None => e,
            Some(wait) => self.app_err(AppError::RateLimited {
                retry_after_secs: wait,
            }),
        }
    }

    /// `invalid_api_key`, for malformed, mistyped and unknown keys alike, sent no sooner
    /// than `INVALID_KEY_FLOOR` after the request arrived: an unknown key costs a
    /// database lookup the other two skip, and the floor hides that difference.
    async fn invalid(&self) -> ApiError {
        tokio::time::sleep_until(self.started + INVALID_KEY_FLOOR).await;
        self.failed(self.err(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "The API key is not valid.",
        ))
    }

    fn app_err(&self, e: AppError) -> ApiError {
        ApiError::from_app(e, &self.rid)
    }

    fn origin(&self) -> Origin {
        Origin {
            ip: Some(self.ip.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }

    /// The key and the principal it acts as (its role's permissions).
    async fn authenticate(&self, door: Door) -> Result<(Arc<VerifiedKey>, Principal), ApiError> {
        let key = self.verify(door).await?;
        let principal = Principal::key(
            key.key_id.clone(),
            key.owner_id.unwrap_or(-1),
            key.owner_role_id.unwrap_or(-1),
            key.role_id.unwrap_or(-1),
            key.permissions.clone(),
        );
        Ok((key, principal))
    }

    /// The checks of the module's documentation, up to the permission (which the
    /// caller checks).
    async fn verify(&self, door: Door) -> Result<Arc<VerifiedKey>, ApiError> {
        let secret = match &self.bearer {
            Ok(None) => {
                return Err(self.failed(self.err(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "Send your API key in the Authorization header: Bearer <key>.",
                )))
            }
            Err(BadAuth::Duplicate) => {
                return Err(self.err(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "Send one Authorization header, not several.",
                ))
            }
            Err(BadAuth::Malformed) => return Err(self.invalid().await),
            Ok(Some(s)) => s,
        };
        // Format and checksum first: a made-up key costs no database work.
        if key_format::parse(secret).is_none() {
            return Err(self.invalid().await);
        }
        let st = &self.state;
        let key = match keys::lookup(&st.db, &st.keys, secret)
            .await
            .map_err(|e| self.app_err(AppError::internal(e)))?
        {
            Some(k) => k,
            None => return Err(self.invalid().await),
        };
        let now = st.clock.now();
        // From here the key is known: refusals are counted per key and audited in
        // batches (core::keys::KeyCache::flush_refused).
        let refuse = |status, code: &'static str, message: String| {
            st.keys.refused(&key.key_id, code);
            self.err(status, code, message)
        };
        match key.refusal(now) {
            Some(Refusal::Revoked) => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "key_revoked",
                    "This API key was revoked.".into(),
                ))
            }
            Some(Refusal::OwnerDisabled) => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "key_revoked",
                    "The account that owns this API key is disabled, so the key no longer works."
                        .into(),
                ))
            }
            Some(Refusal::Expired) => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "key_expired",
                    "This API key has expired.".into(),
                ))
            }
            None => {}
        }
        if !key.allows(self.ip) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                format!("Requests with this key are not allowed from {}.", self.ip),
            ));
        }
        if key.kind == "sdk" && door == Door::Server {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "sdk_key_not_allowed",
                "A public SDK key cannot call this endpoint; use a secret REST key.".into(),
            ));
        }
        st.keys.touch(&key, now, self.ip);
        Ok(key)
    }

    fn need(&self, p: &Principal, perm: Permission) -> Result<(), ApiError> {
        if p.has(perm) {
            Ok(())
        } else {
            if let Subject::Key { key_id, .. } = &p.subject {
                self.state.keys.refused(key_id, "insufficient_permissions");
            }
            Err(self.err(
                StatusCode::FORBIDDEN,
                "insufficient_permissions",
                format!("This key's role lacks the permission {perm}."),
            ))
        }
    }

    /// The permission check every write starts with: 403 `insufficient_permissions`
    /// (counted against the key), else the `Grant` the domain function takes.
    fn grant<'p>(&self, p: &'p Principal, perm: Permission) -> Result<Grant<'p>, ApiError> {
        self.need(p, perm)?;
        p.require(perm).map_err(|e| self.app_err(e))
    }

    fn query<T>(&self, query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
        query.map(|Query(q)| q).map_err(|e| {
            let mut err = self.err(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("The query string is not valid: {}", e.body_text()),
            );
            err.details = Some(json!({ "fields": { "query": e.body_text() } }));
            err
        })
    }

    fn body<T>(&self, body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
        body.map(|Json(b)| b).map_err(|e| {
            let mut err = self.err(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("The JSON body is not valid: {}", e.body_text()),
            );
            err.details = Some(json!({ "fields": { "body": e.body_text() } }));
            err
        })
    }
}

/// The REST routes and the OpenAPI document, both from the annotated handlers below:
/// a route cannot exist without its documentation, nor the other way round.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(whoami))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(update_key, revoke_key))
        .routes(routes!(roll_key))
        .routes(routes!(sdk_event))
        .routes(routes!(create_message))
        .routes(routes!(get_message))
}

/// The REST router: the routes, `GET /api/v1/openapi.json`, and `not_found` in the
/// contract's shape for anything else under `/api/`.
pub fn router() -> Router<AppState> {
    let (router, doc) = split();
    let spec = std::sync::Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        spec.to_string(),
                    )
                }
            }),
        )
        .route("/api/{*rest}", any(not_found))
        // Before routing: every /api/ URL, whatever route (or none) it names.
        .layer(axum::middleware::from_fn(refuse_key_in_url))
}

/// A key anywhere in an `/api/` URL (see [`url_has_key`]) is refused before any route,
/// fallback or method check: `400 key_in_query`, whatever else is wrong with the request.
async fn refuse_key_in_url(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !url_has_key(req.uri()) {
        return next.run(req).await;
    }
    let rid = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "key_in_query",
        "API keys are never accepted in a URL. Send it in the Authorization header: Bearer <key>.",
    )
    .with_request_id(&rid)
    .into_response()
}

/// The OpenAPI document (for `keyward routes` and the panel's API page).
pub fn openapi() -> utoipa::openapi::OpenApi {
    split().1
}

/// The router and the finished document (the contract's errors added to every
/// operation, once the routes have put their operations in).
fn split() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = routes().split_for_parts();
    utoipa::Modify::modify(&ContractErrors, &mut doc);
    (router, doc)
}

/// Every REST route as `METHOD /path`, from the OpenAPI document.
pub fn listing() -> Vec<String> {
    let doc = openapi();
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter() {
        let ops = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PATCH", item.patch.is_some()),
            ("PUT", item.put.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (m, present) in ops {
            if present {
                out.push(format!("{m} {path}"));
            }
        }
    }
    out.push("GET /api/v1/openapi.json".into());
    out
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyward REST API",
        version = "1",
        contact(name = "The administrators of this Keyward deployment"),
        description = "Bearer keys only (`Authorization: Bearer kw_live_…`). Every error is `{\"error\":{\"code\",\"message\",\"request_id\"}}` with one of: 401 missing_api_key, invalid_api_key, key_revoked, key_expired; 403 ip_not_allowed, insufficient_permissions, sdk_key_not_allowed; 400 key_in_query, validation_failed; 404 not_found; 409 conflict; 413 payload_too_large; 429 rate_limited."
    ),
    servers((url = "/", description = "This Keyward deployment (paths below start with /api/v1)")),
    tags(
        (name = "keys", description = "REST keys: who am I, list, create, rename, change role, roll, revoke"),
        (name = "sdk", description = "The one write a public SDK key may make"),
        (name = "messages", description = "Messages, sent only after approval when Settings > Messages require it"),
    ),
    components(schemas(ErrorBody, ErrorDetail, Cidr, EmailAddress, app::messages::MessageInfo)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds to every authenticated operation the refusals the contract allows wherever they
/// apply (an operation's own entry for the same status is kept): 400, 401, 403 and 429
/// everywhere, 404 where the path names something, 413 where there is a body.
struct ContractErrors;

impl utoipa::Modify for ContractErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let common: &[(&str, &str)] = &[
            (
                "400",
                "`key_in_query` or `validation_failed` (with `details.fields`)",
            ),
            (
                "401",
                "`missing_api_key`, `invalid_api_key`, `key_revoked` or `key_expired`",
            ),
            (
                "403",
                "`ip_not_allowed`, `insufficient_permissions` or `sdk_key_not_allowed`",
            ),
            ("429", "`rate_limited`, with `Retry-After`"),
            (
                "500",
                "`internal`: something failed on the server (the request id joins it to the log)",
            ),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                if op.security.is_none() {
                    continue;
                }
                let mut add = vec![];
                add.extend_from_slice(common);
                if path.contains('{') {
                    add.push(("404", "`not_found`"));
                }
                if op.request_body.is_some() {
                    add.push(("413", "`payload_too_large`"));
                }
                for (status, codes) in add {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            let mut b = ResponseBuilder::new()
                                .description(format!("An error: {codes}"))
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                );
                            if status == "429" {
                                b = b.header("Retry-After", retry_after_header());
                            }
                            b.build().into()
                        });
                    // An operation's own 429 entry gets the header too.
                    if status == "429" {
                        if let Some(utoipa::openapi::RefOr::T(r)) =
                            op.responses.responses.get_mut("429")
                        {
                            r.headers
                                .entry("Retry-After".to_owned())
                                .or_insert_with(retry_after_header);
                        }
                    }
                }
            }
        }
    }
}

fn retry_after_header() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::Integer)
                .minimum(Some(1))
                .maximum(Some(86_400)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// The error shape of every refusal.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// One of the contract's codes, e.g. `invalid_api_key`.
    #[schema(max_length = 64)]
    code: String,
    #[schema(max_length = 2000)]
    message: String,
    /// Also in the `X-Request-Id` header.
    #[schema(max_length = 64)]
    request_id: String,
}

async fn not_found(api: Api) -> ApiError {
    api.err(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such endpoint.",
    )
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "keys", security(("bearer" = [])),
    description = "The key making the call: id, kind, environment, app, owner, permissions, expiry. SDK keys may call it.",
    responses((status = 200, description = "The key", body = WhoAmI), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn whoami(api: Api) -> Result<Response, ApiError> {
    let key = api.verify(Door::Sdk).await?;
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

/// `GET /whoami`: the key making the call.
#[derive(Serialize, utoipa::ToSchema)]
struct WhoAmI {
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
struct AppRef {
    id: i64,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct OwnerRef {
    id: i64,
    email: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])), params(KeyFilter),
    description = "The caller's own keys (everyone's with api.key.view_all), newest first, filtered by the optional query parameters. Needs api.key.view. One page at a time: `next` is the key ID to pass as `after` for the following page (absent on the last page).",
    responses((status = 200, description = "`{\"keys\": [Key], \"next\": \"key_…\"}`", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_keys(
    api: Api,
    filter: Result<Query<KeyFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, p) = api.authenticate(Door::Server).await?;
    api.need(&p, Permission::ApiKeyView)?;
    let filter = api.query(filter)?;
    let page = keys::list_keys(&api.state.db, api.state.clock.now(), &p, &filter)
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
struct CreateBody {
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

struct Cidr;

impl utoipa::PartialSchema for Cidr {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        bounded_string(
            2,
            43,
            "An IPv4 or IPv6 address or CIDR range, e.g. `10.0.0.0/8` or `2001:db8::/32`.",
        )
    }
}

impl utoipa::ToSchema for Cidr {
    fn name() -> std::borrow::Cow<'static, str> {
        "Cidr".into()
    }
}

/// A string schema with length bounds.
fn bounded_string(
    min: usize,
    max: usize,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
        .into()
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])), request_body = CreateBody,
    description = "Creates a key owned by the caller's owner. The secret is in this response only (Cache-Control: no-store). Needs api.key.create; the role never holds more than the caller's.",
    responses((status = 201, description = "`{\"key\": Key, \"secret\": \"kw_…\"}`", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "`conflict`: the caller's owner already holds the most active keys Settings > Keys allow for this app", body = ErrorBody)))]
async fn create_key(
    api: Api,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key, p) = api.authenticate(Door::Server).await?;
    let grant = api.grant(&p, Permission::ApiKeyCreate)?;
    let b = api.body(body)?;
    let st = &api.state;
    let (info, secret) = keys::create_key(
        &st.db,
        &st.keys,
        &st.mailer,
        st.clock.now(),
        &grant,
        &api.origin(),
        &NewKey {
            name: &b.name,
            app_id: b.app_id,
            environment: &b.environment,
            role_id: b.role_id.or(key.role_id).unwrap_or(-1),
            expires_at: b.expires_at,
            networks: &b.networks.join("\n"),
        },
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": info, "secret": secret })),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Never above what the key's owner, or the caller's owner, holds.
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    role_id: Option<i64>,
}

#[utoipa::path(patch, path = "/api/v1/keys/{key_id}", tag = "keys", security(("bearer" = [])), request_body = UpdateBody,
    params(("key_id" = String, Path, description = "key_…", pattern = "^key_[a-z2-7]{16}$", max_length = 20)),
    description = "Renames a key or changes its role. Needs api.key.update.",
    responses((status = 200, description = "`{\"key\": Key}`", body = Object), (status = 404, body = ErrorBody)))]
async fn update_key(
    api: Api,
    Path(key_id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, p) = api.authenticate(Door::Server).await?;
    let grant = api.grant(&p, Permission::ApiKeyUpdate)?;
    let b = api.body(body)?;
    let st = &api.state;
    let info = keys::update(
        &st.db,
        &st.keys,
        st.clock.now(),
        &grant,
        &api.origin(),
        &key_id,
        b.name.as_deref(),
        b.role_id,
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok(Json(json!({ "key": info })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    #[schema(max_length = 500)]
    reason: String,
}

#[utoipa::path(delete, path = "/api/v1/keys/{key_id}", tag = "keys", security(("bearer" = [])), request_body(content = RevokeBody, description = "Optional"),
    params(("key_id" = String, Path, description = "key_…", pattern = "^key_[a-z2-7]{16}$", max_length = 20)),
    description = "Revokes a key at once, for good. Needs api.key.delete.",
    responses((status = 200, description = "`{\"key\": Key}`", body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_key(
    api: Api,
    Path(key_id): Path<String>,
    // Read as bytes: the body is optional, and a bad one must get the contract's
    // `validation_failed` after authentication, not the extractor's plain-text refusal.
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let (_, p) = api.authenticate(Door::Server).await?;
    let grant = api.grant(&p, Permission::ApiKeyDelete)?;
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        api.body(Json::<RevokeBody>::from_bytes(&body))?.reason
    };
    let st = &api.state;
    let info = keys::revoke(
        &st.db,
        &st.keys,
        st.clock.now(),
        &grant,
        &api.origin(),
        &key_id,
        &reason,
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok(Json(json!({ "key": info })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollBody {
    /// 0 to 604800 (7 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    grace_seconds: i64,
}

#[utoipa::path(post, path = "/api/v1/keys/{key_id}/roll", tag = "keys", security(("bearer" = [])), request_body = RollBody,
    params(("key_id" = String, Path, description = "key_…", pattern = "^key_[a-z2-7]{16}$", max_length = 20)),
    description = "Makes a new key with every setting of this one; this one keeps working for grace_seconds. Needs api.key.update.",
    responses((status = 201, description = "`{\"key\": Key, \"secret\": \"kw_…\"}`", body = Object), (status = 409, body = ErrorBody)))]
async fn roll_key(
    api: Api,
    Path(key_id): Path<String>,
    body: Result<Json<RollBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (_, p) = api.authenticate(Door::Server).await?;
    let grant = api.grant(&p, Permission::ApiKeyUpdate)?;
    let b = api.body(body)?;
    let st = &api.state;
    let (info, secret) = keys::roll(
        &st.db,
        &st.keys,
        &st.mailer,
        st.clock.now(),
        &grant,
        &api.origin(),
        &key_id,
        b.grace_seconds,
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": info, "secret": secret })),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EventBody {
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
    responses((status = 202, description = "`{\"accepted\": true}`", body = Object), (status = 400, body = ErrorBody)))]
async fn sdk_event(
    api: Api,
    body: Result<Json<EventBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = api.verify(Door::Sdk).await?;
    let b = api.body(body)?;
    keys::record_event(
        &api.state.db,
        api.state.clock.now(),
        &key,
        &b.name,
        &b.properties,
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": true }))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    app_id: i64,
    /// `email` or `webhook`.
    #[schema(pattern = "^(email|webhook)$", max_length = 7)]
    channel: String,
    /// Email: up to 50 addresses.
    #[serde(default)]
    #[schema(max_items = 50, value_type = Vec<EmailAddress>)]
    recipients: Vec<String>,
    /// Webhook: one of the URLs registered for the app.
    #[serde(default)]
    #[schema(max_length = 2048)]
    webhook_url: String,
    /// At most 200 characters, one line.
    #[schema(min_length = 1, max_length = 200)]
    subject: String,
    /// At most 32 KiB.
    #[schema(min_length = 1, max_length = 32768)]
    body: String,
}

struct EmailAddress;

impl utoipa::PartialSchema for EmailAddress {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        bounded_string(3, 254, "An email address.")
    }
}

impl utoipa::ToSchema for EmailAddress {
    fn name() -> std::borrow::Cow<'static, str> {
        "EmailAddress".into()
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Accepted {
    /// `msg_…`
    id: String,
    /// `pending_approval` (an approver must confirm it in the panel) or `queued`.
    status: String,
}

/// Writes a message. With approval required it waits for a person other than the
/// key's owner to approve it in the panel: a key alone cannot send anything.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", security(("bearer" = [])), request_body = MessageBody,
    description = "Writes a message as the key's owner. Needs message.create. 202 with `pending_approval` when Settings > Messages require approval (nothing is sent until someone other than the owner approves it in the panel), else `queued`. The whole request is limited to KEYWARD_MAX_BODY_BYTES (default 64 KiB; larger: 413 payload_too_large) and the body field to 32 KiB.",
    responses((status = 202, description = "Accepted", body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn create_message(
    api: Api,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (_, p) = api.authenticate(Door::Server).await?;
    let grant = api.grant(&p, Permission::MessageCreate)?;
    let b = api.body(body)?;
    let m = app::core::messages::create(
        &api.state,
        &grant,
        &api.origin(),
        &app::core::messages::Draft {
            app_id: b.app_id,
            channel: &b.channel,
            recipients: &b.recipients.join("\n"),
            webhook_url: &b.webhook_url,
            subject: &b.subject,
            body: &b.body,
        },
    )
    .await
    .map_err(|e| api.app_err(e))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: m.id,
            status: m.status,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "msg_…", pattern = "^msg_[a-z2-7]{16}$", max_length = 20)),
    description = "A message the key's owner wrote (any message with message.approve): payload, status, approvals, delivery attempts. Needs message.create or message.approve.",
    responses((status = 200, description = "The message", body = app::messages::MessageInfo), (status = 404, body = ErrorBody)))]
async fn get_message(
    api: Api,
    Path(id): Path<String>,
) -> Result<Json<app::messages::MessageInfo>, ApiError> {
    let (_, p) = api.authenticate(Door::Server).await?;
    if !p.has(Permission::MessageApprove) {
        api.need(&p, Permission::MessageCreate)?;
    }
    let m = app::core::messages::visible(&api.state.db, &p, &id)
        .await
        .map_err(|e| api.app_err(e))?;
    Ok(Json(m))
}

#[cfg(test)]
mod tests {
    use super::{bearer_of, url_has_key, BadAuth};
    use axum::http::{HeaderMap, HeaderValue, Uri};

    fn has(u: &str) -> bool {
        url_has_key(&u.parse::<Uri>().unwrap())
    }

    #[test]
    fn a_key_anywhere_in_the_url_is_recognised_after_decoding() {
        assert!(has("/api/v1/whoami?api_key=abc"));
        assert!(has("/api/v1/whoami?x=1&Token=abc"));
        assert!(has("/api/v1/whoami?q=kw_live_abc"));
        // Percent-encoded names and values, and a key inside a longer value.
        assert!(has("/api/v1/whoami?x=%6Bw_live_abc"));
        assert!(has("/api/v1/whoami?x=Bearer+kw_test_abc"));
        assert!(has("/api/v1/whoami?%61pi_key=abc"));
        assert!(has("/api/v1/whoami?KW_LIVE_abc=1"));
        assert!(has("/api/v1/whoami?x=kwpub_live_abc"));
        // In the path, encoded or not.
        assert!(has("/api/v1/keys/kw_live_abc"));
        assert!(has("/api/v1/keys/%6bw_live_abc"));
        assert!(!has("/api/v1/keys?app_id=3&limit=2"));
        assert!(!has("/api/v1/keys/key_abcdefghijklmnop"));
    }

    #[test]
    fn bearer_is_matched_case_insensitively_and_only_once() {
        let h = |vals: &[&str]| {
            let mut m = HeaderMap::new();
            for v in vals {
                m.append("authorization", HeaderValue::from_str(v).unwrap());
            }
            m
        };
        assert_eq!(bearer_of(&h(&[])), Ok(None));
        assert_eq!(bearer_of(&h(&["Bearer abc"])), Ok(Some("abc".into())));
        assert_eq!(bearer_of(&h(&["bearer abc"])), Ok(Some("abc".into())));
        assert_eq!(bearer_of(&h(&["BEARER  abc "])), Ok(Some("abc".into())));
        assert_eq!(bearer_of(&h(&["Basic abc"])), Err(BadAuth::Malformed));
        assert_eq!(bearer_of(&h(&["Bearer"])), Err(BadAuth::Malformed));
        assert_eq!(
            bearer_of(&h(&["Bearer a", "Bearer b"])),
            Err(BadAuth::Duplicate)
        );
    }
}
