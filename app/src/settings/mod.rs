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

/// Settings > Messages: the four-eyes rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageSettings {
    /// Messages wait for an approver unless an app's override says otherwise.
    pub approval_required: bool,
    /// Distinct approvers (never the author) a message needs: 1 or 2.
    pub approvals_needed: u32,
    /// A message still pending after this many hours expires.
    pub pending_expiry_hours: u32,
    /// Apps whose rule differs from `approval_required`: (app id, required).
    pub app_overrides: Vec<(i64, bool)>,
}

impl Default for MessageSettings {
    fn default() -> Self {
        Self {
            approval_required: true,
            approvals_needed: 1,
            pending_expiry_hours: 72,
            app_overrides: Vec::new(),
        }
    }
}

impl MessageSettings {
    /// Whether messages of `app_id` wait for approval.
    pub fn required_for(&self, app_id: i64) -> bool {
        self.app_overrides
            .iter()
            .find(|(a, _)| *a == app_id)
            .map_or(self.approval_required, |(_, r)| *r)
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
    pub messages: MessageSettings,
    /// Every app (id, name), for the per-app approval overrides.
    pub apps: Vec<(i64, String)>,
}

#[server(prefix = "/fn", endpoint = "settings/general")]
pub async fn get_general() -> Result<GeneralView, AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, _grant| async {
            let settings = crate::core::settings::security(&ctx.state.db, &ctx.state.config)
                .await
                .map_err(AppError::internal)?;
            let db = &ctx.state.db;
            Ok(GeneralView {
                keys: crate::core::settings::keys(db)
                    .await
                    .map_err(AppError::internal)?,
                messages: crate::core::settings::messages(db)
                    .await
                    .map_err(AppError::internal)?,
                apps: crate::core::keys::list_apps(db)
                    .await
                    .map_err(AppError::internal)?
                    .into_iter()
                    .map(|a| (a.id, a.name))
                    .collect(),
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

/// `overrides`: one `app_id=default|required|not_required` entry per app (the form's
/// selects, joined by the page; the server parses and checks each).
#[server(prefix = "/fn", endpoint = "settings/messages/save")]
pub async fn save_messages(
    approval_required: String,
    approvals_needed: u32,
    pending_expiry_hours: u32,
    #[server(default)] overrides: Vec<String>,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            let db = &ctx.state.db;
            let new = crate::core::settings::parse_messages(
                db,
                &approval_required,
                approvals_needed,
                pending_expiry_hours,
                &overrides,
            )
            .await?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            crate::core::settings::save_messages(
                db,
                ctx.state.clock.now(),
                &grant,
                &ctx.origin(),
                &new,
            )
            .await
        }
    )
}
