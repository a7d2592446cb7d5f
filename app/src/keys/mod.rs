//! API keys and apps: the types the panel and the REST API share.

use serde::{Deserialize, Serialize};

/// A key as the panel and `GET /api/v1/keys` show it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `active`, `revoked` or `expired`.
    pub status: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    pub rolled_from: Option<String>,
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub id: i64,
    pub name: String,
    pub networks: Vec<String>,
}
