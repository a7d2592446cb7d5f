//! Input and output at the edges, against the binary: no input gets a 5xx; user text is
//! escaped wherever a page writes it; names refuse invisible and bidirectional
//! characters; passwords count characters; the session cookie is `__Host-` with https
//! and two of them mean signed out; unreadable settings close the panel; REST finds a
//! key anywhere in the URL, refuses two Authorization headers and reads the scheme
//! case-insensitively.

use super::access::{make_app, make_key, make_role, pairs, post_fn, routes};
use super::api::{call, error_code};
use super::*;
use serde_json::json;

#[tokio::test]
async fn no_server_function_answers_5xx_to_a_malformed_body() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let fns: Vec<String> = routes(&s)
        .into_iter()
        .filter_map(|l| l.strip_prefix("fn POST ").map(str::to_owned))
        .collect();
    assert!(fns.len() > 30, "{fns:?}");
    let nested = format!("{}=1", "a[b]".repeat(400));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/x-www-form-urlencoded", Vec::new()),
        (
            "application/json",
            br#"{"user_id":[1,{"x":2}],"name":null}"#.to_vec(),
        ),
        (
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--XyZ--\r\n"
                .to_vec(),
        ),
        ("application/x-www-form-urlencoded", nested.into_bytes()),
        (
            "application/x-www-form-urlencoded",
            vec![b'n', b'a', b'm', b'e', b'=', 0xff, 0xfe, 0x80],
        ),
        (
            "application/x-www-form-urlencoded",
            b"user_id=1&user_id=2&key_id=a&key_id=b&name=x&name=y&id=1&id=2&app_id=1&app_id=2"
                .to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"user_id=abc&app_id=zz&role_id=q&id=z&grace=x&enabled=maybe&session_idle_minutes=-1"
                .to_vec(),
        ),
        ("text/plain", b"\x00\x01\x02".to_vec()),
    ];
    let mut bad = Vec::new();
    for signed_in in [false, true] {
        for path in &fns {
            // Signing out would end the walk's own session.
            if signed_in && path == "/fn/auth/logout" {
                continue;
            }
            for (ct, body) in &bodies {
                let mut req = client()
                    .post(s.url(path))
                    .header("origin", &s.base)
                    .header("content-type", *ct)
                    .body(body.clone());
                if signed_in {
                    req = req.header("cookie", &owner);
                }
                let st = req.send().await.unwrap().status().as_u16();
                if st >= 500 {
                    bad.push(format!(
                        "{st} {path} signed_in={signed_in} {ct} {:?}",
                        String::from_utf8_lossy(&body[..body.len().min(40)])
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}\n{}", bad.join("\n"), s.log());
}

#[tokio::test]
async fn stored_text_is_escaped_on_every_page_that_shows_it() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let mark = "</textarea><script>alert(1)</script><b id=kwx>x</b>";
    // An app, a key, a role and a message carrying markup in every field they have.
    let app = make_app(&s, &owner, &format!("App {mark}"), "").await;
    let role = make_role(
        &s,
        &owner,
        "R <script>alert(1)</script><b id=kwx>",
        &["api.key.view"],
    )
    .await;
    let key = make_key(&s, &owner, app, 3).await;
    let key_id = {
        let (_, _, v) = call(&s, "GET", "/api/v1/whoami", Some(&key), None, &[]).await;
        v["key_id"].as_str().unwrap().to_owned()
    };
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/keys/update",
        &pairs(&[
            ("key_id", &key_id),
            ("name", &format!("Key {mark}")),
            ("role_id", &role.to_string()),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (st, _, v) = call(
        &s,
        "POST",
        "/api/v1/messages",
        Some(&key),
        Some(json!({
            "app_id": app, "channel": "email", "recipients": ["a@example.com"],
            "subject": format!("Subject {mark}"), "body": format!("{mark}\nbody")
        })),
        &[],
    )
    .await;
    // The key's role (api.key.view) cannot send: make the message with the panel.
    let id = if st == 202 {
        v["id"].as_str().unwrap().to_owned()
    } else {
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/messages/create",
            &pairs(&[
                ("app_id", &app.to_string()),
                ("channel", "email"),
                ("recipients", "a@example.com"),
                ("subject", &format!("Subject {mark}")),
                ("body", &format!("{mark}\nbody")),
            ]),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let m: serde_json::Value = r.json().await.unwrap();
        m["id"].as_str().unwrap().to_owned()
    };
    for page in [
        "/",
        "/keys",
        "/apps",
        "/roles",
        "/messages",
        &format!("/messages/{id}"),
        "/approvals",
        "/users",
    ] {
        let html = client()
            .get(s.url(page))
            .header("cookie", &owner)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for raw in ["<script>alert(1)</script>", "<b id=kwx>", "<b id=\"kwx\">"] {
            assert!(!html.contains(raw), "{page} writes {raw} unescaped");
        }
    }
    // The message page really shows the body (escaped) in its edit form.
    let html = client()
        .get(s.url(&format!("/messages/{id}")))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;/textarea&gt;&lt;script&gt;"),
        "the body is on the page, escaped"
    );
}

#[tokio::test]
async fn names_refuse_invisible_bidirectional_and_separator_characters() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    for bad in [
        "pay\u{202E}fdp.exe",
        "zero\u{200B}width",
        "line\u{2028}sep",
        "a\u{2066}b\u{2069}",
        "bom\u{FEFF}x",
    ] {
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/apps/create",
            &pairs(&[("name", bad)]),
        )
        .await;
        assert_eq!(r.status(), 400, "app {bad:?}");
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/roles/create",
            &pairs(&[("name", bad)]),
        )
        .await;
        assert_eq!(r.status(), 400, "role {bad:?}");
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/users/create",
            &pairs(&[
                ("email", "x@example.com"),
                ("display_name", bad),
                ("password", PASSWORD),
                ("role_id", "5"),
            ]),
        )
        .await;
        assert_eq!(r.status(), 400, "display name {bad:?}");
    }
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, 2).await;
    let (st, h, v) = call(
        &s,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some(json!({"name": "evil\u{202E}name", "app_id": app, "environment": "live"})),
        &[],
    )
    .await;
    assert_eq!(
        (st, error_code(st, &h, &v).as_str()),
        (400, "validation_failed")
    );
    // Ordinary names in any script still work.
    assert_eq!(
        post_fn(
            &s,
            Some(&owner),
            "/fn/apps/create",
            &pairs(&[("name", "決済 Café")])
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn passwords_count_characters_not_bytes() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let cjk: String = "鍵盤".repeat(32); // 64 characters, 192 bytes
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/create",
        &pairs(&[
            ("email", "kana@example.com"),
            ("display_name", "Kana"),
            ("password", &cjk),
            ("role_id", "5"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        s.login_form("kana@example.com", &cjk, &[]).await.headers()["location"],
        "/"
    );
    let too_long: String = "鍵".repeat(129);
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/users/create",
        &pairs(&[
            ("email", "long@example.com"),
            ("display_name", "L"),
            ("password", &too_long),
            ("role_id", "5"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_session_cookie_is_host_prefixed_with_https_and_two_mean_signed_out() {
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
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-keyward_session="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    let lower = session.to_ascii_lowercase();
    assert!(
        lower.contains("secure") && lower.contains("path=/") && !lower.contains("domain="),
        "{session}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-keyward_device=")),
        "{cookies:?}"
    );
    let pair = session.split(';').next().unwrap().to_owned();
    let overview = |cookie: String| {
        let s = &s;
        async move {
            client()
                .get(s.url("/"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(overview(pair.clone()).await, 200);
    // A second (planted) session cookie beside the real one: signed out.
    let planted = format!("__Host-keyward_session=planted; {pair}");
    assert_eq!(overview(planted).await, 303);
    assert_eq!(
        overview(format!("{pair}; __Host-keyward_session=x")).await,
        303
    );
}

#[tokio::test]
async fn unreadable_security_settings_close_the_panel() {
    on_sqlite_and_postgres(|env| async move {
        let s = start_with(&env, &[]).await;
        let owner = s.sign_in().await;
        let pool = s.db().await;
        sqlx::query(
            "insert into settings (name, value, created_at, updated_at) values ('security', '{\"panel_networks\": 7', 0, 0) \
             on conflict (name) do update set value = excluded.value",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (method, path) in [("GET", "/login"), ("GET", "/"), ("POST", "/fn/auth/login")] {
            let r = client()
                .request(method.parse().unwrap(), s.url(path))
                .header("cookie", &owner)
                .header("origin", &s.base)
                .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 503, "{method} {path}");
            assert!(r.text().await.unwrap().contains("security settings"));
        }
        // The REST API does not depend on them and keeps working.
        let (st, _, _) = call(&s, "GET", "/api/v1/whoami", None, None, &[]).await;
        assert_eq!(st, 401);
    })
    .await;
}

#[tokio::test]
async fn rest_finds_a_key_anywhere_in_the_url_and_reads_the_authorization_header_strictly() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let key = make_key(&s, &owner, app, 3).await;
    let encoded = format!("%6B{}", &key[1..]);
    for (method, url) in [
        ("GET", format!("/api/v1/whoami?x={encoded}")),
        ("GET", format!("/api/v1/whoami?x=Bearer+{key}")),
        ("GET", "/api/v1/whoami?%61pi_key=abc".to_owned()),
        ("PATCH", format!("/api/v1/keys/{encoded}")),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let (st, h, v) = call(&s, method, &url, Some(&key), body, &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "key_in_query"),
            "{url}"
        );
    }
    // On every /api/ URL, whether a route, another method or nothing answers it.
    for (method, url) in [
        ("GET", format!("/api/v1/nonexistent?x={key}")),
        ("GET", "/api/v2/whoami?api_key=abc".to_owned()),
        ("GET", "/api/v1/whoami/%6bw_LIVE_x".to_owned()),
        ("GET", format!("/api/v1/keys/{key}")),
        ("GET", format!("/api/v1/openapi.json?x={key}")),
    ] {
        let (st, h, v) = call(&s, method, &url, None, None, &[]).await;
        assert_eq!(
            (st, error_code(st, &h, &v).as_str()),
            (400, "key_in_query"),
            "{method} {url}"
        );
    }
    // Two Authorization headers: 400, whichever is valid.
    let r = client()
        .get(s.url("/api/v1/whoami"))
        .header("authorization", format!("Bearer {key}"))
        .header("authorization", "Bearer kw_live_x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The scheme is case-insensitive (RFC 9110).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = client()
            .get(s.url("/api/v1/whoami"))
            .header("authorization", format!("{scheme} {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn webhooks_refuse_link_local_addresses_in_their_ipv6_spellings() {
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    for url in [
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:a9fe:a9fe::1]/x",
        "http://[::169.254.169.254]/x",
        "http://[::ffff:169.254.169.254]/x",
    ] {
        let r = post_fn(
            &s,
            Some(&owner),
            "/fn/apps/webhooks/register",
            &pairs(&[("app_id", &app.to_string()), ("url", url)]),
        )
        .await;
        assert_eq!(r.status(), 400, "{url}");
    }
}

/// A loopback HTTP listener that answers 200 to every request and records each one's
/// request line.
async fn recorder() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_owned());
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn webhooks_never_go_through_the_environment_s_proxy() {
    let (proxy, via_proxy) = recorder().await;
    let (hook, received) = recorder().await;
    let s = Server::start(&[
        ("HTTP_PROXY", &proxy),
        ("http_proxy", &proxy),
        ("ALL_PROXY", &proxy),
        ("all_proxy", &proxy),
    ])
    .await;
    let owner = s.sign_in().await;
    let app = make_app(&s, &owner, "Billing", "").await;
    let url = format!("{hook}/hook");
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/apps/webhooks/register",
        &pairs(&[("app_id", &app.to_string()), ("url", &url)]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/settings/messages/save",
        &pairs(&[
            ("approval_required", "not_required"),
            ("approvals_needed", "1"),
            ("pending_expiry_hours", "72"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post_fn(
        &s,
        Some(&owner),
        "/fn/messages/create",
        &pairs(&[
            ("app_id", &app.to_string()),
            ("channel", "webhook"),
            ("webhook_url", &url),
            ("subject", "Ping"),
            ("body", "hello"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the webhook was not delivered:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(received.lock().unwrap()[0], "POST /hook HTTP/1.1");
    assert!(
        via_proxy.lock().unwrap().is_empty(),
        "{:?}",
        via_proxy.lock().unwrap()
    );
}

/// A page has one address: a trailing slash is redirected away (the query kept), never
/// drawn a second time under a 404, and never towards another site.
#[tokio::test]
async fn a_trailing_slash_redirects_to_the_page() {
    let s = Server::start(&[]).await;
    let cookie = s.sign_in().await;
    for (path, to) in [
        ("/keys/", "/keys"),
        ("/keys//", "/keys"),
        ("/apps/7/?tab=x&y=%2F", "/apps/7?tab=x&y=%2F"),
        ("/login/", "/login"),
    ] {
        let r = client()
            .get(s.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308, "{path}");
        assert_eq!(r.headers()["location"], to, "{path}");
    }
    // Never to a `//host` address.
    let r = client()
        .get(s.url("//evil.example/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let to = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(!to.starts_with("//"), "{} -> {to}", r.status());
    // The page itself is still the page.
    let r = client()
        .get(s.url("/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
