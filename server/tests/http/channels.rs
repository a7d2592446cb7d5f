//! Channel keys through both doors: created under their policy in the panel, refused
//! with `channel_not_allowed` outside their channel on the REST API, revealed only
//! after the password when it is stale.

use super::access::{make_app, make_user, pairs, post_fn};
use super::api::{call, error_code};
use super::panel_security;
use super::*;
use serde_json::{json, Value};

async fn create(
    s: &Server,
    cookie: &str,
    channel: &str,
    app: i64,
    events: &[&str],
) -> reqwest::Response {
    let app = app.to_string();
    let mut form = pairs(&[
        ("channel", channel),
        ("name", &format!("{channel} key")),
        ("app_id", &app),
        ("environment", "live"),
        ("expiry", "90"),
    ]);
    form.extend(
        events
            .iter()
            .map(|e| ("events[]".to_owned(), (*e).to_owned())),
    );
    post_fn(s, Some(cookie), "/fn/channels/create", &form).await
}

#[tokio::test]
async fn a_channel_key_sends_only_its_channel_and_reads_only_what_it_sent() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let (_, dev) = make_user(&s, &owner, "dev@example.com", 3).await;
    let app = make_app(&s, &owner, "Billing", "").await;
    // A Developer may not create WhatsApp keys (channel.key.manage only).
    let r = create(&s, &dev, "whatsapp", app, &[]).await;
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
    // An email key that may send but not read status.
    let r = create(&s, &dev, "email", app, &["send"]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("no-store"));
    let v: Value = r.json().await.unwrap();
    let key = v["secret"].as_str().unwrap().to_owned();
    let refused = |st: u16, h: &reqwest::header::HeaderMap, v: &Value| {
        (st, error_code(st, h, v)) == (403, "channel_not_allowed".to_owned())
    };
    for (method, path, body) in [
        ("GET", "/api/v1/whoami", None),
        ("GET", "/api/v1/keys", None),
        (
            "POST",
            "/api/v1/keys",
            Some(json!({"name":"x","app_id":app,"environment":"live"})),
        ),
        ("POST", "/api/v1/sdk/events", Some(json!({"name":"x"}))),
        (
            "POST",
            "/api/v1/messages",
            Some(
                json!({"app_id":app,"channel":"webhook","webhook_url":"https://x.example","subject":"s","body":"b"}),
            ),
        ),
    ] {
        let (st, h, v) = call(&s, method, path, Some(&key), body, &[]).await;
        assert!(refused(st, &h, &v), "{method} {path}: {st} {v}");
    }
    // Its own channel, but another app: refused.
    let other_app = make_app(&s, &owner, "Other", "").await;
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(json!({"app_id":other_app,"channel":"email","recipients":["a@example.com"],"subject":"Hi","body":"Hello"})),
        &[],
    )
    .await;
    assert!(refused(st, &h, &v), "{st} {v}");
    // Its own channel: accepted.
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(json!({"app_id":app,"channel":"email","recipients":["a@example.com"],"subject":"Hi","body":"Hello"})),
        &[],
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    // Reading it needs `status`, which this key lacks.
    let (st, h, v) = call(
        &s,
        "GET",
        &format!("/api/v1/messages/{id}"),
        Some(&key),
        None,
        &[],
    )
    .await;
    assert!(refused(st, &h, &v), "{st} {v}");

    // A key that may read status reads what it sent, and nothing else (same answer for
    // a message that does not exist).
    let r = create(&s, &dev, "email", app, &["send", "status"]).await;
    let v: Value = r.json().await.unwrap();
    let reader = v["secret"].as_str().unwrap().to_owned();
    let (_, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&reader),
        Some(json!({"app_id":app,"channel":"email","recipients":["a@example.com"],"subject":"Hi","body":"Hello"})),
        &[],
    )
    .await;
    let own = v["id"].as_str().unwrap().to_owned();
    let (st, _, v) = call(
        &s,
        "GET",
        &format!("/api/v1/messages/{own}"),
        Some(&reader),
        None,
        &[],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    for other in [id.as_str(), "msg_doesnotexist00000000"] {
        let (st, h, v) = call(
            &s,
            "GET",
            &format!("/api/v1/messages/{other}"),
            Some(&reader),
            None,
            &[],
        )
        .await;
        assert!(refused(st, &h, &v), "{other}: {st} {v}");
    }
}

#[tokio::test]
async fn a_revealable_key_is_shown_again_only_after_a_fresh_password() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let r = create(&s, &owner, "rcs", app, &[]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let (key_id, secret) = (
        v["key_id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    );
    // Exactly one RCS key for the deployment, never regenerated.
    assert_eq!(create(&s, &owner, "rcs", app, &[]).await.status(), 409);
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/channels/regenerate",
        &pairs(&[("key_id", &key_id)]),
    )
    .await;
    assert_eq!(r.status(), 403);
    // The password was checked minutes ago: revealed without it.
    let reveal = |password: &'static str| {
        let (s, owner, key_id) = (&s, owner.clone(), key_id.clone());
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/channels/reveal",
                &pairs(&[("key_id", &key_id), ("password", password)]),
            )
            .await
        }
    };
    let r = reveal("").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("no-store"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["secret"], secret.as_str());
    // Stale: refused without the password, and with a wrong one; shown with it.
    panel_security::age_sudo(&s).await;
    assert_eq!(reveal("").await.status(), 400, "the password is asked for");
    assert_ne!(reveal("not-the-password").await.status(), 200);
    let r = reveal(PASSWORD).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Never in the page's HTML, nor in its hydration data.
    let page = client()
        .get(s.url("/channels"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&key_id) && !page.contains(&secret));
    // Both reveals audited.
    let db = s.db().await;
    let (n,): (i64,) =
        sqlx::query_as("select count(*) from audit_events where action = 'channel_key.revealed'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_regenerated_key_keeps_working_for_the_grace_chosen_and_is_replaced_once() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        let app = make_app(&s, &owner, "Billing", "").await;
        let r = create(&s, &owner, "email", app, &["send"]).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        let (old, old_secret) = (
            v["key_id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        );
        let regen = |key_id: String, grace: &'static str| {
            let (s, owner) = (&s, owner.clone());
            async move {
                post_fn(
                    s,
                    Some(&owner),
                    "/fn/channels/regenerate",
                    &pairs(&[("key_id", &key_id), ("grace", grace)]),
                )
                .await
            }
        };
        // Authenticated (a channel key is then refused outside its channel), or not.
        let refusal = |secret: String| {
            let s = &s;
            async move {
                let (status, h, v) = call(s, "GET", "/api/v1/whoami", Some(&secret), None, &[]).await;
                error_code(status, &h, &v)
            }
        };
        assert_eq!(refusal(old_secret.clone()).await, "channel_not_allowed");

        // A grace period the panel does not offer: refused, nothing made.
        assert_eq!(regen(old.clone(), "5").await.status(), 400);
        let r = regen(old.clone(), "3600").await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["old_works_for"], 3600);
        let (new, new_secret) = (
            v["key_id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        );
        assert_ne!(new, old);
        // The old key still works, for at most the hour chosen; both are authenticated.
        let (expires_at, replaced_by, revoked_at): (Option<i64>, Option<String>, Option<i64>) =
            sqlx::query_as(
                "select expires_at, replaced_by, revoked_at from api_keys where key_id = $1",
            )
            .bind(&old)
            .fetch_one(&s.db().await)
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            expires_at.is_some_and(|t| t > now && t <= now + 3600),
            "{expires_at:?}"
        );
        assert_eq!(replaced_by.as_deref(), Some(new.as_str()));
        assert_eq!(revoked_at, None);
        // The audit log and the app's `key.rolled` event name when the old key ends.
        let (details,): (String,) = sqlx::query_as(
            "select details from audit_events where action = 'channel_key.regenerated' and target = $1",
        )
        .bind(&new)
        .fetch_one(&s.db().await)
        .await
        .unwrap();
        let details: Value = serde_json::from_str(&details).unwrap();
        assert_eq!(details["old_key_works_until"], json!(expires_at));
        assert_eq!(refusal(old_secret.clone()).await, "channel_not_allowed");
        assert_eq!(refusal(new_secret.clone()).await, "channel_not_allowed");

        // The old key is replaced once: regenerating it again is refused, and nothing is
        // made.
        assert_eq!(regen(old.clone(), "0").await.status(), 409);
        // Without grace, the key replaced ends at once (the audit row says when). Sent
        // as a plain form from the page with its row open, the secret's page goes back
        // to the new key's row, not to the replaced key's open row.
        let r = client()
            .post(s.url("/fn/channels/regenerate"))
            .header("origin", &s.base)
            .header("accept", "text/html")
            .header("referer", s.url(&format!("/channels?manage={new}")))
            .header("cookie", &owner)
            .form(&pairs(&[("key_id", &new), ("grace", "0")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("The key it replaces no longer works."), "{html}");
        let (third, revoked_at): (String, i64) = sqlx::query_as(
            "select replaced_by, revoked_at from api_keys where key_id = $1",
        )
        .bind(&new)
        .fetch_one(&s.db().await)
        .await
        .unwrap();
        assert!(
            html.contains(&format!(r#"href="/channels#row-{third}""#)),
            "{html}"
        );
        let (details,): (String,) = sqlx::query_as(
            "select details from audit_events where action = 'channel_key.regenerated' and target = $1",
        )
        .bind(&third)
        .fetch_one(&s.db().await)
        .await
        .unwrap();
        let details: Value = serde_json::from_str(&details).unwrap();
        assert_eq!(details["old_key_works_until"], json!(revoked_at));
        assert_eq!(details["grace_seconds"], 0);
        assert_eq!(refusal(new_secret).await, "key_revoked");
        assert_eq!(refusal(old_secret).await, "channel_not_allowed");
        let (made,): (i64,) = sqlx::query_as("select count(*) from api_keys where kind = 'channel'")
            .fetch_one(&s.db().await)
            .await
            .unwrap();
        assert_eq!(made, 3);
    })
    .await;
}

#[tokio::test]
async fn a_closed_channel_key_row_holds_no_form_and_its_link_opens_that_row() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = create(&s, &owner, "email", app, &["send"]).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        ids.push(v["key_id"].as_str().unwrap().to_owned());
    }
    let email = |path: String| {
        let (s, owner) = (&s, &owner);
        async move {
            let html = overview::page(s, owner, &path).await;
            let from = html.find("id=\"channel-email\"").unwrap();
            let to = html[from..].find("</section>").unwrap();
            html[from..from + to].to_owned()
        }
    };
    let closed = email("/channels".into()).await;
    let rows = &closed[closed.find("<tbody").unwrap()..];
    for field in ["<form", "<input", "<select"] {
        assert!(!rows.contains(field), "{field} in a closed row: {rows}");
    }
    let (a, b) = (&ids[0], &ids[1]);
    assert!(
        rows.contains(&format!("href=\"/channels?manage={a}#row-{a}\"")),
        "{rows}"
    );
    let open = email(format!("/channels?manage={a}")).await;
    assert!(open.contains(&format!("id=\"revoke-{a}\"")), "{open}");
    assert!(open.contains(&format!("id=\"regenerate-{a}\"")), "{open}");
    assert!(!open.contains(&format!("id=\"revoke-{b}\"")), "{open}");
}

#[tokio::test]
async fn a_refused_row_post_from_the_plain_channels_page_comes_back_with_its_row_open() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let r = create(&s, &owner, "email", app, &["send"]).await;
    let v: Value = r.json().await.unwrap();
    let key_id = v["key_id"].as_str().unwrap().to_owned();
    // Revoked without the box ticked, from /channels without `manage`.
    let r = client()
        .post(s.url("/fn/channels/revoke"))
        .header("origin", &s.base)
        .header("accept", "text/html")
        .header("referer", s.url("/channels"))
        .header("cookie", &owner)
        .form(&pairs(&[
            ("key_id", &key_id),
            ("reason", "typed before the refusal"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("typed before the refusal"), "{html}");
    assert!(html.contains(&format!("manage={key_id}")), "{html}");
    assert!(
        html.contains(&format!(
            r#"id="revoke-{key_id}" aria-labelledby="revoke-{key_id}-title" class="dialog" open"#
        )),
        "{html}"
    );
}

#[tokio::test]
async fn channels_show_a_few_keys_each_and_link_to_one_channel_searched_and_paged() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    // 12 email keys (10 active at most: two revoked to make room).
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = create(&s, &owner, "email", app, &["send"]).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let id = v["key_id"].as_str().unwrap().to_owned();
        if i < 2 {
            let r = post_fn(
                &s,
                Some(&owner),
                "/fn/channels/revoke",
                &pairs(&[("key_id", &id), ("confirm", "yes")]),
            )
            .await;
            assert_eq!(r.status(), 200);
        }
        ids.push(id);
    }
    // Each made in the owner's name, and each told to them, as a REST key is.
    let told = mails_to(
        &s,
        "owner@example.com",
        "A new API key was created in your name",
    );
    for id in &ids {
        assert!(
            told.iter().any(|m| m.contains(id.as_str())),
            "{id} not mailed"
        );
    }
    let rows = |html: &str| {
        ids.iter()
            .filter(|id| html.contains(&format!("id=\"row-{id}\"")))
            .count()
    };
    // Every channel: the newest ten email keys, and a link to the rest.
    let html = overview::page(&s, &owner, "/channels").await;
    assert_eq!(rows(&html), 10, "{html}");
    assert!(
        !html.contains(&format!("id=\"row-{}\"", ids[0])),
        "the oldest is a link away"
    );
    assert!(
        html.contains(r#"<a href="/channels?channel=email">All email keys"#),
        "{html}"
    );
    assert!(html.contains("id=\"channel-sms\""), "{html}");
    // The email channel alone: every key, rows that open on this listing, the others'
    // sections gone.
    let html = overview::page(&s, &owner, "/channels?channel=email").await;
    assert_eq!(rows(&html), 12, "{html}");
    assert!(!html.contains("id=\"channel-sms\""), "{html}");
    let a = &ids[5];
    assert!(
        html.contains(&format!(
            "href=\"/channels?channel=email&amp;manage={a}#row-{a}\""
        )),
        "{html}"
    );
    assert!(!html.contains("Next page"), "{html}");
    // A search by key ID, kept by the row links; one that finds nothing says so.
    let html = overview::page(&s, &owner, &format!("/channels?channel=email&q={a}")).await;
    assert_eq!(rows(&html), 1, "{html}");
    assert!(
        html.contains(&format!(
            "href=\"/channels?channel=email&amp;q={a}&amp;manage={a}#row-{a}\""
        )),
        "{html}"
    );
    let html = overview::page(&s, &owner, "/channels?q=nothing+like+it").await;
    assert_eq!(rows(&html), 0);
    assert!(html.contains("No keys match the search."), "{html}");
    // A hand-edited address gets a clear refusal.
    for (path, says) in [
        (
            "/channels?channel=fax",
            "Choose email, sms, rcs or whatsapp.",
        ),
        (
            "/channels?after=key_aaaaaaaaaaaaaaaa",
            "Pages continue within one channel",
        ),
    ] {
        let r = client()
            .get(s.url(path))
            .header("cookie", &owner)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{path}: {html}");
    }
}
