//! The browser bundle: pages name the content-addressed files, which are served in the
//! precompressed form the browser accepts and cached for a year; nothing else under
//! `/pkg/` is cached without revalidation, and nothing outside it is reachable.

use crate::{client, Server, BUNDLE, CHUNK};

#[tokio::test]
async fn the_bundle_is_content_addressed_precompressed_and_cached_for_a_year() {
    let s = Server::start(&[]).await;

    // The page loads the hashed stylesheet, script and wasm.
    let page = client()
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for f in ["css", "js", "wasm"] {
        assert!(
            page.contains(&format!("/pkg/{BUNDLE}/keyward.{f}")),
            "{f} not linked:\n{page}"
        );
    }
    assert!(!page.contains("keyward.db"), "{page}");

    // Each file in the best encoding the browser takes; the same answer otherwise.
    for file in [
        "keyward.wasm",
        "keyward.js",
        "keyward.css",
        "__wasm_split.js",
        &format!("{CHUNK}.wasm"),
    ] {
        let ext = file.rsplit('.').next().unwrap();
        for (accept, encoding, body) in [
            (
                Some("gzip, deflate, br, zstd"),
                Some("br"),
                format!("brotli {ext}"),
            ),
            (Some("gzip"), Some("gzip"), format!("gzip {ext}")),
            (Some("identity"), None, format!("plain {ext}")),
            (None, None, format!("plain {ext}")),
        ] {
            let mut req = client().get(s.url(&format!("/pkg/{BUNDLE}/{file}")));
            if let Some(a) = accept {
                req = req.header("accept-encoding", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{ext} {accept:?}");
            let h = r.headers().clone();
            let header = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                header("content-encoding").as_deref(),
                encoding,
                "{ext} {accept:?}"
            );
            assert_eq!(
                header("cache-control").as_deref(),
                Some("public, max-age=31536000, immutable")
            );
            assert!(
                header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
            );
            let want_type = match ext {
                "wasm" => "application/wasm",
                "js" => "text/javascript",
                _ => "text/css",
            };
            assert!(
                header("content-type").is_some_and(|t| t.starts_with(want_type)),
                "{ext}: {:?}",
                header("content-type")
            );
            // Served as it is: never compressed a second time.
            assert_eq!(r.text().await.unwrap(), body);
        }
    }

    // The unhashed stylesheet (the static error pages link it) is revalidated.
    let r = client()
        .get(s.url("/pkg/keyward.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");

    // Missing files, other folders, the compressed files' own names, other spellings of
    // a file and names too long for the file system: 404, never kept in a cache.
    let long = "a".repeat(300);
    for path in [
        "/pkg/keyward-ffffffffffffffff/keyward.wasm".to_owned(),
        "/pkg/".to_owned(),
        "/pkg".to_owned(),
        "/pkg/..%2fkeyward.db".to_owned(),
        "/pkg/..%5ckeyward.db".to_owned(),
        format!("/pkg/{BUNDLE}/..%2f..%2f..%2fkeyward.db"),
        format!("/pkg/{BUNDLE}/keyward.js.br"),
        format!("/pkg/{BUNDLE}/keyward.wasm.gz"),
        format!("/pkg/{BUNDLE}/keyward.js/"),
        format!("/pkg/{BUNDLE}/keyward.js%2f"),
        format!("/pkg/{BUNDLE}/manifest.json"),
        format!("/pkg/{BUNDLE}/"),
        format!("/pkg/{BUNDLE}"),
        format!("/pkg/{BUNDLE}.js"),
        format!("/pkg/{long}"),
        format!("/pkg/{}", "a/".repeat(3000)),
    ] {
        let r = client().get(s.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        assert!(!r.text().await.unwrap().contains("SQLite"), "{path}");
    }
    // Other spellings of the bundle's paths reach the panel's fallback, which draws the
    // "not found" page and never serves a file of the site folder, whatever the method
    // (Leptos's own fallback served them, signed out, to any method but GET).
    for path in [
        format!("//pkg/{BUNDLE}/manifest.json"),
        format!("/%70kg/{BUNDLE}/keyward.js"),
        format!("/pkg%2f{BUNDLE}/keyward.wasm.gz"),
        format!("/./pkg/{BUNDLE}/keyward.css.br"),
        "/pkg%2fkeyward.css".to_owned(),
    ] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::POST,
            reqwest::Method::PUT,
        ] {
            let r = client()
                .request(method.clone(), s.url(&path))
                .send()
                .await
                .unwrap();
            // (A signed-out GET is sent to sign in first.)
            assert!(
                r.status() == 404 || (method == reqwest::Method::GET && r.status() == 303),
                "{method} {path}: {}",
                r.status()
            );
            let body = r.text().await.unwrap();
            for file in ["not_a_page", "brotli ", "gzip ", "plain ", "body{}"] {
                assert!(!body.contains(file), "{method} {path}: {body}");
            }
        }
    }
    // Writing to the bundle is not a thing.
    let r = client()
        .post(s.url(&format!("/pkg/{BUNDLE}/keyward.js")))
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}
