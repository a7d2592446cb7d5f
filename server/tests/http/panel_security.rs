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
    Server::refused_sign_in(r, "eve@elsewhere.org", "").await;
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
pub async fn age_sudo(s: &Server) {
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
    // The pages' sudo form learns how long the check lasts, and asks again then.
    let left = |s: &Server, cookie: String| {
        let s = s.url("/fn/auth/sudo_status");
        async move {
            let r = client()
                .post(s)
                .header("cookie", cookie)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<i64>().await.unwrap()
        }
    };
    let secs = left(&s, owner.clone()).await;
    assert!((590..=601).contains(&secs), "{secs}");
    age_sudo(&s).await;
    assert_eq!(left(&s, owner.clone()).await, 0);
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
    // A few more: each counts, even when refused, so the delay (1, 2, 4 … seconds)
    // outlasts this test however slow the machine.
    for _ in 0..4 {
        let st = try_login("wrong password!!").await.status();
        assert!(st == 400 || st == 429, "{st}");
    }
    // Under delay: even the right password waits, and the answer says how long.
    let r = try_login(PASSWORD).await;
    assert_eq!(r.status(), 429);
    let body = r.text().await.unwrap();
    assert!(body.contains("RateLimited"), "{body}");
    // An unknown account throttled the same way looks the same. (Up to six tries: on
    // a loaded machine the 1 s first delay may pass between two of them.)
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = client()
            .post(s.url("/fn/auth/login"))
            .form(&[("email", "nobody@example.com"), ("password", "x")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.text().await.unwrap().contains("RateLimited"));
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // The delay ends on its own: after waiting as long as the answer says (the unknown
    // account's tries above count against this address too, so on a slow machine the
    // wait may have grown past the first second), the right password goes through.
    let mut waited = Vec::new();
    let mut last = 0;
    for _ in 0..8 {
        let r = try_login(PASSWORD).await;
        last = r.status().as_u16();
        if last != 429 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        let secs = v["RateLimited"]["retry_after_secs"].as_u64().unwrap();
        assert!(secs <= 60, "never past the configured maximum: {secs}");
        waited.push(secs);
        tokio::time::sleep(Duration::from_millis(secs * 1000 + 100)).await;
    }
    assert_eq!(last, 200, "waited {waited:?}");
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
    Server::refused_sign_in(r, "owner@example.com", "").await;
    let r = s
        .login_form("owner@example.com", "a brand new password", &[])
        .await;
    assert_eq!(r.headers()["location"], "/");
    let acts = audit_actions(&s).await;
    assert!(acts.contains(&"session.ended".to_owned()));
    assert!(acts.contains(&"user.password_changed".to_owned()));
}

/// The link in the newest invitation written to the server's development outbox.
pub fn invitation_link(s: &Server, to: &str) -> String {
    let dir = s.dir.path().join("outbox");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files.iter().rev() {
        let mail = std::fs::read_to_string(f).unwrap();
        if mail.contains(&format!("To: {to}"))
            && mail.contains("Subject: You are invited to Keyward")
        {
            let at = mail.find("/invite/").unwrap();
            let start = mail[..at].rfind("http").unwrap();
            let end = at
                + mail[at..]
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap();
            return mail[start..end].to_owned();
        }
    }
    panic!("no invitation to {to} in {}", dir.display());
}

#[tokio::test]
async fn invitations_work_once_and_follow_the_rules() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let invite = |email: &'static str, role: &'static str| {
        let s = &s;
        let owner = owner.clone();
        async move {
            post_fn(
                s,
                Some(&owner),
                "/fn/users/invite",
                &pairs(&[("email", email), ("display_name", ""), ("role_id", role)]),
            )
            .await
        }
    };
    assert_eq!(invite("Ivy@Example.com", "3").await.status(), 200);
    // An existing account cannot be invited; a bad address is refused.
    assert_eq!(invite("owner@example.com", "3").await.status(), 400);
    assert_eq!(
        invite("ivy@example.com, eve@evil.org", "3").await.status(),
        400
    );
    let first = invitation_link(&s, "ivy@example.com");
    assert!(first.starts_with(&s.base), "{first}");
    // Inviting again replaces the link: the first one no longer works.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(invite("ivy@example.com", "3").await.status(), 200);
    let link = invitation_link(&s, "ivy@example.com");
    assert_ne!(link, first);
    let token = link.rsplit('/').next().unwrap().to_owned();
    let old_token = first.rsplit('/').next().unwrap().to_owned();

    // Before acceptance the invitee cannot sign in (generic failure).
    let r = s.login_form("ivy@example.com", PASSWORD, &[]).await;
    Server::refused_sign_in(r, "ivy@example.com", "").await;

    let page = client()
        .get(s.url(&format!("/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("ivy@example.com"));
    let old = client()
        .get(s.url(&format!("/invite/{old_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 410);
    assert!(old.text().await.unwrap().contains("has expired"));

    let accept = |token: String, pw: &'static str| {
        let s = &s;
        async move {
            post_fn(
                s,
                None,
                "/fn/invite/accept",
                &pairs(&[
                    ("token", &token),
                    ("display_name", "Ivy"),
                    ("password", pw),
                    ("confirm_password", pw),
                ]),
            )
            .await
        }
    };
    let r = accept(token.clone(), "123456789012").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("commonly used"));
    // Accepted twice at the same instant: one wins.
    let (a, b) = tokio::join!(
        accept(token.clone(), PASSWORD),
        accept(token.clone(), PASSWORD)
    );
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    assert!(
        statuses.contains(&200) && statuses.contains(&400),
        "{statuses:?}"
    );
    let winner = if a.status() == 200 { a } else { b };
    let cookie = session_cookie(&winner).expect("signed in on acceptance");
    let me: serde_json::Value = post_fn(&s, Some(&cookie), "/fn/auth/me", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ivy@example.com");
    assert_eq!(me["role"], "Developer");
    let page = client()
        .get(s.url(&format!("/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("already used"));
    let acts = audit_actions(&s).await;
    assert!(acts.contains(&"invitation.sent".to_owned()));
    assert!(acts.contains(&"invitation.accepted".to_owned()));
    // And the password works for sign-in now.
    let r = s.login_form("ivy@example.com", PASSWORD, &[]).await;
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test]
async fn a_page_load_reads_the_session_and_the_idle_timeout_still_slides() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let pool = s.db().await;
    let written = || async {
        let (t,): (i64,) = sqlx::query_as("select max(updated_at) from sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        t
    };
    // A five-minute idle timeout: the session is written again at most every 5 s.
    let r = save_settings(&s, &owner, &[("session_idle_minutes", "5")]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let page = || client().get(s.url("/keys")).header("cookie", &owner).send();
    let before = written().await;
    for _ in 0..3 {
        let r = page().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(set_cookie(&r).is_none(), "a page load is a read");
    }
    assert_eq!(written().await, before);
    // Later, within the timeout: the page counts as activity and pushes it forward.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = page().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = set_cookie(&r).expect("the pushed expiry reaches the cookie");
    assert!(
        cookie.to_ascii_lowercase().contains("max-age=300"),
        "{cookie}"
    );
    assert!(written().await > before);
}

#[tokio::test]
async fn a_session_expires_by_the_idle_timeout_of_the_settings_whatever_wrote_it() {
    // Configured five minutes; the settings say an hour.
    let s = Server::start(&[("KEYWARD_SESSION_IDLE_MINUTES", "5")]).await;
    let owner = s.sign_in().await;
    let r = save_settings(&s, &owner, &[("session_idle_minutes", "60")]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A sign-in writes the session: it lasts the hour, cookie and row alike.
    let r = s.login_form("owner@example.com", PASSWORD, &[]).await;
    let cookie = set_cookie(&r).unwrap();
    assert!(
        cookie.to_ascii_lowercase().contains("max-age=3600"),
        "{cookie}"
    );
    let (expires, updated): (i64, i64) = sqlx::query_as(
        "select expires_at, updated_at from sessions order by updated_at desc, expires_at desc limit 1",
    )
    .fetch_one(&s.db().await)
    .await
    .unwrap();
    assert!(
        (3590..=3610).contains(&(expires - updated)),
        "{}",
        expires - updated
    );
}
