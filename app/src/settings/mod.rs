//! Settings > General (`/settings`, `settings.manage`): who may sign in (email domains),
//! from where (panel network allow-list), session timeouts and sign-in throttling.
//! Saving asks for the password again when it was last checked more than 10 minutes
//! ago, and is audited with the old and new values.

// The save server function takes the form's fields as arguments (so the page works as
// a plain HTML form); the macro's generated client function inherits their number.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::SettingsPage;

pub use model::settings::{
    AlertSettings, ChannelPolicy, ChannelSettings, KeySettings, MessageSettings, SecurityForm,
    SecuritySettings,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneralView {
    pub settings: SecuritySettings,
    /// The address Keyward sees for this request (trusted-proxy rules applied).
    pub your_address: String,
    /// True when saving will ask for the password.
    pub needs_password: bool,
    pub keys: KeySettings,
    pub messages: MessageSettings,
    pub alerts: AlertSettings,
    pub channels: ChannelSettings,
    /// Every app (id, name), for the per-app approval overrides.
    pub apps: Vec<(i64, String)>,
    /// Every SMS sender number, for the one SMS codes come from.
    #[serde(default)]
    pub sender_numbers: Vec<String>,
}

#[server(prefix = "/fn", endpoint = "settings/general")]
pub async fn get_general() -> Result<GeneralView, AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, _grant| async {
            let settings =
                crate::core::settings::security(&ctx.state.db, &ctx.state.config).await?;
            let db = &ctx.state.db;
            Ok(GeneralView {
                keys: crate::core::settings::keys(db).await?,
                messages: crate::core::settings::messages(db).await?,
                alerts: crate::core::settings::alerts(db).await?,
                channels: crate::core::settings::channels(db).await?,
                apps: crate::core::keys::apps::list_apps(db)
                    .await?
                    .into_iter()
                    .map(|a| (a.id, a.name))
                    .collect(),
                sender_numbers: crate::core::channels::numbers::all(db).await?,
                settings,
                your_address: ctx.ip.to_string(),
                needs_password: !crate::auth::ssr::sudo_is_fresh(&ctx).await?,
            })
        }
    )
}

#[server(prefix = "/fn", endpoint = "settings/general/save")]
pub async fn save_general(
    #[server(flatten)] form: SecurityForm,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            use crate::core::settings;
            let new = settings::parse_form(&form, ctx.ip)?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            crate::core::identity::sign_in::save_security_settings(&ctx.cx(), &grant, &new).await
        }
    )
}

/// `require_approval`: "off" or "required".
#[server(prefix = "/fn", endpoint = "settings/keys/save")]
pub async fn save_keys(
    max_active_per_user_per_app: u32,
    max_expiry_days: u32,
    default_expiry: String,
    #[server(default)] leak_action: String,
    #[server(default)] disable_unused_days: u32,
    #[server(default)] require_approval: String,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            // A form from before a choice existed keeps the current one.
            let current = crate::core::settings::keys(&ctx.state.db).await?;
            let leak_action = if leak_action.is_empty() {
                current.leak_action
            } else {
                leak_action
            };
            let require_approval = match require_approval.as_str() {
                "" => current.require_approval,
                "off" => false,
                "required" => true,
                _ => {
                    return Err(AppError::validation(
                        "require_approval",
                        "Choose whether new keys need approval.",
                    ))
                }
            };
            let new = crate::core::settings::check_keys(KeySettings {
                max_active_per_user_per_app,
                max_expiry_days,
                default_expiry,
                leak_action,
                disable_unused_days,
                require_approval,
            })?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            crate::core::settings::save_keys(&ctx.cx(), &grant, &new).await
        }
    )
}

/// One channel's policy (Settings > Channels); the form's booleans are "true"/"false".
#[server(prefix = "/fn", endpoint = "settings/channels/save")]
pub async fn save_channel(
    channel: String,
    #[server(flatten)] policy: model::settings::ChannelPolicyForm,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            let policy = crate::core::settings::parse_channel(&channel, &policy)?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            crate::core::settings::save_channel(&ctx.cx(), &grant, &channel, policy).await
        }
    )
}

#[server(prefix = "/fn", endpoint = "settings/alerts/save")]
pub async fn save_alerts(
    key_refusals: u32,
    key_window_minutes: u32,
    sign_in_failures: u32,
    sign_in_window_minutes: u32,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    crate::guarded!(
        crate::roles::Permission::SettingsManage,
        |ctx, grant| async {
            let new = crate::core::settings::parse_alerts(
                key_refusals,
                key_window_minutes,
                sign_in_failures,
                sign_in_window_minutes,
            )?;
            crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
            crate::core::settings::save_alerts(&ctx.cx(), &grant, &new).await
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
            crate::core::settings::save_messages(&ctx.cx(), &grant, &new).await
        }
    )
}
