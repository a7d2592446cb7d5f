use super::*;

#[tokio::test]
async fn sign_in_gives_a_fresh_session_and_the_overview() {
    let s = Server::start(&[]).await;
    // Signed out: the overview sends to /login.
    let r = client().get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    // The login page sets no cookie: anonymous visitors have no session row.
    let r = client().get(s.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r).is_none());

    // Session fixation: a cookie planted before sign-in is not the one after.
    let planted = "keyward_session=AAAAAAAAAAAAAAAAAAAAAA";
    let r = s
        .login_form("owner@example.com", PASSWORD, &[("cookie", planted)])
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/");
    let raw = set_cookie(&r).unwrap();
    let cookie = session_cookie(&r).unwrap();
    assert_ne!(cookie, planted);
    let attrs = raw.to_ascii_lowercase();
    assert!(attrs.contains("httponly"), "{raw}");
    assert!(attrs.contains("samesite=lax"), "{raw}");
    assert!(attrs.contains("path=/"), "{raw}");
    assert!(
        attrs.contains("max-age="),
        "idle timeout on the cookie: {raw}"
    );
    assert!(
        !attrs.contains("secure"),
        "plain-http development must not set Secure: {raw}"
    );

    let r = client()
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("Welcome, Olive"), "{html}");
    assert!(html.contains("Sign out"));
    let r = client()
        .get(s.url("/"))
        .header("cookie", planted)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Server function: who am I.
    let r = client()
        .post(s.url("/fn/auth/me"))
        .header("cookie", &cookie)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["email"], "owner@example.com");
    let r = client()
        .post(s.url("/fn/auth/me"))
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The database holds a hash of the session ID, never the ID.
    let pool = s.db().await;
    let (hash,): (String,) = sqlx::query_as("select id_hash from sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    let id = cookie.split('=').nth(1).unwrap();
    assert_ne!(hash, id);
    assert!(!s.log().contains(id), "the session ID reached the log");
}

async fn set_status(s: &Server, email: &str, status: &str) {
    let pool = s.db().await;
    sqlx::query("update users set status = $1 where email = $2")
        .bind(status)
        .bind(email)
        .execute(&pool)
        .await
        .unwrap();
}

async fn create_user(s: &Server, email: &str) {
    let mut cmd = command(&s.dir, &s.db_url);
    let child = cmd
        .args(["admin", "create", "--email", email])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    feed(child, PASSWORD);
}

#[tokio::test]
async fn the_three_failures_look_and_time_the_same() {
    let s = Server::start(&[]).await;
    create_user(&s, "disabled@example.com").await;
    set_status(&s, "disabled@example.com", "disabled").await;

    // JavaScript path: status and body are identical.
    let attempt = |email: &'static str, pw: &'static str| {
        let s = &s;
        async move {
            let t = Instant::now();
            let r = client()
                .post(s.url("/fn/auth/login"))
                .header("origin", &s.base)
                .form(&[("email", email), ("password", pw)])
                .send()
                .await
                .unwrap();
            let el = t.elapsed();
            (
                r.status().as_u16(),
                set_cookie(&r).is_some(),
                r.text().await.unwrap(),
                el,
            )
        }
    };
    let cases = [
        ("nobody@example.com", PASSWORD),                 // unknown user
        ("owner@example.com", "wrong password entirely"), // wrong password
        ("disabled@example.com", PASSWORD),               // disabled user, right password
    ];
    let mut bodies = Vec::new();
    let mut times: Vec<Vec<Duration>> = vec![vec![]; cases.len()];
    for round in 0..3 {
        for (i, (email, pw)) in cases.iter().enumerate() {
            let (status, cookie, body, el) = attempt(email, pw).await;
            assert_eq!(status, 400);
            assert!(!cookie, "a failed sign-in set a session cookie");
            if round == 0 {
                bodies.push(body);
            }
            times[i].push(el);
        }
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    assert!(
        bodies[0].contains("Incorrect email or password."),
        "{}",
        bodies[0]
    );
    // Timing: every case runs argon2 once, so their medians are within a small factor
    // (a missing hash for the unknown user would make it many times faster).
    let med: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[1].as_secs_f64()
        })
        .collect();
    let (lo, hi) = med
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    assert!(hi / lo < 3.0, "median times differ too much: {med:?}");

    // Without JavaScript: the same page back for all three, the email kept.
    for (email, pw) in cases {
        let r = s.login_form(email, pw, &[]).await;
        Server::refused_sign_in(r, email, pw).await;
    }
    // A password over 128 bytes is refused the same way, before hashing.
    let long = "p".repeat(129);
    let r = s.login_form("owner@example.com", &long, &[]).await;
    Server::refused_sign_in(r, "owner@example.com", &long).await;

    // The real reasons are in the audit log only.
    let pool = s.db().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select outcome, details from audit_events where action = 'auth.sign_in' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let reasons: Vec<&str> = rows.iter().map(|(_, d)| d.as_str()).collect();
    assert!(reasons.iter().any(|d| d.contains("unknown_user")));
    assert!(reasons.iter().any(|d| d.contains("wrong_password")));
    assert!(reasons.iter().any(|d| d.contains("user_not_active")));
    assert!(rows.iter().all(|(o, _)| o == "failure"));
    // The disabled user can sign in again once enabled (no permanent lock-out).
    set_status(&s, "disabled@example.com", "active").await;
    let r = s.login_form("disabled@example.com", PASSWORD, &[]).await;
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test]
async fn sign_out_ends_the_session_and_is_audited() {
    let s = Server::start(&[]).await;
    let cookie = s.sign_in().await;
    let r = client()
        .post(s.url("/fn/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", &s.base)
        .header("accept", "text/html")
        .header("referer", s.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/login");
    // The old cookie no longer works, even if a client keeps it.
    let r = client()
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let pool = s.db().await;
    let (n,): (i64,) = sqlx::query_as("select count(*) from sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let actions: Vec<(String, String)> =
        sqlx::query_as("select action, outcome from audit_events order by seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let actions: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, o)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("user.created", "success"),
            ("auth.sign_in", "success"),
            ("auth.sign_out", "success")
        ]
    );
    // Sign-out is POST only.
    let r = client()
        .get(s.url("/fn/auth/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);
}

#[tokio::test]
async fn cookie_is_secure_when_the_public_url_is_https() {
    let s = Server::start(&[("KEYWARD_PUBLIC_URL", "https://keys.example.test")]).await;
    let r = client()
        .post(s.url("/fn/auth/login"))
        .header("accept", "text/html")
        .header("origin", "https://keys.example.test")
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", s.log());
    let raw = set_cookie(&r).unwrap().to_ascii_lowercase();
    assert!(raw.contains("secure") && raw.contains("httponly"), "{raw}");
    assert!(r.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn audit_records_the_client_address_by_the_proxy_rules() {
    // Untrusted peer: a forged X-Forwarded-For is ignored.
    let s = Server::start(&[]).await;
    s.login_form(
        "owner@example.com",
        "wrong password entirely",
        &[("x-forwarded-for", "198.51.100.7")],
    )
    .await;
    let pool = s.db().await;
    let (ip,): (String,) =
        sqlx::query_as("select ip from audit_events where action = 'auth.sign_in'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ip, "127.0.0.1");

    // Trusted peer: the right-most untrusted hop.
    let s = Server::start(&[("KEYWARD_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    s.login_form(
        "owner@example.com",
        "wrong password entirely",
        &[("x-forwarded-for", "6.6.6.6, 198.51.100.7")],
    )
    .await;
    let pool = s.db().await;
    let (ip,): (String,) =
        sqlx::query_as("select ip from audit_events where action = 'auth.sign_in'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ip, "198.51.100.7");
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_only_to_this_site() {
    let s = Server::start(&[]).await;
    // A signed-out visit to a page (the approval mail's link) goes to sign-in with it.
    let r = client()
        .get(s.url("/messages/42?tab=approvals"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fmessages%2F42%3Ftab%3Dapprovals"
    );
    // The sign-in page carries it in its form.
    let html = client()
        .get(s.url("/login?next=%2Fmessages%2F42"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("name=\"next\" value=\"/messages/42\""),
        "{html}"
    );
    let login_with = |password: &'static str, next: &'static str| {
        client()
            .post(s.url("/fn/auth/login"))
            .header("accept", "text/html")
            .header("origin", &s.base)
            .header("referer", s.url("/login"))
            .form(&[
                ("email", "owner@example.com"),
                ("password", password),
                ("next", next),
            ])
            .send()
    };
    let login = |next: &'static str| login_with(PASSWORD, next);
    let r = login("/messages/42").await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/messages/42");
    // Anywhere else: the overview.
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/login",
        "/fn/auth/logout",
        "",
    ] {
        let r = login(next).await.unwrap();
        assert_eq!(r.status(), 302, "{next}");
        assert_eq!(r.headers()["location"], "/", "{next}");
    }
    // A wrong password keeps it for the next try.
    let r = login_with("not the password", "/keys").await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<input type="hidden" name="next" value="/keys">"#),
        "{html}"
    );
}

/// Someone signed in who comes back to a sign-in page (Back after signing in, an old
/// tab) goes on to the panel, to the page the link named if it is this site's.
#[tokio::test]
async fn a_signed_in_visitor_to_the_sign_in_pages_goes_on_to_the_panel() {
    let s = Server::start(&[]).await;
    let cookie = s.sign_in().await;
    for (path, to) in [
        ("/login", "/"),
        ("/login/verify", "/"),
        ("/login?next=%2Fkeys%3Fq%3Da", "/keys?q=a"),
        ("/login/verify?next=%2Fmessages%2F42", "/messages/42"),
        ("/login?next=%2F%2Fevil.example%2F", "/"),
        ("/login?next=https%3A%2F%2Fevil.example%2F", "/"),
    ] {
        let r = client()
            .get(s.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], to, "{path}");
    }
    // Signed out, the page is drawn.
    let r = client().get(s.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
