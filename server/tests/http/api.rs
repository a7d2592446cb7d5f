//! REST API v1 contract tests: every error code this build can produce, every endpoint,
//! the JSON shapes and headers.

use super::access::{make_app, make_key, make_role, make_user, pairs, post_fn};
use super::*;
use serde_json::{json, Value};

pub async fn call(
    s: &Server,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client().request(method.parse().unwrap(), s.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

/// Checks the contract's error shape and returns the code.
pub fn error_code(status: u16, headers: &reqwest::header::HeaderMap, v: &Value) -> String {
    let e = &v["error"];
    assert!(e["code"].is_string(), "{status}: {v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    let rid = e["request_id"].as_str().unwrap();
    assert!(!rid.is_empty());
    assert_eq!(
        headers["x-request-id"].to_str().unwrap(),
        rid,
        "the body and the header carry the same request id"
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    e["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn authentication_errors_follow_the_contract() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, 3).await;

    let (st, h, v) = call(&s, "GET", "/api/v1/whoami", None, None, &[]).await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (401, "missing_api_key")
    );

    // Malformed, bad checksum, unknown: one answer.
    let mut bad_sum = key.clone();
    bad_sum.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    // A well-formed key with a valid checksum that this server never issued.
    let unknown = {
        let other = Server::start(&[]).await;
        let o = other.sign_in().await;
        let oa = make_app(&other, &o, "Other", "").await;
        make_key(&other, &o, oa, 3).await
    };
    let mut bodies = Vec::new();
    for k in [
        "not-a-key",
        "kw_live_short",
        bad_sum.as_str(),
        unknown.as_str(),
    ] {
        // The same timing: none of the three is answered before the 20 ms floor (an
        // unknown key costs a database lookup the others skip; the floor hides it).
        let t = Instant::now();
        let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(k), None, &[]).await;
        assert!(
            t.elapsed() >= Duration::from_millis(20),
            "{k}: {:?}",
            t.elapsed()
        );
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (401, "invalid_api_key"),
            "{k}"
        );
        bodies.push(v["error"]["message"].clone());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    // Not "Bearer": the same answer.
    let (st, h, v) = call(
        &s,
        "GET",
        "/api/v1/whoami",
        None,
        None,
        &[("authorization", &format!("Basic {key}"))],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (401, "invalid_api_key")
    );

    // A key in the query string is refused, even a valid one.
    for q in [
        format!("?api_key={key}"),
        format!("?k={key}"),
        "?token=x".to_owned(),
    ] {
        let (st, h, v) = call(
            &s,
            "GET",
            &format!("/api/v1/whoami{q}"),
            Some(&key),
            None,
            &[],
        )
        .await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "key_in_query"),
            "{q}"
        );
    }
    // The secret never reaches the log.
    assert!(!s.log().contains(&key));
}

#[tokio::test]
async fn a_disabled_owner_s_keys_stop_at_the_next_request() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let (dev_id, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let key = make_key(&s, &dev, app, 3).await;
    let (st, _, _) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    assert_eq!(st, 200);
    let set = |enabled: &'static str| {
        let owner = owner.clone();
        let s = &s;
        async move {
            let r = post_fn(
                s,
                Some(&owner),
                "/fn/users/set_enabled",
                &pairs(&[("user_id", &dev_id.to_string()), ("enabled", enabled)]),
            )
            .await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    set("false").await;
    let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (401, "key_revoked"));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("disabled"),
        "{v}"
    );
    set("true").await;
    let (st, _, _) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    assert_eq!(st, 200, "enabling the owner again brings the key back");
}

/// Two instances on one PostgreSQL database: a revoke made on one is enforced by the
/// other within a second (the NOTIFY of migration 0005 drops its cache).
#[tokio::test]
async fn a_revoke_on_one_instance_is_enforced_by_another_within_a_second() {
    let Some(pg) = PgDb::create().await else {
        return;
    };
    let a = Server::start(&[("KEYWARD_DATABASE_URL", &pg.url)]).await;
    let owner = a.sign_in().await;
    let app = make_app(&a, &owner, "Billing", "").await;
    let key = make_key(&a, &owner, app, 3).await;
    // The second instance: the same database, another port.
    let b = a.second_instance(&pg.url).await;
    let b_url = b.base.clone();
    let whoami_b = || async {
        client()
            .get(format!("{b_url}/api/v1/whoami"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(whoami_b().await, 200, "B has verified (and cached) the key");
    let key_id: String = {
        let (_, _, v) = call(&a, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
        v["key_id"].as_str().unwrap().to_owned()
    };
    let r = post_fn(
        &a,
        Some(&owner),
        "/fn/keys/revoke",
        &pairs(&[
            ("key_id", &key_id),
            ("confirm", "yes"),
            ("reason", "leaked"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let revoked_at = Instant::now();
    loop {
        let st = whoami_b().await;
        if st == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still accepts the key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b);
    drop(a);
    pg.drop().await;
}

#[tokio::test]
async fn whoami_keys_create_update_roll_revoke() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, 3).await; // Developer

    let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    assert_eq!(st, 200, "{v}");
    assert!(h.contains_key("x-request-id"));
    let key_id = v["key_id"].as_str().unwrap().to_owned();
    assert!(key_id.starts_with("key_") && key_id.len() == 20);
    assert_eq!(v["kind"], "rest");
    assert_eq!(v["environment"], "live");
    assert_eq!(v["app"], json!({ "id": app, "name": "Billing" }));
    assert_eq!(v["owner"]["email"], "owner@example.com");
    assert_eq!(v["expires_at"], Value::Null);
    let perms: Vec<&str> = v["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        perms,
        [
            "api.key.view",
            "api.key.create",
            "api.key.update",
            "api.key.delete",
            "message.create"
        ]
    );

    // Create: 201, the secret once, no-store.
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name":"ci","app_id":app,"environment":"test","networks":["10.0.0.0/8"]})),
        &[],
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(h["cache-control"], "no-store, no-transform");
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("kw_test_") && secret.len() == 46);
    let new_id = v["key"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(v["key"]["last4"], &secret[secret.len() - 4..]);
    assert_eq!(v["key"]["role"], "Developer");
    assert_eq!(v["key"]["networks"], json!(["10.0.0.0/8"]));
    assert!(!v["key"].as_object().unwrap().contains_key("secret_hash"));

    // Listed without any secret; visible to its owner.
    let (st, _, v) = call(&s, "GET", "/api/v1/keys", Some(&key), None, &[]).await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&new_id.as_str()) && ids.contains(&key_id.as_str()));
    assert!(!v.to_string().contains(&secret));
    assert!(v.get("next").is_none(), "one page: {v}");

    // Filters and pages: newest first, `next` to continue after.
    let (st, _, v) = call(
        &s,
        "GET",
        "/api/v1/keys?environment=test&limit=1",
        Some(&key),
        None,
        &[],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["keys"][0]["key_id"], new_id.as_str());
    assert!(v.get("next").is_none(), "only one test key: {v}");
    let (_, _, v) = call(&s, "GET", "/api/v1/keys?limit=1", Some(&key), None, &[]).await;
    assert_eq!(v["keys"].as_array().unwrap().len(), 1);
    assert_eq!(v["next"], new_id.as_str());
    let path = format!("/api/v1/keys?limit=1&after={new_id}");
    let (_, _, v) = call(&s, "GET", &path, Some(&key), None, &[]).await;
    assert_eq!(v["keys"][0]["key_id"], key_id.as_str());
    for bad in ["limit=0", "limit=lots", "status=gone", "page=2"] {
        let path = format!("/api/v1/keys?{bad}");
        let (st, h, v) = call(&s, "GET", &path, Some(&key), None, &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "validation_failed"),
            "{bad}: {v}"
        );
    }

    // Validation errors name the field.
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name":"","app_id":app,"environment":"test"})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed")
    );
    assert!(v["error"]["details"]["fields"]["name"].is_string(), "{v}");
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name":"x","app_id":app,"environment":"prod"})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed")
    );
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name":"x","app_id":app,"environment":"test","owner_id":1})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed"),
        "unknown fields are refused, not ignored"
    );
    // A role above the key's own: 403 insufficient_permissions.
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name":"x","app_id":app,"environment":"test","role_id":2})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "insufficient_permissions")
    );

    // Update.
    let (st, _, v) = call(
        &s,
        "PATCH",
        &format!("/api/v1/keys/{new_id}"),
        Some(&key),
        Some(json!({"name":"ci renamed"})),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["key"]["name"], "ci renamed");
    // Unknown key and unknown route: 404 not_found.
    let (st, h, v) = call(
        &s,
        "PATCH",
        "/api/v1/keys/key_aaaaaaaaaaaaaaaa",
        Some(&key),
        Some(json!({"name":"x"})),
        &[],
    )
    .await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (404, "not_found"));
    let (st, h, v) = call(&s, "GET", "/api/v1/nothing-here", Some(&key), None, &[]).await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (404, "not_found"));

    // Roll with a grace period: the old key keeps working and says what replaced it.
    let (st, _, v) = call(
        &s,
        "POST",
        &format!("/api/v1/keys/{key_id}/roll"),
        Some(&key),
        Some(json!({"grace_seconds":3600})),
        &[],
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let rolled = v["secret"].as_str().unwrap().to_owned();
    let rolled_id = v["key"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(v["key"]["rolled_from"], key_id.as_str());
    assert_eq!(v["key"]["name"], "test key");
    let (st, _, _) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    assert_eq!(st, 200, "the old key works until the deadline");
    let (st, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&rolled), None, &[]).await;
    assert_eq!(
        (st, v["key_id"].as_str().unwrap()),
        (200, rolled_id.as_str())
    );
    let (_, _, v) = call(&s, "GET", "/api/v1/keys", Some(&rolled), None, &[]).await;
    let old = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(old["replaced_by"], rolled_id.as_str());
    // Rolling again: 409 conflict.
    let (st, h, v) = call(
        &s,
        "POST",
        &format!("/api/v1/keys/{key_id}/roll"),
        Some(&rolled),
        Some(json!({"grace_seconds":0})),
        &[],
    )
    .await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (409, "conflict"));

    // Roll with no grace: the old key is expired at once.
    let (st, _, v) = call(
        &s,
        "POST",
        &format!("/api/v1/keys/{rolled_id}/roll"),
        Some(&rolled),
        Some(json!({"grace_seconds":0})),
        &[],
    )
    .await;
    assert_eq!(st, 201);
    let third = v["secret"].as_str().unwrap().to_owned();
    let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&rolled), None, &[]).await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (401, "key_expired"));

    // A bad revoke body gets the contract's validation_failed (JSON), not the
    // framework's plain-text refusal, and revokes nothing; without a key it is a 401.
    for bad in [json!({"reason": "x", "unknown": 1}), json!("not an object")] {
        let path = format!("/api/v1/keys/{new_id}");
        let (st, h, v) = call(&s, "DELETE", &path, Some(&third), Some(bad.clone()), &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "validation_failed"),
            "{bad}"
        );
        let (st, h, v) = call(&s, "DELETE", &path, None, Some(bad), &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (401, "missing_api_key")
        );
    }

    // Revoke: the very next request is refused; revoking twice is a conflict.
    let (st, _, v) = call(
        &s,
        "DELETE",
        &format!("/api/v1/keys/{new_id}"),
        Some(&third),
        Some(json!({"reason":"leaked in a log"})),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["key"]["status"], "revoked");
    assert_eq!(v["key"]["revoke_reason"], "leaked in a log");
    let (st, h, v) = call(
        &s,
        "GET",
        "/api/v1/whoami",
        Some(&secret),
        None,
        &[("x-forwarded-for", "10.0.0.1")],
    )
    .await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (401, "key_revoked"));
    let (st, h, v) = call(
        &s,
        "DELETE",
        &format!("/api/v1/keys/{new_id}"),
        Some(&third),
        None,
        &[],
    )
    .await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (409, "conflict"));

    // Audited.
    let pool = s.db().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select action, actor_type from audit_events where action like 'api_key.%' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "api_key.created",
            "api_key.created",
            "api_key.updated",
            "api_key.rolled",
            "api_key.rolled",
            "api_key.revoked"
        ]
    );
    assert_eq!(
        rows[1].1, "key",
        "a key acting through the API is the audit actor"
    );
    // Nothing at rest holds a secret.
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from api_keys where secret_hash = $1 or last4 = $1")
            .bind(&secret)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn permissions_come_from_the_key_role_and_changes_apply_at_once() {
    // A small body limit: the oversized body below stays small enough to be written
    // whole before the server answers.
    let s = Server::start(&[("KEYWARD_MAX_BODY_BYTES", "65536")]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let role = make_role(&s, &owner, "Readers", &["api.key.view"]).await;
    let key = make_key(&s, &owner, app, role).await;
    let (st, _, _) = call(&s, "GET", "/api/v1/keys", Some(&key), None, &[]).await;
    assert_eq!(st, 200);
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name":"x","app_id":app,"environment":"test"})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "insufficient_permissions")
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api.key.create"));
    // The Owner removes api.key.view from the role: the key's next request is refused.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/roles/save",
        &pairs(&[("role[]", &role.to_string())]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (st, h, v) = call(&s, "GET", "/api/v1/keys", Some(&key), None, &[]).await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "insufficient_permissions")
    );
    // Oversized bodies: 413 in the contract's shape.
    let big = "x".repeat(70 * 1024);
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({ "name": big })),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (413, "payload_too_large")
    );
}

#[tokio::test]
async fn ip_allow_lists_use_the_client_address_rules() {
    // Loopback is a trusted proxy: X-Forwarded-For stands for the client.
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;
    let v4 = make_app(&s, &owner, "Office v4", "10.0.0.0/8").await;
    let v6 = make_app(&s, &owner, "Office v6", "2001:db8::/32").await;
    let k4 = make_key(&s, &owner, v4, 3).await;
    let k6 = make_key(&s, &owner, v6, 3).await;
    let who = |k: String, xff: &'static str| {
        let s = &s;
        async move {
            call(
                s,
                "GET",
                "/api/v1/whoami",
                Some(&k),
                None,
                &[("x-forwarded-for", xff)],
            )
            .await
        }
    };
    assert_eq!(who(k4.clone(), "10.1.2.3").await.0, 200);
    assert_eq!(
        who(k4.clone(), "::ffff:10.1.2.3").await.0,
        200,
        "an IPv4-mapped IPv6 address counts as IPv4"
    );
    assert_eq!(who(k6.clone(), "2001:db8::7").await.0, 200);
    let (st, h, v) = who(k4.clone(), "192.0.2.9").await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "ip_not_allowed")
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("192.0.2.9"));
    let (st, _, _) = who(k6.clone(), "10.1.2.3").await;
    assert_eq!(st, 403);

    // Without trusted proxies, a forged X-Forwarded-For changes nothing: the peer counts.
    let plain = Server::start(&[]).await;
    let o = plain.sign_in().await;
    let a = make_app(&plain, &o, "Office", "10.0.0.0/8").await;
    let k = make_key(&plain, &o, a, 3).await;
    let (st, h, v) = call(
        &plain,
        "GET",
        "/api/v1/whoami",
        Some(&k),
        None,
        &[("x-forwarded-for", "10.1.2.3")],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "ip_not_allowed")
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    // The app's list changes: the next request follows it.
    let r = post_fn(
        &plain,
        Some(&o),
        "/fn/apps/update",
        &pairs(&[
            ("id", &a.to_string()),
            ("name", "Office"),
            ("networks", "127.0.0.0/8"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (st, _, _) = call(&plain, "GET", "/api/v1/whoami", Some(&k), None, &[]).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn sdk_keys_identify_the_app_and_send_events_only() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Mobile", "").await;
    let r = post_fn(&s, Some(&owner), "/fn/apps/list", &[]).await;
    let apps: Vec<Value> = r.json().await.unwrap();
    let sdk = apps[0]["sdk_keys"].as_array().unwrap();
    assert_eq!(sdk.len(), 2);
    let live = sdk.iter().find(|k| k[0] == "live").unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        live.starts_with("kwpub_live_") && live.len() == 49,
        "{live}"
    );

    let (st, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&live), None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["kind"].as_str(), v["owner"].is_null()),
        (Some("sdk"), true)
    );
    assert_eq!(v["permissions"], json!([]));
    let (st, h, v) = call(&s, "GET", "/api/v1/keys", Some(&live), None, &[]).await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "sdk_key_not_allowed")
    );
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/sdk/events",
        Some(&live),
        Some(json!({"name":"app_opened","properties":{"screen":"home"}})),
        &[],
    )
    .await;
    assert_eq!((st, &v), (202, &json!({ "accepted": true })));
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/sdk/events",
        Some(&live),
        Some(json!({"name":"","properties":{}})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed")
    );
    let pool = s.db().await;
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from app_events where app_id = $1 and name = 'app_opened'")
            .bind(app)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 1);

    // Regenerated with an hour of grace: the old key still works (with its end in
    // whoami), the app shows only the new one.
    let regenerate = |grace: &'static str| {
        let (s, owner) = (&s, owner.clone());
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/apps/regenerate_sdk_key",
                &pairs(&[
                    ("app_id", &app.to_string()),
                    ("environment", "live"),
                    ("grace", grace),
                ]),
            )
            .await
        }
    };
    assert_eq!(regenerate("3600").await.status(), 200);
    let (st, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&live), None, &[]).await;
    assert_eq!(st, 200);
    assert!(v["expires_at"].is_i64(), "{v}");
    let apps: Vec<Value> = post_fn(&s, Some(&owner), "/fn/apps/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let shown: Vec<&Value> = apps[0]["sdk_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k[0] == "live")
        .collect();
    assert_eq!(shown.len(), 1);
    assert_ne!(shown[0][1], live.as_str());
    assert_eq!(
        regenerate("12").await.status(),
        400,
        "only the offered periods"
    );

    // Regenerated without grace: every earlier key stops at once.
    assert_eq!(regenerate("0").await.status(), 200);
    let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&live), None, &[]).await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (401, "key_revoked"));
}

#[tokio::test]
async fn the_openapi_document_is_generated_from_the_routes() {
    let s = Server::start(&[]).await;
    let (st, h, v) = call(&s, "GET", "/api/v1/openapi.json", None, None, &[]).await;
    assert_eq!(st, 200);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    // Every REST route the binary lists is in the document, with its method.
    for line in access::routes(&s) {
        let Some(rest) = line.strip_prefix("rest ") else {
            continue;
        };
        let (method, path) = rest.split_once(' ').unwrap();
        if path == "/api/v1/openapi.json" {
            continue;
        }
        let op = &v["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} missing from the document");
        // Every operation documents the refusals that can reach it, in the error shape
        // (401 and 403 where a key is needed: not on the open leak reports).
        let mut statuses = vec!["400", "429"];
        if op.get("security").is_some() {
            statuses.extend(["401", "403"]);
        } else {
            assert_eq!(path, "/api/v1/leaks", "only leak reports need no key");
        }
        if path.contains('{') {
            statuses.push("404");
        }
        if op.get("requestBody").is_some() {
            statuses.push("413");
        }
        for status in statuses {
            let r = &op["responses"][status];
            assert!(
                r.to_string().contains("ErrorBody"),
                "{method} {path}: {status} is not documented: {op}"
            );
        }
    }
    let text = v.to_string();
    for code in [
        "missing_api_key",
        "invalid_api_key",
        "key_revoked",
        "key_expired",
        "ip_not_allowed",
        "insufficient_permissions",
        "sdk_key_not_allowed",
        "key_in_query",
        "validation_failed",
        "not_found",
        "conflict",
        "payload_too_large",
        "rate_limited",
    ] {
        assert!(text.contains(code), "{code} is not documented");
    }
    assert!(v["components"]["schemas"]["KeyInfo"].is_object() || text.contains("CreateBody"));
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    // The panel renders it for signed-in users.
    let owner = s.sign_in().await;
    let html = client()
        .get(s.url("/api"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("/api/v1/keys/{key_id}/roll"), "{html}");
}

#[tokio::test]
async fn key_settings_cap_counts_and_expiry() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let save = |max: &'static str, days: &'static str, default: &'static str| {
        let s = &s;
        let owner = owner.clone();
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/settings/keys/save",
                &pairs(&[
                    ("max_active_per_user_per_app", max),
                    ("max_expiry_days", days),
                    ("default_expiry", default),
                ]),
            )
            .await
        }
    };
    // The default must fit the maximum.
    assert_eq!(save("2", "30", "90").await.status(), 400);
    assert_eq!(save("2", "30", "30").await.status(), 200);
    let create = |expiry: &'static str| {
        let s = &s;
        let owner = owner.clone();
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/keys/create",
                &pairs(&[
                    ("name", "k"),
                    ("app_id", &app.to_string()),
                    ("environment", "live"),
                    ("role_id", "3"),
                    ("expiry", expiry),
                ]),
            )
            .await
        }
    };
    let r = create("never").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("within 30 days"));
    assert_eq!(create("90").await.status(), 400);
    assert_eq!(create("7").await.status(), 200);
    let r = create("30").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let secret = v["secret"].as_str().unwrap().to_owned();
    // The third active key for the same app: refused, saying how to free a slot.
    let r = create("7").await;
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("the limit is 2") && text.contains("Revoke"),
        "{text}"
    );
    // Through the REST API the same rule holds.
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&secret),
        Some(json!({"name":"x","app_id":app,"environment":"test","expires_at": null})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed")
    );
    let in_a_week = time::OffsetDateTime::now_utc().unix_timestamp() + 7 * 86_400;
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&secret),
        Some(json!({"name":"x","app_id":app,"environment":"test","expires_at": in_a_week})),
        &[],
    )
    .await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (409, "conflict"));
}

#[tokio::test]
async fn a_flood_of_bad_keys_is_rate_limited() {
    let s = Server::start(&[]).await;
    let mut last = (0, reqwest::header::HeaderMap::new(), Value::Null);
    for _ in 0..70 {
        last = call(
            &s,
            "GET",
            "/api/v1/whoami",
            Some("kw_live_nonsense"),
            None,
            &[],
        )
        .await;
        if last.0 == 429 {
            break;
        }
    }
    let (st, h, v) = last;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (429, "rate_limited"));
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
}

#[tokio::test]
async fn refusals_reach_the_log_as_one_counted_line_per_address_not_one_each() {
    let mut s = Server::start(&[]).await;
    for _ in 0..62 {
        call(
            &s,
            "GET",
            "/api/v1/whoami",
            Some("kw_live_nonsense"),
            None,
            &[],
        )
        .await;
    }
    // The summary is written every minute, and at shutdown.
    s.stop_gracefully();
    let log = s.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    // 60 at once, then one a second: what came past the allowance was answered 429.
    assert!(
        lines[0].contains("total=62")
            && lines[0].contains("invalid_api_key=6")
            && lines[0].contains("rate_limited="),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes in a file: {log}");
}

#[tokio::test]
async fn a_flood_of_a_revoked_key_is_rate_limited_and_a_working_key_keeps_working() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Flood", "").await;
    let good = make_key(&s, &owner, app, 1).await;
    let bad = make_key(&s, &owner, app, 1).await;
    let (st, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&bad), None, &[]).await;
    assert_eq!(st, 200);
    let bad_id = v["key_id"].as_str().unwrap().to_owned();
    let revoke = format!("/api/v1/keys/{bad_id}");
    let (st, ..) = call(&s, "DELETE", &revoke, Some(&good), None, &[]).await;
    assert_eq!(st, 200);
    let mut codes = Vec::new();
    for _ in 0..70 {
        let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&bad), None, &[]).await;
        codes.push(error_code(st, &h, &v));
        if st == 429 {
            break;
        }
    }
    assert_eq!(codes.first().map(String::as_str), Some("key_revoked"));
    assert_eq!(
        codes.last().map(String::as_str),
        Some("rate_limited"),
        "{codes:?}"
    );
    // The address is over its allowance: a key the server does not know is answered
    // 429 without a lookup, while the working key (known) still works from here.
    let unknown = app::core::keys::format::generate(
        app::core::keys::format::Visibility::Secret,
        app::core::keys::format::Environment::Live,
    );
    let (st, h, v) = call(&s, "GET", "/api/v1/whoami", Some(&unknown), None, &[]).await;
    assert_eq!((st, error_code(st, &h, &v).as_str()), (429, "rate_limited"));
    let (st, ..) = call(&s, "GET", "/api/v1/whoami", Some(&good), None, &[]).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn an_allow_list_entry_is_one_address_or_range_written_from_its_first_address() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Nets", "").await;
    let key = make_key(&s, &owner, app, 3).await;
    let create = |networks: Value| {
        let body = json!({"name":"n","app_id":app,"environment":"test","networks":networks});
        call(&s, "POST", "/api/v1/keys", Some(&key), Some(body), &[])
    };
    // A blank entry is not "any address"; a list in one entry is not two; a range that
    // does not start at its first address is not silently widened.
    for bad in [
        json!([" "]),
        json!(["10.0.0.0/8, ::1"]),
        json!(["1.2.3.4/0"]),
        json!(["10.1.2.3/8"]),
    ] {
        let (st, h, v) = create(bad.clone()).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "validation_failed"),
            "{bad}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("networks[0]"),
            "{v}"
        );
    }
    // An IPv4-mapped address is kept as the IPv4 address clients are compared as.
    let (st, _, v) = create(json!(["::ffff:192.0.2.7", "192.0.2.7/32"])).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["key"]["networks"], json!(["192.0.2.7/32"]));
}

#[tokio::test]
async fn an_sdk_key_writes_few_events_a_second_from_one_address_then_429() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Mobile", "").await;
    let r = post_fn(&s, Some(&owner), "/fn/apps/list", &[]).await;
    let apps: Vec<Value> = r.json().await.unwrap();
    let live = apps[0]["sdk_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k[0] == "live")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    // A public key: anyone may hold it, so one address gets a burst of 50 and then
    // about 5 a second, each refusal before any database work.
    let body = json!({"name": "spam", "properties": {"x": "A".repeat(4000)}});
    let (mut accepted, mut refused) = (0, None);
    for _ in 0..80 {
        let (st, h, v) = call(
            &s,
            "POST",
            "/api/v1/sdk/events",
            Some(&live),
            Some(body.clone()),
            &[],
        )
        .await;
        match st {
            202 => accepted += 1,
            _ => {
                assert_eq!(error_code(st, &h, &v), "rate_limited");
                assert_eq!(st, 429);
                assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
                refused.get_or_insert(accepted);
            }
        }
    }
    assert!((50..70).contains(&accepted), "{accepted} accepted");
    assert!(refused.is_some());
    let (n,): (i64,) = sqlx::query_as("select count(*) from app_events where app_id = $1")
        .bind(app)
        .fetch_one(&s.db().await)
        .await
        .unwrap();
    assert_eq!(n, accepted);
}

#[tokio::test]
async fn errors_that_axum_makes_itself_are_in_the_contract_shape_too() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Shapes", "").await;
    let key = make_key(&s, &owner, app, 3).await;
    // A path segment that is not UTF-8: 400, in JSON, with the request id.
    for (method, path) in [
        ("PATCH", "/api/v1/keys/%ff"),
        ("DELETE", "/api/v1/keys/%ff"),
        ("POST", "/api/v1/keys/%ff/roll"),
        ("GET", "/api/v1/messages/%c3%28"),
    ] {
        let (st, h, v) = call(&s, method, path, Some(&key), Some(json!({})), &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "validation_failed"),
            "{method} {path}: {v}"
        );
    }
    // A method the path does not take: 405 with Allow, in JSON.
    for (method, path, allow) in [
        ("PUT", "/api/v1/whoami", "GET"),
        ("GET", "/api/v1/keys/key_aaaaaaaaaaaaaaaa", "PATCH"),
    ] {
        let (st, h, v) = call(&s, method, path, Some(&key), None, &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (405, "method_not_allowed"),
            "{method} {path}: {v}"
        );
        assert!(h["allow"].to_str().unwrap().contains(allow), "{h:?}");
    }
}

/// A key acts for its own app: another app's keys are neither listed, nor changed,
/// rolled or revoked through it, and it makes keys for its app only, however much its
/// owner (here the Owner) may do in the panel. That app's allow-list is not bypassed.
#[tokio::test]
async fn a_key_manages_only_its_own_apps_keys() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let billing = make_app(&s, &owner, "Billing", "").await;
    let locked = make_app(&s, &owner, "Locked", "192.0.2.1/32").await;
    let key = make_key(&s, &owner, billing, 1).await;
    let _other_secret = make_key(&s, &owner, locked, 3).await;
    let (_, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
    let own_id = v["key_id"].as_str().unwrap().to_owned();
    // The locked app's key, named by the panel (its allow-list keeps it from here).
    let r = post_fn(&s, Some(&owner), "/fn/keys/list", &pairs(&[])).await;
    let listed: Value = r.json().await.unwrap();
    let other_id = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["app_id"] == locked)
        .expect("the locked app's key")["key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (st, _, v) = call(&s, "GET", "/api/v1/keys", Some(&key), None, &[]).await;
    assert_eq!(st, 200, "{v}");
    let ids: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [own_id.as_str()], "{v}");
    let (_, _, v) = call(
        &s,
        "GET",
        &format!("/api/v1/keys?app_id={locked}"),
        Some(&key),
        None,
        &[],
    )
    .await;
    assert_eq!(v["keys"], json!([]), "{v}");
    // Nor through the paging cursor: another app's key as `after` is an unknown one
    // (before, the page told whether it existed and, by the sort, its name).
    for sort in ["newest", "oldest", "name", "expires", "last_used"] {
        let (st, _, v) = call(
            &s,
            "GET",
            &format!("/api/v1/keys?sort={sort}&after={other_id}"),
            Some(&key),
            None,
            &[],
        )
        .await;
        assert_eq!((st, &v["keys"]), (200, &json!([])), "{sort}: {v}");
    }
    // The same for someone else's key in the key's own app, to a key without
    // api.key.view_all (a Developer's).
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let dev_key = make_key(&s, &dev, billing, 3).await;
    for sort in ["oldest", "name"] {
        let (st, _, v) = call(
            &s,
            "GET",
            &format!("/api/v1/keys?sort={sort}&after={own_id}"),
            Some(&dev_key),
            None,
            &[],
        )
        .await;
        assert_eq!((st, &v["keys"]), (200, &json!([])), "{sort}: {v}");
    }
    for (method, path, body) in [
        (
            "PATCH",
            format!("/api/v1/keys/{other_id}"),
            Some(json!({ "name": "mine now" })),
        ),
        (
            "POST",
            format!("/api/v1/keys/{other_id}/roll"),
            Some(json!({ "grace_seconds": 0 })),
        ),
        ("DELETE", format!("/api/v1/keys/{other_id}"), None),
    ] {
        let (st, h, v) = call(&s, method, &path, Some(&key), body, &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (404, "not_found"),
            "{method} {path}: {v}"
        );
    }
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({ "name": "elsewhere", "app_id": locked, "environment": "live" })),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (403, "insufficient_permissions"),
        "{v}"
    );
    // Untouched: the locked app's key is still active, under its own name.
    let r = post_fn(&s, Some(&owner), "/fn/keys/list", &pairs(&[])).await;
    let listed: Value = r.json().await.unwrap();
    let k = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == other_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(k["status"], "active", "{k}");
    assert_ne!(k["name"], "mine now");
    // Its own app: made.
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({ "name": "sibling", "app_id": billing, "environment": "live" })),
        &[],
    )
    .await;
    assert_eq!(st, 201, "{v}");
}
