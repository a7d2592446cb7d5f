//! The audit log (`/audit`, `audit.view`): the events newest first with their filters,
//! the CSV export of what the filters select (a plain route of the server, see
//! `keyward::http::audit_export`), and the state of the hash chain on request.

// A server function's arguments are the fields of its form (the page's query string),
// as for the keys table's filters; the lint also fires in the code `#[server]`
// generates for the browser.
#![allow(clippy::too_many_arguments)]

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

/// The filters as the page's query string has them ("" for any); `before`: the event
/// to continue before (the previous page's `next`); `verify`: "1" to walk the chain too.
#[server(prefix = "/fn", endpoint = "audit/list")]
pub async fn list_audit(
    #[server(default)] actor: String,
    #[server(default)] action: String,
    #[server(default)] target: String,
    #[server(default)] outcome: String,
    #[server(default)] ip: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] before: String,
    #[server(default)] verify: String,
) -> Result<AuditView, AppError> {
    crate::guarded!(crate::roles::Permission::AuditView, |ctx, grant| async {
        let st = &ctx.state;
        let filter = AuditFilter {
            actor,
            action,
            target,
            outcome,
            ip,
            from,
            to,
            before,
        };
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
