//! `/metrics` in Prometheus text format (`metrics` facade, `metrics-exporter-prometheus`
//! recorder), and the HTTP request counts the security middleware records.
//!
//! Served only to `Authorization: Bearer <KEYWARD_METRICS_TOKEN>`, or, when no token is
//! set, only to a loopback client (the client address as `ClientIp` resolves it: a
//! request a trusted proxy forwards from outside is not loopback).
//!
//! Labels are bounded: the route is the router's template (`/keys/{key_id}`), matched
//! against the route listing once built (a path no route matches is `unmatched`); the
//! method is one of the standard ones or `other`; the status is a number below 600.

use app::auth::ssr::ClientIp;
use app::state::AppState;
use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// Where `/metrics` is served.
pub const PATH: &str = "/metrics";

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

/// What the process's recorder renders, and the route templates requests are counted by.
struct Installed {
    handle: PrometheusHandle,
    routes: matchit::Router<u16>,
    templates: Vec<String>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// (route, method, status) → this thread's handles (registered once per thread).
type Handles = HashMap<(u16, u8, u16), (Counter, Histogram), foldhash::fast::RandomState>;

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::new(Handles::default());
}

/// Installs the Prometheus recorder for the process, before anything is counted (the
/// domain's counters keep the handles they get first). `routes` are the path templates
/// requests are counted by.
pub fn install(routes: impl IntoIterator<Item = String>) -> Result<(), String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("keyward_http_request_duration_seconds".into()),
            BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    app::core::infra::metrics::describe();
    metrics::gauge!("keyward_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let mut templates: Vec<String> = Vec::new();
    let mut router = matchit::Router::new();
    for t in routes {
        if templates.contains(&t) {
            continue;
        }
        let Ok(i) = u16::try_from(templates.len()) else {
            break;
        };
        if router.insert(t.clone(), i).is_ok() {
            templates.push(t);
        }
    }
    templates.push("unmatched".to_owned());
    let _ = INSTALLED.set(Installed {
        handle,
        routes: router,
        templates,
    });
    Ok(())
}

/// The route template index of `path` (taken before the request is handed on), or
/// `None` when metrics are not installed.
pub fn route_of(path: &str) -> Option<u16> {
    let m = INSTALLED.get()?;
    Some(match m.routes.at(path) {
        Ok(found) => *found.value,
        Err(_) => u16::try_from(m.templates.len() - 1).unwrap_or(u16::MAX),
    })
}

/// The template of a route index from [`route_of`] (for the access log).
pub fn template(route: Option<u16>) -> &'static str {
    route
        .and_then(|i| INSTALLED.get()?.templates.get(usize::from(i)))
        .map_or("unmatched", String::as_str)
}

/// Counts a request and its time to the response's headers.
pub fn record(route: u16, method: &Method, status: StatusCode, took: Duration) {
    let Some(m) = INSTALLED.get() else {
        return;
    };
    let method = METHODS
        .iter()
        .position(|x| *x == method.as_str())
        .unwrap_or(METHODS.len() - 1);
    let key = (route, method as u8, status.as_u16());
    HANDLES.with_borrow_mut(|h| {
        let (count, time) = h.entry(key).or_insert_with(|| {
            let route = m
                .templates
                .get(usize::from(route))
                .cloned()
                .unwrap_or_else(|| "unmatched".to_owned());
            let method = METHODS[method];
            let status = status.as_u16().to_string();
            (
                metrics::counter!("keyward_http_requests_total",
                    "route" => route.clone(), "method" => method, "status" => status),
                metrics::histogram!("keyward_http_request_duration_seconds",
                    "route" => route, "method" => method),
            )
        });
        count.increment(1);
        time.record(took.as_secs_f64());
    });
}

/// Drains what the recorder buffers (histogram samples): run every few seconds.
pub fn upkeep() {
    if let Some(m) = INSTALLED.get() {
        m.handle.run_upkeep();
    }
}

/// `GET /metrics`.
pub async fn serve(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let refused = |status: StatusCode, text: &'static str| {
        let mut r = (status, text).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keyward-metrics\""),
            );
        }
        r
    };
    match &state.config.metrics_token {
        Some(token) => {
            let mut sent = headers.get_all(header::AUTHORIZATION).iter();
            let claimed = match (sent.next(), sent.next()) {
                (Some(v), None) => v
                    .to_str()
                    .ok()
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim()),
                _ => None,
            };
            let ok = claimed
                .is_some_and(|c| app::core::infra::crypto::secret_matches(token.expose(), c));
            if !ok {
                return refused(
                    StatusCode::UNAUTHORIZED,
                    "Send the metrics token: Authorization: Bearer <KEYWARD_METRICS_TOKEN>.\n",
                );
            }
        }
        None if !ip.is_loopback() => {
            return refused(
                StatusCode::FORBIDDEN,
                "/metrics is served to loopback clients only; set KEYWARD_METRICS_TOKEN to scrape it from elsewhere.\n",
            );
        }
        None => {}
    }
    let Some(m) = INSTALLED.get() else {
        return refused(StatusCode::NOT_FOUND, "Metrics are not enabled.\n");
    };
    gauges(&state).await;
    let mut r = m.handle.render().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Values read at scrape time: the database pool's use and the outbox's depth (left
/// as last read when the database does not answer within a second).
async fn gauges(state: &AppState) {
    let pool = &state.db.pool;
    let size = f64::from(pool.size());
    let idle = u32::try_from(pool.num_idle()).map_or(0.0, f64::from);
    metrics::gauge!("keyward_db_pool_connections", "state" => "in_use").set(size - idle);
    metrics::gauge!("keyward_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("keyward_db_pool_connections", "state" => "max")
        .set(f64::from(pool.options().get_max_connections()));
    let depth = tokio::time::timeout(
        Duration::from_secs(1),
        app::core::messages::delivery::outbox_depth(&state.db),
    )
    .await;
    match depth {
        Ok(Ok(counts)) => {
            for (status, n) in counts {
                metrics::gauge!("keyward_outbox_messages", "status" => status).set(n as f64);
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "reading the outbox depth for /metrics failed"),
        Err(_) => tracing::warn!("reading the outbox depth for /metrics timed out"),
    }
}
