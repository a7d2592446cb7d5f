//! Settings > General (`/settings`, `settings.manage`): who may sign in (email domains),
//! from where (panel network allow-list), session timeouts and sign-in throttling.
//! Saving asks for the password again when it was last checked more than 10 minutes
//! ago, and is audited with the old and new values.

// The save server function takes the form's fields as arguments (so the page works as
// a plain HTML form); the macro's generated client function inherits their number.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::SettingsPage;

/// The security settings. Lists are normalised (domains in ASCII form, networks as
/// CIDRs); empty lists allow everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecuritySettings {
    /// A second step at sign-in for everyone: the authenticator app for users who set
    /// one up, an emailed code for the others. (Users with an authenticator app always
    /// use it, whatever this says.)
    pub second_factor_required: bool,
    pub allowed_domains: Vec<String>,
    pub panel_networks: Vec<String>,
    pub session_idle_minutes: u32,
    pub session_absolute_hours: u32,
    /// Failed sign-ins from one address to one account before delays start.
    pub throttle_account_attempts: u32,
    /// Failed sign-ins from one address (any account) before delays start.
    pub throttle_ip_attempts: u32,
    /// The longest delay, in seconds (delays double from 1 s up to this).
    pub throttle_max_delay_secs: u32,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            second_factor_required: false,
            allowed_domains: Vec::new(),
            panel_networks: Vec::new(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            throttle_account_attempts: 5,
            throttle_ip_attempts: 50,
            throttle_max_delay_secs: 900,
        }
    }
}

/// Settings > Keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeySettings {
    /// Active REST keys one user may hold for one app.
    pub max_active_per_user_per_app: u32,
    /// The longest expiry a new key may have, in days (0: no maximum, "never" allowed).
    pub max_expiry_days: u32,
    /// What the create form proposes: "7", "30", "90" or "never".
    pub default_expiry: String,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            max_active_per_user_per_app: 10,
            max_expiry_days: 0,
            default_expiry: "90".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneralView {
    pub settings: SecuritySettings,
    /// The address Keyward sees for this request (trusted-proxy rules applied).
    pub your_address: String,
    /// True when saving will ask for the password.
    pub needs_password: bool,
    pub keys: KeySettings,
}

#[server(prefix = "/fn", endpoint = "settings/general")]
pub async fn get_general() -> Result<GeneralView, AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, _grant| async {
            let settings = crate::core::settings::security(&ctx.state.db, &ctx.state.config)
                .await
                .map_err(AppError::internal)?;
            Ok(GeneralView {
                keys: crate::core::settings::keys(&ctx.state.db)
                    .await
                    .map_err(AppError::internal)?,
                settings,
                your_address: ctx.ip.to_string(),
                needs_password: !crate::auth::ssr::sudo_is_fresh(&ctx).await?,
            })
        }
    )
}

#[server(prefix = "/fn", endpoint = "settings/general/save")]
pub async fn save_general(
    second_factor: String,
    allowed_domains: String,
    panel_networks: String,
    session_idle_minutes: u32,
    session_absolute_hours: u32,
    throttle_account_attempts: u32,
    throttle_ip_attempts: u32,
    throttle_max_delay_secs: u32,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            use crate::core::settings;
            let form = settings::SecurityForm {
                second_factor,
                allowed_domains,
                panel_networks,
                session_idle_minutes,
                session_absolute_hours,
                throttle_account_attempts,
                throttle_ip_attempts,
                throttle_max_delay_secs,
            };
            let new = settings::parse_form(&form, ctx.ip)?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            settings::save_security(
                &ctx.state.db,
                &ctx.state.config,
                ctx.state.clock.now(),
                &grant,
                &ctx.origin(),
                &new,
            )
            .await
        }
    )
}

#[server(prefix = "/fn", endpoint = "settings/keys/save")]
pub async fn save_keys(
    max_active_per_user_per_app: u32,
    max_expiry_days: u32,
    default_expiry: String,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            let new = crate::core::settings::parse_keys(
                max_active_per_user_per_app,
                max_expiry_days,
                &default_expiry,
            )?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            crate::core::settings::save_keys(
                &ctx.state.db,
                ctx.state.clock.now(),
                &grant,
                &ctx.origin(),
                &new,
            )
            .await
        }
    )
}
