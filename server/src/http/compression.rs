//! Compression (gzip, tower-http) of what a client accepts, decided on the finished
//! answer: pages and JSON are compressed; never an answer that carries a secret, nor the
//! static bundle. A request that does not ask for compression (most REST clients) goes
//! straight to the application, without the layer's per-answer work.

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderMap, HeaderValue},
    response::Response,
};
use futures_util::future::{BoxFuture, Either, FutureExt as _};
use std::{
    convert::Infallible,
    task::{Context, Poll},
};
use tower::Service;
use tower_http::compression::{
    predicate::{DefaultPredicate, Predicate},
    Compression, CompressionLayer,
};

/// Marks an answer that is never compressed: the static bundle. Compressed on every
/// load, its wasm (20 MB in a debug build) made the end-to-end flows that wait for an
/// action's "… created." fail, most likely because hydration came late; precompressed
/// files, served as they are, are the way to a smaller bundle.
#[derive(Debug, Clone, Copy)]
pub struct Uncompressed;

/// True when a `Cache-Control` value holds `directive` (compared case-insensitively).
pub fn cache_directive(v: &HeaderValue, directive: &str) -> bool {
    v.to_str().is_ok_and(|v| {
        v.split(',')
            .any(|d| d.trim().eq_ignore_ascii_case(directive))
    })
}

/// Whether an answer may be compressed: tower-http's defaults (not tiny, not an image,
/// not a stream of events), not marked [`Uncompressed`], and never one marked
/// `Cache-Control: no-transform`. That is how an answer carrying a secret (a new key, a
/// TOTP seed, recovery codes, a signing secret, an invitation's token) is marked,
/// because the secret sits beside text the requester controls (a key's name):
/// compressed, its length would tell an observer whether a guess matched (BREACH).
#[derive(Debug, Clone, Copy, Default)]
pub struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B>(&self, res: &http::Response<B>) -> bool
    where
        B: http_body::Body,
    {
        res.extensions().get::<Uncompressed>().is_none()
            && !res
                .headers()
                .get(header::CACHE_CONTROL)
                .is_some_and(|v| cache_directive(v, "no-transform"))
            && DefaultPredicate::new().should_compress(res)
    }
}

/// The application, compressed for the requests that accept it.
#[derive(Clone)]
pub struct CompressWhenAsked<S> {
    plain: S,
    compressed: Compression<S, Compressible>,
}

impl<S: Clone> CompressWhenAsked<S> {
    pub fn new(app: S) -> Self {
        use tower::Layer as _;
        Self {
            compressed: CompressionLayer::new()
                .compress_when(Compressible)
                .layer(app.clone()),
            plain: app,
        }
    }
}

/// True when the client accepts gzip (the one encoding served). `identity`, which
/// Python's http.client sends on every request, is not asking for compression.
fn asks_for_compression(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().any(|v| {
        v.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"gzip"))
    })
}

impl<S> Service<Request> for CompressWhenAsked<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both sides wrap the same application, which is always ready (axum's router
        // and middleware); asking one is asking both.
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if asks_for_compression(req.headers()) {
            Either::Right(
                self.compressed
                    .call(req)
                    .map(|res| res.map(|res| res.map(Body::new)))
                    .boxed(),
            )
        } else {
            Either::Left(self.plain.call(req))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_or_the_bundle_is_never_compressed() {
        let big = "x".repeat(4096);
        let page = || {
            Response::builder()
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Body::from(big.clone()))
                .unwrap()
        };
        assert!(Compressible.should_compress(&page()));
        let mut secret = page();
        secret.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, No-Transform"),
        );
        assert!(!Compressible.should_compress(&secret));
        let mut bundle = page();
        bundle.extensions_mut().insert(Uncompressed);
        assert!(!Compressible.should_compress(&bundle));
    }

    #[test]
    fn only_a_client_that_accepts_gzip_asks_for_compression() {
        let asks = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            asks_for_compression(&h)
        };
        assert!(asks("gzip, deflate, br, zstd"));
        assert!(asks("GZIP"));
        assert!(!asks("identity"));
        assert!(!asks("br"));
        assert!(!asks_for_compression(&HeaderMap::new()));
    }
}
