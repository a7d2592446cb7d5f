//! Settings > General and what it controls: the panel network gate, the email domain
//! list, sudo re-entry, throttling as the browser sees it, and /account.

use super::access::{default_settings_form, make_role, make_user, pairs, post_fn};
use super::*;

fn with(form: &[(String, String)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = form.to_vec();
    for (k, v) in changes {
        match f.iter_mut().find(|(fk, _)| fk == k) {
            Some(e) => e.1 = v.to_string(),
            None => f.push((k.to_string(), v.to_string())),
        }
    }
    f
}

async fn save_settings(s: &Server, cookie: &str, changes: &[(&str, &str)]) -> reqwest::Response {
    post_fn(
        s,
        Some(cookie),
        "/fn/settings/general/save",
        &with(&default_settings_form(), changes),
    )
    .await
}

async fn audit_actions(s: &Server) -> Vec<String> {
    let pool = s.db().await;
    let rows: Vec<(String,)> = sqlx::query_as("select action from audit_events order by seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.into_iter().map(|(a,)| a).collect()
}

#[tokio::test]
async fn panel_network_allow_list() {
    // Loopback is a trusted proxy here, so the test can act from any address with
    // X-Forwarded-For (as a real reverse proxy would).
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = s.sign_in().await;

    // A list that leaves out the admin's own address is refused, naming it.
    let r = save_settings(&s, &owner, &[("panel_networks", "10.0.0.0/8")]).await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("your own address (127.0.0.1)"), "{body}");
    // An invalid line is refused with its number.
    let r = save_settings(&s, &owner, &[("panel_networks", "127.0.0.0/8\nnot-a-net")]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Line 2 (not-a-net)"));

    let r = save_settings(
        &s,
        &owner,
        &[("panel_networks", "127.0.0.0/8\n2001:db8::/32")],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(audit_actions(&s)
        .await
        .contains(&"settings.changed".to_owned()));

    // From outside: the login page, the sign-in function and signed-in pages all get
    // the clear page, before any password is checked.
    for (method, path) in [("GET", "/login"), ("POST", "/fn/auth/login"), ("GET", "/")] {
        let req = match method {
            "GET" => client().get(s.url(path)),
            _ => client()
                .post(s.url(path))
                .form(&[("email", "owner@example.com"), ("password", PASSWORD)]),
        };
        let r = req
            .header("x-forwarded-for", "203.0.113.9")
            .header("cookie", &owner)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Sign-in is not allowed from your network (203.0.113.9)"),
            "{html}"
        );
    }
    // IPv6 inside the list, and an IPv4-mapped IPv6 address of an allowed v4 one.
    for inside in ["2001:db8::5", "::ffff:127.0.0.9"] {
        let r = client()
            .get(s.url("/login"))
            .header("x-forwarded-for", inside)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{inside}");
    }
    // Static files and probes stay reachable.
    let r = client()
        .get(s.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Nothing was attempted from outside: no audit row carries that address.
    let pool = s.db().await;
    let (n,): (i64,) = sqlx::query_as("select count(*) from audit_events where ip = '203.0.113.9'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn email_domain_allow_list() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    // A user at another domain, made before the list exists.
    let (_, _) = make_user(&s, &owner, "eve@elsewhere.org", 3).await;

    let r = save_settings(
        &s,
        &owner,
        &[(
            "allowed_domains",
            "Example.COM.\nbücher.example\nbad domain",
        )],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Line 3 (bad domain)"));
    let r = save_settings(
        &s,
        &owner,
        &[("allowed_domains", "Example.COM.\nbücher.example")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post_fn(&s, Some(&owner), "/fn/settings/general", &[]).await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["settings"]["allowed_domains"],
        serde_json::json!(["example.com", "xn--bcher-kva.example"])
    );

    // Creating users: exact domains only, a subdomain is not its parent.
    let create = |email: &'static str| {
        let s = &s;
        let owner = owner.clone();
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/users/create",
                &pairs(&[
                    ("email", email),
                    ("display_name", "X"),
                    ("password", PASSWORD),
                    ("role_id", "3"),
                ]),
            )
            .await
        }
    };
    assert_eq!(create("a@sub.example.com").await.status(), 400);
    assert_eq!(create("a@example.com.evil.org").await.status(), 400);
    let r = create("b@evil.org").await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("example.com, xn--bcher-kva.example"));
    assert_eq!(create("Ann@Example.com").await.status(), 200);
    assert_eq!(create("jo@BÜCHER.example").await.status(), 200);

    // The CLI follows the same list.
    let mut cmd = command(&s.dir, &s.db_url);
    let out = cmd
        .args(["admin", "create", "--email", "root@evil.org"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    out.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = out.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--email: Only addresses at these domains")
    );

    // Sign-in: the user outside the list gets the generic answer, the others get in.
    let r = s.login_form("eve@elsewhere.org", PASSWORD, &[]).await;
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/login?error=credentials"
    );
    let r = s.login_form("ann@example.com", PASSWORD, &[]).await;
    assert_eq!(r.headers()["location"], "/");
    let pool = s.db().await;
    let (reason,): (String,) = sqlx::query_as(
        "select details from audit_events where action = 'auth.sign_in' and outcome = 'failure' and target = 'eve@elsewhere.org'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(reason.contains("domain_not_allowed"), "{reason}");
}

/// Makes this session's last password check 11 minutes old.
async fn age_sudo(s: &Server) {
    let pool = s.db().await;
    let rows: Vec<(String, String)> = sqlx::query_as("select id_hash, data from sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    for (id, data) in rows {
        let mut v: serde_json::Value = serde_json::from_str(&data).unwrap();
        if let Some(at) = v.get("sudo_at").and_then(|a| a.as_i64()) {
            v["sudo_at"] = serde_json::json!(at - 11 * 60);
            sqlx::query("update sessions set data = $1 where id_hash = $2")
                .bind(v.to_string())
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn security_settings_ask_for_the_password_after_ten_minutes() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    // Fresh sign-in: no password needed.
    assert_eq!(
        save_settings(&s, &owner, &[("session_idle_minutes", "20")])
            .await
            .status(),
        200
    );
    age_sudo(&s).await;
    let r = post_fn(&s, Some(&owner), "/fn/settings/general", &[]).await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["needs_password"], true);
    let r = save_settings(&s, &owner, &[("session_idle_minutes", "25")]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Enter your password"));
    let r = save_settings(
        &s,
        &owner,
        &[
            ("session_idle_minutes", "25"),
            ("password", "wrong password here"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Incorrect password."));
    let r = save_settings(
        &s,
        &owner,
        &[("session_idle_minutes", "25"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 200);
    // Confirmed: fresh again for ten minutes.
    assert_eq!(
        save_settings(&s, &owner, &[("session_idle_minutes", "30")])
            .await
            .status(),
        200
    );
    let acts = audit_actions(&s).await;
    assert_eq!(acts.iter().filter(|a| *a == "settings.changed").count(), 3);
    assert!(acts.contains(&"auth.password_check".to_owned()));
    // Values out of range are refused with the field's rule.
    let r = save_settings(&s, &owner, &[("session_idle_minutes", "1")]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("between 5 and 1440"));
    // Without settings.manage: 403 whatever the password.
    let role = make_role(&s, &owner, "Helpers", &["user.manage"]).await;
    let (_, helper) = make_user(&s, &owner, "h@example.com", role).await;
    assert_eq!(
        save_settings(&s, &helper, &[("password", PASSWORD)])
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn throttled_sign_in_says_when_to_try_again() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    assert_eq!(
        save_settings(
            &s,
            &owner,
            &[
                ("throttle_account_attempts", "2"),
                ("throttle_max_delay_secs", "60")
            ]
        )
        .await
        .status(),
        200
    );
    let try_login = |pw: &'static str| {
        let s = &s;
        async move {
            client()
                .post(s.url("/fn/auth/login"))
                .form(&[("email", "owner@example.com"), ("password", pw)])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(try_login("wrong password!!").await.status(), 400);
    }
    // Under delay: even the right password waits, and the answer says how long.
    let r = try_login(PASSWORD).await;
    assert_eq!(r.status(), 429);
    let body = r.text().await.unwrap();
    assert!(body.contains("RateLimited"), "{body}");
    // An unknown account throttled the same way looks the same.
    for _ in 0..3 {
        client()
            .post(s.url("/fn/auth/login"))
            .form(&[("email", "nobody@example.com"), ("password", "x")])
            .send()
            .await
            .unwrap();
    }
    let r = client()
        .post(s.url("/fn/auth/login"))
        .form(&[("email", "nobody@example.com"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The delay ends on its own.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(try_login(PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn account_lists_and_ends_sessions_and_changes_the_password() {
    let s = Server::start(&[]).await;
    let first = s.sign_in().await;
    let r = s
        .login_form(
            "owner@example.com",
            PASSWORD,
            &[(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
            )],
        )
        .await;
    let second = session_cookie(&r).unwrap();
    let third = s.sign_in().await;

    let r = post_fn(&s, Some(&first), "/fn/account/sessions", &[]).await;
    let list: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|x| x["current"] == true).count(), 1);
    let ff = list
        .iter()
        .find(|x| x["browser"] == "Firefox on Linux")
        .expect("the Firefox session is listed");
    assert_eq!(ff["ip"], "127.0.0.1");

    // End the Firefox session from the first one.
    let id = ff["id"].as_str().unwrap().to_owned();
    let r = post_fn(
        &s,
        Some(&first),
        "/fn/account/end_session",
        &pairs(&[("id", &id)]),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        post_fn(&s, Some(&second), "/fn/auth/me", &[])
            .await
            .status(),
        401
    );
    // Someone else's session cannot be ended (it is not found among one's own).
    let (_, other) = make_user(&s, &first, "dev@example.com", 3).await;
    let r = post_fn(&s, Some(&other), "/fn/account/sessions", &[]).await;
    let theirs: Vec<serde_json::Value> = r.json().await.unwrap();
    let r = post_fn(
        &s,
        Some(&other),
        "/fn/account/end_session",
        &pairs(&[("id", "x")]),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = post_fn(
        &s,
        Some(&first),
        "/fn/account/end_session",
        &pairs(&[("id", theirs[0]["id"].as_str().unwrap())]),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        post_fn(&s, Some(&other), "/fn/auth/me", &[]).await.status(),
        200
    );

    // Password change: the current password is required; other sessions end; this one
    // continues under a new ID.
    let change = |cur: &'static str, new: &'static str, again: &'static str| {
        pairs(&[
            ("current_password", cur),
            ("new_password", new),
            ("confirm_password", again),
        ])
    };
    let r = post_fn(
        &s,
        Some(&first),
        "/fn/account/password",
        &change("wrong one", "a brand new password", "a brand new password"),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_fn(
        &s,
        Some(&first),
        "/fn/account/password",
        &change(PASSWORD, "a brand new password", "a different one!!"),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_fn(
        &s,
        Some(&first),
        "/fn/account/password",
        &change(PASSWORD, "short", "short"),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_fn(
        &s,
        Some(&first),
        "/fn/account/password",
        &change(PASSWORD, "a brand new password", "a brand new password"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let renewed = session_cookie(&r).expect("a new session ID after the change");
    assert_ne!(renewed, first);
    assert_eq!(
        post_fn(&s, Some(&renewed), "/fn/auth/me", &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        post_fn(&s, Some(&third), "/fn/auth/me", &[]).await.status(),
        401
    );
    assert_eq!(
        post_fn(&s, Some(&first), "/fn/auth/me", &[]).await.status(),
        401
    );
    // The old password no longer works; the new one does.
    let r = s.login_form("owner@example.com", PASSWORD, &[]).await;
    assert_eq!(r.headers()["location"], "/login?error=credentials");
    let r = s
        .login_form("owner@example.com", "a brand new password", &[])
        .await;
    assert_eq!(r.headers()["location"], "/");
    let acts = audit_actions(&s).await;
    assert!(acts.contains(&"session.ended".to_owned()));
    assert!(acts.contains(&"user.password_changed".to_owned()));
}
