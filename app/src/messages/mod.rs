//! Messages: composed in the panel (`/messages`) or through `POST /api/v1/messages`,
//! approved by someone else in `/approvals` when Settings > Messages require it, then
//! delivered by the outbox worker (`core::messages::delivery`).

// The compose server function takes the form's fields as arguments (so the page works
// as a plain HTML form); the macro's generated client function inherits their number.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::{ApprovalsPage, MessagePage, MessagesPage, StatusBadge};

pub use model::messages::{
    ComposeApp, ComposeForm, HistoryEntry, MessageDetail, MessageInfo, WebhookChoice,
};

/// What `/messages` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesView {
    pub messages: Vec<MessageInfo>,
    /// The message to continue before (`?before=`), when there are older ones.
    pub older: Option<String>,
    pub apps: Vec<ComposeApp>,
    pub can_create: bool,
}

pub const STATUSES: &[&str] = &[
    "pending_approval",
    "rejected",
    "expired",
    "queued",
    "sending",
    "sent",
    "failed",
];

/// A page of messages, newest first; `before`: continue before this message (the
/// previous page's `older`).
#[server(prefix = "/fn", endpoint = "messages/list")]
pub async fn list_messages(#[server(default)] before: String) -> Result<MessagesView, AppError> {
    async {
        let (ctx, p) = viewer().await?;
        let st = &ctx.state;
        use crate::roles::Permission as P;
        let before = Some(before.as_str()).filter(|b| !b.is_empty());
        let (messages, more) = crate::core::messages::list(&st.db, &p, before).await?;
        let older = more
            .then(|| messages.last().map(|m| m.id.clone()))
            .flatten();
        let apps = if p.has(P::MessageCreate) {
            crate::core::messages::compose_apps(&st.db).await?
        } else {
            Vec::new()
        };
        Ok(MessagesView {
            messages,
            older,
            apps,
            can_create: p.has(P::MessageCreate),
        })
    }
    .await
    .map_err(crate::error::reply)
}

#[server(prefix = "/fn", endpoint = "messages/get")]
pub async fn get_message(id: String) -> Result<MessageDetail, AppError> {
    async {
        let (ctx, p) = viewer().await?;
        crate::core::messages::detail(&ctx.state.db, ctx.state.clock.now(), &p, &id).await
    }
    .await
    .map_err(crate::error::reply)
}

/// The signed-in user, when they may see messages at all (`message.create` for their
/// own, `message.approve` for everyone's).
#[cfg(feature = "ssr")]
async fn viewer() -> Result<(crate::auth::ssr::RequestCtx, crate::core::access::Principal), AppError>
{
    use crate::roles::Permission as P;
    let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
    let p = ctx.signed_in().await?.principal;
    if p.has(P::MessageCreate) || p.has(P::MessageApprove) {
        Ok((ctx, p))
    } else {
        Err(AppError::Forbidden)
    }
}

/// The compose form (see `ComposeForm`): `recipients` one address or number per line
/// (or comma-separated) for email and SMS; `webhook_url` one of the app's registered
/// webhooks (its URL, or `#` and its id as the form sends it); `from` one of the app's
/// sender numbers, for SMS.
#[server(prefix = "/fn", endpoint = "messages/create")]
pub async fn create_message(
    #[server(flatten)] form: ComposeForm,
    #[server(default)] form_token: String,
) -> Result<MessageInfo, AppError> {
    crate::guarded!(
        crate::roles::Permission::MessageCreate,
        |ctx, grant| async {
            let st = &ctx.state;
            let ComposeForm {
                app_id,
                channel,
                recipients,
                webhook_url,
                from,
                subject,
                body,
            } = &form;
            let app_id: i64 = app_id
                .trim()
                .parse()
                .map_err(|_| AppError::validation("app_id", "Choose an app."))?;
            let made = |m: &MessageInfo| format!("the message {}", m.id);
            let uid = grant.principal().user_id();
            crate::auth::ssr::once_per_form(
                &ctx,
                uid,
                &form_token,
                made,
                crate::core::messages::create(
                    st,
                    &grant,
                    &ctx.origin(),
                    &crate::core::messages::Draft {
                        app_id,
                        channel,
                        recipients,
                        // The form sends its (hidden) webhook and sender choices whatever
                        // the channel: only the chosen channel's counts.
                        webhook_url: if channel == "webhook" {
                            webhook_url
                        } else {
                            ""
                        },
                        sender: if channel == "sms" { from } else { "" },
                        subject,
                        body,
                    },
                ),
            )
            .await
        }
    )
}

/// Edits a pending message (its author only); approvals given so far no longer count.
#[server(prefix = "/fn", endpoint = "messages/edit")]
pub async fn edit_message(
    id: String,
    #[server(default)] recipients: String,
    #[server(default)] webhook_url: String,
    #[server(default)] from: String,
    #[server(default)] subject: String,
    body: String,
) -> Result<MessageInfo, AppError> {
    crate::guarded!(
        crate::roles::Permission::MessageCreate,
        |ctx, grant| async {
            let revision = crate::core::messages::Revision {
                recipients: &recipients,
                webhook_url: &webhook_url,
                sender: &from,
                subject: &subject,
                body: &body,
            };
            crate::core::messages::edit(&ctx.state, &grant, &ctx.origin(), &id, &revision).await
        }
    )
}

/// `payload_hash`: the hash of the payload the approver was shown; a message edited
/// since is refused, so an approval always binds to what the approver saw.
#[server(prefix = "/fn", endpoint = "approvals/approve")]
pub async fn approve_message(id: String, payload_hash: String) -> Result<MessageInfo, AppError> {
    crate::guarded!(
        crate::roles::Permission::MessageApprove,
        |ctx, grant| async {
            crate::core::messages::approve(&ctx.state, &grant, &ctx.origin(), &id, &payload_hash)
                .await
        }
    )
}

#[server(prefix = "/fn", endpoint = "approvals/reject")]
pub async fn reject_message(
    id: String,
    payload_hash: String,
    reason: String,
) -> Result<MessageInfo, AppError> {
    crate::guarded!(
        crate::roles::Permission::MessageApprove,
        |ctx, grant| async {
            crate::core::messages::reject(
                &ctx.state,
                &grant,
                &ctx.origin(),
                &id,
                &payload_hash,
                &reason,
            )
            .await
        }
    )
}

/// What `/approvals` shows: the messages waiting for the viewer (with
/// `message.approve`) and the keys waiting for them (with `api.key.approve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalsView {
    pub messages: Option<Vec<MessageInfo>>,
    pub keys: Option<Vec<model::keys::KeyInfo>>,
    /// The viewer's own messages waiting for someone else (never in their queue).
    pub own_waiting: i64,
}

#[server(prefix = "/fn", endpoint = "approvals/view")]
pub async fn load_approvals() -> Result<ApprovalsView, AppError> {
    async {
        use crate::roles::Permission as P;
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let p = ctx.signed_in().await?.principal;
        if !(p.has(P::MessageApprove) || p.has(P::ApiKeyApprove)) {
            return Err(AppError::Forbidden);
        }
        let (db, now) = (&ctx.state.db, ctx.state.clock.now());
        let (messages, own_waiting) = if p.has(P::MessageApprove) {
            (
                Some(crate::core::messages::queue(db, now, &p).await?),
                crate::core::messages::own_waiting(db, now, &p).await?,
            )
        } else {
            (None, 0)
        };
        let keys = if p.has(P::ApiKeyApprove) {
            Some(crate::core::keys::lifecycle::queue(db, now, &p).await?)
        } else {
            None
        };
        Ok(ApprovalsView {
            messages,
            keys,
            own_waiting,
        })
    }
    .await
    .map_err(crate::error::reply)
}

/// The approver's queue: pending messages written by someone else.
#[server(prefix = "/fn", endpoint = "approvals/list")]
pub async fn approval_queue() -> Result<Vec<MessageInfo>, AppError> {
    crate::guarded!(
        crate::roles::Permission::MessageApprove,
        |ctx, grant| async {
            crate::core::messages::queue(&ctx.state.db, ctx.state.clock.now(), grant.principal())
                .await
        }
    )
}
