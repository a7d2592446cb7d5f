//! The router: health probes, the panel (pages and server functions), static files,
//! wrapped in the security layers.

use super::compression::CompressWhenAsked;
use super::{health, middleware, session_cookie_name};
use crate::rest;
use app::{shell, state::AppState, App};
use axum::{middleware::from_fn_with_state, routing::get, Router};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::Layer as _;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

/// The whole application as one service: the security base around the router.
pub fn build(
    state: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync
       + 'static {
    let routes = generate_route_list(App);
    let options = state.leptos_options().clone();
    let pkg_dir =
        std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let cfg = state.config.clone();
    // The chunks each lazy page needs, which a page names in a preload header (so its
    // chunk downloads beside the main module instead of after it).
    let chunks = options
        .output_name
        .split_once('/')
        .map(|(dir, _)| app::BundleChunks {
            base: format!("/{}/{dir}", options.site_pkg_dir),
            by_page: std::sync::Arc::new(super::bundle::chunk_manifest(&pkg_dir.join(dir))),
        });

    let sessions = SessionManagerLayer::new(state.sessions.clone())
        .with_name(session_cookie_name(cfg.public_url.https))
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(cfg.public_url.https)
        .with_path("/")
        // Idle timeout: a request pushes the expiry (cookie and row) forward when the
        // session is written, which `auth::ssr::current_user` does at most once a minute
        // or a sixtieth of the timeout (not on every request: a page load would otherwise
        // be a database write).
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            cfg.session_idle.as_secs() as i64,
        )));

    // Panel pages and server functions: sessions and the sign-in gate.
    let panel = Router::new()
        .route(super::AUDIT_EXPORT_PATH, get(super::audit_export::export))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                if let Some(chunks) = &chunks {
                    leptos::prelude::provide_context(chunks.clone());
                }
            },
            move || shell(options.clone()),
        )
        .fallback(not_found)
        .layer(from_fn_with_state(
            state.clone(),
            middleware::require_sign_in,
        ))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::session_expiry,
        ))
        .layer(sessions)
        .layer(from_fn_with_state(
            state.clone(),
            middleware::one_session_cookie,
        ))
        .layer(axum::middleware::from_fn(middleware::server_fn_status))
        .layer(axum::middleware::from_fn(middleware::canonical_path))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::panel_network_gate,
        ));

    // Probes and the static bundle never touch the session store (a cookie on an asset
    // request would otherwise cost a session read and write).
    let routes = Router::new()
        .merge(rest::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(super::metrics::PATH, get(super::metrics::serve))
        .merge(super::bundle::router(&pkg_dir))
        .merge(panel)
        .with_state(state.clone());

    // The security base every request passes, put around the whole router once rather
    // than with `Router::layer` (which wraps each route in its own boxed copy of the
    // layer, cloned and boxed again on each request: half of a REST call's allocations
    // went there), and served without another router around it. Outermost, compression
    // of what the client accepts (gzip), decided on the finished answer's headers.
    let app = from_fn_with_state(state, middleware::security).layer(routes);
    CompressWhenAsked::new(app)
}

/// Every path template the router serves (pages, server functions, REST routes, the
/// probes, `/metrics` and the static bundle): the routes `/metrics` counts requests by.
pub fn route_templates() -> Vec<String> {
    let mut out: Vec<String> = listing()
        .iter()
        .filter_map(|line| line.split(' ').nth(2).map(str::to_owned))
        .collect();
    out.extend(
        [
            "/healthz",
            "/readyz",
            super::metrics::PATH,
            "/favicon.ico",
            "/pkg/{*file}",
        ]
        .map(str::to_owned),
    );
    out
}

/// Every panel page, server function and REST route, one per line: `page GET /path`,
/// `fn POST /fn/...` or `rest METHOD /api/v1/...`. Generated from the router and the server-function registry, so the
/// endpoint table test cannot miss a new one.
pub fn listing() -> Vec<String> {
    let mut out: Vec<String> = generate_route_list(App)
        .iter()
        .map(|r| format!("page GET {}", r.path()))
        .collect();
    out.extend(
        leptos::server_fn::axum::server_fn_paths()
            .map(|(path, method)| format!("fn {method} {path}")),
    );
    out.push(format!("page GET {}", super::AUDIT_EXPORT_PATH));
    out.extend(rest::listing().into_iter().map(|r| format!("rest {r}")));
    out.sort();
    out.dedup();
    out
}

/// Any other path, and a page asked for with another method than GET: the panel's "not
/// found" page (in the shell, with navigation, for a signed-in user), 404 unless the
/// page set another status. Never a file: the bundle is served under `/pkg/` only.
/// (Leptos's own fallback also serves any file of the site folder, to any method and
/// without sign-in, such as the bundle's manifest and precompressed copies under other
/// spellings of their paths.)
async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let options = state.leptos_options().clone();
    let render = leptos_axum::render_app_async_with_context(
        move || leptos::prelude::provide_context(state.clone()),
        move || shell(options.clone()),
    );
    let mut res = render(req).await;
    if res.status() == http::StatusCode::OK {
        *res.status_mut() = http::StatusCode::NOT_FOUND;
    }
    res
}
