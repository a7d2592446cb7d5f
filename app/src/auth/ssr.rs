//! Server side of sign-in, what belongs to HTTP: the request's context (client address,
//! device cookie, session), the session's keys and timeouts, sudo mode. The rules of
//! sign-in itself are `core::identity::sign_in`'s.

use super::{Me, SecondFactor};
use crate::core::{
    access::{self, Principal},
    audit::{self, Actor, Event, Origin, Outcome},
    identity::device,
    identity::email_code,
    identity::sign_in,
    identity::users::{self, UserRow, UserStatus},
    infra::client_ip::client_addr,
    infra::session_store::USER_ID_KEY,
    settings,
    state::Ctx,
};
use crate::error::AppError;
use crate::state::AppState;
use http::request::Parts;
use std::net::{IpAddr, SocketAddr};
use tower_sessions::Session;

/// Session key: when this session signed in (Unix seconds), for the absolute timeout.
pub const AUTH_AT_KEY: &str = "auth_at";
/// Session key: when the password was last checked (sign-in or re-entry), for sudo mode.
pub const SUDO_AT_KEY: &str = "sudo_at";
/// Session key: the last request, for the idle timeout.
pub const LAST_SEEN_KEY: &str = "seen_at";
/// Session keys: the address and browser that signed in (shown on /account).
pub const IP_KEY: &str = "ip";
pub const USER_AGENT_KEY: &str = "ua";
/// Session keys of a sign-in waiting for its second step (no user is signed in yet).
pub const PENDING_UID_KEY: &str = "pending_uid";
pub const PENDING_AT_KEY: &str = "pending_at";
pub const PENDING_METHOD_KEY: &str = "pending_method";
pub const PENDING_ATTEMPT_KEY: &str = "pending_attempt";
/// Sensitive actions ask for the password again when it was checked longer ago.
pub const SUDO_SECS: i64 = 10 * 60;

/// Every value the request's `Cookie` headers give the cookie `name`, in order.
pub fn cookie_values<'a>(
    headers: &'a http::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The client's address as computed once per request by the middleware (trusted-proxy
/// rules applied), stored in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn from_parts(parts: &Parts, state: &AppState) -> Self {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return *ip;
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        ClientIp(client_addr(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        ))
    }
}

/// What a server function needs from its request.
pub struct RequestCtx {
    pub state: AppState,
    pub session: Session,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    /// Where this request came from, for audit rows.
    origin: Origin,
    accepts_html: bool,
    /// The device cookie's value, if the browser sent exactly one (see `core::identity::device`).
    device_cookie: Option<String>,
    /// The signed-in user as the sign-in gate found them at the start of this page's
    /// request (`SignedInNow`), for the page's server functions to share.
    signed: Option<SignedInNow>,
}

/// The signed-in user as found by the sign-in gate at the start of a page request
/// (a GET: nothing in it changes who they are), kept in the request's extensions so the
/// page's several server functions do not each read the session, the settings, the
/// user and their role again. Form posts and calls from the browser find the user
/// themselves.
#[derive(Clone)]
pub struct SignedInNow(pub std::sync::Arc<SignedIn>);

impl RequestCtx {
    pub async fn from_leptos() -> Result<Self, AppError> {
        let state = leptos::prelude::use_context::<AppState>()
            .ok_or_else(|| AppError::internal("AppState missing from context"))?;
        let parts = leptos::prelude::use_context::<Parts>()
            .ok_or_else(|| AppError::internal("request parts missing from context"))?;
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| AppError::internal("session layer missing"))?;
        let ip = ClientIp::from_parts(&parts, &state).0;
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        let accepts_html = parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        let device_name = device::cookie_name(state.config.public_url.https);
        let mut device_values = cookie_values(&parts.headers, device_name).map(str::to_owned);
        // Two device cookies: neither is believed (one may have been planted).
        let device_cookie = match (device_values.next(), device_values.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        };
        let origin = Origin {
            ip: Some(ip.to_string()),
            user_agent: user_agent.clone(),
        };
        let signed = parts.extensions.get::<SignedInNow>().cloned();
        Ok(Self {
            state,
            session,
            ip,
            user_agent,
            origin,
            accepts_html,
            device_cookie,
            signed,
        })
    }

    /// This browser as sign-in sees it: its address and device cookie.
    pub fn browser(&self) -> sign_in::Browser<'_> {
        sign_in::Browser {
            ip: self.ip,
            device_cookie: self.device_cookie.as_deref(),
        }
    }

    /// The id of this browser's device token for `user`, if it holds a valid one (see
    /// `core::identity::sign_in::device_of`).
    pub async fn device_for(&self, user: &UserRow) -> Option<String> {
        sign_in::device_of(&self.cx(), user, self.browser()).await
    }

    /// Gives this browser a device token for `user` (keeping those of other accounts
    /// it holds).
    pub async fn remember_device(&self, user: &UserRow) {
        let https = self.state.config.public_url.https;
        let Some(value) = sign_in::device_cookie_value(&self.cx(), user, self.browser()).await
        else {
            return;
        };
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            device::cookie_name(https),
            device::VALID_SECS,
            if https { "; Secure" } else { "" }
        );
        if let (Some(opts), Ok(v)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            http::HeaderValue::from_str(&cookie),
        ) {
            opts.append_header(http::header::SET_COOKIE, v);
        }
    }

    /// Where this request came from, for audit rows.
    pub fn origin(&self) -> Origin {
        self.origin.clone()
    }

    /// The context a domain call runs with: the services, now, and this request's origin.
    pub fn cx(&self) -> Ctx<'_> {
        Ctx::new(&self.state, &self.origin)
    }

    /// The signed-in user and what they may do, or `Unauthenticated`.
    pub async fn signed_in(&self) -> Result<SignedIn, AppError> {
        if let Some(SignedInNow(signed)) = &self.signed {
            return Ok((**signed).clone());
        }
        current_user(&self.state, &self.session)
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    /// True for a browser form post without JavaScript (it asks for HTML back).
    pub fn is_plain_form_post(&self) -> bool {
        self.accepts_html
    }

    fn event<'a>(
        &self,
        actor: Actor<'a>,
        action: &'a str,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Event<'a> {
        Event {
            actor,
            action,
            target: None,
            ip: Some(self.ip.to_string()),
            user_agent: self.user_agent.clone(),
            outcome,
            details,
        }
    }
}

fn session_err(e: tower_sessions::session::Error) -> AppError {
    AppError::internal(format!("session store: {e}"))
}

#[tracing::instrument(skip_all)]
pub async fn sign_in(
    ctx: &RequestCtx,
    email: &str,
    password: &str,
) -> Result<SignInStep, AppError> {
    let cx = ctx.cx();
    let ok = sign_in::check_credentials(&cx, ctx.browser(), email, password).await?;
    let Some(method) = ok.next else {
        complete_sign_in(ctx, ok.user.id, cx.now, "password").await?;
        return Ok(SignInStep::Done);
    };
    // A new session ID for the pending step too: no cookie planted before the password
    // is carried into it.
    ctx.session.cycle_id().await.map_err(session_err)?;
    let attempt = sign_in::new_attempt_id();
    for (k, v) in [
        (PENDING_UID_KEY, serde_json::json!(ok.user.id)),
        (PENDING_AT_KEY, serde_json::json!(cx.now)),
        (PENDING_METHOD_KEY, serde_json::json!(method)),
        (PENDING_ATTEMPT_KEY, serde_json::json!(attempt)),
    ] {
        ctx.session.insert_value(k, v).await.map_err(session_err)?;
    }
    ctx.session.save().await.map_err(session_err)?;
    sign_in::second_step_started(&cx, &ok, method, &attempt).await?;
    Ok(SignInStep::Verify)
}

/// What follows a correct password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInStep {
    Done,
    Verify,
}

/// Signs the session in: a fresh ID (whatever cookie the browser brought, or the
/// pending step's, is not adopted), the user, and the times the timeouts count from.
/// The account's sign-in failures (password and second step) are forgotten, this
/// browser gets a device token for the account, and the owner is told when it is a
/// browser that had not signed in to the account before.
pub(crate) async fn complete_sign_in(
    ctx: &RequestCtx,
    user_id: i64,
    now: i64,
    method: &str,
) -> Result<(), AppError> {
    ctx.session.cycle_id().await.map_err(session_err)?;
    clear_pending(&ctx.session).await?;
    ctx.session
        .insert(USER_ID_KEY, user_id)
        .await
        .map_err(session_err)?;
    for (k, v) in [
        (AUTH_AT_KEY, serde_json::json!(now)),
        (SUDO_AT_KEY, serde_json::json!(now)),
        (LAST_SEEN_KEY, serde_json::json!(now)),
        (IP_KEY, serde_json::json!(ctx.ip.to_string())),
        (USER_AGENT_KEY, serde_json::json!(ctx.user_agent)),
    ] {
        ctx.session.insert_value(k, v).await.map_err(session_err)?;
    }
    ctx.session.save().await.map_err(session_err)?;
    // The sign-in is audited (with the new session) or it does not happen: a failure to
    // record it ends the session it just made, so nobody is signed in unaudited.
    let user = match sign_in::signed_in(&ctx.cx(), ctx.browser(), user_id, method).await {
        Ok(user) => user,
        Err(e) => {
            if let Err(end) = ctx.session.flush().await {
                tracing::warn!(error = %end, "ending an unaudited session failed");
            }
            return Err(e);
        }
    };
    ctx.remember_device(&user).await;
    Ok(())
}

/// Forgets the sign-in waiting for its second step in this session.
async fn clear_pending(session: &Session) -> Result<(), AppError> {
    for k in [
        PENDING_UID_KEY,
        PENDING_AT_KEY,
        PENDING_METHOD_KEY,
        PENDING_ATTEMPT_KEY,
    ] {
        session.remove_value(k).await.map_err(session_err)?;
    }
    Ok(())
}

/// The sign-in waiting for its second step in this session, if still valid.
pub async fn pending(ctx: &RequestCtx) -> Result<Option<(i64, SecondFactor, String)>, AppError> {
    let uid: Option<i64> = ctx
        .session
        .get(PENDING_UID_KEY)
        .await
        .map_err(session_err)?;
    let at: Option<i64> = ctx.session.get(PENDING_AT_KEY).await.map_err(session_err)?;
    let method: Option<SecondFactor> = ctx
        .session
        .get(PENDING_METHOD_KEY)
        .await
        .map_err(session_err)?;
    let attempt: Option<String> = ctx
        .session
        .get(PENDING_ATTEMPT_KEY)
        .await
        .map_err(session_err)?;
    match (uid, at, method, attempt) {
        (Some(uid), Some(at), Some(m), Some(a))
            if ctx.state.clock.now() - at <= email_code::VALID_SECS =>
        {
            Ok(Some((uid, m, a)))
        }
        _ => Ok(None),
    }
}

/// The second step: a TOTP code or a recovery code, or the emailed code.
#[tracing::instrument(skip_all)]
pub async fn verify_second_factor(ctx: &RequestCtx, code: &str) -> Result<(), AppError> {
    let Some((uid, method, attempt)) = pending(ctx).await? else {
        // Only a stale second step is cleared: a signed-in session stays signed in.
        clear_pending(&ctx.session).await?;
        return Err(AppError::validation(
            "code",
            "This sign-in has expired. Start again with your email and password.",
        ));
    };
    let cx = ctx.cx();
    let pending = (uid, method, attempt.as_str());
    let (_, kind) = sign_in::check_second_step(&cx, ctx.browser(), pending, code).await?;
    complete_sign_in(ctx, uid, cx.now, kind).await
}

/// Sends a new code for the pending sign-in (at most every 30 seconds): by the same
/// way as before, or by `switch_to` (email or SMS, when the user may use it), which the
/// rest of the sign-in then asks for.
pub async fn resend_code(
    ctx: &RequestCtx,
    switch_to: Option<SecondFactor>,
) -> Result<(), AppError> {
    let expired = || {
        AppError::validation(
            "code",
            "This sign-in has expired. Start again with your email and password.",
        )
    };
    let Some((uid, current, attempt)) = pending(ctx).await? else {
        return Err(expired());
    };
    let method = switch_to.unwrap_or(current);
    if current == SecondFactor::Totp {
        return Err(AppError::validation(
            "method",
            "This sign-in asks for a code from your authenticator app.",
        ));
    }
    sign_in::resend_code(&ctx.cx(), ctx.browser(), uid, method, &attempt).await?;
    if method != current {
        ctx.session
            .insert_value(PENDING_METHOD_KEY, serde_json::json!(method))
            .await
            .map_err(session_err)?;
        ctx.session.save().await.map_err(session_err)?;
    }
    Ok(())
}

pub async fn sign_out(ctx: &RequestCtx) -> Result<(), AppError> {
    let uid: Option<i64> = ctx.session.get(USER_ID_KEY).await.map_err(session_err)?;
    ctx.session.flush().await.map_err(session_err)?;
    if let Some(uid) = uid {
        let ev = ctx.event(
            Actor::User(uid),
            "auth.sign_out",
            Outcome::Success,
            serde_json::json!({}),
        );
        audit::record(&ctx.state.db, ctx.state.clock.now(), &ev).await?;
    }
    Ok(())
}

/// A signed-in user: what the browser sees and what the guard checks.
#[derive(Clone)]
pub struct SignedIn {
    pub me: Me,
    pub principal: Principal,
}

/// The signed-in, active user of this session with the permissions their role holds
/// now; ends the session when its absolute lifetime is over or the user is no longer
/// active.
pub async fn current_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<SignedIn>, AppError> {
    let Some(uid) = session.get::<i64>(USER_ID_KEY).await.map_err(session_err)? else {
        return Ok(None);
    };
    let auth_at: i64 = session
        .get(AUTH_AT_KEY)
        .await
        .map_err(session_err)?
        .unwrap_or(0);
    let now = state.clock.now();
    let settings = settings::security(&state.db, &state.config).await?;
    let ends_at = auth_at + i64::from(settings.session_absolute_hours) * 3600;
    let idle = i64::from(settings.session_idle_minutes) * 60;
    let seen: i64 = session
        .get(LAST_SEEN_KEY)
        .await
        .map_err(session_err)?
        .unwrap_or(auth_at);
    if now >= ends_at || now - seen > idle {
        session.flush().await.map_err(session_err)?;
        return Ok(None);
    }
    // The idle timeout slides: this request counts, and the cookie and row expire `idle`
    // from now (the setting may have changed since the session began). Written at most
    // once a minute (a sixtieth of the timeout when shorter: 5 s of the shortest, 5
    // minutes): a page load is then a read of the session, not a write, and the
    // timeout is as exact as that.
    if now - seen >= (idle / 60).clamp(1, 60) {
        session
            .insert(LAST_SEEN_KEY, now)
            .await
            .map_err(session_err)?;
        session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(
            time::Duration::seconds(idle),
        )));
    }
    let Some(user) = users::find_by_id(&state.db, uid).await? else {
        session.flush().await.map_err(session_err)?;
        return Ok(None);
    };
    if user.status != UserStatus::Active {
        session.flush().await.map_err(session_err)?;
        return Ok(None);
    }
    let permissions = access::role_permissions(&state.db, user.role_id).await?;
    Ok(Some(SignedIn {
        me: Me {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            role: user.role_name,
            permissions: permissions.iter().copied().collect(),
            last_login_at: user.last_login_at,
            signed_in_at: auth_at,
            session_ends_at: ends_at,
        },
        principal: Principal::user(user.id, user.role_id, permissions),
    }))
}

/// True when this session's password check is recent enough for a sensitive action.
pub async fn sudo_is_fresh(ctx: &RequestCtx) -> Result<bool, AppError> {
    Ok(sudo_secs_left(ctx).await? > 0)
}

/// For how many more seconds this session's last password check allows a sensitive
/// action (0: the password is needed now).
pub async fn sudo_secs_left(ctx: &RequestCtx) -> Result<i64, AppError> {
    let at: i64 = ctx
        .session
        .get(SUDO_AT_KEY)
        .await
        .map_err(session_err)?
        .unwrap_or(0);
    Ok((at.saturating_add(SUDO_SECS) - ctx.state.clock.now() + 1).clamp(0, SUDO_SECS + 1))
}

/// Sudo mode for actions whose forms carry no password field: refused until the
/// password is confirmed (the `SudoForm` on the page) when the last check is stale.
pub async fn require_sudo(ctx: &RequestCtx) -> Result<(), AppError> {
    if sudo_is_fresh(ctx).await? {
        Ok(())
    } else {
        Err(AppError::validation(
            "password",
            "Confirm your password first (your last check was more than 10 minutes ago).",
        ))
    }
}

/// Sudo mode: a sensitive action goes ahead when the password was checked in the last
/// ten minutes, else only with the password, checked here (throttled like sign-in, so a
/// stolen session cannot guess it) and audited when wrong.
#[tracing::instrument(skip_all)]
pub async fn confirm_sudo(ctx: &RequestCtx, user_id: i64, password: &str) -> Result<(), AppError> {
    // A password typed is always checked (a wrong one is refused, fresh or not); none
    // is needed while the last check is fresh.
    if password.is_empty() && sudo_is_fresh(ctx).await? {
        return Ok(());
    }
    check_password(ctx, user_id, password, "sudo").await?;
    ctx.session
        .insert(SUDO_AT_KEY, ctx.state.clock.now())
        .await
        .map_err(session_err)
}

/// Checks the signed-in user's own password (sudo, password change): throttled, and a
/// wrong one is audited.
pub async fn check_password(
    ctx: &RequestCtx,
    user_id: i64,
    password: &str,
    purpose: &str,
) -> Result<(), AppError> {
    sign_in::check_own_password(&ctx.cx(), ctx.browser(), user_id, password, purpose).await
}

/// The `Cache-Control` of an answer that carries a secret (see [`carries_secret`]; the
/// REST API's new and rolled keys send it too).
pub const SECRET_CACHE_CONTROL: &str = "no-store, no-transform";

/// Marks this answer (a server function's, or the page whose data it loads) as carrying
/// a secret: a new key, a TOTP seed, recovery codes, a signing secret, an invitation's
/// token. `Cache-Control: no-store, no-transform`: stored nowhere, and never compressed
/// by the server, because the secret sits beside text the requester controls and a
/// compressed answer's length would tell an observer whether a guess matched (BREACH).
pub fn carries_secret() {
    if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        opts.insert_header(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static(SECRET_CACHE_CONTROL),
        );
    }
}

/// Runs a create form's action once per rendered form (`core::infra::submissions`): a
/// replay of the same form (a double click, a resent post, a second tab) is refused with
/// what the first submission made; a failed action gives the token back so that the
/// corrected form can be sent again. An empty `form_token` (a caller that is not a
/// rendered form) runs the action unguarded; a malformed one is refused.
pub async fn once_per_form<T>(
    ctx: &RequestCtx,
    user_id: i64,
    form_token: &str,
    made: impl FnOnce(&T) -> String,
    act: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    use crate::core::infra::submissions::{self, Claim, FormToken};
    let token = FormToken::parse(form_token).map_err(|_| {
        AppError::validation(
            "form_token",
            "This form could not be read: reload the page and fill it in again.",
        )
    })?;
    let Some(token) = token else {
        return act.await;
    };
    let db = &ctx.state.db;
    let now = ctx.state.clock.now();
    match submissions::claim(db, &token, user_id, now).await? {
        Claim::Replayed {
            made: Some(made), ..
        } => {
            return Err(AppError::Conflict(format!(
                "This form was already sent, and made {made}. Nothing was done again."
            )))
        }
        Claim::Replayed { made: None, since } if now - since < 60 => {
            return Err(AppError::Conflict(
                "This form is being sent already: wait for its answer, or reload the page to \
                 use it again."
                    .into(),
            ))
        }
        Claim::Replayed { made: None, .. } => {
            return Err(AppError::Conflict(
                "This form was sent before, but its answer never arrived (the connection was \
                 cut). Look for what it made before sending it again: a key whose secret you \
                 did not see can be rolled or revoked."
                    .into(),
            ))
        }
        Claim::TooMany => {
            return Err(AppError::RateLimited {
                retry_after_secs: 600,
            })
        }
        Claim::First => {}
    }
    match act.await {
        Ok(out) => {
            // What was made is done whatever happens next; a failure to note it only
            // makes a replay's answer less precise.
            if let Err(e) = submissions::complete(db, &token, &made(&out), now).await {
                tracing::warn!(error = %e, "noting a form's submission failed");
            }
            Ok(out)
        }
        Err(e) => {
            if let Err(re) = submissions::release(db, &token).await {
                tracing::warn!(error = %re, "releasing a form's token failed");
            }
            Err(e)
        }
    }
}
