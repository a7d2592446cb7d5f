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
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let s = Server::start(&[]).await;
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
