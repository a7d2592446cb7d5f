//! Who calls: the `Api` extractor (state, request id, client address, the
//! `Authorization` header) and the refusal order of the contract, from a key in the URL
//! to the permission a route needs.

use super::error::ApiError;
use crate::http::RequestId;
use app::auth::ssr::ClientIp;
use app::core::{
    access::{Grant, Principal, Subject},
    audit::Origin,
    key_format,
    keys::{self, Refusal, VerifiedKey},
};
use app::error::AppError;
use app::roles::Permission;
use app::state::AppState;
use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        FromRequestParts, Query,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// What every handler starts from: the state, the request id, the client address and
/// the Authorization header (checked by `authenticate`).
pub struct Api {
    pub(super) state: AppState,
    rid: String,
    ip: IpAddr,
    user_agent: Option<String>,
    bearer: Result<Option<String>, BadAuth>,
    started: tokio::time::Instant,
}

/// See `Api::invalid`.
const INVALID_KEY_FLOOR: std::time::Duration = std::time::Duration::from_millis(20);

/// Query parameter names that would carry a key (compared case-insensitively).
const KEY_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "key",
    "token",
    "access_token",
    "secret",
    "authorization",
    "bearer",
];

/// The prefixes every Keyward key starts with.
const KEY_PREFIXES: &[&str] = &["kw_live_", "kw_test_", "kwpub_live_", "kwpub_test_"];

fn looks_like_key(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    KEY_PREFIXES.iter().any(|p| lower.contains(p))
}

/// True when the URL carries a key anywhere: the path, or a query parameter's name or
/// value, each read after percent-decoding (so `%6Bw_live_…` or `+` tricks do not hide
/// one), or a parameter named like one of [`KEY_PARAMS`].
pub(crate) fn url_has_key(uri: &http::Uri) -> bool {
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    if looks_like_key(&path) {
        return true;
    }
    uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(name, value)| {
            KEY_PARAMS.contains(&name.to_ascii_lowercase().as_str())
                || looks_like_key(&name)
                || looks_like_key(&value)
        })
    })
}

/// The `Authorization` header: `Ok(None)` when absent; `Err` when it is sent twice, is
/// not text, or is not the Bearer scheme (matched case-insensitively, RFC 9110).
fn bearer_of(headers: &http::HeaderMap) -> Result<Option<String>, BadAuth> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(BadAuth::Duplicate);
    }
    let v = v.to_str().map_err(|_| BadAuth::Malformed)?;
    let (scheme, token) = v.trim().split_once(' ').ok_or(BadAuth::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BadAuth::Malformed);
    }
    Ok(Some(token.trim().to_owned()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadAuth {
    /// Two `Authorization` headers: which one would count is ambiguous (400).
    Duplicate,
    /// Not a Bearer credential (401 `invalid_api_key`).
    Malformed,
}

impl FromRequestParts<AppState> for Api {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let rid = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let ip = ClientIp::from_parts(parts, state).0;
        let bearer = bearer_of(&parts.headers);
        Ok(Self {
            state: state.clone(),
            rid,
            ip,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
            bearer,
            started: tokio::time::Instant::now(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Door {
    /// Server endpoints: secret keys only.
    Server,
    /// Endpoints an SDK (public) key may call too.
    Sdk,
}

impl Api {
    pub(super) fn err(
        &self,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::new(status, code, message).with_request_id(&self.rid)
    }

    /// A failed authentication: counted per address; past the allowance the answer is
    /// 429 instead.
    pub(super) fn failed(&self, e: ApiError) -> ApiError {
        match self.state.keys.auth_failure(self.ip) {
            None => e,
            Some(wait) => self.app_err(AppError::RateLimited {
                retry_after_secs: wait,
            }),
        }
    }

    /// `invalid_api_key`, for malformed, mistyped and unknown keys alike, sent no sooner
    /// than `INVALID_KEY_FLOOR` after the request arrived: an unknown key costs a
    /// database lookup the other two skip, and the floor hides that difference.
    pub(super) async fn invalid(&self) -> ApiError {
        tokio::time::sleep_until(self.started + INVALID_KEY_FLOOR).await;
        self.failed(self.err(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "The API key is not valid.",
        ))
    }

    pub(super) fn app_err(&self, e: AppError) -> ApiError {
        ApiError::from_app(e, &self.rid)
    }

    pub(super) fn origin(&self) -> Origin {
        Origin {
            ip: Some(self.ip.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }

    /// The key and the principal it acts as (its role's permissions).
    pub(super) async fn authenticate(
        &self,
        door: Door,
    ) -> Result<(Arc<VerifiedKey>, Principal), ApiError> {
        let key = self.verify(door).await?;
        let principal = Principal::key(
            key.key_id.clone(),
            key.owner_id.unwrap_or(-1),
            key.owner_role_id.unwrap_or(-1),
            key.role_id.unwrap_or(-1),
            key.permissions.clone(),
        );
        Ok((key, principal))
    }

    /// The checks of the module's documentation, up to the permission (which the
    /// caller checks).
    pub(super) async fn verify(&self, door: Door) -> Result<Arc<VerifiedKey>, ApiError> {
        let secret = match &self.bearer {
            Ok(None) => {
                return Err(self.failed(self.err(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "Send your API key in the Authorization header: Bearer <key>.",
                )))
            }
            Err(BadAuth::Duplicate) => {
                return Err(self.err(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "Send one Authorization header, not several.",
                ))
            }
            Err(BadAuth::Malformed) => return Err(self.invalid().await),
            Ok(Some(s)) => s,
        };
        // Format and checksum first: a made-up key costs no database work.
        if key_format::parse(secret).is_none() {
            return Err(self.invalid().await);
        }
        let st = &self.state;
        let Some(key) = keys::lookup(&st.db, &st.keys, secret)
            .await
            .map_err(|e| self.app_err(AppError::internal(e)))?
        else {
            return Err(self.invalid().await);
        };
        let now = st.clock.now();
        // From here the key is known: refusals are counted per key and audited in
        // batches (core::keys::KeyCache::flush_refused).
        let refuse = |status, code: &'static str, message: String| {
            st.keys.refused(&key.key_id, code);
            self.err(status, code, message)
        };
        match key.refusal(now) {
            Some(Refusal::Revoked) => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "key_revoked",
                    "This API key was revoked.".into(),
                ))
            }
            Some(Refusal::OwnerDisabled) => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "key_revoked",
                    "The account that owns this API key is disabled, so the key no longer works."
                        .into(),
                ))
            }
            Some(Refusal::Expired) => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "key_expired",
                    "This API key has expired.".into(),
                ))
            }
            None => {}
        }
        if !key.allows(self.ip) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                format!("Requests with this key are not allowed from {}.", self.ip),
            ));
        }
        if key.kind == "sdk" && door == Door::Server {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "sdk_key_not_allowed",
                "A public SDK key cannot call this endpoint; use a secret REST key.".into(),
            ));
        }
        st.keys.touch(&key, now, self.ip);
        Ok(key)
    }

    pub(super) fn need(&self, p: &Principal, perm: Permission) -> Result<(), ApiError> {
        if p.has(perm) {
            Ok(())
        } else {
            if let Subject::Key { key_id, .. } = &p.subject {
                self.state.keys.refused(key_id, "insufficient_permissions");
            }
            Err(self.err(
                StatusCode::FORBIDDEN,
                "insufficient_permissions",
                format!("This key's role lacks the permission {perm}."),
            ))
        }
    }

    /// The permission check every write starts with: 403 `insufficient_permissions`
    /// (counted against the key), else the `Grant` the domain function takes.
    pub(super) fn grant<'p>(
        &self,
        p: &'p Principal,
        perm: Permission,
    ) -> Result<Grant<'p>, ApiError> {
        self.need(p, perm)?;
        p.require(perm).map_err(|e| self.app_err(e))
    }

    pub(super) fn query<T>(&self, query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
        query.map(|Query(q)| q).map_err(|e| {
            let mut err = self.err(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("The query string is not valid: {}", e.body_text()),
            );
            err.details = Some(json!({ "fields": { "query": e.body_text() } }));
            err
        })
    }

    pub(super) fn body<T>(&self, body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
        body.map(|Json(b)| b).map_err(|e| {
            let mut err = self.err(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("The JSON body is not valid: {}", e.body_text()),
            );
            err.details = Some(json!({ "fields": { "body": e.body_text() } }));
            err
        })
    }
}

/// A key anywhere in an `/api/` URL (see [`url_has_key`]) is refused before any route,
/// fallback or method check: `400 key_in_query`, whatever else is wrong with the request.
pub(super) async fn refuse_key_in_url(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !url_has_key(req.uri()) {
        return next.run(req).await;
    }
    let rid = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "key_in_query",
        "API keys are never accepted in a URL. Send it in the Authorization header: Bearer <key>.",
    )
    .with_request_id(&rid)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::{bearer_of, url_has_key, BadAuth};
    use axum::http::{HeaderMap, HeaderValue, Uri};

    fn has(u: &str) -> bool {
        url_has_key(&u.parse::<Uri>().unwrap())
    }

    #[test]
    fn a_key_anywhere_in_the_url_is_recognised_after_decoding() {
        assert!(has("/api/v1/whoami?api_key=abc"));
        assert!(has("/api/v1/whoami?x=1&Token=abc"));
        assert!(has("/api/v1/whoami?q=kw_live_abc"));
        // Percent-encoded names and values, and a key inside a longer value.
        assert!(has("/api/v1/whoami?x=%6Bw_live_abc"));
        assert!(has("/api/v1/whoami?x=Bearer+kw_test_abc"));
        assert!(has("/api/v1/whoami?%61pi_key=abc"));
        assert!(has("/api/v1/whoami?KW_LIVE_abc=1"));
        assert!(has("/api/v1/whoami?x=kwpub_live_abc"));
        // In the path, encoded or not.
        assert!(has("/api/v1/keys/kw_live_abc"));
        assert!(has("/api/v1/keys/%6bw_live_abc"));
        assert!(!has("/api/v1/keys?app_id=3&limit=2"));
        assert!(!has("/api/v1/keys/key_abcdefghijklmnop"));
    }

    #[test]
    fn bearer_is_matched_case_insensitively_and_only_once() {
        let h = |vals: &[&str]| {
            let mut m = HeaderMap::new();
            for v in vals {
                m.append("authorization", HeaderValue::from_str(v).unwrap());
            }
            m
        };
        assert_eq!(bearer_of(&h(&[])), Ok(None));
        assert_eq!(bearer_of(&h(&["Bearer abc"])), Ok(Some("abc".into())));
        assert_eq!(bearer_of(&h(&["bearer abc"])), Ok(Some("abc".into())));
        assert_eq!(bearer_of(&h(&["BEARER  abc "])), Ok(Some("abc".into())));
        assert_eq!(bearer_of(&h(&["Basic abc"])), Err(BadAuth::Malformed));
        assert_eq!(bearer_of(&h(&["Bearer"])), Err(BadAuth::Malformed));
        assert_eq!(
            bearer_of(&h(&["Bearer a", "Bearer b"])),
            Err(BadAuth::Duplicate)
        );
    }
}
