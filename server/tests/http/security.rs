use super::*;

#[tokio::test]
async fn cross_origin_posts_are_refused_at_every_door() {
    let s = Server::start(&[]).await;
    // Sign-in door.
    for headers in [
        [("origin", "https://evil.example")],
        [("sec-fetch-site", "cross-site")],
        [("origin", "null")],
    ] {
        let mut req = client()
            .post(s.url("/fn/auth/login"))
            .form(&[("email", "owner@example.com"), ("password", PASSWORD)]);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
        assert!(set_cookie(&r).is_none());
    }
    // Sign-out door: a cross-site POST with the victim's cookie does not end the session.
    let cookie = s.sign_in().await;
    let r = client()
        .post(s.url("/fn/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(s.url("/fn/auth/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Any server function (data door).
    let r = client()
        .post(s.url("/fn/auth/me"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the session survived");
    // Same origin is fine.
    let r = client()
        .post(s.url("/fn/auth/me"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn security_headers_and_a_fresh_nonce_per_page() {
    let s = Server::start(&[]).await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let r = client().get(s.url("/login")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("object-src 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h.contains_key("x-request-id"));
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_owned();
        let html = r.text().await.unwrap();
        // Every inline script carries this response's nonce.
        let scripts = html.matches("<script").count();
        assert!(scripts > 0);
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{html}"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1]);
    // Error responses carry the headers too.
    let r = client().get(s.url("/no-such-page")).send().await.unwrap();
    assert!(r.headers().contains_key("content-security-policy"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // Answers that are never a page (probes, the REST API) get the strictest policy,
    // with no nonce to make.
    for path in ["/healthz", "/api/v1/whoami"] {
        let r = client().get(s.url(path)).send().await.unwrap();
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert!(r.headers().contains_key("x-request-id"), "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        // Headers that only a document needs stay off JSON and probes.
        for page_only in ["x-frame-options", "referrer-policy", "permissions-policy"] {
            assert!(!r.headers().contains_key(page_only), "{path}: {page_only}");
        }
    }
}

/// The body of a gzip-encoded answer, decoded.
fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read as _;
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn answers_are_compressed_for_clients_that_accept_it_except_those_carrying_a_secret() {
    use super::access::{make_app, pairs};
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;
    let encoding = |r: &reqwest::Response| {
        r.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // A page and a JSON document: gzip when accepted, the same content once decoded.
    for path in ["/keys", "/api/v1/openapi.json"] {
        let plain = client()
            .get(s.url(path))
            .header("cookie", &owner)
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert_eq!(encoding(&plain), None, "{path}: not asked for");
        let plain = plain.text().await.unwrap();
        let r = client()
            .get(s.url(path))
            .header("cookie", &owner)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(encoding(&r).as_deref(), Some("gzip"), "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        let bytes = r.bytes().await.unwrap();
        assert!(
            bytes.len() < plain.len() / 2,
            "{path}: {} bytes",
            bytes.len()
        );
        let decoded = gunzip(&bytes);
        let tail = |t: &str| t.trim_end().chars().rev().take(8).collect::<String>();
        assert_eq!(tail(&decoded), tail(&plain), "{path}");
        assert!(
            decoded.len().abs_diff(plain.len()) < 200,
            "{path}: a nonce differs at most"
        );
    }

    // A new key's secret beside its name (text the requester chose): never compressed,
    // from the panel or from the REST API.
    let form = pairs(&[
        ("name", "kw_live_guess"),
        ("app_id", &app_id.to_string()),
        ("environment", "live"),
        ("role_id", "3"),
        ("expiry", "never"),
    ]);
    let r = client()
        .post(s.url("/fn/keys/create"))
        .header("origin", &s.base)
        .header("cookie", &owner)
        .header("accept-encoding", "gzip")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(encoding(&r), None);
    assert_eq!(r.headers()["cache-control"], "no-store, no-transform");
    let v: serde_json::Value = r.json().await.unwrap();
    let key = v["secret"].as_str().unwrap().to_owned();
    let key_id = v["key"]["key_id"].as_str().unwrap().to_owned();
    for (path, body) in [
        (
            "/api/v1/keys".to_owned(),
            serde_json::json!({"name": "kw_live_guess", "app_id": app_id, "environment": "live"}),
        ),
        (
            format!("/api/v1/keys/{key_id}/roll"),
            serde_json::json!({"grace_seconds": 0}),
        ),
    ] {
        let r = client()
            .post(s.url(&path))
            .bearer_auth(&key)
            .header("accept-encoding", "gzip")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap());
        assert_eq!(encoding(&r), None, "{path}");
        assert_eq!(
            r.headers()["cache-control"],
            "no-store, no-transform",
            "{path}"
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["secret"].as_str().unwrap().starts_with("kw_live_"),
            "{path}"
        );
    }

    // A pending TOTP seed on the account page: the page is not compressed either.
    let r = client()
        .post(s.url("/fn/account/totp/start"))
        .header("origin", &s.base)
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client()
        .get(s.url("/account"))
        .header("cookie", &owner)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(encoding(&r), None);
    assert_eq!(r.headers()["cache-control"], "no-store, no-transform");
    assert!(r.text().await.unwrap().contains("otpauth://"));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let s = Server::start(&[("KEYWARD_MAX_BODY_BYTES", "65536")]).await;
    // Just over the 64 KiB limit: small enough that the whole request fits in the socket
    // buffers, so the client is done writing when the server answers and closes (a
    // larger body can race the close and end in a broken pipe on the client side).
    let big = "a".repeat(70 * 1024);
    let r = client()
        .post(s.url("/fn/auth/login"))
        .header("origin", &s.base)
        .form(&[("email", big.as_str()), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // Chunked (no Content-Length) is cut off too.
    let stream = futures_stream(big.into_bytes());
    let r = client()
        .post(s.url("/fn/auth/login"))
        .header("origin", &s.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // The server is fine afterwards.
    assert_eq!(
        client()
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

fn futures_stream(
    data: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    Chunks(chunks.into_iter())
}

struct Chunks(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test]
async fn a_plain_form_post_that_makes_a_key_shows_its_secret_in_the_answer() {
    use super::access::{make_app, pairs};
    let s = Server::start(&[]).await;
    let owner = s.sign_in().await;
    let app_id = make_app(&s, &owner, "Billing", "").await;
    // A browser without JavaScript: the form's own post, Accept text/html, Referer the
    // page. A name that tries to break out of the page stays text.
    let post = |path: &'static str, form: Vec<(String, String)>| {
        client()
            .post(s.url(path))
            .header("origin", &s.base)
            .header("cookie", &owner)
            .header("accept", "text/html,application/xhtml+xml")
            .header("referer", s.url("/keys?status=active"))
            .form(&form)
            .send()
    };
    let r = post(
        "/fn/keys/create",
        pairs(&[
            ("name", "<script>alert(1)</script>"),
            ("app_id", &app_id.to_string()),
            ("environment", "live"),
            ("role_id", "3"),
            ("expiry", "never"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "no redirect: the secret would be lost");
    assert!(r.headers().get("location").is_none());
    assert_eq!(r.headers()["cache-control"], "no-store, no-transform");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // Back to the page the form was on, at the new key's row.
    assert!(
        html.contains("href=\"/keys?status=active#row-key_"),
        "{html}"
    );
    let secret = |html: &str| {
        let start = html.find("value=\"kw_live_").unwrap() + "value=\"".len();
        html[start..start + 46].to_owned()
    };
    let key = secret(&html);
    let who = |key: String| {
        client()
            .get(s.url("/api/v1/whoami"))
            .bearer_auth(key)
            .send()
    };
    let r = who(key.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "the secret shown is the key's");
    let key_id = r.json::<serde_json::Value>().await.unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A roll without JavaScript shows the new secret too (else the old key's grace
    // period would end with no working key).
    let r = post(
        "/fn/keys/roll",
        pairs(&[("key_id", &key_id), ("grace", "3600")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let rolled = secret(&r.text().await.unwrap());
    assert_ne!(rolled, key);
    assert_eq!(who(rolled).await.unwrap().status(), 200);

    // A failed create still goes back to the form (Leptos's redirect with the error).
    let r = post(
        "/fn/keys/create",
        pairs(&[
            ("name", "x"),
            ("app_id", "999999"),
            ("environment", "live"),
            ("role_id", "3"),
            ("expiry", "never"),
        ]),
    )
    .await
    .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_client_error(),
        "{}",
        r.status()
    );
    assert!(!r.text().await.unwrap().contains("kw_live_"));
}

#[tokio::test]
async fn a_request_cannot_forge_or_hide_log_lines() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = Server::start(&[]).await;
    // Raw bytes in the request target (hyper passes non-ASCII on; it refuses control
    // bytes): a C1 line break (NEL), a Unicode line separator and a right-to-left
    // override; sent with two session cookies, which the server logs with the path.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut target = b"/x".to_vec();
    target.extend_from_slice("\u{85}forged\u{2028}line\u{202e}".as_bytes());
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(&target);
    req.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {addr}\r\nCookie: keyward_session=a; keyward_session=b\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = s.log();
    assert!(log.contains("two session cookies"), "{log}");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 "),
        "{answer:?}"
    );
    for raw in ["\u{85}", "\u{2028}", "\u{202e}"] {
        assert!(!log.contains(raw), "{raw:?} reached the log: {log}");
    }
    assert!(log.contains("\\u{85}"), "{log}");
}

#[tokio::test]
async fn no_log_line_shows_a_key_or_an_invitation_token_in_a_path() {
    let s = Server::start(&[]).await;
    let key = "kw_live_eYkLAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let token = "tok3nOfAnInvitationThatMustNotBeLogged";
    for path in [
        format!("/keys/{key}"),
        format!("/API/v1/{key}"),
        format!("/x?token={key}"),
        format!("/invite/{token}"),
    ] {
        // Two session cookies: logged with the path.
        let r = client()
            .get(s.url(&path))
            .header("cookie", "keyward_session=a; keyward_session=b")
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{path}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = s.log();
    assert!(log.matches("two session cookies").count() >= 4, "{log}");
    assert!(!log.contains("eYkL"), "{log}");
    assert!(!log.contains(token), "{log}");
}

#[tokio::test]
async fn a_plain_form_post_that_fails_or_carries_no_secret_gets_no_secret_page() {
    let s = Server::start(&[]).await;
    let plain = |path: &'static str, form: &'static [(&'static str, &'static str)]| {
        client()
            .post(s.url(path))
            .header("origin", &s.base)
            .header("accept", "text/html")
            .header("referer", s.url("/keys"))
            .form(form)
            .send()
    };
    // Signed out: an error, sent back to the form as Leptos sends it.
    let r = plain(
        "/fn/keys/create",
        &[
            ("name", "a"),
            ("app_id", "1"),
            ("environment", "live"),
            ("role_id", "3"),
            ("expiry", "never"),
        ],
    )
    .await
    .unwrap();
    assert_ne!(r.status(), 200);
    assert!(!r.text().await.unwrap().contains("Copy the"));
    // An invitation lookup answers a word, not a secret.
    let r = plain("/fn/invite/get", &[("token", "nope")]).await.unwrap();
    assert!(!r.text().await.unwrap().contains("Copy the"));
}
