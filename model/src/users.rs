//! Panel users as the users page shows them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    Invited,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "invited" => Self::Invited,
            // Anything unexpected is treated as the most restrictive state.
            _ => Self::Disabled,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Invited => "Invited",
            Self::Active => "Active",
            Self::Disabled => "Disabled",
        }
    }
}

/// A user as the users page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role_id: i64,
    pub role_name: String,
    pub status: UserStatus,
    pub last_login_at: Option<i64>,
    /// An authenticator app is set up.
    pub totp: bool,
    /// A phone for SMS codes is confirmed (whether, not which: the number is its owner's).
    #[serde(default)]
    pub phone: bool,
}

/// The one answer to every failed sign-in, whatever the reason.
pub const GENERIC_SIGN_IN_ERROR: &str = "Incorrect email or password.";

/// The second step of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// A code from an authenticator app (or a recovery code).
    Totp,
    /// A code sent by email.
    Email,
    /// A code sent by SMS to the user's confirmed phone number.
    Sms,
}

/// What the second-step page shows: the code it asks for, and the other ways the user
/// may have the code sent instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingStep {
    pub method: SecondFactor,
    /// Email or SMS, when the user may switch to it.
    pub others: Vec<SecondFactor>,
    /// SMS: the number the code went to, masked (`+90••••••4567`).
    pub phone: Option<String>,
}
