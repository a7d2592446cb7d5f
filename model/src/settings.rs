//! The organisation's settings groups (Settings > General, Keys, Messages), as stored
//! (JSON per group) and shown.

use serde::{Deserialize, Serialize};

/// The security settings. Lists are normalised (domains in ASCII form, networks as
/// CIDRs); empty lists allow everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecuritySettings {
    /// A second step at sign-in for everyone: the authenticator app for users who set
    /// one up, an emailed code for the others. (Users with an authenticator app always
    /// use it, whatever this says.)
    pub second_factor_required: bool,
    /// The second factors accepted at sign-in (at least one): a code from an
    /// authenticator app, a code by email, a code by SMS to the user's confirmed phone.
    pub accept_totp: bool,
    pub accept_email_code: bool,
    pub accept_sms_code: bool,
    /// The sender number SMS codes are sent from (one of the apps' sender numbers).
    pub sms_code_from: String,
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
            accept_totp: true,
            accept_email_code: true,
            accept_sms_code: false,
            sms_code_from: String::new(),
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
    /// A key reported as leaked (`POST /api/v1/leaks`): "revoke" it at once, or "flag"
    /// it (it keeps working, with a warning).
    pub leak_action: String,
    /// Keys unused for this many days are disabled by a job (their owner or an
    /// administrator can enable them again); 0: never.
    pub disable_unused_days: u32,
    /// A new key is `pending`, refused with `key_pending`, until someone holding
    /// `api.key.approve` other than its owner approves it.
    pub require_approval: bool,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            max_active_per_user_per_app: 10,
            max_expiry_days: 0,
            default_expiry: "90".into(),
            leak_action: "revoke".into(),
            disable_unused_days: 0,
            require_approval: false,
        }
    }
}

/// Settings > Alerts: failed authentication past a threshold within a window sends one
/// alert (email and an `auth.alert` event) per subject per window. A threshold of 0
/// turns that alert off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertSettings {
    /// Refused requests of one key within `key_window_minutes`.
    pub key_refusals: u32,
    pub key_window_minutes: u32,
    /// Failed sign-in steps (wrong password, wrong code) of one account within
    /// `sign_in_window_minutes`.
    pub sign_in_failures: u32,
    pub sign_in_window_minutes: u32,
}

impl Default for AlertSettings {
    /// 100 refused requests of a key in 10 minutes: a client that lost its allow-list
    /// entry or a scanner trying a leaked revoked key, not a user's typo. 10 failed
    /// sign-in steps of an account in 15 minutes: more than someone who forgot their
    /// password tries, fewer than any guessing attack makes.
    fn default() -> Self {
        Self {
            key_refusals: 100,
            key_window_minutes: 10,
            sign_in_failures: 10,
            sign_in_window_minutes: 15,
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

/// The form of Settings > General, as typed (numbers too: a form field is text, and a
/// value that is not a number gets the field's own error, not a decoding failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityForm {
    /// "off" or "required".
    pub second_factor: String,
    /// Checkboxes: "true" when ticked (absent otherwise).
    #[serde(default)]
    pub accept_totp: String,
    #[serde(default)]
    pub accept_email_code: String,
    #[serde(default)]
    pub accept_sms_code: String,
    /// A sender number, or empty.
    #[serde(default)]
    pub sms_code_from: String,
    pub allowed_domains: String,
    pub panel_networks: String,
    pub session_idle_minutes: String,
    pub session_absolute_hours: String,
    pub throttle_account_attempts: String,
    pub throttle_ip_attempts: String,
    pub throttle_max_delay_secs: String,
}

/// One channel's policy (Settings > Channels): who creates its keys, how many may be
/// active, whether a secret can be shown again, whether a key can be regenerated, the
/// longest expiry and whether an IP allow-list is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelPolicy {
    /// The permission that lets a user create keys of the channel: `api.key.create` or
    /// `channel.key.manage` (SMS: `app.manage`, who adds sender numbers).
    pub create_permission: String,
    /// Active keys allowed, counted per `per`.
    pub max_active: u32,
    /// `user` (each user's own keys), `deployment` (all of them) or, for SMS, `number`
    /// (each sender number's).
    pub per: String,
    /// Revealable: the secret is also kept sealed and can be shown again after the
    /// password is entered again. Otherwise it is shown once.
    pub reveal: bool,
    pub regenerate: bool,
    /// The longest expiry a new key may have, in days (0: no maximum).
    pub max_expiry_days: u32,
    /// Keys must have an IP allow-list of their own.
    pub require_networks: bool,
}

impl Default for ChannelPolicy {
    fn default() -> Self {
        Self {
            create_permission: "api.key.create".into(),
            max_active: 10,
            per: "user".into(),
            reveal: false,
            regenerate: true,
            max_expiry_days: 0,
            require_networks: false,
        }
    }
}

/// Settings > Channels: a policy per channel; the presets are those of the product's
/// table (email: many per user, shown once; SMS: one per sender number, made when the
/// number is added, shown once; RCS: exactly one for the deployment, revealable, never
/// regenerated; WhatsApp: channel.key.manage only, at most 3, revealable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelSettings {
    pub email: ChannelPolicy,
    pub sms: ChannelPolicy,
    pub rcs: ChannelPolicy,
    pub whatsapp: ChannelPolicy,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            email: ChannelPolicy::default(),
            sms: Self::sms_preset(),
            rcs: ChannelPolicy {
                create_permission: "channel.key.manage".into(),
                max_active: 1,
                per: "deployment".into(),
                reveal: true,
                regenerate: false,
                ..ChannelPolicy::default()
            },
            whatsapp: ChannelPolicy {
                create_permission: "channel.key.manage".into(),
                max_active: 3,
                per: "deployment".into(),
                reveal: true,
                regenerate: true,
                ..ChannelPolicy::default()
            },
        }
    }
}

/// A channel policy as the settings form sends it (text, parsed and checked by
/// `core::settings::parse_channel`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelPolicyForm {
    pub create_permission: String,
    pub max_active: String,
    pub per: String,
    /// "true" or "false", as for the other yes/no choices.
    pub reveal: String,
    pub regenerate: String,
    pub max_expiry_days: String,
    pub require_networks: String,
}

impl ChannelSettings {
    /// The channels keys can be made for, in the panel's order.
    pub const CHANNELS: [&'static str; 4] = ["email", "sms", "rcs", "whatsapp"];

    /// SMS keys are made by adding a sender number (`app.manage`), one per number: only
    /// whether they can be revealed or regenerated, their expiry and whether they need
    /// an allow-list can be changed.
    pub fn sms_preset() -> ChannelPolicy {
        ChannelPolicy {
            create_permission: "app.manage".into(),
            max_active: 1,
            per: "number".into(),
            reveal: false,
            regenerate: true,
            ..ChannelPolicy::default()
        }
    }

    /// The policy of `channel` (`email`, `sms`, `rcs`, `whatsapp`; anything else:
    /// email's).
    pub fn get(&self, channel: &str) -> &ChannelPolicy {
        match channel {
            "sms" => &self.sms,
            "rcs" => &self.rcs,
            "whatsapp" => &self.whatsapp,
            _ => &self.email,
        }
    }

    pub fn get_mut(&mut self, channel: &str) -> &mut ChannelPolicy {
        match channel {
            "sms" => &mut self.sms,
            "rcs" => &mut self.rcs,
            "whatsapp" => &mut self.whatsapp,
            _ => &mut self.email,
        }
    }
}
