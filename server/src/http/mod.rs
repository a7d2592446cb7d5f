//! The HTTP side of the server: the router, the security middleware every request
//! passes, the health probes, and what several of them share (the request id, the
//! cookie names).

pub mod health;
pub mod middleware;
pub mod router;

/// This request's id: in the `X-Request-Id` header, REST error bodies and log lines.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

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
