//! Panel sign-in and sign-out.
//!
//! Flow: the login form posts email and password to the `auth/login` server function.
//! The password is checked with argon2id (a dummy hash stands in for an unknown user, so
//! unknown user, wrong password and disabled user take the same time and get the same
//! answer; the real reason is kept in the audit log only). On success the session gets a
//! new ID (a planted cookie is never adopted), then the user's id and the time of
//! sign-in, which the absolute timeout counts from; the idle timeout is the session
//! cookie's and row's expiry, pushed forward on each request.

use crate::error::AppError;
use crate::roles::Permission;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use components::{LoginPage, SignOutButton, SudoForm, VerifyPage};

/// The signed-in user as the browser sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    /// The name of the user's role.
    pub role: String,
    /// What the role allows now (the navigation shows only what these open).
    pub permissions: Vec<Permission>,
    pub last_login_at: Option<i64>,
    /// When this session signed in and when it will end at the latest (Unix seconds).
    pub signed_in_at: i64,
    pub session_ends_at: i64,
}

pub use model::users::{PendingStep, SecondFactor, GENERIC_SIGN_IN_ERROR};

/// A token for a create form being rendered: its submission is acted on once
/// (`ssr::once_per_form`). Signed-in users only.
#[server(prefix = "/fn", endpoint = "form/token")]
pub async fn new_form_token() -> Result<String, AppError> {
    async {
        let ctx = ssr::RequestCtx::from_leptos().await?;
        ctx.signed_in().await?;
        Ok(crate::core::infra::submissions::FormToken::issue())
    }
    .await
    .map_err(crate::error::reply)
}

/// `next`: the page to return to after signing in (a path of this site; anything else
/// is ignored and the overview follows).
#[server(prefix = "/fn", endpoint = "auth/login")]
pub async fn login(
    email: String,
    password: String,
    #[server(default)] next: String,
) -> Result<(), AppError> {
    use crate::core::identity::sign_in::{return_path, with_return};
    let ctx = ssr::RequestCtx::from_leptos().await?;
    match ssr::sign_in(&ctx, &email, &password).await {
        Ok(ssr::SignInStep::Done) => {
            leptos_axum::redirect(return_path(&next).unwrap_or("/"));
            Ok(())
        }
        Ok(ssr::SignInStep::Verify) => {
            leptos_axum::redirect(&with_return("/login/verify", &next));
            Ok(())
        }
        // Without JavaScript the refusal comes back as the sign-in page drawn again, with
        // the email as typed (never the password): see the server's `kept_form`.
        Err(e) => Err(crate::error::reply(e)),
    }
}

#[server(prefix = "/fn", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    let ctx = ssr::RequestCtx::from_leptos().await?;
    ssr::sign_out(&ctx).await?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// The signed-in user, or `Unauthenticated`.
#[server(prefix = "/fn", endpoint = "auth/me")]
pub async fn get_me() -> Result<Me, AppError> {
    let ctx = ssr::RequestCtx::from_leptos().await?;
    ctx.signed_in()
        .await
        .map(|s| s.me)
        .map_err(crate::error::reply)
}

/// Whether this browser is signed in: `false` (not an error) for anyone else, so the
/// sign-in pages can ask without a refusal in the browser's console.
#[server(prefix = "/fn", endpoint = "auth/signed_in")]
pub async fn is_signed_in() -> Result<bool, AppError> {
    async {
        let ctx = ssr::RequestCtx::from_leptos().await?;
        Ok(ctx.signed_in().await.is_ok())
    }
    .await
    .map_err(crate::error::reply)
}

/// What the second-step page shows: which code to ask for, and how else it may come.
#[server(prefix = "/fn", endpoint = "auth/pending")]
pub async fn get_pending() -> Result<Option<PendingStep>, AppError> {
    let ctx = ssr::RequestCtx::from_leptos().await?;
    async {
        match ssr::pending(&ctx).await? {
            Some((uid, method, _)) => Ok(Some(
                crate::core::identity::sign_in::pending_step(&ctx.cx(), uid, method).await?,
            )),
            None => Ok(None),
        }
    }
    .await
    .map_err(crate::error::reply)
}

/// `next`: as for [`login`].
#[server(prefix = "/fn", endpoint = "auth/verify")]
pub async fn verify(code: String, #[server(default)] next: String) -> Result<(), AppError> {
    let ctx = ssr::RequestCtx::from_leptos().await?;
    ssr::verify_second_factor(&ctx, &code)
        .await
        .map_err(crate::error::reply)?;
    leptos_axum::redirect(crate::core::identity::sign_in::return_path(&next).unwrap_or("/"));
    Ok(())
}

/// A new code for the pending sign-in; `method` (`email` or `sms`, optional): send it
/// that way instead from now on.
#[server(prefix = "/fn", endpoint = "auth/resend")]
pub async fn resend(#[server(default)] method: String) -> Result<(), AppError> {
    let ctx = ssr::RequestCtx::from_leptos().await?;
    let switch_to = match method.as_str() {
        "" => None,
        "email" => Some(SecondFactor::Email),
        "sms" => Some(SecondFactor::Sms),
        _ => {
            return Err(crate::error::reply(AppError::validation(
                "method",
                "Choose email or sms.",
            )))
        }
    };
    ssr::resend_code(&ctx, switch_to)
        .await
        .map_err(crate::error::reply)
}

/// Sudo mode: confirms the password for the sensitive actions of the next 10 minutes.
#[server(prefix = "/fn", endpoint = "auth/sudo")]
pub async fn confirm_password(password: String) -> Result<(), AppError> {
    async {
        let ctx = ssr::RequestCtx::from_leptos().await?;
        let who = ctx.signed_in().await?;
        ssr::check_password(&ctx, who.me.id, &password, "sudo").await?;
        ctx.session
            .insert(ssr::SUDO_AT_KEY, ctx.state.clock.now())
            .await
            .map_err(|e| AppError::internal(format!("session store: {e}")))
    }
    .await
    .map_err(crate::error::reply)
}

/// For how many more seconds sensitive actions go ahead without the password (0: they
/// need it now).
#[server(prefix = "/fn", endpoint = "auth/sudo_status")]
pub async fn sudo_secs_left() -> Result<i64, AppError> {
    async {
        let ctx = ssr::RequestCtx::from_leptos().await?;
        ctx.signed_in().await?;
        ssr::sudo_secs_left(&ctx).await
    }
    .await
    .map_err(crate::error::reply)
}
