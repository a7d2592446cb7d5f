//! The browser bundle under `/pkg/`: files served as `scripts/build.sh` wrote them, in
//! their precompressed form (brotli, else gzip) when the browser accepts it. The bundle
//! is a folder named by its content (`keyward-<hash>/`: the main module `keyward.js` and
//! `keyward.wasm`, the stylesheet, and the pages' chunks with their loader), whose files
//! never change, so browsers and proxies keep them for a year without asking again; the
//! unhashed stylesheet beside it is revalidated.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::{IntoResponse as _, Response},
    Router,
};
use std::collections::HashMap;
use std::path::Path;
use tower_http::services::ServeDir;

/// The content-addressed bundle's folder in `pkg_dir` (`keyward-<16 hex>`), if a
/// complete one is there (script, wasm and chunk manifest). Of several (an earlier
/// build's kept beside the new one), the newest.
pub fn hashed_name(pkg_dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(pkg_dir).ok()?;
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|dir| is_hashed(dir))
        .filter_map(|dir| {
            let path = pkg_dir.join(&dir);
            let complete = ["keyward.js", "keyward.wasm", "manifest.json"]
                .iter()
                .all(|f| path.join(f).is_file());
            let built = std::fs::metadata(path.join("manifest.json")).and_then(|m| m.modified());
            complete.then_some((built.ok()?, dir))
        })
        .max()
        .map(|(_, dir)| dir)
}

/// Which chunks of the bundle each lazy page needs (`manifest.json`, written by the
/// build's `wasm-split`), keyed by the page's lazy function; read once at start.
/// Missing or unreadable: pages are served without preloading their chunks (the
/// browser then asks for them when it hydrates).
pub fn chunk_manifest(bundle_dir: &Path) -> HashMap<String, Vec<String>> {
    let read = std::fs::read(bundle_dir.join("manifest.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| {
            serde_json::from_slice::<HashMap<String, Vec<String>>>(&b).map_err(|e| e.to_string())
        });
    match read {
        Ok(map) => map
            .into_iter()
            .filter(|(_, chunks)| chunks.iter().all(|c| is_file_stem(c)))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "the bundle's chunk manifest is unreadable: pages will not preload their chunks");
            HashMap::new()
        }
    }
}

/// `keyward-` and 16 lowercase hex digits.
fn is_hashed(stem: &str) -> bool {
    stem.strip_prefix("keyward-")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A file name inside the bundle, without its extension: letters, digits, `_` and `-`,
/// at most 100 of them (no dots, so no `..`, no hidden files, no second extension).
fn is_file_stem(stem: &str) -> bool {
    (1..=100).contains(&stem.len())
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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

/// Which file of the bundle a `/pkg/…` path names: `keyward-<hash>/<name>.{js,wasm,css}`
/// (`Some(true)`: immutable) or the unhashed `keyward.css` (`Some(false)`); anything
/// else (the precompressed copies' own names, the manifest, a trailing slash, other
/// folders or files, names too long for the file system) is not served at all.
fn bundle_file(path: &str) -> Option<bool> {
    let file = path.strip_prefix("/pkg/")?;
    if file == "keyward.css" {
        return Some(false);
    }
    let (dir, file) = file.split_once('/')?;
    let (stem, ext) = file.split_once('.')?;
    (is_hashed(dir) && is_file_stem(stem) && matches!(ext, "js" | "wasm" | "css")).then_some(true)
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
    fn of_several_complete_bundles_the_newest_is_served() {
        let pkg = tempfile::tempdir().unwrap();
        let make = |name: &str, files: &[&str]| {
            let dir = pkg.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for f in files {
                std::fs::write(dir.join(f), "x").unwrap();
            }
        };
        let all = ["keyward.js", "keyward.wasm", "manifest.json"];
        make("keyward-aaaaaaaaaaaaaaaa", &all);
        std::thread::sleep(std::time::Duration::from_millis(20));
        make("keyward-cccccccccccccccc", &all);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Newer but incomplete, or not a bundle's name: never chosen.
        make("keyward-bbbbbbbbbbbbbbbb", &["keyward.js", "keyward.wasm"]);
        make("keyward-dddddddddddddddd.old", &all);
        assert_eq!(
            hashed_name(pkg.path()).as_deref(),
            Some("keyward-cccccccccccccccc")
        );
    }

    #[test]
    fn only_the_bundles_own_names_are_served() {
        let h = "keyward-0123456789abcdef";
        for f in [
            "keyward.js",
            "keyward.wasm",
            "keyward.css",
            "__wasm_split.js",
            "split_keys_page_12345.wasm",
            "__wasm_split_shared0.wasm",
        ] {
            assert_eq!(bundle_file(&format!("/pkg/{h}/{f}")), Some(true), "{f}");
        }
        assert_eq!(bundle_file("/pkg/keyward.css"), Some(false));
        for path in [
            format!("/pkg/{h}/keyward.js.br"),
            format!("/pkg/{h}/keyward.wasm.gz"),
            format!("/pkg/{h}/keyward.js/"),
            format!("/pkg/{h}/keyward.html"),
            format!("/pkg/{h}/manifest.json"),
            format!("/pkg/{h}/.keyward.js"),
            format!("/pkg/{h}/../keyward.css"),
            format!("/pkg/{h}/sub/keyward.js"),
            format!("/pkg/{h}/{}.js", "a".repeat(101)),
            format!("/pkg/{h}.js"),
            format!("/pkg/{h}/"),
            format!("/pkg/{h}"),
            "/pkg/keyward.js".to_owned(),
            "/pkg/keyward-0123456789abcdeg/keyward.js".to_owned(),
            "/pkg/".to_owned(),
            "/pkg/../keyward.db".to_owned(),
            format!("/pkg/{}", "a".repeat(300)),
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
