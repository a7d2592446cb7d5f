//! The security base every request passes: one middleware around the whole router.
//!
//! - the client address, computed once per request (trusted-proxy rules) and stored in
//!   the request's extensions for every later check;
//! - cross-origin state-changing requests refused: a browser tells us where a request
//!   comes from (`Sec-Fetch-Site`, else `Origin`), and a POST from another site is
//!   refused before any handler runs. The REST API (`/api/v1/`) authenticates with a
//!   Bearer key, never a cookie, so it is exempt;
//! - request bodies over the configured limit refused (413) before any handler;
//! - a key anywhere in an `/api/` URL refused (400 `key_in_query`) before any route;
//! - security headers on every response, with a fresh CSP nonce per page that the
//!   page's hydration scripts carry (answers that are never a page get the strict fixed
//!   policy and none of the document-only headers);
//! - `Cache-Control: no-store` on everything but the static bundle;
//! - signed-out visitors sent to /login before any panel page renders.

use super::compression::{cache_directive, Uncompressed};
use super::{RequestId, RequestLog, REQUEST};
use app::{auth::ssr::ClientIp, state::AppState, CspNonce};
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use base64::Engine as _;
use rand::RngCore as _;
use std::net::SocketAddr;

const STATIC_PREFIX: &str = "/pkg/";

/// `N` random bytes, URL-safe base64. The thread's CSPRNG (ChaCha, seeded and reseeded
/// from the OS) is unpredictable enough for request ids and CSP nonces and costs no
/// system call per request.
fn random_b64<const N: usize>() -> String {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Paths whose answers are never an HTML page of the panel (the REST API, the probes,
/// the static bundle): they need no CSP nonce, and get the strict fixed policy.
fn never_a_page(path: &str) -> bool {
    path.starts_with("/api/v1/")
        || path == "/healthz"
        || path == "/readyz"
        || path == super::metrics::PATH
        || path.starts_with(STATIC_PREFIX)
}

/// True when a browser tells us a state-changing request comes from another origin.
pub fn is_cross_origin(
    method: &Method,
    path: &str,
    headers: &http::HeaderMap,
    public_origin: &str,
) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path.starts_with("/api/v1/")
    {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.as_bytes() != public_origin.as_bytes();
    }
    // No browser provenance headers: not a browser, so no ambient cookies to abuse.
    false
}

pub async fn security(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or([0, 0, 0, 0].into());
    let ip = app::core::infra::client_ip::client_addr(
        peer,
        req.headers(),
        &state.config.trusted_proxies,
    );
    req.extensions_mut().insert(ClientIp(ip));
    // The request's id reaches handlers through the task-local `REQUEST` set below
    // (an extension would cost a boxed insert and a lookup per request).
    let request_id = RequestId::random();
    let path = req.uri().path();
    // `/metrics` counts every answer by its route template (taken now: the request is
    // handed on below).
    let route = super::metrics::route_of(path);
    let method = route.map(|_| (req.method().clone(), std::time::Instant::now()));
    let is_static = path.starts_with(STATIC_PREFIX);
    let api = path.starts_with("/api/");
    let page = !never_a_page(path);
    // A panel page drawn by Leptos (not a server function, not the audit export, whose
    // stream waits for its turn to read on purpose).
    let draws_page = page
        && matches!(*req.method(), Method::GET | Method::HEAD)
        && is_page_path(path)
        && path != super::AUDIT_EXPORT_PATH;
    // A key anywhere in an `/api/` URL is refused below (and never logged).
    let key_in_url = api && crate::rest::url_has_key(req.uri());

    let mut res = if is_cross_origin(
        req.method(),
        req.uri().path(),
        req.headers(),
        &state.config.public_url.origin,
    ) {
        tracing::warn!(%ip, path = super::loggable_path(req.uri()), %request_id, "cross-origin request refused");
        (StatusCode::FORBIDDEN, "Cross-origin request refused.\n").into_response()
    } else {
        match bounded_body(state.config.max_body_bytes, request_id, req).await {
            Err(res) => res,
            // A key anywhere in an `/api/` URL is refused before any route, fallback or
            // method check, whatever else is wrong with the request.
            Ok(_) if key_in_url => crate::rest::key_in_url(request_id),
            Ok(mut req) => {
                let nonce = page.then(random_b64::<18>);
                if let Some(nonce) = &nonce {
                    req.extensions_mut().insert(CspNonce(nonce.clone()));
                }
                // Every log line of the request (a logged cause included) carries its
                // id, the one in the `X-Request-Id` a user reports (`crate::logging`).
                let log = RequestLog {
                    id: request_id,
                    method: req.method().clone(),
                    uri: req.uri().clone(),
                };
                // The access line (`keyward::access`, debug: off by default, so a flood
                // writes nothing per request): route template, status and latency, with the request.
                let started = tracing::enabled!(target: "keyward::access", tracing::Level::DEBUG)
                    .then(std::time::Instant::now);
                let mut res = REQUEST
                    .scope(log, async {
                        // Forms are the panel's: the REST API, the probes and the bundle
                        // skip them, and their future stays as small as it was (the
                        // forms' own is boxed).
                        let res = if page {
                            let answer = Box::pin(plain_form_secret(&state, req, next));
                            if draws_page {
                                answer_within(PAGE_LIMIT, request_id, answer).await
                            } else {
                                answer.await
                            }
                        } else {
                            next.run(req).await
                        };
                        if let Some(t) = started {
                            tracing::debug!(
                                target: "keyward::access",
                                route = super::metrics::template(route),
                                status = res.status().as_u16(),
                                latency_ms = t.elapsed().as_secs_f64() * 1000.0,
                                "served"
                            );
                        }
                        res
                    })
                    .await;
                if let Some(nonce) = nonce {
                    let csp = format!(
                        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; style-src 'self'; \
                         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                         form-action 'self'; frame-ancestors 'none'"
                    );
                    if let Ok(v) = HeaderValue::from_str(&csp) {
                        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                    }
                }
                res
            }
        }
    };

    // Every error under `/api/` in the REST contract's shape, those the router made
    // itself included (`rest::in_contract_shape`).
    if api && (res.status().is_client_error() || res.status().is_server_error()) {
        res = crate::rest::in_contract_shape(res, request_id).await;
    }
    let h = res.headers_mut();
    // At most one growth of the header map for everything added here (a JSON answer's
    // two headers and these four fit the map's first allocation).
    let https = state.config.public_url.https;
    h.reserve(
        2 + FIXED_HEADERS.len() + usize::from(https) + if page { PAGE_HEADERS.len() } else { 0 },
    );
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    // Nothing but the static bundle is stored by a browser or a proxy. An answer that
    // already says `no-store` keeps its own header (a secret's adds `no-transform`,
    // which keeps it from being compressed: see `compression`).
    if !is_static
        && !h
            .get(header::CACHE_CONTROL)
            .is_some_and(|v| cache_directive(v, "no-store"))
    {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(RequestId::HEADER, request_id.header_value());
    for (name, value) in FIXED_HEADERS {
        h.insert(name, value);
    }
    if page {
        for (name, value) in PAGE_HEADERS {
            h.insert(name, value);
        }
    }
    if is_static {
        res.extensions_mut().insert(Uncompressed);
    }
    let h = res.headers_mut();
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if let (Some(route), Some((method, started))) = (route, method) {
        super::metrics::record(route, &method, res.status(), started.elapsed());
    }
    res
}

/// How long a panel page may take to be drawn. A page is drawn whole before it is sent
/// (its data loaded by tasks of its own); one of those that never ends (it panicked, or
/// hangs) must not hold the browser, the connection and a graceful shutdown for ever.
/// No working page takes this long: a database wait gives up after 5 s.
const PAGE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// `answer`, or, when it has not come within `limit`, a 503 that says so (and the log
/// told, with the request's id); the unfinished drawing is dropped.
async fn answer_within(
    limit: std::time::Duration,
    request_id: RequestId,
    answer: impl std::future::Future<Output = Response>,
) -> Response {
    match tokio::time::timeout(limit, answer).await {
        Ok(res) => res,
        Err(_) => {
            tracing::error!(
                %request_id,
                "a page was not drawn within {} ms: answered 503",
                limit.as_millis()
            );
            let mut res = (
                StatusCode::SERVICE_UNAVAILABLE,
                "This page could not be drawn in time. Try again; if it happens again, give your administrator this answer's X-Request-Id.\n",
            )
                .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            res
        }
    }
}

/// The headers every response carries whatever its route (HSTS besides, with an https
/// public URL). Written by `security` in one pass over a map grown once, rather than
/// by a tower-http layer each: six layers cost six futures per request and grew the
/// header map several times.
const FIXED_HEADERS: [(header::HeaderName, HeaderValue); 1] = [(
    header::X_CONTENT_TYPE_OPTIONS,
    HeaderValue::from_static("nosniff"),
)];

/// What only a document needs (a JSON answer or a probe is never framed, opened as a
/// window or given a referrer policy; their CSP already says `frame-ancestors 'none'`).
const PAGE_HEADERS: [(header::HeaderName, HeaderValue); 4] = [
    // same-origin: a plain form post (no JavaScript) is sent back to its page by the
    // Referer; nothing leaves for other sites.
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    ),
];

/// Request bodies over the configured limit get 413 before any handler reads them:
/// a declared `Content-Length` is refused at once; a body without one (chunked) is read
/// up to the limit and refused as soon as it goes past it.
async fn bounded_body(limit: usize, rid: RequestId, req: Request) -> Result<Request, Response> {
    let api = req.uri().path().starts_with("/api/");
    let too_large = || {
        if api {
            crate::rest::ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request body is larger than {limit} bytes."),
            )
            .with_request_id(rid.as_str())
            .into_response()
        } else {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body larger than {limit} bytes.\n"),
            )
                .into_response()
        }
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) && declared.is_none() {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        // A body that stopped arriving (the server's pause limit, `serve.rs`) is not a
        // large one: it is said so.
        Err(e) if stalled(&e) => {
            let message = "The request body stopped arriving: send it whole, without long pauses.";
            Err(if api {
                crate::rest::ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", message)
                    .with_request_id(rid.as_str())
                    .into_response()
            } else {
                (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
            })
        }
        Err(_) => Err(too_large()),
    }
}

/// Whether a body read failed for the body timeout (tower-http's, anywhere in its causes).
fn stalled(e: &axum::Error) -> bool {
    std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .any(|e| e.is::<tower_http::timeout::TimeoutError>())
}

/// The panel network allow-list (Settings > General): every panel request — pages, the
/// sign-in form and every server function — from an address outside the list gets a
/// clear page before any session is read, any password checked or any mail sent.
pub async fn panel_network_gate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .unwrap_or([0, 0, 0, 0].into());
    let settings = match app::core::settings::security(&state.db, &state.config).await {
        Ok(s) => s,
        // Fail closed: without its rules (database down, or a settings row this
        // version cannot read) the panel is not served at all.
        Err(e) => {
            tracing::error!(error = %e, "cannot read the security settings: panel refused");
            return settings_unavailable();
        }
    };
    if app::core::settings::network_allowed(&settings, ip) {
        return next.run(req).await;
    }
    tracing::warn!(%ip, path = super::loggable_path(req.uri()), "panel request refused: network not allowed");
    // `ip` is an IpAddr: its text is digits, dots, colons and hex only.
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Not allowed from your network · Keyward</title>\
         <link rel=\"stylesheet\" href=\"/pkg/keyward.css\"></head><body>\
         <main id=\"main\" class=\"auth-page\"><section class=\"card\">\
         <h1>Sign-in is not allowed from your network ({ip})</h1>\
         <p>This Keyward panel can only be used from the networks its administrators listed. \
         Ask them to add yours, or connect from an allowed network.</p></section></main></body></html>\n"
    );
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// 503 with a page that says what is wrong, for a browser.
fn settings_unavailable() -> Response {
    let body = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Temporarily unavailable · Keyward</title>\
         <link rel=\"stylesheet\" href=\"/pkg/keyward.css\"></head><body>\
         <main id=\"main\" class=\"auth-page\"><section class=\"card\">\
         <h1>Keyward cannot check its security settings right now</h1>\
         <p>The panel stays closed until it can: its database is unreachable, or its stored \
         security settings cannot be read. Try again shortly. Administrators: the server log \
         says which.</p></section></main></body></html>\n";
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::RETRY_AFTER, "30")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn database_unavailable() -> Response {
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(
            "Keyward cannot reach its database right now. Try again shortly.\n",
        ))
        .unwrap_or_default()
}

/// A session written by this request expires the idle timeout of Settings > General
/// from now (the session layer's own default is the configured one, which the setting
/// overrides): whatever wrote it (a sign-in, a password confirmation, the sliding of
/// the idle timeout in `auth::ssr::current_user`).
pub async fn session_expiry(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let session = req.extensions().get::<tower_sessions::Session>().cloned();
    let res = next.run(req).await;
    if let Some(session) = session.filter(tower_sessions::Session::is_modified) {
        // Unreadable settings: the layer's default stays (the next request refuses).
        if let Ok(s) = app::core::settings::security(&state.db, &state.config).await {
            session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(
                time::Duration::minutes(i64::from(s.session_idle_minutes)),
            )));
        }
    }
    res
}

/// A request carrying the session cookie more than once (a cookie planted by a sibling
/// host or a plain-http page beside the real one: "cookie tossing") is treated as
/// signed out: every copy is removed before the session layer reads it, so neither
/// is trusted.
pub async fn one_session_cookie(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let name = super::session_cookie_name(state.config.public_url.https);
    let is_session = |pair: &str| {
        pair.trim()
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == name)
    };
    let count: usize = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').filter(|p| is_session(p)).count())
        .sum();
    if count > 1 {
        tracing::warn!(
            path = super::loggable_path(req.uri()),
            "request with two session cookies: treated as signed out"
        );
        let kept: Vec<String> = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter(|p| !is_session(p) && !p.trim().is_empty())
            .map(|p| p.trim().to_owned())
            .collect();
        req.headers_mut().remove(header::COOKIE);
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            if !kept.is_empty() {
                req.headers_mut().insert(header::COOKIE, v);
            }
        }
    }
    next.run(req).await
}

/// One address per page: a panel page asked for with a trailing slash (`/apps/7/`) is
/// sent to its address without it (308, the query kept), instead of being drawn under
/// a second address with a 404 status. A path that would then start with `//` is left
/// alone (a redirect there would leave the site).
pub async fn canonical_path(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && path.len() > 1
        && path.ends_with('/')
        && !path.starts_with("//")
    {
        let trimmed = path.trim_end_matches('/');
        let to = match (trimmed, req.uri().query()) {
            ("", Some(q)) => format!("/?{q}"),
            ("", None) => "/".to_owned(),
            (p, Some(q)) => format!("{p}?{q}"),
            (p, None) => p.to_owned(),
        };
        if let Ok(v) = HeaderValue::from_str(&to) {
            return (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response();
        }
    }
    next.run(req).await
}

/// Server functions decode their arguments before any Keyward code runs, and Leptos
/// answers a decoding failure (a missing, duplicated or mistyped field, a JSON or
/// multipart body, invalid UTF-8) with 500 whatever the error says. This sets the status
/// the error itself names (400 for those), so no input produces a 5xx; a real internal
/// error keeps its 500.
pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let is_fn = req.uri().path().starts_with("/fn/");
    let res = next.run(req).await;
    if !is_fn || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(e) = serde_json::from_slice::<app::error::AppError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(e.status()) {
            parts.status = status;
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// A plain form post (no JavaScript) to a server function whose answer carries a secret
/// (a new or rolled key, a webhook signing secret: marked `Cache-Control: no-transform`,
/// see `app::auth::ssr::carries_secret`) gets the secret in the answer itself, as a
/// page: Leptos would send the browser back to the form with a redirect and the secret
/// would be lost (the key existing and never usable; after a roll with a grace period,
/// the working key ending an hour later). Never stored anywhere to be shown later: the
/// page is the server function's own answer, `no-store`.
///
/// It runs around the whole router (called by `security`): a refused form's page is
/// drawn again by the router itself (`form_again`).
async fn plain_form_secret(state: &AppState, req: Request, next: Next) -> Response {
    let plain_form = req.method() == Method::POST
        && req.uri().path().starts_with("/fn/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    if !plain_form {
        return page_with_signed_error(state, req, next).await;
    }
    // A form on a page drawn as the answer to an earlier refused post names its page
    // (`?__from=`, see `kept_form`): the browser's address, so its `Referer`, is the
    // server function's. That page stands for the Referer from here on.
    let mut req = req;
    if let Some(page) = from_page(state, req.uri()) {
        req.headers_mut().insert(header::REFERER, page);
    }
    let back = back_to(state, req.headers());
    let session = session_of(state, req.headers()).to_owned();
    // What was sent (the body is already read whole, within the size limit): kept to
    // draw the form again with it after an error.
    let (parts, body) = req.into_parts();
    let Ok(sent) = axum::body::to_bytes(body, state.config.max_body_bytes).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let asked = (parts.headers.clone(), parts.extensions.clone());
    let mut res = next
        .clone()
        .run(Request::from_parts(parts, Body::from(sent.clone())))
        .await;
    if res.status().is_redirection() {
        sign_form_redirect(state, &session, &mut res);
    }
    if res.status().is_redirection() && res.headers().contains_key("serverfnerror") {
        let refused = (
            res.headers().get(header::LOCATION).cloned(),
            res.headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .cloned()
                .collect(),
        );
        return match form_again(next, asked, &sent, refused).await {
            Some(page) => page,
            None => res,
        };
    }
    let carries_secret = res
        .headers()
        .get(header::CACHE_CONTROL)
        .is_some_and(|v| cache_directive(v, "no-transform"));
    // Leptos marks a server function's error with `serverfnerror`: an error carries no
    // secret and goes back to the form as Leptos sends it.
    if !carries_secret
        || !res.status().is_redirection()
        || res.headers().contains_key("serverfnerror")
    {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // Not a secret (the server function's error on its way back to the form): as it was.
    let Some(page) = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| secret_page(&value, &back_to_new_row(&back, &value)))
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut res = Response::new(Body::from(page));
    // The server function's own headers (its session cookie, its cache control), not its
    // redirect.
    *res.headers_mut() = parts.headers;
    res.headers_mut().remove(header::LOCATION);
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// A refused plain form post is answered with the form's page itself, drawn anew with
/// the error beside its field and what the user typed written back into the form
/// (`kept_form`), under the error's own status (400, 409, 429...): Leptos's redirect
/// back to the page would carry the error but lose every value typed. `None` (the
/// redirect is kept) when the page cannot be drawn or has no such form.
async fn form_again(
    next: Next,
    (headers, extensions): (http::HeaderMap, http::Extensions),
    sent: &[u8],
    (location, cookies): (Option<HeaderValue>, Vec<HeaderValue>),
) -> Option<Response> {
    let location = location?;
    let location = location.to_str().ok()?;
    // `sign_form_redirect` made it a path of this panel; only a page is drawn (never
    // the audit export, a server function or anything else a Referer may name).
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    if !is_page_path(path) {
        return None;
    }
    let query = Query::parse(query);
    let (action, err) = (query.first("__path")?, query.first("__err")?);
    let error = base64::engine::general_purpose::STANDARD
        .decode(err)
        .ok()
        .and_then(|json| serde_json::from_slice::<app::error::AppError>(&json).ok());
    // The error's own status: 4xx for the request's fault, 5xx for the server's.
    let status = error
        .as_ref()
        .and_then(|e| StatusCode::from_u16(e.status()).ok())
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let retry_after = error.as_ref().and_then(app::error::AppError::retry_after);
    let sent: Vec<(String, String)> = form_urlencoded::parse(sent).into_owned().collect();
    // The page as the post's Referer names it; then, when that page holds no such form,
    // with the sent key's row open (`manage`): a table row's forms are drawn only while
    // its row is open, and a post from a row whose page the Referer does not name that
    // way (a tab opened before rows closed, a hand-made post) would otherwise lose what
    // was typed. Only a key the page itself lists can be opened: `manage` selects among
    // the rows the server drew for this viewer.
    // (The keys and channel keys tables are the pages whose rows hold forms only while
    // open: a row's post there tries the open row first, so the page is not drawn twice
    // for nothing.)
    // (A sender number's row on `/channels` is named by its number's id.)
    let row = one_value(&sent, "key_id").map(str::to_owned).or_else(|| {
        (path == "/channels" && action.starts_with("/fn/channels/numbers/"))
            .then(|| {
                one_value(&sent, "id")?
                    .parse()
                    .ok()
                    .map(app::channels::number_row)
            })
            .flatten()
    });
    let with_row = match (query.first("manage"), row) {
        (None, Some(row)) if matches!(path, "/keys" | "/channels") => {
            let row: String = form_urlencoded::byte_serialize(row.as_bytes()).collect();
            Some(format!("{location}&manage={row}"))
        }
        _ => None,
    };
    let mut tries = [with_row, Some(location.to_owned())].into_iter().flatten();
    let (mut parts, filled) = loop {
        let address = tries.next()?;
        let (address_path, address_query) =
            address.split_once('?').unwrap_or((address.as_str(), ""));
        // The page without the error: where the page's own forms say they come from.
        let from = Query::parse(address_query).address_without_error(address_path, &[]);
        let mut page = Request::new(Body::empty());
        *page.uri_mut() = address.parse().ok()?;
        *page.headers_mut() = headers.clone();
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ] {
            page.headers_mut().remove(name);
        }
        *page.extensions_mut() = extensions.clone();
        let drawn = next.clone().run(page).await;
        if drawn.status() != StatusCode::OK || !is_html(&drawn) {
            return None;
        }
        let (parts, body) = drawn.into_parts();
        let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.ok()?;
        if let Some(filled) = super::kept_form::fill(
            std::str::from_utf8(&bytes).ok()?,
            action,
            &sent,
            &address,
            &from,
        ) {
            break (parts, filled);
        }
    };
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(secs) = retry_after {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    // The post's own cookies as well as the page's (each name once: the page's, drawn
    // after the post, is the newer).
    let name = |c: &HeaderValue| {
        c.to_str()
            .ok()
            .and_then(|c| c.split_once('='))
            .map(|(n, _)| n.trim().to_owned())
    };
    let drawn: Vec<String> = parts
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(name)
        .collect();
    for cookie in cookies {
        if name(&cookie).is_none_or(|n| !drawn.contains(&n)) {
            parts.headers.append(header::SET_COOKIE, cookie);
        }
    }
    Some(Response::from_parts(parts, Body::from(filled)))
}

/// A path that is a panel page (not a server function, the REST API, the audit export,
/// a probe or the bundle): the only kind drawn again for a refused form.
fn is_page_path(path: &str) -> bool {
    // Written the one way the panel links it: no empty, `.` or `..` segment (nor one
    // spelled with `%2e`), no trailing slash, so no later normalisation makes it another.
    let canonical = path == "/"
        || (path.starts_with('/')
            && !path.ends_with('/')
            && path[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            && !path.to_ascii_lowercase().contains("%2e"));
    path.starts_with('/')
        && canonical
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
        && !path.starts_with("/fn/")
        && !path.starts_with("/api/")
        && !never_a_page(path)
        && path != super::AUDIT_EXPORT_PATH
}

/// The page a form says it is on (`?__from=` in its action, written by `kept_form`), as
/// a `Referer` of this panel: a page path only, else nothing.
fn from_page(state: &AppState, uri: &http::Uri) -> Option<HeaderValue> {
    let query = uri.query()?;
    let mut froms = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "__from")
        .map(|(_, v)| v);
    let (Some(from), None) = (froms.next(), froms.next()) else {
        return None;
    };
    let path = from.split_once('?').map_or(&*from, |(p, _)| p);
    if !is_page_path(path) || from.bytes().any(|b| !b.is_ascii_graphic()) {
        return None;
    }
    HeaderValue::from_str(&format!("{}{from}", state.config.public_url.origin)).ok()
}

/// A page asked for with a form's error in its address: shown only when this server
/// signed it (`drop_unsigned_form_error`). When it was not, the page also names the
/// address it was drawn for, which its script puts in the browser's location before
/// the browser reads the error from it (a page whose script and server disagree about
/// the error would not hydrate).
async fn page_with_signed_error(state: &AppState, req: Request, next: Next) -> Response {
    // A server function's address opened as a page (a bookmark of a refused form's
    // answer): the overview, not an empty "method not allowed".
    if req.method() == Method::GET && req.uri().path().starts_with("/fn/") {
        let html = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        if html {
            return Redirect::to("/").into_response();
        }
    }
    if req.uri().query().is_none_or(|q| !q.contains("__")) {
        return next.run(req).await;
    }
    let asked = req.uri().clone();
    let req = drop_unsigned_form_error(state, req);
    if *req.uri() == asked {
        return next.run(req).await;
    }
    let page = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    if !is_page_path(req.uri().path()) {
        return next.run(req).await;
    }
    let res = next.run(req).await;
    if !is_html(&res) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let named = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|html| super::kept_form::name_page(html, &page));
    parts.headers.remove(header::CONTENT_LENGTH);
    match named {
        Some(html) => Response::from_parts(parts, Body::from(html)),
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// The one value of `name` in a form that was sent, `None` when it has none or several.
fn one_value<'a>(sent: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = sent
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// An address's query, decoded: the form error's parameters (`__path`, `__err`,
/// `__sig`) read and taken out the one way everywhere.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn last(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }

    /// `path` with this query, without the form error's parameters, and with `extra`.
    fn address_without_error(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "__path" | "__err" | "__sig"))
        {
            qs.append_pair(k, v);
        }
        for (k, v) in extra {
            qs.append_pair(k, v);
        }
        match qs.finish() {
            q if q.is_empty() => path.to_owned(),
            q => format!("{path}?{q}"),
        }
    }
}

/// What `__sig` signs: a form's error on its way back to the form (`__path` names the
/// server function, `__err` the error, as Leptos writes them into the redirect), for
/// the session that sent the form, on the page it goes back to, for a few minutes: a
/// signed error someone made with a form of their own cannot be sent to anyone else.
const FORM_ERROR: &str = "form error v2";
/// How long a form's error in an address is shown.
const FORM_ERROR_SECS: i64 = 600;

/// The session cookie's value ("" without one): what a form's error is bound to.
fn session_of<'a>(state: &AppState, headers: &'a http::HeaderMap) -> &'a str {
    let name = super::session_cookie_name(state.config.public_url.https);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map_or("", |(_, v)| v.trim())
}

/// The redirect Leptos answers a plain form post with (back to the form's page, taken
/// from the `Referer`, with the error in `__path` and `__err`): kept to a path of this
/// panel (a foreign or `javascript:` Referer becomes the overview), and its error signed,
/// so that a link someone else made cannot put their words in the page's error box.
fn sign_form_redirect(state: &AppState, session: &str, res: &mut Response) {
    let Some(location) = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let origin = &state.config.public_url.origin;
    let local = location.strip_prefix(origin.as_str()).unwrap_or(location);
    let (path, query) = local.split_once('?').unwrap_or((local, ""));
    let same_site = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    let location = if !same_site {
        "/".to_owned()
    } else {
        // The form's page may still carry the error of an earlier submission: only the
        // newest (the last one Leptos appended) goes back.
        let query = Query::parse(query);
        match (query.last("__path"), query.last("__err")) {
            (fn_path, Some(err)) => {
                let fn_path = fn_path.unwrap_or_default();
                let at = state.clock.now().to_string();
                let tag = app::core::infra::crypto::tag(
                    state.master_key.expose(),
                    FORM_ERROR,
                    &[session, path, fn_path, err, &at],
                );
                let sig = format!("{at}.{tag}");
                query.address_without_error(
                    path,
                    &[("__path", fn_path), ("__err", err), ("__sig", &sig)],
                )
            }
            // Done: back to the page, and to the row the form was in when the page
            // had it open (`manage`, the keys table without JavaScript), not the
            // page's top.
            (_, None) => {
                let back = query.address_without_error(path, &[]);
                match query.first("manage") {
                    Some(row) => {
                        let row: String = form_urlencoded::byte_serialize(row.as_bytes()).collect();
                        format!("{back}#row-{row}")
                    }
                    None => back,
                }
            }
        }
    };
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            res.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            res.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
}

/// A page asked for with a form's error in its address (`__err`, `__path`) shows it only
/// when this server signed it (`sign_form_redirect`); otherwise the error is taken out of
/// the request before the page sees it.
fn drop_unsigned_form_error(state: &AppState, mut req: Request) -> Request {
    let Some(query) = req.uri().query() else {
        return req;
    };
    if !query.contains("__err") && !query.contains("__path") {
        return req;
    }
    let query = Query::parse(query);
    let (get, once) = (
        |name: &str| query.first(name),
        |name: &str| query.count(name) <= 1,
    );
    let session = session_of(state, req.headers());
    let now = state.clock.now();
    let signed = once("__err")
        && once("__path")
        && match (get("__err"), get("__sig").and_then(|s| s.split_once('.'))) {
            (Some(err), Some((at, tag))) => {
                at.parse::<i64>()
                    .is_ok_and(|t| (0..=FORM_ERROR_SECS).contains(&(now - t)))
                    && app::core::infra::crypto::tag_matches(
                        state.master_key.expose(),
                        FORM_ERROR,
                        &[
                            session,
                            req.uri().path(),
                            get("__path").unwrap_or_default(),
                            err,
                            at,
                        ],
                        tag,
                    )
            }
            _ => false,
        };
    if signed {
        return req;
    }
    let uri = query.address_without_error(req.uri().path(), &[]);
    if let Ok(uri) = uri.parse() {
        *req.uri_mut() = uri;
    }
    req
}

/// Where a plain form came from (its `Referer`, when it is a page of this panel), else
/// the keys page: the secret page's way back.
fn back_to(state: &AppState, headers: &http::HeaderMap) -> String {
    let origin = &state.config.public_url.origin;
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix(origin.as_str()))
        // A path of this site only, by the rule sign-in's `next` follows.
        .and_then(app::core::identity::sign_in::return_path)
        .map_or_else(|| "/keys".to_owned(), str::to_owned)
}

/// Where "I have copied it" goes after a new key's secret: the page the form was on,
/// scrolled to the new key's row, without the row the form was sent from open
/// (`manage=`: after a roll or a regeneration that is the replaced key). A reveal goes
/// back as it came.
fn back_to_new_row(back: &str, value: &serde_json::Value) -> String {
    let new_key = value
        .get("key")
        .and_then(|k| k.get("key_id"))
        .or_else(|| {
            value
                .get("what")
                .filter(|w| w.as_str() != Some("revealed"))
                .and_then(|_| value.get("key_id"))
        })
        .and_then(serde_json::Value::as_str);
    let Some(key_id) = new_key else {
        return back.to_owned();
    };
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let kept = Query(
        Query::parse(query)
            .0
            .into_iter()
            .filter(|(k, _)| k != "manage")
            .collect(),
    );
    let id: String = form_urlencoded::byte_serialize(key_id.as_bytes()).collect();
    format!("{}#row-{id}", kept.address_without_error(path, &[]))
}

/// The page that shows a secret once: a new key (`{"key": {...}, "secret": "..."}`) or a
/// signing secret (a JSON string). Every text is escaped.
fn secret_page(value: &serde_json::Value, back: &str) -> Option<String> {
    let esc = |t: &str| html_escape::encode_double_quoted_attribute(t).into_owned();
    use app::core::keys::format;
    // Only what is recognisably a secret is shown as one: a Keyward key (prefix and
    // checksum) or a webhook signing secret.
    let (title, about, secret) = match value {
        serde_json::Value::String(secret) if secret.starts_with("whsec_") => (
            "Copy the webhook signing secret now".to_owned(),
            "Keyward signs every webhook it sends to this URL with this secret. It is shown \
             only this once."
                .to_owned(),
            secret.as_str(),
        ),
        serde_json::Value::Object(m) => {
            let secret = m
                .get("secret")?
                .as_str()
                .filter(|s| format::parse(s).is_some())?;
            let str_of = |v: &serde_json::Value, k: &str| {
                v.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned()
            };
            match (m.get("key"), m.get("what").and_then(|v| v.as_str())) {
                // A REST key made or rolled: `{key, secret}`.
                (Some(key), _) => (
                    "Copy your new API key now".to_owned(),
                    format!(
                        "This is the only time Keyward shows the secret of <strong>{}</strong> \
                         (<code>{}</code>): it keeps only a hash of it. Store it in your secret \
                         manager before you leave this page.",
                        esc(&str_of(key, "name")),
                        esc(&str_of(key, "key_id"))
                    ),
                    secret,
                ),
                // A channel key made, regenerated or revealed: `{key_id, secret, what}`.
                (None, Some(what)) => {
                    let key_id = esc(&str_of(value, "key_id"));
                    match what {
                        "revealed" => (
                            format!("The secret of {key_id}"),
                            "This reveal was recorded in the audit log.".to_owned(),
                            secret,
                        ),
                        _ => (
                            "Copy your new channel key now".to_owned(),
                            format!(
                                "The secret of <code>{key_id}</code>. Store it in your secret \
                                 manager before you leave this page: unless its channel's keys \
                                 are revealable, it is shown only this once.{}",
                                if what == "regenerated" {
                                    let works_for = value
                                        .get("old_works_for")
                                        .and_then(serde_json::Value::as_i64)
                                        .unwrap_or(0);
                                    format!(" {}", esc(&app::channels::old_key_note(works_for)))
                                } else {
                                    String::new()
                                }
                            ),
                            secret,
                        ),
                    }
                }
                (None, None) => return None,
            }
        }
        _ => return None,
    };
    Some(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Keyward</title>\
         <link rel=\"stylesheet\" href=\"/pkg/keyward.css\"></head><body>\
         <main id=\"main\" class=\"auth-page\"><section class=\"card secret-card\" aria-labelledby=\"secret-title\">\
         <h1 id=\"secret-title\">{title}</h1><p>{about}</p>\
         <div class=\"field\"><label for=\"new-secret\">Secret (select it all and copy it)</label>\
         <input id=\"new-secret\" type=\"text\" class=\"secret\" readonly autocomplete=\"off\" spellcheck=\"false\" value=\"{secret}\"></div>\
         <p><a href=\"{back}\">I have copied it: back to the panel</a></p>\
         </section></main></body></html>\n",
        title = esc(&title),
        secret = esc(secret),
        back = esc(back),
    ))
}

/// Paths a signed-out visitor may load.
fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/login/verify"
        || path.starts_with("/invite/")
        || path.starts_with(STATIC_PREFIX)
        || path.starts_with("/fn/")
        || path.starts_with("/api/")
        || matches!(path, "/healthz" | "/readyz" | "/favicon.ico")
}

/// Panel pages need a signed-in user: others are sent to /login before anything renders.
/// (Server functions check the session themselves; this only spares a signed-out
/// visitor a page of errors.)
pub async fn require_sign_in(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let path = req.uri().path();
    let sign_in_page = matches!(path, "/login" | "/login/verify");
    if is_public(path) && !sign_in_page {
        return next.run(req).await;
    }
    let Some(session) = req.extensions().get::<tower_sessions::Session>().cloned() else {
        return next.run(req).await;
    };
    if sign_in_page {
        // Someone already signed in (Back after signing in, an old tab) goes on to the
        // page they asked for, as GitHub does, not to a sign-in that no longer exists.
        return match app::auth::ssr::current_user(&state, &session).await {
            Ok(Some(_)) => {
                let next = req
                    .uri()
                    .query()
                    .and_then(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == "next")
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_default();
                let to = app::core::identity::sign_in::return_path(&next).unwrap_or("/");
                Redirect::to(to).into_response()
            }
            // Signed out, or the database is away: the sign-in page says what it can.
            _ => next.run(req).await,
        };
    }
    match app::auth::ssr::current_user(&state, &session).await {
        // The page's server functions take the user found here (`SignedInNow`).
        Ok(Some(signed)) => {
            req.extensions_mut()
                .insert(app::auth::ssr::SignedInNow(std::sync::Arc::new(signed)));
            next.run(req).await
        }
        // Back to the page asked for once signed in (the approval mail's link to a message).
        Ok(None) => Redirect::to(&app::core::identity::sign_in::with_return(
            "/login",
            req.uri().path_and_query().map_or("/", |p| p.as_str()),
        ))
        .into_response(),
        Err(_) => database_unavailable(),
    }
}

/// Whether an answer is an HTML page (by its content type).
fn is_html(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[tokio::test]
    async fn a_page_not_drawn_in_time_is_answered_503_and_one_drawn_in_time_is_kept() {
        use std::time::Duration;
        // A drawing that waits for a task that never ends (one that panicked).
        let never = std::future::pending::<Response>();
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            answer_within(Duration::from_millis(50), RequestId::random(), never),
        )
        .await
        .expect("answered in time");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        // One that takes a while, but less than the limit, is the answer.
        let slow = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            (StatusCode::OK, "drawn").into_response()
        };
        let res = answer_within(Duration::from_millis(500), RequestId::random(), slow).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// A body that stops arriving is refused as such (400), not as a large one (413).
    #[tokio::test]
    async fn a_stalled_body_is_not_called_too_large() {
        let never = futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
        let body = tower_http::timeout::TimeoutBody::new(
            std::time::Duration::from_millis(20),
            Body::from_stream(never),
        );
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/messages")
            .header(header::CONTENT_LENGTH, "100")
            .body(Body::new(body))
            .unwrap();
        let res = bounded_body(1024, RequestId::random(), req)
            .await
            .unwrap_err();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "validation_failed");
        // Over the limit: still 413.
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/messages")
            .body(Body::from(vec![b'x'; 2048]))
            .unwrap();
        let res = bounded_body(1024, RequestId::random(), req)
            .await
            .unwrap_err();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    fn hm(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_canonical_page_path_is_a_page() {
        for page in [
            "/",
            "/keys",
            "/keys/key_ABC",
            "/login/verify",
            "/invite/abc-_1",
        ] {
            assert!(is_page_path(page), "{page}");
        }
        for not in [
            "",
            "keys",
            "//evil.example/x",
            "/\\evil",
            "/keys/",
            "/./metrics",
            "/keys/../metrics",
            "/%2e%2e/metrics",
            "/%2E/keys",
            "/a//b",
            "/fn/apps/create",
            "/api/v1/whoami",
            "/metrics",
            "/healthz",
            "/pkg/x.js",
            "/audit/export.csv",
            "/k\u{e9}ys",
            "/keys x",
        ] {
            assert!(!is_page_path(not), "{not}");
        }
    }

    #[test]
    fn cross_origin_rules() {
        let o = "http://127.0.0.1:3000";
        assert!(!is_cross_origin(
            &Method::GET,
            "/",
            &hm(&[("origin", "https://evil.example")]),
            o
        ));
        assert!(is_cross_origin(
            &Method::POST,
            "/fn/auth/login",
            &hm(&[("origin", "https://evil.example")]),
            o
        ));
        assert!(is_cross_origin(
            &Method::POST,
            "/fn/auth/login",
            &hm(&[("origin", "null")]),
            o
        ));
        assert!(!is_cross_origin(
            &Method::POST,
            "/fn/auth/login",
            &hm(&[("origin", o)]),
            o
        ));
        assert!(is_cross_origin(
            &Method::POST,
            "/x",
            &hm(&[("sec-fetch-site", "cross-site"), ("origin", o)]),
            o
        ));
        assert!(is_cross_origin(
            &Method::POST,
            "/x",
            &hm(&[("sec-fetch-site", "same-site")]),
            o
        ));
        assert!(!is_cross_origin(
            &Method::POST,
            "/x",
            &hm(&[("sec-fetch-site", "same-origin")]),
            o
        ));
        assert!(!is_cross_origin(&Method::POST, "/x", &hm(&[]), o));
        assert!(!is_cross_origin(
            &Method::POST,
            "/api/v1/sdk/events",
            &hm(&[("origin", "https://app.example")]),
            o
        ));
        assert!(is_cross_origin(
            &Method::DELETE,
            "/x",
            &hm(&[("origin", "https://evil.example")]),
            o
        ));
    }
}
