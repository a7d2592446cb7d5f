//! The audit log as the panel shows it: the filters of `/audit` (and of its CSV export),
//! one event in words, a page of events, and the state of the hash chain.

use serde::{Deserialize, Serialize};

/// Events per page of `/audit`.
pub const AUDIT_PAGE: i64 = 50;

/// Which events to show: every field as the page's query string has it ("" for any).
/// The CSV export takes the same fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Who acted: a user's email, a key id (`key_…`), `system` or `anonymous`.
    #[serde(default)]
    pub actor: String,
    /// An action (`api_key.created`) or the start of one (`api_key.`).
    #[serde(default)]
    pub action: String,
    /// What was acted on, exactly as recorded (a key id, an email, a user id…).
    #[serde(default)]
    pub target: String,
    /// `success` or `failure`.
    #[serde(default)]
    pub outcome: String,
    /// The client address, exactly (IPv4 or IPv6).
    #[serde(default)]
    pub ip: String,
    /// The first day shown (`YYYY-MM-DD`, UTC), inclusive.
    #[serde(default)]
    pub from: String,
    /// The last day shown (`YYYY-MM-DD`, UTC), inclusive.
    #[serde(default)]
    pub to: String,
    /// Continue with the events older than this one (the previous page's `next`).
    #[serde(default)]
    pub before: String,
}

impl AuditFilter {
    /// The filters (not the page) as a query string, `""` when none is set.
    pub fn query(&self) -> Vec<(&'static str, &str)> {
        [
            ("actor", self.actor.as_str()),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("ip", &self.ip),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// One event, readable by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The event's number in the chain.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// `user`, `key`, `system` or `anonymous`.
    pub actor_type: String,
    /// Who: a user's email (or `user 7` if unknown), a key id, "Keyward" (the system),
    /// "not signed in".
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    /// The browser or client as recorded (its User-Agent, at most 512 bytes).
    pub user_agent: Option<String>,
    /// The same in a few words ("Firefox on Linux"); `None` when none was recorded.
    pub browser: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The event's details (JSON), as recorded.
    pub details: String,
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The `before` of the next page, when there are older events.
    pub next: Option<i64>,
}

/// Where the chain is broken, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The first event that does not follow from the one before it.
    pub seq: i64,
    pub reason: String,
}

/// The hash chain after a walk over every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// Events walked.
    pub events: i64,
    /// The last event found intact (0: none).
    pub intact_to: i64,
    pub broken: Option<ChainBreak>,
}

impl ChainState {
    /// The state in one sentence, as the page and `keyward audit verify` say it.
    pub fn sentence(&self) -> String {
        match &self.broken {
            None if self.events == 0 => "The audit log is empty.".to_owned(),
            None => format!(
                "Intact: all {} events, up to event {}, follow from each other.",
                self.events, self.intact_to
            ),
            Some(b) => format!("Broken at event {}: {}", b.seq, b.reason),
        }
    }
}
