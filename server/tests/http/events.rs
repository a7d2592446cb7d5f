//! Event webhooks: key events reach the URLs subscribed to them, once each, signed with
//! the URL's secret, naming the key by its id and never by its secret.

use super::access::{make_app, make_key, pairs, post_fn};
use super::api::call;
use super::*;
use axum::http::HeaderMap;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What a receiver got: (headers, body), in arrival order.
type Got = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook receiver on a free loopback port that accepts everything at `/hook`.
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// Waits (up to 10 s) until the receiver holds `n` deliveries.
async fn wait_for(got: &Got, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "{} deliveries, not {n}",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn key_events_reach_subscribed_urls_once_signed_and_without_the_secret() {
    let (url, got) = receiver().await;
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let other_app = make_app(&s, &owner, "Other", "").await;
    let app_s = app.to_string();
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/apps/webhooks/register",
        &pairs(&[("app_id", &app_s), ("url", &url)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let hook_secret: String = r.json().await.unwrap();
    let subscribe = |events: &[&str]| {
        let mut form = pairs(&[("app_id", &app_s), ("url", &url)]);
        form.extend(
            events
                .iter()
                .map(|e| ("events[]".to_owned(), (*e).to_owned())),
        );
        let (s, owner) = (&s, owner.clone());
        async move { post_fn(s, Some(&owner), "/fn/apps/webhooks/events", &form).await }
    };
    assert_eq!(
        subscribe(&["key.created", "key.nonsense"]).await.status(),
        400
    );
    let r = subscribe(&["key.created", "key.revoked"]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Created: one delivery, signed, naming the key by its id.
    let secret = make_key(&s, &owner, app, 3).await;
    let (_, _, me) = call(&s, "GET", "/api/v1/whoami", Some(&secret), None, &[]).await;
    let key_id = me["key_id"].as_str().unwrap().to_owned();
    wait_for(&got, 1).await;
    {
        let all = got.lock().unwrap();
        let (h, body) = &all[0];
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "key.created");
        assert_eq!(v["data"]["key_id"], key_id.as_str());
        assert_eq!(v["data"]["owner"], "owner@example.com");
        assert_eq!(v["app_id"], app);
        assert!(v["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(h["x-keyward-event"], "key.created");
        assert_eq!(h["x-keyward-delivery"], v["id"].as_str().unwrap());
        let ts: i64 = h["x-keyward-timestamp"].to_str().unwrap().parse().unwrap();
        let expected =
            app::core::messages::delivery::signature(hook_secret.as_bytes(), ts, body.as_bytes());
        assert_eq!(h["x-keyward-signature"].to_str().unwrap(), expected);
        assert!(!body.contains(&secret), "never the key's secret");
    }

    // Rolled (not subscribed): nothing; a key of another app: nothing.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/roll",
        &pairs(&[("key_id", &key_id), ("grace", "0")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let new: Value = r.json().await.unwrap();
    let new_id = new["key"]["key_id"].as_str().unwrap().to_owned();
    let _ = make_key(&s, &owner, other_app, 3).await;
    // Revoked: one more.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/revoke",
        &pairs(&[("key_id", &new_id), ("reason", "done"), ("confirm", "yes")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    wait_for(&got, 2).await;
    // Time for anything else that might (wrongly) arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = got.lock().unwrap();
    let kinds: Vec<String> = all
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["key.created", "key.revoked"],
        "once each, only what was subscribed"
    );
    let revoked: Value = serde_json::from_str(&all[1].1).unwrap();
    assert_eq!(revoked["data"]["key_id"], new_id.as_str());
    assert_eq!(revoked["data"]["reason"], "done");
}
