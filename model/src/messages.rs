//! Messages as the panel and the REST API show them.

use serde::{Deserialize, Serialize};

/// A message as the panel and `GET /api/v1/messages/{id}` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageInfo {
    /// `msg_…`
    pub id: String,
    pub app_id: i64,
    pub app: String,
    /// `email`, `webhook` or `sms`.
    pub channel: String,
    /// Email addresses (email channel) or E.164 numbers (SMS).
    pub recipients: Vec<String>,
    /// SMS: the app's sender number it goes from.
    #[serde(default)]
    pub sender: Option<String>,
    /// The registered URL (webhook channel): whole for `app.manage`, else its origin
    /// and `/…` (a webhook's path often carries a secret).
    pub webhook_url: Option<String>,
    /// The webhook as the compose and edit forms name it: `#` and its id.
    #[serde(default)]
    pub webhook_ref: Option<String>,
    pub subject: String,
    pub body: String,
    /// SHA-256 of what will be sent; an approval binds to it.
    pub payload_hash: String,
    /// `pending_approval`, `rejected`, `expired`, `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub author_id: i64,
    pub author: String,
    /// The key it was created with, when it came through the REST API.
    pub created_by_key: Option<String>,
    pub approvals_needed: i64,
    /// Approvals of the current payload so far.
    pub approvals: i64,
    /// Unix seconds: a pending message expires then.
    pub expires_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// One line of a message's history (from the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub action: String,
    /// Who: a user's email, a key id, or "Keyward".
    pub actor: String,
    pub details: String,
}

/// A message's page: the message, its history, and what the viewer may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDetail {
    pub message: MessageInfo,
    pub history: Vec<HistoryEntry>,
    pub can_edit: bool,
    pub can_decide: bool,
    /// Why the viewer cannot decide, when they hold `message.approve` but may not.
    pub decide_blocked: Option<String>,
}

/// An app as the compose form offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeApp {
    pub id: i64,
    pub name: String,
    /// The app's registered webhooks, by reference: the URLs themselves (which often
    /// carry a secret in their path) go only to `app.manage`.
    pub webhooks: Vec<WebhookChoice>,
    /// The app's SMS sender numbers (E.164).
    #[serde(default)]
    pub sender_numbers: Vec<String>,
    pub approval_required: bool,
}

/// A registered webhook as a choice in the compose form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookChoice {
    /// What the form sends as `webhook_url`: `#` and the webhook's id.
    pub reference: String,
    /// Its origin, the path hidden: `https://hooks.example.com/… (#3)`.
    pub label: String,
}

/// The compose form as it is posted (text; `app_id` is checked by the server function).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComposeForm {
    pub app_id: String,
    /// `email`, `webhook` or `sms`.
    pub channel: String,
    /// Email addresses or, for SMS, numbers: one per line or comma-separated.
    pub recipients: String,
    /// One of the app's registered webhooks: `#` and its id (or its URL).
    pub webhook_url: String,
    /// SMS: one of the app's sender numbers (the form sends it whatever the channel).
    pub from: String,
    pub subject: String,
    pub body: String,
}
