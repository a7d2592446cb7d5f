//! `/metrics` in Prometheus text format (`metrics` facade, `metrics-exporter-prometheus`
//! recorder), and the HTTP request counts the security middleware records.
//!
//! Served only to `Authorization: Bearer <KEYWARD_METRICS_TOKEN>`, or, when no token is
//! set, only to a loopback client connected directly (see `direct_loopback`: not
//! through a trusted proxy, and without forwarding headers, so that a reverse proxy on
//! the same host does not serve it to the world).
//!
//! Labels are bounded: the route is the router's template (`/keys/{key_id}`), matched
//! against the route listing once built (a path no route matches is `unmatched`); the
//! method is one of the standard ones or `other`; the status is a number below 600.

use app::auth::ssr::ClientIp;
use app::state::AppState;
use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use metrics::Counter;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Where `/metrics` is served.
pub const PATH: &str = "/metrics";

/// Latency buckets' upper bounds, as Prometheus prints them and in nanoseconds.
const BUCKETS: [(&str, u64); 13] = [
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
    ("5", 5_000_000_000),
    ("10", 10_000_000_000),
];

const LATENCY: &str = "keyward_http_request_duration_seconds";

/// The latency histogram of one (route, method), kept here rather than in the
/// exporter: a sample costs three relaxed atomic adds, where the exporter's histogram
/// (a lock-free sample queue, drained at upkeep, with its own clock read) cost about
/// 200 instructions a request on `GET /api/v1/whoami`. Rendered by [`render_latency`].
#[derive(Default)]
struct Latency {
    /// Samples per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Latency {
    fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKETS
            .iter()
            .position(|(_, le)| nanos <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

/// (route, method) and its latency histogram.
type LatencyOf = ((u16, u8), Arc<Latency>);

/// Every latency histogram, by (route, method).
static LATENCIES: Mutex<Vec<LatencyOf>> = Mutex::new(Vec::new());

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
type Handles = HashMap<(u16, u8, u16), (Counter, Arc<Latency>), foldhash::fast::RandomState>;

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::new(Handles::default());
}

/// Installs the Prometheus recorder for the process, before anything is counted (the
/// domain's counters keep the handles they get first). `routes` are the path templates
/// requests are counted by.
pub fn install(routes: impl IntoIterator<Item = String>) -> Result<(), String> {
    let recorder = PrometheusBuilder::new().build_recorder();
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
            let latency = {
                let mut all = LATENCIES.lock().unwrap_or_else(|e| e.into_inner());
                let k = (key.0, key.1);
                match all.iter().find(|(x, _)| *x == k) {
                    Some((_, l)) => l.clone(),
                    None => {
                        let l = Arc::new(Latency::default());
                        all.push((k, l.clone()));
                        l
                    }
                }
            };
            let method = METHODS[method];
            let status = status.as_u16().to_string();
            (
                metrics::counter!("keyward_http_requests_total",
                    "route" => route, "method" => method, "status" => status),
                latency,
            )
        });
        count.increment(1);
        time.observe(took);
    });
}

/// Drains what the recorder buffers (histogram samples): run every few seconds.
pub fn upkeep() {
    if let Some(m) = INSTALLED.get() {
        m.handle.run_upkeep();
    }
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = req.headers();
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
        None if !direct_loopback(&state, ip, peer, headers) => {
            return refused(
                StatusCode::FORBIDDEN,
                "/metrics is served to loopback clients only (connected directly, not through a proxy); set KEYWARD_METRICS_TOKEN to scrape it from elsewhere.\n",
            );
        }
        None => {}
    }
    let Some(m) = INSTALLED.get() else {
        return refused(StatusCode::NOT_FOUND, "Metrics are not enabled.\n");
    };
    gauges(&state).await;
    let mut text = m.handle.render();
    render_latency(m, &mut text);
    let mut r = text.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Headers a proxy adds when it forwards a client's request.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// True for a loopback client connected directly: the client address and the socket
/// peer are loopback, the peer is not a trusted proxy, and the request carries no
/// forwarding header. A reverse proxy on the same host connects from loopback too; when
/// it says whom it forwards (or is configured as a proxy) its client is not loopback.
fn direct_loopback(
    state: &AppState,
    ip: IpAddr,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> bool {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return false;
    };
    ip.is_loopback()
        && peer.is_loopback()
        && !state
            .config
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&peer))
        && !FORWARDING.iter().any(|h| headers.contains_key(*h))
}

/// Appends the latency histograms in Prometheus text format.
fn render_latency(m: &Installed, out: &mut String) {
    let all: Vec<((u16, u8), Arc<Latency>)> =
        LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if all.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP {LATENCY} Time to the response's headers, by route template and method."
    );
    let _ = writeln!(out, "# TYPE {LATENCY} histogram");
    for ((route, method), l) in all {
        let route = m
            .templates
            .get(usize::from(route))
            .map_or("unmatched", String::as_str);
        let labels = format!(
            "route=\"{}\",method=\"{}\"",
            escape(route),
            METHODS.get(usize::from(method)).unwrap_or(&"other")
        );
        // Read the count first: buckets then hold at least as many samples (a scrape
        // during traffic never shows +Inf below the count of an earlier read).
        let count = l.count.load(Relaxed);
        let mut cumulative = 0;
        for (i, (le, _)) in BUCKETS.iter().enumerate() {
            cumulative += l.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{LATENCY}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        cumulative += l.buckets[BUCKETS.len()].load(Relaxed);
        let total = cumulative.max(count);
        let _ = writeln!(out, "{LATENCY}_bucket{{{labels},le=\"+Inf\"}} {total}");
        let sum = l.sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{LATENCY}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{LATENCY}_count{{{labels}}} {total}");
    }
}

/// A label value as the text format writes it (`\`, `"` and newlines escaped).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them() {
        let l = Latency::default();
        l.observe(Duration::from_micros(999));
        l.observe(Duration::from_millis(1));
        l.observe(Duration::from_millis(3));
        l.observe(Duration::from_secs(11));
        let counts: Vec<u64> = l.buckets.iter().map(|b| b.load(Relaxed)).collect();
        assert_eq!(counts[0], 2, "1 ms is inside le=0.001");
        assert_eq!(counts[2], 1);
        assert_eq!(counts[BUCKETS.len()], 1, "past 10 s: +Inf");
        assert_eq!(l.count.load(Relaxed), 4);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("/keys/{key_id}"), "/keys/{key_id}");
    }
}
