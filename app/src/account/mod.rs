//! `/account`: the signed-in user's own sessions (browser, address, last seen; end any
//! of them) and password change (needs the current password; ends the other sessions).

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::AccountPage;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The SHA-256 of the session ID, as stored: it names the session without being
    /// usable as a cookie.
    pub id: String,
    pub browser: String,
    pub ip: String,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
    pub current: bool,
}

#[server(prefix = "/fn", endpoint = "account/sessions")]
pub async fn list_sessions() -> Result<Vec<SessionInfo>, AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        let current = ctx
            .session
            .id()
            .map(|id| crate::core::infra::session_store::id_hash(&id));
        let rows = ctx.state.sessions.list_for_user(who.me.id).await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                current: current.as_deref() == Some(r.id_hash.as_str()),
                id: r.id_hash,
                browser: crate::core::infra::user_agent::describe_browser(r.user_agent.as_deref()),
                ip: r.ip.unwrap_or_else(|| "unknown".into()),
                signed_in_at: r.created_at,
                last_seen_at: r.last_seen_at,
            })
            .collect())
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "account/end_session")]
pub async fn end_session(id: String) -> Result<(), AppError> {
    async {
        use crate::core::audit::{self, Actor, Event};
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        // Only the user's own sessions: the delete is scoped by user id.
        if !ctx.state.sessions.delete_one(who.me.id, &id).await? {
            return Err(AppError::NotFound);
        }
        let ev = Event::success(
            Actor::User(who.me.id),
            "session.ended",
            &ctx.origin(),
            None,
            serde_json::json!({ "session": &id[..id.len().min(12)] }),
        );
        audit::record(&ctx.state.db, ctx.state.clock.now(), &ev)
            .await
            .map_err(AppError::internal)
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        let st = &ctx.state;
        if new_password != confirm_password {
            return Err(AppError::validation(
                "confirm_password",
                "The two new passwords are not the same.",
            ));
        }
        crate::auth::ssr::check_password(&ctx, who.me.id, &current_password, "password_change")
            .await
            .map_err(|e| match e {
                AppError::Validation { message, .. } => {
                    AppError::validation("current_password", message)
                }
                other => other,
            })?;
        let (id, email) = (who.me.id, &who.me.email);
        crate::core::identity::users::set_password(&ctx.cx(), id, email, &new_password).await?;
        // Device tokens are bound to the password: this browser gets a new one, every
        // other browser's (and anyone's who knew the old password) no longer counts.
        if let Some(user) = crate::core::identity::users::find_by_id(&st.db, who.me.id).await? {
            ctx.remember_device(&user).await;
        }
        // This browser stays signed in under a new session ID; every other session ends.
        ctx.session
            .cycle_id()
            .await
            .map_err(|e| AppError::internal(format!("session store: {e}")))?;
        ctx.session
            .save()
            .await
            .map_err(|e| AppError::internal(format!("session store: {e}")))?;
        let keep = ctx
            .session
            .id()
            .map(|id| crate::core::infra::session_store::id_hash(&id))
            .unwrap_or_default();
        st.sessions.delete_others(who.me.id, &keep).await?;
        Ok(())
    }
    .await
    .map_err(crate::error::reply)
}

/// The authenticator app section of /account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpInfo {
    pub enrolled: bool,
    pub recovery_left: i64,
    /// A seed waiting for its confirming code: the secret as text, the otpauth URL and
    /// its QR code (SVG).
    pub pending: Option<(String, String, String)>,
    /// Recovery codes made by the confirmation just now: shown this once.
    pub new_codes: Option<Vec<String>>,
}

/// Session key: the recovery codes to show once, after confirmation.
#[cfg(feature = "ssr")]
const RECOVERY_ONCE_KEY: &str = "recovery_once";

#[server(prefix = "/fn", endpoint = "account/totp")]
pub async fn totp_status() -> Result<TotpInfo, AppError> {
    // A seed waiting for its code, or recovery codes shown once.
    crate::auth::ssr::carries_secret();
    async {
        use crate::core::identity::totp;
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        let st = &ctx.state;
        let new_codes: Option<Vec<String>> = ctx
            .session
            .remove(RECOVERY_ONCE_KEY)
            .await
            .map_err(|e| AppError::internal(format!("session store: {e}")))?;
        let pending = totp::pending(&st.db, st.master_key.expose(), who.me.id, &who.me.email)
            .await?
            .map(|p| (p.secret_base32, p.otpauth_url, p.qr_svg));
        Ok(TotpInfo {
            enrolled: totp::is_enrolled(&st.db, who.me.id).await?,
            recovery_left: totp::recovery_codes_left(&st.db, who.me.id).await?,
            pending,
            new_codes,
        })
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "account/totp/start")]
pub async fn start_totp() -> Result<(), AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        // A stolen session must not bind its own authenticator (and get the recovery
        // codes): the password, when it was last checked more than 10 minutes ago.
        crate::auth::ssr::require_sudo(&ctx).await?;
        let st = &ctx.state;
        crate::core::identity::totp::start(
            &st.db,
            st.master_key.expose(),
            st.clock.now(),
            who.me.id,
            &who.me.email,
        )
        .await
        .map(|_| ())
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "account/totp/confirm")]
pub async fn confirm_totp(code: String) -> Result<(), AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        crate::auth::ssr::require_sudo(&ctx).await?;
        let st = &ctx.state;
        let (id, email) = (who.me.id, &who.me.email);
        let codes = crate::core::identity::totp::confirm(&ctx.cx(), id, email, &code).await?;
        // Device tokens are bound to the second step too: this browser gets a new one.
        if let Some(user) = crate::core::identity::users::find_by_id(&st.db, who.me.id).await? {
            ctx.remember_device(&user).await;
        }
        ctx.session
            .insert(RECOVERY_ONCE_KEY, codes)
            .await
            .map_err(|e| AppError::internal(format!("session store: {e}")))
    }
    .await
    .map_err(crate::error::reply)
}

/// The phone number for SMS sign-in codes, as `/account` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneInfo {
    /// The confirmed number, whole (it is the viewer's own).
    pub number: Option<String>,
    /// Whether SMS codes are on for this server (Settings > General).
    pub available: bool,
}

#[server(prefix = "/fn", endpoint = "account/phone")]
pub async fn phone_status() -> Result<PhoneInfo, AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        use crate::core::identity::phone;
        Ok(PhoneInfo {
            number: phone::confirmed(&ctx.state.db, who.me.id).await?,
            available: phone::code_sender(&ctx.cx()).await?.is_some(),
        })
    }
    .await
    .map_err(crate::error::reply)
}

/// Sends a code by SMS to `number`; returns the number as it will be stored (for the
/// confirm form).
#[server(prefix = "/fn", endpoint = "account/phone/start")]
pub async fn start_phone(number: String) -> Result<String, AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        // A stolen session must not route sign-in codes to its own phone.
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::phone::start(&ctx.cx(), who.me.id, &who.me.email, &number).await
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "account/phone/confirm")]
pub async fn confirm_phone(number: String, code: String) -> Result<(), AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::phone::confirm(&ctx.cx(), who.me.id, &who.me.email, &number, &code)
            .await
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "account/phone/remove")]
pub async fn remove_phone() -> Result<(), AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::phone::remove(&ctx.cx(), who.me.id, &who.me.email).await
    }
    .await
    .map_err(crate::error::reply)
}
