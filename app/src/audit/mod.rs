//! The audit log (`/audit`, `audit.view`): the events newest first with their filters,
//! the CSV export of what the filters select (a plain route of the server, see
//! `keyward::http::audit_export`), and the state of the hash chain on request.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::AuditPage;
pub use model::audit::{AuditEntry, AuditFilter, ChainState, AUDIT_PAGE};

/// What the audit page needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub page: model::audit::AuditPage,
    /// The hash chain's state, when the page asked for it (`verify=1`): a walk over
    /// every event, or why it could not be made now.
    pub chain: Option<Result<ChainState, AppError>>,
    /// The server's time when the page was loaded.
    pub now: i64,
}

/// The events `filter` selects (its fields as the page's query string has them, ""
/// for any; `before`: the event to continue before); `verify`: "1" to walk the chain
/// too.
#[server(prefix = "/fn", endpoint = "audit/list")]
pub async fn list_audit(
    #[server(default)] filter: AuditFilter,
    #[server(default)] verify: String,
) -> Result<AuditView, AppError> {
    crate::guarded!(crate::roles::Permission::AuditView, |ctx, grant| async {
        let st = &ctx.state;
        let page = crate::core::audit::read::list(&st.db, &grant, &filter).await?;
        let chain = if verify == "1" {
            Some(crate::core::audit::read::check(&st.db, &grant).await)
        } else {
            None
        };
        Ok(AuditView {
            page,
            chain,
            now: st.clock.now(),
        })
    })
}
