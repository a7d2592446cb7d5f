//! What the domain counts for `/metrics`, through the `metrics` facade (the server
//! installs the Prometheus recorder before it serves; without one, as in the domain's
//! own tests, every count is a no-op). Every label takes its values from a fixed set
//! written here or in the code (a refusal code, an audit action): never a key id, a
//! user id or a raw path.

use metrics::Counter;
use std::sync::OnceLock;

/// Counters of one metric for a fixed set of label values, registered on first use and
/// then incremented with one atomic add (no registry lookup, no allocation): for counts
/// on the hot path. The first use must come after the recorder is installed (the
/// server installs it before it serves).
pub struct Family {
    name: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    handles: OnceLock<Vec<Counter>>,
}

impl Family {
    pub const fn new(
        name: &'static str,
        label: &'static str,
        values: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            label,
            values,
            handles: OnceLock::new(),
        }
    }

    /// Counts one under `value` (a value outside the set is counted as "other").
    pub fn count(&self, value: &str) {
        let handles = self.handles.get_or_init(|| {
            self.values
                .iter()
                .chain(std::iter::once(&"other"))
                .map(|v| metrics::counter!(self.name, self.label => *v))
                .collect()
        });
        let i = self
            .values
            .iter()
            .position(|v| *v == value)
            .unwrap_or(self.values.len());
        if let Some(c) = handles.get(i) {
            c.increment(1);
        }
    }
}

/// Key verifications (the REST API's door) by outcome: `ok`, or the refusal code.
pub static KEY_VERIFICATIONS: Family = Family::new(
    "keyward_key_verifications_total",
    "outcome",
    &[
        "ok",
        "missing_api_key",
        "invalid_api_key",
        "key_revoked",
        "key_expired",
        "key_pending",
        "key_disabled",
        "ip_not_allowed",
        "sdk_key_not_allowed",
        "channel_not_allowed",
        "rate_limited",
        "insufficient_permissions",
    ],
);

/// The key verification cache: `hit` (answered from memory) or `miss` (read from the
/// database).
pub static KEY_CACHE: Family = Family::new("keyward_key_cache_total", "result", &["hit", "miss"]);

/// Outbox deliveries by outcome: `sent`, `retry` (a temporary failure, tried again
/// later) or `failed` (permanent, or out of attempts).
pub static DELIVERIES: Family = Family::new(
    "keyward_outbox_deliveries_total",
    "outcome",
    &["sent", "retry", "failed"],
);

/// Counts an audited event where a metric follows it: sign-in steps (`auth.*`) by step
/// and outcome. Not on the hot path (an audit row was just written).
pub fn audited(action: &str, success: bool) {
    if let Some(step) = action.strip_prefix("auth.") {
        // `action` is one of the code's fixed audit actions.
        metrics::counter!(
            "keyward_sign_in_steps_total",
            "step" => step.to_owned(),
            "outcome" => if success { "success" } else { "failure" }
        )
        .increment(1);
    }
}

/// Tells Prometheus what each metric is (shown as `# HELP`).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "keyward_http_requests_total",
        "HTTP requests by route template, method and status."
    );
    describe_counter!(
        "keyward_key_verifications_total",
        "API key verifications by outcome (ok or the refusal code)."
    );
    describe_counter!(
        "keyward_key_cache_total",
        "API key verification cache lookups: hit or miss."
    );
    describe_counter!(
        "keyward_sign_in_steps_total",
        "Panel sign-in steps (audit actions auth.*) by outcome."
    );
    describe_counter!(
        "keyward_outbox_deliveries_total",
        "Message delivery attempts by outcome: sent, retry or failed."
    );
    describe_gauge!(
        "keyward_outbox_messages",
        "Messages waiting in the outbox, by status."
    );
    describe_gauge!(
        "keyward_db_pool_connections",
        "Database pool connections: in_use, idle and max."
    );
    describe_gauge!(
        "keyward_build_info",
        "Always 1; the version label says which build runs."
    );
}
