//! Server side of sign-in: the domain code the server functions (and, later, the REST
//! API's session-free paths) call.

use super::Me;
use crate::core::{
    access::{self, Principal, Subject},
    audit::{self, Actor, Event, Origin, Outcome},
    client_ip::client_addr,
    password::MAX_PASSWORD_BYTES,
    session_store::USER_ID_KEY,
    state::AppState,
    users::{self, UserStatus},
};
use crate::error::AppError;
use http::request::Parts;
use std::net::{IpAddr, SocketAddr};
use tower_sessions::Session;

/// Session key: when this session signed in (Unix seconds), for the absolute timeout.
pub const AUTH_AT_KEY: &str = "auth_at";

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
    accepts_html: bool,
}

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
        Ok(Self {
            state,
            session,
            ip,
            user_agent,
            accepts_html,
        })
    }

    /// Where this request came from, for audit rows.
    pub fn origin(&self) -> Origin {
        Origin {
            ip: Some(self.ip.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }

    /// The signed-in user and what they may do, or `Unauthenticated`.
    pub async fn signed_in(&self) -> Result<SignedIn, AppError> {
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
pub async fn sign_in(ctx: &RequestCtx, email: &str, password: &str) -> Result<(), AppError> {
    let st = &ctx.state;
    let failed = || AppError::validation("credentials", super::GENERIC_SIGN_IN_ERROR);
    if email.trim().is_empty() || password.is_empty() {
        return Err(AppError::validation(
            "credentials",
            "Enter your email and password.",
        ));
    }
    // Refused before any hashing: a huge password must not cost CPU.
    if password.len() > MAX_PASSWORD_BYTES || email.len() > 320 {
        return Err(failed());
    }
    let normalised = users::normalise_email(email).ok();
    let user = match &normalised {
        Some(e) => users::find_by_email(&st.db, e)
            .await
            .map_err(AppError::internal)?,
        None => None,
    };
    // Always run argon2 (against a dummy hash when there is no user) so timing is the same.
    let matches = st
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await
        .map_err(AppError::internal)?;
    let reason = match &user {
        None => Some("unknown_user"),
        Some(_) if !matches => Some("wrong_password"),
        Some(u) if u.status != UserStatus::Active => Some("user_not_active"),
        Some(_) => None,
    };
    let now = st.clock.now();
    if let Some(reason) = reason {
        let actor = user
            .as_ref()
            .map_or(Actor::Anonymous, |u| Actor::User(u.id));
        let mut ev = ctx.event(
            actor,
            "auth.sign_in",
            Outcome::Failure,
            serde_json::json!({ "reason": reason }),
        );
        ev.target = normalised.clone();
        audit::record(&st.db, now, &ev)
            .await
            .map_err(AppError::internal)?;
        tracing::info!(reason, ip = %ctx.ip, "sign-in failed");
        return Err(failed());
    }
    let user = user.expect("reason is None only with a user");

    // A fresh session ID at sign-in: whatever cookie the browser brought is not adopted.
    ctx.session.cycle_id().await.map_err(session_err)?;
    ctx.session
        .insert(USER_ID_KEY, user.id)
        .await
        .map_err(session_err)?;
    ctx.session
        .insert(AUTH_AT_KEY, now)
        .await
        .map_err(session_err)?;
    ctx.session.save().await.map_err(session_err)?;
    users::touch_last_login(&st.db, user.id, now)
        .await
        .map_err(AppError::internal)?;
    let mut ev = ctx.event(
        Actor::User(user.id),
        "auth.sign_in",
        Outcome::Success,
        serde_json::json!({}),
    );
    ev.target = Some(user.email.clone());
    audit::record(&st.db, now, &ev)
        .await
        .map_err(AppError::internal)?;
    tracing::info!(user_id = user.id, ip = %ctx.ip, "signed in");
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
        audit::record(&ctx.state.db, ctx.state.clock.now(), &ev)
            .await
            .map_err(AppError::internal)?;
    }
    Ok(())
}

/// A signed-in user: what the browser sees and what the guard checks.
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
    let ends_at = auth_at + state.config.session_absolute.as_secs() as i64;
    if now >= ends_at {
        session.flush().await.map_err(session_err)?;
        return Ok(None);
    }
    let Some(user) = users::find_by_id(&state.db, uid)
        .await
        .map_err(AppError::internal)?
    else {
        session.flush().await.map_err(session_err)?;
        return Ok(None);
    };
    if user.status != UserStatus::Active {
        session.flush().await.map_err(session_err)?;
        return Ok(None);
    }
    let permissions = access::role_permissions(&state.db, user.role_id)
        .await
        .map_err(AppError::internal)?;
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
        principal: Principal::new(Subject::User(user.id), user.role_id, permissions),
    }))
}
