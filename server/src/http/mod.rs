//! The HTTP side of the server: the router, the security middleware every request
//! passes, the health probes, and what several of them share (the request id, the
//! cookie names).

pub mod audit_export;
pub mod bundle;
pub mod compression;
pub mod health;
pub mod kept_form;
pub mod metrics;
pub mod middleware;
pub mod router;

/// The CSV export of the audit page's filtered events.
pub const AUDIT_EXPORT_PATH: &str = "/audit/export.csv";

/// This request's id: in the `X-Request-Id` header, REST error bodies and log lines.
/// 12 random bytes from the thread's CSPRNG (ChaCha, seeded and reseeded from the OS:
/// unpredictable, and no system call per request) as 16 characters of URL-safe base64,
/// held inline so that copying it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

    pub fn random() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut raw = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut raw);
        let mut text = [0u8; 16];
        // 12 bytes are exactly 16 characters: the buffer always fits.
        let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(raw, &mut text);
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        // Base64's alphabet is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn header_value(&self) -> http::HeaderValue {
        http::HeaderValue::from_str(self.as_str())
            .unwrap_or_else(|_| http::HeaderValue::from_static(""))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

/// The request being served, for the log lines written while serving it (set by the
/// security middleware; printed by `crate::logging` through [`loggable_path`]).
pub struct RequestLog {
    pub id: RequestId,
    pub method: http::Method,
    pub uri: http::Uri,
}

/// A request's path as the log may show it: a path that carries an API key anywhere
/// (path or query) is not shown at all, and an invitation link's token is left out.
/// Every log line that names a path takes it from here.
pub fn loggable_path(uri: &http::Uri) -> &str {
    let path = uri.path();
    if crate::rest::url_has_key(uri) {
        "(a path carrying an API key)"
    } else if path.starts_with("/invite/") {
        "/invite/(token)"
    } else {
        path
    }
}

tokio::task_local! {
    pub static REQUEST: RequestLog;
}

/// The session cookie's name: with an https public URL `__Host-` (the browser then
/// only accepts it from this host, over https, for the whole site, so no subdomain or
/// plain-http page can plant one).
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-keyward_session"
    } else {
        "keyward_session"
    }
}
