//! The browser bundle under `/pkg/`: files served as `scripts/build.sh` wrote them, in
//! their precompressed form (brotli, else gzip) when the browser accepts it. Files named
//! by their content (`keyward-<hash>.*`) never change, so browsers and proxies keep them
//! for a year without asking again; anything else under `/pkg/` is revalidated.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::{IntoResponse as _, Response},
    Router,
};
use std::path::Path;
use tower_http::services::ServeDir;

/// The base name of the content-addressed bundle in `pkg_dir` (`keyward-<16 hex>`), if a
/// complete one is there (script and wasm).
pub fn hashed_name(pkg_dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(pkg_dir).ok()?;
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".wasm").map(str::to_owned))
        .filter(|stem| is_hashed(stem))
        .find(|stem| pkg_dir.join(format!("{stem}.js")).is_file())
}

/// `keyward-` and 16 lowercase hex digits.
fn is_hashed(stem: &str) -> bool {
    stem.strip_prefix("keyward-")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `/pkg/…` from `pkg_dir`.
pub fn router<S: Clone + Send + Sync + 'static>(pkg_dir: &Path) -> Router<S> {
    let files = ServeDir::new(pkg_dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false);
    Router::new()
        .nest_service("/pkg", files)
        .layer(axum::middleware::from_fn(cache_for))
}

/// Which file of the bundle a `/pkg/…` path names: `keyward-<hash>.{js,wasm,css}`
/// (`Some(true)`: immutable) or the unhashed `keyward.css` (`Some(false)`); anything
/// else (the precompressed copies' own names, a trailing slash, other files, names too
/// long for the file system) is not served at all.
fn bundle_file(path: &str) -> Option<bool> {
    let file = path.strip_prefix("/pkg/")?;
    if file == "keyward.css" {
        return Some(false);
    }
    let (stem, ext) = file.split_once('.')?;
    (is_hashed(stem) && matches!(ext, "js" | "wasm" | "css")).then_some(true)
}

async fn cache_for(req: Request, next: Next) -> Response {
    let Some(immutable) = bundle_file(req.uri().path()) else {
        let mut res = http::StatusCode::NOT_FOUND.into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    };
    let mut res = next.run(req).await;
    if !(res.status().is_success() || res.status() == http::StatusCode::NOT_MODIFIED) {
        // An error is never kept: a missing hashed name may be there after a deploy.
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else {
        // The answer depends on Accept-Encoding: a shared cache must not hand the
        // brotli file to a client that asked for none.
        res.headers_mut()
            .entry(header::VARY)
            .or_insert(HeaderValue::from_static("accept-encoding"));
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bundles_own_names_are_served() {
        let h = "keyward-0123456789abcdef";
        for ext in ["js", "wasm", "css"] {
            assert_eq!(bundle_file(&format!("/pkg/{h}.{ext}")), Some(true));
        }
        assert_eq!(bundle_file("/pkg/keyward.css"), Some(false));
        for path in [
            format!("/pkg/{h}.js.br"),
            format!("/pkg/{h}.wasm.gz"),
            format!("/pkg/{h}.js/"),
            format!("/pkg/{h}.html"),
            "/pkg/keyward.js".to_owned(),
            "/pkg/".to_owned(),
            "/pkg/../keyward.db".to_owned(),
            format!("/pkg/{}", "a".repeat(300)),
            format!("/pkg/sub/{h}.js"),
        ] {
            assert_eq!(bundle_file(&path), None, "{path}");
        }
    }

    #[test]
    fn only_content_addressed_names_count_as_hashed() {
        assert!(is_hashed("keyward-0123456789abcdef"));
        for stem in [
            "keyward",
            "keyward-0123456789abcde",
            "keyward-0123456789ABCDEF",
            "keyward-0123456789abcdef0",
            "other-0123456789abcdef",
        ] {
            assert!(!is_hashed(stem), "{stem}");
        }
    }
}
