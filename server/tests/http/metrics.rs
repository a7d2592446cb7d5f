//! `/metrics`: Prometheus text (read with a Prometheus text parser), counting the
//! requests the test makes; served to loopback clients only unless a token is set, and
//! then only with the token.

use super::access::{make_app, make_key};
use super::*;

/// One sample of a scrape: its metric family, labels and value.
struct Sample {
    family: String,
    labels: std::collections::HashMap<String, String>,
    value: openmetrics_parser::PrometheusValue,
}

/// The scrape, read with a parser of the Prometheus text format.
async fn scrape(s: &Server, token: Option<&str>) -> Vec<Sample> {
    let mut req = client().get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let text = r.text().await.unwrap();
    let parsed = openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("not Prometheus text: {e:?}\n{text}"));
    let mut out = Vec::new();
    for (name, family) in &parsed.families {
        for sample in family.iter_samples() {
            out.push(Sample {
                family: name.clone(),
                labels: sample
                    .get_labelset()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                value: sample.value.clone(),
            });
        }
    }
    out
}

/// The value of the counter or gauge `name` whose labels include `labels`.
fn value(scrape: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    use openmetrics_parser::PrometheusValue as V;
    scrape
        .iter()
        .find(|s| {
            s.family == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| match &s.value {
            V::Counter(c) => c.value.as_f64(),
            V::Gauge(v) | V::Unknown(v) => v.as_f64(),
            _ => f64::NAN,
        })
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_key_checks_by_outcome() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let secret = make_key(&s, &owner, app, 3).await;
    for _ in 0..3 {
        let r = client()
            .get(s.url("/api/v1/whoami"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let me: serde_json::Value = client()
        .get(s.url("/api/v1/whoami"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = me["key_id"].as_str().unwrap();
    let r = client()
        .get(s.url("/api/v1/whoami"))
        .bearer_auth("kw_live_notakey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A key's page: counted under its template, never its id.
    let r = client()
        .get(s.url(&format!("/keys/{key_id}")))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(s.url("/no/such/page/at/all"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error() || r.status().is_redirection());

    let m = scrape(&s, None).await;
    let requests = "keyward_http_requests_total";
    let whoami = [("route", "/api/v1/whoami"), ("method", "GET")];
    assert_eq!(
        value(&m, requests, &[whoami[0], whoami[1], ("status", "200")]),
        Some(4.0)
    );
    assert_eq!(
        value(&m, requests, &[whoami[0], ("status", "401")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            requests,
            &[("route", "/keys/{key_id}"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert!(value(&m, requests, &[("route", "unmatched")]).is_some());
    // No label anywhere carries a key id or a raw path.
    for sample in &m {
        for v in sample.labels.values() {
            assert!(!v.contains(key_id) && !v.contains("/no/such"), "{v}");
        }
    }
    // The latency histogram, as a Prometheus histogram.
    let latency = m
        .iter()
        .find(|s| {
            s.family == "keyward_http_request_duration_seconds"
                && s.labels.get("route").map(String::as_str) == Some("/api/v1/whoami")
        })
        .expect("whoami's latency");
    match &latency.value {
        openmetrics_parser::PrometheusValue::Histogram(h) => {
            assert_eq!(h.count, Some(5));
            let inf = h.buckets.iter().find(|b| b.upper_bound.is_infinite());
            assert_eq!(inf.map(|b| b.count.as_f64()), Some(5.0));
        }
        other => panic!("not a histogram: {other:?}"),
    }
    let checks = "keyward_key_verifications_total";
    assert_eq!(value(&m, checks, &[("outcome", "ok")]), Some(4.0));
    assert_eq!(
        value(&m, checks, &[("outcome", "invalid_api_key")]),
        Some(1.0)
    );
    assert!(value(&m, "keyward_key_cache_total", &[("result", "hit")]).unwrap() >= 3.0);
    assert!(value(&m, "keyward_key_cache_total", &[("result", "miss")]).unwrap() >= 1.0);
    // The owner's sign-in steps, by outcome.
    assert!(
        value(
            &m,
            "keyward_sign_in_steps_total",
            &[("step", "sign_in"), ("outcome", "success")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(&m, "keyward_outbox_messages", &[("status", "queued")]),
        Some(0.0)
    );
    assert!(value(&m, "keyward_db_pool_connections", &[("state", "max")]).unwrap() >= 1.0);
    assert_eq!(
        value(
            &m,
            "keyward_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    // Counters only go up: the next scrape counts the scrape before it.
    let again = scrape(&s, None).await;
    assert_eq!(
        value(
            &again,
            requests,
            &[("route", "/metrics"), ("status", "200")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn metrics_are_refused_to_a_client_beyond_loopback_without_a_token() {
    // A trusted proxy on loopback forwarding a client from elsewhere: that client is
    // not loopback.
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let r = client()
        .get(s.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("KEYWARD_METRICS_TOKEN"));
    // A trusted proxy's own request: a proxy on this host may be forwarding anyone.
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // No proxy trusted: a loopback peer that says it forwards someone (a reverse proxy
    // on this host) is refused; one that says nothing is a local scraper.
    let s = Server::start(&[]).await;
    for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let r = client()
            .get(s.url("/metrics"))
            .header(h, "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{h}");
    }
    scrape(&s, None).await;
}

#[tokio::test]
async fn with_a_token_metrics_want_the_token_from_everyone() {
    let token = "metrics-token-0123456789abcdef";
    let s = Server::start(&[("KEYWARD_METRICS_TOKEN", token)]).await;
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789abcdef".to_owned()),
        Some(format!("Basic {token}")),
        Some(format!("Bearer {token}x")),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
    ] {
        let mut req = client().get(s.url("/metrics"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"keyward-metrics\""
        );
    }
    // Twice, even with the right token: which one counts would be ambiguous.
    let r = client()
        .get(s.url("/metrics"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let m = scrape(&s, Some(token)).await;
    assert!(value(&m, "keyward_build_info", &[]).is_some());
    // The token never appears in what is served or logged.
    let body = client()
        .get(s.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains(token));
    assert!(!s.log().contains(token));
}
