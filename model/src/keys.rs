//! API keys and apps as the panel and the REST API show them (never a secret).

use serde::{Deserialize, Serialize};

/// A key as the panel and `GET /api/v1/keys` show it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub key_id: String,
    pub kind: String,
    pub app_id: i64,
    pub app: String,
    pub environment: String,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub name: String,
    pub role_id: Option<i64>,
    pub role: Option<String>,
    pub last4: String,
    pub networks: Vec<String>,
    /// Unix seconds; None: never.
    pub expires_at: Option<i64>,
    /// `active`, `pending` (waiting for approval), `disabled` (unused too long),
    /// `revoked` or `expired`.
    pub status: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    pub rolled_from: Option<String>,
    pub replaced_by: Option<String>,
    /// When a leak report flagged the key (Settings > Keys: flag instead of revoke); a
    /// flagged key keeps working.
    pub leak_flagged_at: Option<i64>,
    /// When the key was disabled for disuse (Settings > Keys); it works again once
    /// enabled.
    pub disabled_at: Option<i64>,
    /// Who approved the key and when (Settings > Keys: approval before a key works).
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    /// Channel keys (`kind` = `channel`): `email`, `sms`, `rcs` or `whatsapp`.
    pub channel: Option<String>,
    /// Channel keys: what the key may do (`send`, `status`).
    pub key_events: Vec<String>,
    /// SMS keys: the sender number (E.164) the key sends from.
    #[serde(default)]
    pub sender: Option<String>,
}

/// The latest expiry a key may have: the last second of the year 9999 (UTC), as the REST
/// contract bounds `expires_at`.
pub const LATEST_EXPIRY: i64 = 253_402_300_799;

/// Keys per page when the request does not say.
pub const DEFAULT_PAGE: i64 = 50;
/// The most keys one request may ask for.
pub const MAX_PAGE: i64 = 500;
/// Counts shown in summaries stop here: past it the panel says "more than" (counting
/// further would cost as much as reading every row).
pub const COUNT_CAP: i64 = 1000;

/// Which keys to list (every field optional; the panel's filters and the query string
/// of `GET /api/v1/keys`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct KeyFilter {
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 1, maximum = 9007199254740991_i64)
    )]
    pub app_id: Option<i64>,
    /// `live` or `test`.
    #[cfg_attr(feature = "openapi", param(pattern = "^(live|test)$", max_length = 4))]
    pub environment: Option<String>,
    /// `active`, `pending`, `disabled`, `revoked` or `expired`.
    #[cfg_attr(
        feature = "openapi",
        param(
            pattern = "^(active|pending|disabled|revoked|expired)$",
            max_length = 8
        )
    )]
    pub status: Option<String>,
    /// Search: a key whose name or owner's email contains this (case-insensitive), or
    /// whose key ID is exactly this. At most 100 characters, no control characters.
    #[cfg_attr(feature = "openapi", param(max_length = 100))]
    pub q: Option<String>,
    /// Continue after this key (the `next` of the previous page).
    #[cfg_attr(
        feature = "openapi",
        param(pattern = "^key_[a-z2-7]{16}$", max_length = 20)
    )]
    pub after: Option<String>,
    /// Keys per page: 1 to 500, default 50.
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: Option<i64>,
    /// The order: `newest` (the default), `oldest`, `name` (A to Z), `expires` (soonest
    /// first, never-expiring last) or `last_used` (most recent first, never-used last).
    #[cfg_attr(
        feature = "openapi",
        param(pattern = "^(newest|oldest|name|expires|last_used)$", max_length = 9)
    )]
    pub sort: Option<String>,
}

/// The orders a key list may be sorted in, as `KeyFilter::sort` names them.
pub const KEY_SORTS: [&str; 5] = ["newest", "oldest", "name", "expires", "last_used"];

/// One page of keys, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPage {
    pub keys: Vec<KeyInfo>,
    /// The key to continue after (`after=`), when there are more.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub id: i64,
    pub name: String,
    pub networks: Vec<String>,
    /// The app's public SDK keys: (environment, key).
    pub sdk_keys: Vec<(String, String)>,
    /// Webhook URLs messages of this app may be POSTed to.
    pub webhook_urls: Vec<String>,
    /// The key events each of those URLs is sent: (URL, events).
    pub webhook_events: Vec<(String, Vec<String>)>,
    /// The app's SMS sender numbers (E.164), managed on `/channels`.
    #[serde(default)]
    pub sender_numbers: Vec<String>,
}

/// What the create form needs of Settings > Keys (and nothing more: every viewer of
/// `/keys` gets it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    pub max_active_per_user_per_app: u32,
    pub max_expiry_days: u32,
    pub default_expiry: String,
    /// New keys wait for an approver before they work.
    pub approval_required: bool,
}

/// Every event a webhook URL can be subscribed to (`core::messages::events`), with
/// what it means, in the order the panel lists them.
pub const EVENTS: [(&str, &str); 7] = [
    ("key.created", "a key is created"),
    (
        "key.rolled",
        "a key is rolled (the new key's id and the old one's)",
    ),
    ("key.revoked", "a key is revoked (or not approved)"),
    (
        "key.expiring",
        "a key expires in 7 days, and again the day before",
    ),
    (
        "key.leaked",
        "a key is reported as leaked (and revoked or flagged)",
    ),
    ("key.disabled", "a key is disabled after going unused"),
    (
        "auth.alert",
        "an alert: a key refused, or sign-ins failing, past the threshold",
    ),
];

/// An app as a choice in a form: its id and name, nothing of its configuration (the
/// allow-lists, SDK keys and webhook URLs go only to `app.manage`, on `/apps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppChoice {
    pub id: i64,
    pub name: String,
}

/// A sender number of an app (SMS), with its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderNumber {
    pub id: i64,
    pub app_id: i64,
    pub app: String,
    /// E.164, as `+905551234567`.
    pub number: String,
    /// Its active SMS key, if it has one (none after that key was revoked).
    pub key_id: Option<String>,
    pub created_at: i64,
}

/// One event of a key's history, as its page shows it (from the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEvent {
    /// Unix seconds.
    pub at: i64,
    /// e.g. `api_key.created`, `api_key.rolled`, `api_key.refused`.
    pub action: String,
    /// Who: a user's email, a key id, "Keyward" (the system) or "not signed in".
    pub actor: String,
    pub ip: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The event's details (JSON), as recorded.
    pub details: String,
}

/// Requests of one key in one period (an hour or a UTC day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBucket {
    /// The period's start, Unix seconds (UTC).
    pub start: i64,
    pub accepted: u64,
    pub refused: u64,
    /// The refused requests per refusal code (sorted by code).
    pub by_code: Vec<(String, u64)>,
}

/// One batch of refusals of a key, as audited (`api_key.refused`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentRefusal {
    /// When the batch was written, Unix seconds.
    pub at: i64,
    pub requests: u64,
    pub by_code: Vec<(String, u64)>,
    /// The addresses the refused requests came from (the first few).
    pub addresses: Vec<String>,
}

/// A key's usage: per hour for the last 48 hours and per day for the last 90 days,
/// oldest first, and its latest refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    /// When it was read (Unix seconds).
    pub now: i64,
    pub hours: Vec<UsageBucket>,
    pub days: Vec<UsageBucket>,
    pub recent_refusals: Vec<RecentRefusal>,
}
