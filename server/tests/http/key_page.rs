//! A key's page: every field and its history for whoever may see the key, nobody else;
//! its own allow-list edited there (and through the REST API) and enforced at once.

use super::access::{make_app, make_key, make_role, make_user, pairs, post_fn};
use super::*;
use serde_json::Value;

const DEVELOPER: i64 = 3;

#[tokio::test]
async fn a_key_page_shows_its_history_to_who_may_see_the_key_and_edits_its_allow_list() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        let app = make_app(&s, &owner, "Billing", "").await;
        let (_, dev) = make_user(&s, &owner, "dev@example.com", DEVELOPER).await;
        let (_, other) = make_user(&s, &owner, "other@example.com", DEVELOPER).await;
        let secret = make_key(&s, &dev, app, DEVELOPER).await;
        let whoami = || {
            client()
                .get(s.url("/api/v1/whoami"))
                .bearer_auth(&secret)
                .send()
        };
        let me: Value = whoami().await.unwrap().json().await.unwrap();
        let key_id = me["key_id"].as_str().unwrap().to_owned();

        // Its owner sees every field and the history; so does someone with view_all.
        let get = |cookie: &str| {
            let (s, key_id) = (&s, key_id.clone());
            let cookie = cookie.to_owned();
            async move {
                post_fn(
                    s,
                    Some(&cookie),
                    "/fn/keys/get",
                    &pairs(&[("key_id", &key_id)]),
                )
                .await
            }
        };
        let r = get(&dev).await;
        assert_eq!(r.status(), 200);
        let d: Value = r.json().await.unwrap();
        assert_eq!(d["key"]["key_id"], key_id.as_str());
        assert_eq!(d["history"][0]["action"], "api_key.created");
        assert_eq!(d["history"][0]["actor"], "dev@example.com");
        assert!(!d.to_string().contains(&secret));
        assert_eq!(get(&owner).await.status(), 200);
        // Another developer: not found, as for a key that does not exist.
        assert_eq!(get(&other).await.status(), 404);
        let page = client()
            .get(s.url(&format!("/keys/{key_id}")))
            .header("cookie", &other)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 404);
        let page = client()
            .get(s.url(&format!("/keys/{key_id}")))
            .header("cookie", &dev)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("api_key.created") && html.contains("History"));

        // The page's form replaces the key's own allow-list; the key is refused from
        // elsewhere at once, and the change is in the history.
        let r = post_fn(
            &s,
            Some(&dev),
            "/fn/keys/update",
            &pairs(&[
                ("key_id", &key_id),
                ("name", "test key"),
                ("role_id", &DEVELOPER.to_string()),
                ("networks", "203.0.113.0/24"),
                ("set_networks", "yes"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let r = whoami().await.unwrap();
        assert_eq!(r.status(), 403);
        let d: Value = get(&dev).await.json().await.unwrap();
        assert_eq!(d["key"]["networks"][0], "203.0.113.0/24");
        assert_eq!(d["history"][0]["action"], "api_key.updated");
        // A rename from the table (no networks field) keeps the list.
        let r = post_fn(
            &s,
            Some(&dev),
            "/fn/keys/update",
            &pairs(&[("key_id", &key_id), ("name", "renamed"), ("role_id", "3")]),
        )
        .await;
        assert_eq!(r.status(), 200);
        let d: Value = get(&dev).await.json().await.unwrap();
        assert_eq!(d["key"]["networks"][0], "203.0.113.0/24");
        // A bad entry is a field error and changes nothing.
        let r = post_fn(
            &s,
            Some(&dev),
            "/fn/keys/update",
            &pairs(&[
                ("key_id", &key_id),
                ("name", "renamed"),
                ("role_id", "3"),
                ("networks", "not-a-network"),
                ("set_networks", "yes"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 400);
        // Emptied, the key works again from anywhere the app allows.
        let r = post_fn(
            &s,
            Some(&dev),
            "/fn/keys/update",
            &pairs(&[
                ("key_id", &key_id),
                ("name", "renamed"),
                ("role_id", "3"),
                ("networks", ""),
                ("set_networks", "yes"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 200);
        let d: Value = get(&dev).await.json().await.unwrap();
        assert_eq!(d["key"]["networks"], serde_json::json!([]), "{d}");
        let r = whoami().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

        // Someone else's action on the key shows in its history without their address
        // (that is the audit log's to show); the owner's own actions keep theirs.
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/update",
            &pairs(&[
                ("key_id", &key_id),
                ("name", "renamed by the owner"),
                ("role_id", "3"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let d: Value = get(&dev).await.json().await.unwrap();
        assert_eq!(d["history"][0]["actor"], "owner@example.com");
        assert!(d["history"][0]["ip"].is_null(), "{d}");
        assert_eq!(d["history"][1]["ip"], "127.0.0.1");
        let d: Value = get(&owner).await.json().await.unwrap();
        assert_eq!(
            d["history"][1]["ip"], "127.0.0.1",
            "audit.view sees every address"
        );

        // A revoked key is history: it cannot be changed any more.
        let r = post_fn(
            &s,
            Some(&dev),
            "/fn/keys/revoke",
            &pairs(&[("key_id", &key_id), ("confirm", "yes")]),
        )
        .await;
        assert_eq!(r.status(), 200);
        let r = post_fn(
            &s,
            Some(&dev),
            "/fn/keys/update",
            &pairs(&[("key_id", &key_id), ("name", "after"), ("role_id", "3")]),
        )
        .await;
        assert_eq!(r.status(), 409);
    })
    .await;
}

/// A roll is filed under the key it made; the rolled key's history shows it too, naming
/// its replacement, so its page tells where it went.
#[tokio::test]
async fn a_rolled_keys_history_names_its_replacement() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let secret = make_key(&s, &owner, app, DEVELOPER).await;
    let me: Value = client()
        .get(s.url("/api/v1/whoami"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = me["key_id"].as_str().unwrap().to_owned();
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/roll",
        &pairs(&[("key_id", &old), ("grace", "3600")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let new: Value = r.json().await.unwrap();
    let new_id = new["key"]["key_id"].as_str().unwrap().to_owned();
    let history = |id: String| {
        let (s, owner) = (&s, owner.clone());
        async move {
            let r = post_fn(s, Some(&owner), "/fn/keys/get", &pairs(&[("key_id", &id)])).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["history"].clone()
        }
    };
    let h = history(old.clone()).await;
    assert_eq!(h[0]["action"], "api_key.rolled", "{h}");
    assert!(
        h[0]["details"]
            .as_str()
            .unwrap()
            .starts_with(&format!("replaced by {new_id}")),
        "{h}"
    );
    assert_eq!(h[1]["action"], "api_key.created", "{h}");
    // The replacement's own history is unchanged: its making, as a roll.
    let h = history(new_id.clone()).await;
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h[0]["action"], "api_key.rolled");
    assert!(!h[0]["details"].as_str().unwrap().starts_with("replaced by"));
}

#[tokio::test]
async fn a_key_page_shows_its_usage_per_hour_and_day_with_its_refusals() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    // A key whose role holds nothing: whoami works, sending a message does not.
    let nothing = make_role(&s, &owner, "Nothing", &[]).await;
    let secret = make_key(&s, &owner, app, nothing).await;
    let whoami = || {
        client()
            .get(s.url("/api/v1/whoami"))
            .bearer_auth(&secret)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(whoami().await.unwrap().status(), 200);
    }
    let me: Value = whoami().await.unwrap().json().await.unwrap();
    let key_id = me["key_id"].as_str().unwrap().to_owned();
    let r = client()
        .post(s.url("/api/v1/messages"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({"channel": "email", "to": ["a@example.com"], "subject": "s", "body": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Then only from elsewhere: refused from here, counted under its code.
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/update",
        &pairs(&[
            ("key_id", &key_id),
            ("name", "test key"),
            ("role_id", &nothing.to_string()),
            ("networks", "203.0.113.0/24"),
            ("set_networks", "yes"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    for _ in 0..2 {
        assert_eq!(whoami().await.unwrap().status(), 403);
    }
    // Written in batches every few seconds, never per request.
    let mut usage = Value::Null;
    for _ in 0..40 {
        let d: Value = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/get",
            &pairs(&[("key_id", &key_id)]),
        )
        .await
        .json()
        .await
        .unwrap();
        usage = d["usage"].clone();
        let hour = &usage["hours"][47];
        if hour["accepted"] == 4 && hour["refused"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let hour = &usage["hours"][47];
    assert_eq!(hour["accepted"], 4, "{usage}");
    let by_code: Vec<(String, u64)> = serde_json::from_value(hour["by_code"].clone()).unwrap();
    assert!(
        by_code.contains(&("ip_not_allowed".to_owned(), 2)),
        "{by_code:?}"
    );
    assert!(
        by_code.contains(&("insufficient_permissions".to_owned(), 1)),
        "{by_code:?}"
    );
    assert_eq!(usage["hours"].as_array().unwrap().len(), 48);
    assert_eq!(usage["days"].as_array().unwrap().len(), 90);
    assert_eq!(usage["days"][89]["accepted"], 4);
    // The refusals' batch names where they came from.
    let mut refusals = usage["recent_refusals"].clone();
    for _ in 0..20 {
        if refusals.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let d: Value = post_fn(
            &s,
            Some(&owner),
            "/fn/keys/get",
            &pairs(&[("key_id", &key_id)]),
        )
        .await
        .json()
        .await
        .unwrap();
        refusals = d["usage"]["recent_refusals"].clone();
    }
    assert_eq!(refusals[0]["addresses"][0], "127.0.0.1", "{refusals}");
    // Refusal batches are listed under usage, never in the history, where anyone holding
    // the secret could push the key's real changes off the page.
    let d: Value = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/get",
        &pairs(&[("key_id", &key_id)]),
    )
    .await
    .json()
    .await
    .unwrap();
    let actions: Vec<&str> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"api_key.created") && actions.contains(&"api_key.updated"));
    assert!(!actions.contains(&"api_key.refused"), "{actions:?}");

    // The page draws it (server-rendered SVG) with the numbers in a table behind it.
    let html = client()
        .get(s.url(&format!("/keys/{key_id}")))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"id="usage-hours""#) && html.contains(r#"id="usage-days""#));
    assert!(html.contains("<svg") && html.contains(r#"class="bar-ok""#));
    assert!(
        html.contains("4 accepted"),
        "the summary says what the bars show"
    );
    assert!(html.contains("ip_not_allowed 2"));
    assert!(html.contains("Show the hours as a table"));
}

#[tokio::test]
async fn an_app_page_lists_its_keys_that_the_viewer_may_see() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let billing = make_app(&s, &owner, "Billing", "").await;
    let other = make_app(&s, &owner, "Other", "").await;
    let mine = make_key(&s, &owner, billing, 3).await;
    let _elsewhere = make_key(&s, &owner, other, 3).await;
    let keys: Value = post_fn(&s, Some(&owner), "/fn/keys/list", &[])
        .await
        .json()
        .await
        .unwrap();
    let id_of = |secret: &str| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| secret.ends_with(k["last4"].as_str().unwrap()))
            .unwrap()["key_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (this, that) = (id_of(&mine), id_of(&_elsewhere));
    let html = overview::page(&s, &owner, &format!("/apps/{billing}")).await;
    assert!(html.contains("id=\"app-keys-title\""), "{html}");
    assert!(html.contains(&format!("href=\"/keys/{this}\"")), "{html}");
    assert!(!html.contains(&that), "another app's key: {html}");
    assert!(
        html.contains(&format!("href=\"/keys?app={billing}\"")),
        "{html}"
    );
}
