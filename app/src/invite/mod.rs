//! `/invite/{token}`: accepting an invitation. Public (the token is the credential);
//! the panel network gate still applies. Expired, used and unknown links get a clear
//! page; a valid one asks for a name and a password, then signs the new user in and
//! sends them to /account with a welcome, where they can set up an authenticator app.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::InvitePage;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteView {
    Valid { email: String, display_name: String },
    Expired,
    Used,
    Unknown,
}

#[server(prefix = "/fn", endpoint = "invite/get")]
pub async fn get_invite(token: String) -> Result<InviteView, AppError> {
    // The invitation page carries its token (the link is the credential).
    crate::auth::ssr::carries_secret();
    async {
        use crate::core::identity::invitations::{lookup, LinkState};
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        Ok(
            match lookup(&ctx.state.db, ctx.state.clock.now(), &token).await? {
                LinkState::Valid {
                    email,
                    display_name,
                } => InviteView::Valid {
                    email,
                    display_name,
                },
                LinkState::Expired => InviteView::Expired,
                LinkState::Used => InviteView::Used,
                LinkState::Unknown => InviteView::Unknown,
            },
        )
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "invite/accept")]
pub async fn accept_invite(
    token: String,
    display_name: String,
    password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        if password != confirm_password {
            return Err(AppError::validation(
                "confirm_password",
                "The two passwords are not the same.",
            ));
        }
        let st = &ctx.state;
        let now = st.clock.now();
        let user_id = crate::core::identity::invitations::accept(
            &st.db,
            &st.config,
            &st.hasher,
            now,
            &ctx.origin(),
            &crate::core::identity::invitations::Acceptance {
                token: &token,
                display_name: &display_name,
                password: &password,
            },
        )
        .await?;
        crate::auth::ssr::complete_sign_in(&ctx, user_id, now, "invitation").await?;
        leptos_axum::redirect("/account?welcome");
        Ok(())
    }
    .await
    .map_err(crate::error::reply)
}
