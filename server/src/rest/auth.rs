//! Who calls: the `Api` extractor (state, request id, client address, the
//! `Authorization` header) and the refusal order of the contract, from a key in the URL
//! to the permission a route needs.

use super::error::ApiError;
use crate::http::RequestId;
use app::auth::ssr::ClientIp;
use app::core::{
    access::{Grant, Principal},
    audit::Origin,
    keys::{
        verified::{Refusal, VerifiedKey},
        verify::{self, Door},
    },
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
    rid: RequestId,
    ip: IpAddr,
    // Header values are cheap to clone (shared with the request's buffer): read into
    // text only when needed, so a valid key's call copies no string.
    user_agent: Option<http::HeaderValue>,
    authorization: Result<Option<http::HeaderValue>, BadAuth>,
    started: tokio::time::Instant,
}

/// How long a `rate_limited` answer is held back (see `Api::verify`).
const RATE_LIMITED_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

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
    // Every prefix starts with "kw": only the places holding a `k` or `K` are compared
    // (no lower-cased copy; `| 0x20` folds only the ASCII letters compared here).
    let text = text.as_bytes();
    let mut from = 0;
    while let Some(off) = text[from..].iter().position(|&c| c | 0x20 == b'k') {
        let i = from + off;
        if text.get(i + 1).is_some_and(|&c| c | 0x20 == b'w')
            && KEY_PREFIXES.iter().any(|p| {
                text.get(i..i + p.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(p.as_bytes()))
            })
        {
            return true;
        }
        from = i + 1;
    }
    false
}

/// True when the URL carries a key anywhere: the path, or a query parameter's name or
/// value, each read after percent-decoding (so `%6Bw_live_…` or `+` tricks do not hide
/// one), or a parameter named like one of [`KEY_PARAMS`].
pub(crate) fn url_has_key(uri: &http::Uri) -> bool {
    let raw = uri.path();
    // A path without an escape is its own decoding (no pass to decode or validate).
    let path_has_key = if raw.as_bytes().contains(&b'%') {
        looks_like_key(&percent_encoding::percent_decode_str(raw).decode_utf8_lossy())
    } else {
        looks_like_key(raw)
    };
    if path_has_key {
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
#[cfg(test)]
fn bearer_of(headers: &http::HeaderMap) -> Result<Option<String>, BadAuth> {
    match authorization_of(headers)? {
        None => Ok(None),
        Some(v) => bearer_token(&v).map(|t| Some(t.to_owned())),
    }
}

/// The one `Authorization` header, if any (twice is an error).
fn authorization_of(headers: &http::HeaderMap) -> Result<Option<http::HeaderValue>, BadAuth> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(BadAuth::Duplicate);
    }
    Ok(Some(v.clone()))
}

/// The token of a Bearer credential.
fn bearer_token(v: &http::HeaderValue) -> Result<&str, BadAuth> {
    let v = v.to_str().map_err(|_| BadAuth::Malformed)?.trim();
    // The scheme is what comes before the first space: "Bearer", in any case.
    match (v.get(..6), v.as_bytes().get(6)) {
        (Some(scheme), Some(b' ')) if scheme.eq_ignore_ascii_case("bearer") => Ok(v[7..].trim()),
        _ => Err(BadAuth::Malformed),
    }
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
        // The id the security middleware gave the request (its task-local, which every
        // log line of the request prints too): no extension to insert and look up.
        let rid = crate::http::REQUEST
            .try_with(|r| r.id)
            .unwrap_or_else(|_| RequestId::random());
        let ip = ClientIp::from_parts(parts, state).0;
        Ok(Self {
            state: state.clone(),
            rid,
            ip,
            user_agent: parts.headers.get(header::USER_AGENT).cloned(),
            authorization: authorization_of(&parts.headers),
            started: tokio::time::Instant::now(),
        })
    }
}

impl Api {
    pub(super) fn err(
        &self,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::new(status, code, message).with_request_id(self.rid.as_str())
    }

    pub(super) fn app_err(&self, e: AppError) -> ApiError {
        ApiError::from_app(e, self.rid.as_str())
    }

    /// The client's address (trusted-proxy rules applied).
    pub(super) fn ip(&self) -> IpAddr {
        self.ip
    }

    pub(super) fn origin(&self) -> Origin {
        Origin {
            ip: Some(self.ip.to_string()),
            user_agent: self
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
        }
    }

    /// The key behind the request, through the domain's one refusal policy
    /// ([`verify::verify`]); this only maps a refusal to its status and message.
    async fn verify(&self, door: Door) -> Result<Arc<VerifiedKey>, ApiError> {
        let secret = match &self.authorization {
            Ok(None) => None,
            Ok(Some(v)) => Some(bearer_token(v).unwrap_or("")),
            Err(BadAuth::Duplicate) => {
                return Err(self.err(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "Send one Authorization header, not several.",
                ))
            }
            Err(BadAuth::Malformed) => Some(""),
        };
        let st = &self.state;
        let verdict = verify::verify(&st.db, &st.keys, secret, self.ip, st.clock.now(), door)
            .await
            .map_err(|e| self.app_err(AppError::from(e)))?;
        let refusal = match verdict {
            Ok(key) => return Ok(key),
            Err(r) => r,
        };
        let (status, message) = match refusal {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                "Send your API key in the Authorization header: Bearer <key>.".to_owned(),
            ),
            Refusal::Invalid => {
                // An unknown key costs a database lookup that a malformed one skips:
                // every `invalid_api_key` is sent no sooner than the floor.
                tokio::time::sleep_until(self.started + INVALID_KEY_FLOOR).await;
                (
                    StatusCode::UNAUTHORIZED,
                    "The API key is not valid.".to_owned(),
                )
            }
            Refusal::Revoked => (
                StatusCode::UNAUTHORIZED,
                "This API key was revoked.".to_owned(),
            ),
            Refusal::OwnerDisabled => (
                StatusCode::UNAUTHORIZED,
                "The account that owns this API key is disabled, so the key no longer works."
                    .to_owned(),
            ),
            Refusal::Expired => (
                StatusCode::UNAUTHORIZED,
                "This API key has expired.".to_owned(),
            ),
            Refusal::Pending => (
                StatusCode::UNAUTHORIZED,
                "This API key is waiting for approval; it works once someone other than its owner approves it in Keyward."
                    .to_owned(),
            ),
            Refusal::Disabled => (
                StatusCode::UNAUTHORIZED,
                "This API key was disabled because it went unused; its owner can enable it again on its page in Keyward."
                    .to_owned(),
            ),
            Refusal::IpNotAllowed => (
                StatusCode::FORBIDDEN,
                format!("Requests with this key are not allowed from {}.", self.ip),
            ),
            Refusal::SdkNotAllowed => (
                StatusCode::FORBIDDEN,
                "A public SDK key cannot call this endpoint; use a secret REST key.".to_owned(),
            ),
            Refusal::RateLimited { retry_after_secs } => {
                // A caller past its allowance waits for its answer: a flooding
                // connection then sits idle instead of taking the CPU that other
                // callers' requests need.
                tokio::time::sleep(RATE_LIMITED_DELAY).await;
                return Err(self.app_err(AppError::RateLimited { retry_after_secs }));
            }
        };
        Err(self.err(status, refusal.code(), message))
    }

    /// 403 `insufficient_permissions` naming `perm`, counted against the key.
    fn lacks(&self, key_id: &str, perm: Permission) -> ApiError {
        self.forbidden_key(
            key_id,
            "insufficient_permissions",
            format!("This key's role lacks the permission {perm}."),
        )
    }

    /// 403 `channel_not_allowed`: a channel key outside its channel's use.
    pub(super) fn channel_not_allowed(&self, key_id: &str) -> ApiError {
        self.forbidden_key(
            key_id,
            "channel_not_allowed",
            "A channel key may only send messages of its own channel and read the ones it sent.",
        )
    }

    /// 403 for a message of an app other than the key's: `channel_not_allowed` to a
    /// channel key (its channel is its app's), else `insufficient_permissions`.
    pub(super) fn other_app(&self, key: &VerifiedKey) -> ApiError {
        if key.channel.is_some() {
            return self.channel_not_allowed(&key.key_id);
        }
        self.forbidden_key(
            &key.key_id,
            "insufficient_permissions",
            format!(
                "This key belongs to app {} ({}): it writes and reads that app's messages only.",
                key.app_id, key.app
            ),
        )
    }

    /// A 403 to a known key after its verification, counted like every refusal: past
    /// the allowance, 429 (and counted as such).
    fn forbidden_key(
        &self,
        key_id: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        let keys = &self.state.keys;
        let wait = keys.refusals().count(self.ip, Some(key_id), code);
        let answered = if wait.is_some() { "rate_limited" } else { code };
        keys.refused(key_id, answered, self.ip);
        app::core::infra::metrics::KEY_VERIFICATIONS.count(answered);
        if let Some(wait) = wait {
            return self.app_err(AppError::RateLimited {
                retry_after_secs: wait,
            });
        }
        self.err(StatusCode::FORBIDDEN, code, message)
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

/// What an endpoint asks of the key calling it: a secret key holding one of
/// [`Need::ANY_OF`] (the first is named when none is held; empty: any secret key).
pub(super) trait Need: Send + Sync + 'static {
    const ANY_OF: &'static [Permission];
    /// What a channel key must hold to call the endpoint (`send`, `status`); `None`: no
    /// channel key may (403 `channel_not_allowed`).
    const CHANNEL_EVENT: Option<&'static str> = None;
}

/// `api.key.view`.
pub(super) struct ViewKeys;
impl Need for ViewKeys {
    const ANY_OF: &'static [Permission] = &[Permission::ApiKeyView];
}

/// `api.key.create`.
pub(super) struct CreateKeys;
impl Need for CreateKeys {
    const ANY_OF: &'static [Permission] = &[Permission::ApiKeyCreate];
}

/// `api.key.update`.
pub(super) struct UpdateKeys;
impl Need for UpdateKeys {
    const ANY_OF: &'static [Permission] = &[Permission::ApiKeyUpdate];
}

/// `api.key.delete`.
pub(super) struct DeleteKeys;
impl Need for DeleteKeys {
    const ANY_OF: &'static [Permission] = &[Permission::ApiKeyDelete];
}

/// `message.create`.
pub(super) struct CreateMessages;
impl Need for CreateMessages {
    const ANY_OF: &'static [Permission] = &[Permission::MessageCreate];
    const CHANNEL_EVENT: Option<&'static str> = Some("send");
}

/// `message.create` or `message.approve` (what a message's page needs; which messages
/// are visible is `core::messages::visible`'s rule).
pub(super) struct ReadMessages;
impl Need for ReadMessages {
    const ANY_OF: &'static [Permission] = &[Permission::MessageCreate, Permission::MessageApprove];
    const CHANNEL_EVENT: Option<&'static str> = Some("status");
}

/// A request made with a secret key that holds what `N` needs: the handler starts here,
/// with no authentication or permission code of its own.
pub(super) struct Authed<N: Need> {
    pub(super) api: Api,
    pub(super) key: Arc<VerifiedKey>,
    pub(super) principal: Principal,
    need: std::marker::PhantomData<N>,
}

impl<N: Need> Authed<N> {
    /// The grant the domain's write takes (the permission was checked on extraction).
    pub(super) fn grant(&self) -> Result<Grant<'_>, ApiError> {
        let held = N::ANY_OF.iter().find(|p| self.principal.has(**p));
        let perm = held.ok_or_else(|| self.api.app_err(AppError::Forbidden))?;
        self.principal
            .require(*perm)
            .map_err(|e| self.api.app_err(e))
    }
}

impl<N: Need> FromRequestParts<AppState> for Authed<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let api = Api::from_request_parts(parts, state).await?;
        let key = api.verify(Door::Server).await?;
        // A channel key only where its channel's use is (`channel_allows`).
        if key.channel.is_some() && !N::CHANNEL_EVENT.is_some_and(|e| key.channel_allows(e, None)) {
            return Err(api.channel_not_allowed(&key.key_id));
        }
        // A secret key always has an owner; a key without one acts for nobody.
        let Some(principal) = key.principal() else {
            return Err(api.app_err(AppError::Unauthenticated));
        };
        if let Some(first) = N::ANY_OF.first() {
            if !N::ANY_OF.iter().any(|p| principal.has(*p)) {
                return Err(api.lacks(&key.key_id, *first));
            }
        }
        key.accepted();
        Ok(Self {
            api,
            key,
            principal,
            need: std::marker::PhantomData,
        })
    }
}

/// A request made with any working key, public SDK keys included (`whoami`, SDK events).
pub(super) struct AnyKey {
    pub(super) api: Api,
    pub(super) key: Arc<VerifiedKey>,
}

impl FromRequestParts<AppState> for AnyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let api = Api::from_request_parts(parts, state).await?;
        let key = api.verify(Door::Sdk).await?;
        if key.channel.is_some() {
            return Err(api.channel_not_allowed(&key.key_id));
        }
        key.accepted();
        Ok(Self { api, key })
    }
}

/// The answer to a key anywhere in an `/api/` URL (see [`url_has_key`]), sent by the
/// security middleware before any route, fallback or method check: `400 key_in_query`,
/// whatever else is wrong with the request.
pub fn key_in_url(rid: RequestId) -> Response {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "key_in_query",
        "API keys are never accepted in a URL. Send it in the Authorization header: Bearer <key>.",
    )
    .with_request_id(rid.as_str())
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
        assert!(has("/api/v1/kkw_live_abc"));
        assert!(has("/api/v1/k/KwPub_TeSt_abc"));
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
        assert_eq!(bearer_of(&h(&["Bearerx abc"])), Err(BadAuth::Malformed));
        assert_eq!(bearer_of(&h(&["Bearer\tabc"])), Err(BadAuth::Malformed));
        assert_eq!(bearer_of(&h(&[" Bearer abc"])), Ok(Some("abc".into())));
        assert_eq!(
            bearer_of(&h(&["Bearer a", "Bearer b"])),
            Err(BadAuth::Duplicate)
        );
    }
}
