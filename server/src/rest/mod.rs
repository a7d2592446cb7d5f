//! REST API v1 (`/api/v1`): the contract of PRODUCT.md. Bearer keys only (no cookies,
//! so no cross-origin check); every error is
//! `{"error":{"code","message","request_id"}}` with the request id also in
//! `X-Request-Id` and the log line.
//!
//! Authentication order: a key in the query string is refused (400 `key_in_query`);
//! no `Authorization: Bearer` → 401 `missing_api_key`; the format and checksum are
//! checked before any database work, and malformed, bad-checksum and unknown keys all
//! get the same 401 `invalid_api_key`, none sooner than 20 ms after arrival (so the
//! database lookup of an unknown key does not show in the timing); then `key_revoked`,
//! `key_expired`, `key_pending` (waiting for approval), `key_disabled` (unused too long); then the
//! app's and the key's IP allow-lists against the client address (trusted-proxy rules,
//! IPv4-mapped normalised) → 403 `ip_not_allowed`; SDK keys only where allowed →
//! 403 `sdk_key_not_allowed`; then the permission the route needs →
//! 403 `insufficient_permissions`. The handlers call the same domain code as the panel.

mod auth;
mod error;
mod keys;
mod leaks;
mod messages;
mod schema;
mod sdk;

pub(crate) use auth::{key_in_url, url_has_key};
pub use error::ApiError;

use app::state::AppState;
use auth::Api;
use axum::{
    http::{header, StatusCode},
    response::IntoResponse as _,
    routing::{any, get},
    Router,
};
use error::{ErrorBody, ErrorDetail};
use schema::{Cidr, EmailAddress};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The REST routes and the OpenAPI document, both from the annotated handlers below:
/// a route cannot exist without its documentation, nor the other way round.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(keys::whoami))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::update_key, keys::revoke_key))
        .routes(routes!(keys::roll_key))
        .routes(routes!(sdk::sdk_event))
        .routes(routes!(messages::create_message))
        .routes(routes!(messages::get_message))
        .routes(routes!(leaks::report_leaks))
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
}

/// Every error under `/api/` in the contract's shape: an answer that axum or an
/// extractor made on its own (a path segment that is not UTF-8, a method the route does
/// not have: an empty 405) becomes
/// `{"error":{"code","message","request_id"}}` with its status kept. Answers already
/// in JSON (the handlers' own `ApiError`, the OpenAPI document) pass as they are.
/// Called by the security middleware for every `/api/` answer (a layer on the REST
/// routes would be cloned and boxed on every request), which looks at the status first.
pub(crate) async fn in_contract_shape(
    res: axum::response::Response,
    rid: crate::http::RequestId,
) -> axum::response::Response {
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return res;
    }
    // What the answer said besides its body (`Allow`, `Retry-After`, …) stays; only
    // the body and what describes it are replaced.
    let mut kept = res.headers().clone();
    for h in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
    ] {
        kept.remove(h);
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This path does not take that method: the Allow header lists those it takes."
                .to_owned(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "Not found.".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body is too large.".to_owned(),
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "rate_limited",
            "Too many requests. Try again later.".to_owned(),
        ),
        s if s.is_server_error() => ("internal", "Something went wrong on our side.".to_owned()),
        _ => (
            "validation_failed",
            // An extractor's own text ("Invalid URL: Invalid UTF-8 in `key_id`"): short,
            // and about the request, never the server.
            {
                let body = axum::body::to_bytes(res.into_body(), 1024).await;
                body.ok()
                    .and_then(|b| String::from_utf8(b.to_vec()).ok())
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty() && t.len() <= 300)
                    .unwrap_or_else(|| "The request is not valid.".to_owned())
            },
        ),
    };
    let mut out = ApiError::new(status, code, message)
        .with_request_id(rid.as_str())
        .into_response();
    for (name, value) in &kept {
        if !out.headers().contains_key(name) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
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
        description = "Bearer keys only (`Authorization: Bearer kw_live_…`). Every error is `{\"error\":{\"code\",\"message\",\"request_id\"}}` with one of: 401 missing_api_key, invalid_api_key, key_revoked, key_expired, key_pending (waiting for approval), key_disabled (disabled after going unused; its owner can enable it again); 403 ip_not_allowed, insufficient_permissions, sdk_key_not_allowed, channel_not_allowed (a channel key outside its channel: it may only POST /api/v1/messages of its own channel, with `send`, and GET the messages it wrote, with `status`); 400 key_in_query, validation_failed; 404 not_found; 409 conflict; 413 payload_too_large; 429 rate_limited."
    ),
    servers((url = "/", description = "This Keyward deployment (paths below start with /api/v1)")),
    tags(
        (name = "keys", description = "REST keys: who am I, list, create, rename, change role, roll, revoke"),
        (name = "sdk", description = "The one write a public SDK key may make"),
        (name = "messages", description = "Messages, sent only after approval when Settings > Messages require it"),
        (name = "leaks", description = "Reports of leaked keys, from anyone"),
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
/// apply (an operation's own entry for the same status is kept): 400, 401, 403, 429, 500
/// and 503 everywhere, 404 where the path names something, 413 where there is a body.
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
                "`missing_api_key`, `invalid_api_key`, `key_revoked`, `key_expired`, `key_pending` or `key_disabled`",
            ),
            (
                "403",
                "`ip_not_allowed`, `insufficient_permissions`, `sdk_key_not_allowed` or `channel_not_allowed`",
            ),
            ("429", "`rate_limited`, with `Retry-After`"),
            (
                "500",
                "`internal`: something failed on the server (the request id joins it to the log)",
            ),
            (
                "503",
                "`unavailable`, with `Retry-After`: the server is busy or cannot reach its database",
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
                            if status == "429" || status == "503" {
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

async fn not_found(api: Api) -> ApiError {
    api.err(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such endpoint.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error the router or a layer made in plain text becomes the contract's JSON,
    /// and keeps what it said besides its body.
    #[tokio::test]
    async fn an_error_in_another_shape_keeps_its_headers() {
        let plain = (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, "7"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "slow down",
        )
            .into_response();
        let rid = crate::http::RequestId::random();
        let out = in_contract_shape(plain, rid).await;
        assert_eq!(out.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(out.headers()[header::RETRY_AFTER], "7");
        assert_eq!(out.headers()[header::CACHE_CONTROL], "no-store");
        assert!(out.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body = axum::body::to_bytes(out.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
        assert_eq!(v["error"]["request_id"], rid.as_str());

        let wrong_method = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
            "",
        )
            .into_response();
        let out = in_contract_shape(wrong_method, crate::http::RequestId::random()).await;
        assert_eq!(out.headers()[header::ALLOW], "GET,HEAD");
        assert_eq!(
            out.headers().get_all(header::CONTENT_TYPE).iter().count(),
            1
        );
    }
}
