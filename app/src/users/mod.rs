//! Users (`/users`, `user.manage`): the list, creating a user with a password (until
//! invitations land), changing a role, disabling and enabling.
//!
//! Rules enforced in the domain code (`core::identity::users`), whatever the form sends: nobody
//! changes their own role or status; nobody assigns a role holding a permission they
//! lack; only an Owner makes, demotes or disables an Owner; the last active Owner is
//! never demoted or disabled.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::UsersPage;

pub use model::users::{UserInfo, UserStatus};

/// What the users page needs: the users, the roles to choose from, and who is looking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersData {
    pub users: Vec<UserInfo>,
    pub roles: Vec<(i64, String)>,
}

#[server(prefix = "/fn", endpoint = "users/list")]
pub async fn list_users() -> Result<UsersData, AppError> {
    crate::guarded!(crate::roles::Permission::UserManage, |ctx, _grant| async {
        let users = crate::core::identity::users::list(&ctx.state.db).await?;
        let roles = crate::core::identity::roles::list(&ctx.state.db)
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        Ok(UsersData { users, roles })
    })
}

#[server(prefix = "/fn", endpoint = "users/create")]
pub async fn create_user(
    email: String,
    display_name: String,
    password: String,
    role_id: i64,
    #[server(default)] form_token: String,
) -> Result<i64, AppError> {
    crate::guarded!(crate::roles::Permission::UserManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        let st = &ctx.state;
        let made = |_: &i64| format!("the user {}", email.trim());
        let uid = grant.principal().user_id();
        crate::auth::ssr::once_per_form(
            &ctx,
            uid,
            &form_token,
            made,
            crate::core::identity::users::create_user(
                &st.db,
                &st.config,
                &st.hasher,
                st.clock.now(),
                &grant,
                &ctx.origin(),
                &crate::core::identity::users::Registration {
                    email: &email,
                    display_name: Some(&display_name),
                    password: &password,
                    role_id,
                },
            ),
        )
        .await
    })
}

#[server(prefix = "/fn", endpoint = "users/set_role")]
pub async fn set_user_role(user_id: i64, role_id: i64) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::UserManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::users::change_role(
            &ctx.state.db,
            ctx.state.clock.now(),
            &grant,
            &ctx.origin(),
            user_id,
            role_id,
        )
        .await
        // The user's keys do only what the new role allows, from their next request (on
        // PostgreSQL every other instance hears of it through the keyward_keys trigger).
        .inspect(|_| ctx.state.keys.bump())
    })
}

/// `enabled`: "true" enables, anything else disables.
#[server(prefix = "/fn", endpoint = "users/set_enabled")]
pub async fn set_user_enabled(user_id: i64, enabled: bool) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::UserManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::users::set_enabled(
            &ctx.state.db,
            &ctx.state.sessions,
            ctx.state.clock.now(),
            &grant,
            &ctx.origin(),
            user_id,
            enabled,
        )
        .await
        // A disabled owner's keys stop at the next request (on PostgreSQL every other
        // instance hears of it through the keyward_keys trigger).
        .inspect(|_| ctx.state.keys.bump())
    })
}

/// Removes another user's authenticator app (and recovery codes); their sessions end.
#[server(prefix = "/fn", endpoint = "users/reset_2fa")]
pub async fn reset_user_2fa(user_id: i64) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::UserManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::totp::reset(&ctx.cx(), &grant, user_id).await
    })
}

/// Invites someone by email: they get a single-use link (72 hours) to set a password.
#[server(prefix = "/fn", endpoint = "users/invite")]
pub async fn invite_user(
    email: String,
    display_name: String,
    role_id: i64,
    #[server(default)] form_token: String,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::UserManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        let st = &ctx.state;
        let made = |_: &()| format!("an invitation to {}", email.trim());
        let uid = grant.principal().user_id();
        crate::auth::ssr::once_per_form(
            &ctx,
            uid,
            &form_token,
            made,
            crate::core::identity::invitations::invite(
                &st.db,
                &st.config,
                &st.mailer,
                st.clock.now(),
                &grant,
                &ctx.origin(),
                &crate::core::identity::invitations::Invite {
                    email: &email,
                    display_name: Some(&display_name),
                    role_id,
                },
            ),
        )
        .await
    })
}
