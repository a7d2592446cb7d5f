//! The overview page (`/`): the signed-in user's keys, keys expiring soon, messages
//! waiting for their approval, their own latest messages, and (with `audit.view`)
//! failed sign-ins and refused API-key requests of the last 24 hours. Each panel shows
//! only when the user's role opens what it lists; every query is bounded.

use crate::auth::{get_me, Me};
use crate::error::AppError;
use crate::keys::KeyInfo;
use crate::messages::{MessageInfo, StatusBadge};
use crate::shell_ui::{format_time, DataTable, Page};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// How far ahead "expiring soon" looks.
pub const EXPIRING_WITHIN_DAYS: i64 = 14;
/// How far back the failed-authentication alerts look.
pub const ALERT_HOURS: i64 = 24;
/// Rows per panel.
#[cfg(feature = "ssr")]
const ROWS: i64 = 10;
/// Failed-authentication events read to sum up the last day (the count says "at
/// least" beyond it).
#[cfg(feature = "ssr")]
const ALERT_SCAN: i64 = 500;

/// One failed-authentication event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub at: i64,
    /// What failed, in words.
    pub what: String,
    /// The account (email) or key it was aimed at.
    pub target: Option<String>,
    pub ip: Option<String>,
    /// The recorded reason, or the refused requests per error code.
    pub detail: String,
}

/// The failed-authentication panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerts {
    /// Failed sign-in steps (password, second factor, password re-check).
    pub failed_sign_ins: i64,
    /// REST requests refused for a known key (revoked, expired, address not allowed…).
    pub refused_requests: i64,
    /// True when more events happened than were read (the counts are lower bounds).
    pub more: bool,
    pub recent: Vec<Alert>,
}

/// What the overview shows; `None` where the user's role does not open the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewData {
    /// The user's own active keys (newest first) and how many they hold in all.
    pub my_keys: Option<(Vec<KeyInfo>, i64)>,
    /// Active keys expiring within [`EXPIRING_WITHIN_DAYS`]: everyone's with
    /// `api.key.view_all`, else the user's own.
    pub expiring: Option<Vec<KeyInfo>>,
    pub expiring_all: bool,
    /// Messages by others waiting for an approval: the oldest, and how many in all.
    pub approvals: Option<(Vec<MessageInfo>, i64)>,
    /// New keys by others waiting for the user's approval (with `api.key.approve`; at
    /// most `lifecycle::QUEUE_LIMIT`).
    pub keys_waiting: i64,
    pub my_messages: Option<Vec<MessageInfo>>,
    pub alerts: Option<Alerts>,
}

#[server(prefix = "/fn", endpoint = "overview/get")]
pub async fn get_overview() -> Result<OverviewData, AppError> {
    async {
        use crate::roles::Permission as P;
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let p = ctx.signed_in().await?.principal;
        let st = &ctx.state;
        let now = st.clock.now();
        // The five parts are independent reads: asked for at once, so the page waits
        // for the slowest rather than for their sum.
        let keys = async {
            if !p.has(P::ApiKeyView) {
                return Ok((None, None));
            }
            let soon = now + EXPIRING_WITHIN_DAYS * 86_400;
            let (mine, total, expiring) =
                crate::core::keys::overview(&st.db, now, soon, &p, ROWS).await?;
            Ok::<_, AppError>((Some((mine, total)), Some(expiring)))
        };
        let approvals = async {
            if !p.has(P::MessageApprove) {
                return Ok(None);
            }
            Ok::<_, AppError>(Some(
                crate::core::messages::queue_head(&st.db, now, &p, ROWS).await?,
            ))
        };
        let keys_waiting = crate::core::keys::lifecycle::waiting(&st.db, now, &p);
        let my_messages = async {
            if !p.has(P::MessageCreate) {
                return Ok(None);
            }
            Ok::<_, AppError>(Some(
                crate::core::messages::recent_own(&st.db, &p, 5).await?,
            ))
        };
        let alerts = async {
            if !p.has(P::AuditView) {
                return Ok(None);
            }
            let rows =
                crate::core::audit::auth_failures(&st.db, now - ALERT_HOURS * 3600, ALERT_SCAN)
                    .await?;
            Ok::<_, AppError>(Some(alerts(rows)))
        };
        let ((my_keys, expiring), approvals, keys_waiting, my_messages, alerts) =
            tokio::try_join!(keys, approvals, keys_waiting, my_messages, alerts)?;
        Ok(OverviewData {
            my_keys,
            expiring,
            expiring_all: p.has(P::ApiKeyViewAll),
            approvals,
            keys_waiting,
            my_messages,
            alerts,
        })
    }
    .await
    .map_err(crate::error::reply)
}

/// Sums up the failed-authentication events and describes the newest ones.
#[cfg(feature = "ssr")]
fn alerts(rows: Vec<crate::core::audit::FailureRow>) -> Alerts {
    let more = rows.len() as i64 >= ALERT_SCAN;
    let mut failed_sign_ins = 0;
    let mut refused_requests = 0;
    let mut recent = Vec::new();
    for r in rows {
        let details: serde_json::Value = serde_json::from_str(&r.details).unwrap_or_default();
        let (what, detail) = match r.action.as_str() {
            "api_key.refused" => {
                refused_requests += details["requests"].as_i64().unwrap_or(0);
                let by_code = details["by_code"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(code, n)| format!("{code} × {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                ("API key requests refused", by_code)
            }
            "auth.alert" => {
                let what = match details["reason"].as_str() {
                    Some("key_refusals") => "Alert sent: a key refused past the threshold",
                    Some("sign_in_failures") => "Alert sent: failed sign-ins past the threshold",
                    _ => "Alert sent",
                };
                let detail = match (
                    details["count"].as_i64(),
                    details["window_minutes"].as_i64(),
                ) {
                    (Some(n), Some(m)) => format!("{n} within {m} minutes"),
                    _ => details["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('_', " "),
                };
                (what, detail)
            }
            action => {
                failed_sign_ins += 1;
                let what = match action {
                    "auth.sign_in" => "Sign-in failed",
                    "auth.code_failed" => "Wrong second-factor code",
                    _ => "Wrong password when re-checking",
                };
                let reason = details["reason"]
                    .as_str()
                    .or(details["method"].as_str())
                    .or(details["purpose"].as_str())
                    .unwrap_or_default()
                    .replace('_', " ");
                (what, reason)
            }
        };
        if recent.len() < ROWS as usize {
            recent.push(Alert {
                at: r.occurred_at,
                what: what.to_owned(),
                target: r.target,
                ip: r.ip,
                detail,
            });
        }
    }
    Alerts {
        failed_sign_ins,
        refused_requests,
        more,
        recent,
    }
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    let data = Resource::new(|| (), |_| get_overview());
    view! {
        <Page title="Overview" me data=move || data.get() render=move |me, data| view! {<Overview me data/>}.into_any()/>
    }
}

#[component]
fn Overview(me: Me, data: OverviewData) -> impl IntoView {
    // Becomes true only once the wasm bundle has hydrated the page: the button below is
    // disabled in the server's HTML and comes alive in the browser.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let open = RwSignal::new(false);
    let signed_in = format_time(me.signed_in_at);
    let ends = format_time(me.session_ends_at);
    view! {
        <h1>"Overview"</h1>
        <section class="card" aria-labelledby="welcome">
            <h2 id="welcome">{format!("Welcome, {}", me.display_name)}</h2>
            <dl class="facts">
                <dt>"Email"</dt><dd>{me.email.clone()}</dd>
                <dt>"Role"</dt><dd>{me.role.clone()}</dd>
            </dl>
        </section>
        // Each panel's type is erased: a view type nested this deep overflows the
        // compiler's query depth in the wasm build.
        {(data.keys_waiting > 0).then(|| view! {
            <section class="card" aria-labelledby="keys-waiting-title">
                <h2 id="keys-waiting-title">"Keys waiting for approval"</h2>
                <p>{match data.keys_waiting {
                    1 => "1 new key is waiting for your approval; it is refused until someone approves it.".to_owned(),
                    n => format!("{n} new keys are waiting for your approval; they are refused until someone approves them."),
                }}" "<a href="/approvals">"Open the approval queue"</a></p>
            </section>
        })}
        {data.approvals.map(|(queue, waiting)| view! { <ApprovalsPanel queue waiting/> }.into_any())}
        {data.alerts.map(|alerts| view! { <AlertsPanel alerts/> }.into_any())}
        {data.my_keys.map(|(keys, total)| view! { <MyKeys keys total/> }.into_any())}
        {data.expiring.map(|keys| view! { <Expiring keys all=data.expiring_all/> }.into_any())}
        {data.my_messages.map(|messages| view! { <MyMessages messages/> }.into_any())}
        <section class="card" aria-labelledby="session-title">
            <h2 id="session-title">"This session"</h2>
            <button
                type="button"
                class="btn"
                aria-expanded=move || open.get().to_string()
                aria-controls="session-details"
                disabled=move || !hydrated.get()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                {move || if open.get() { "Hide session details" } else { "Show session details" }}
            </button>
            <dl id="session-details" class="facts" hidden=move || !open.get()>
                <dt>"Signed in"</dt><dd>{signed_in}</dd>
                <dt>"Ends at the latest"</dt><dd>{ends}</dd>
            </dl>
        </section>
    }
}

fn expires_text(k: &KeyInfo) -> String {
    k.expires_at.map_or_else(|| "never".to_owned(), format_time)
}

#[component]
fn MyKeys(keys: Vec<KeyInfo>, total: i64) -> impl IntoView {
    let summary = match total {
        0 => "You hold no active API keys.".to_owned(),
        1 => "You hold 1 active API key.".to_owned(),
        n if n > crate::keys::COUNT_CAP => format!(
            "You hold more than {} active API keys; the {} newest:",
            crate::keys::COUNT_CAP,
            keys.len()
        ),
        n if n as usize > keys.len() => {
            format!("You hold {n} active API keys; the {} newest:", keys.len())
        }
        n => format!("You hold {n} active API keys."),
    };
    let rows = keys
        .into_iter()
        .map(|k| {
            view! {
                <tr>
                    <td>{k.name.clone()}</td>
                    <td><code>{k.key_id.clone()}</code></td>
                    <td>{k.app.clone()}</td>
                    <td>{k.environment.clone()}</td>
                    <td>{k.last_used_at.map_or_else(|| "never".to_owned(), format_time)}</td>
                    <td>{expires_text(&k)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="my-keys-title">
            <h2 id="my-keys-title">"My API keys"</h2>
            <p>{summary}" "<a href="/keys">"All keys"</a></p>
            {(total > 0).then(|| view! {
                <DataTable headers=&["Name", "Key ID", "App", "Environment", "Last used", "Expires"]>{rows}</DataTable>
            })}
        </section>
    }
}

#[component]
fn Expiring(keys: Vec<KeyInfo>, all: bool) -> impl IntoView {
    let empty = keys.is_empty();
    let whose = if all { "Keys" } else { "Your keys" };
    let rows = keys
        .into_iter()
        .map(|k| {
            view! {
                <tr>
                    <td>{expires_text(&k)}</td>
                    <td>{k.name.clone()}</td>
                    <td><code>{k.key_id.clone()}</code></td>
                    <td>{k.app.clone()}</td>
                    <td>{k.owner.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="expiring-title">
            <h2 id="expiring-title">"Keys expiring soon"</h2>
            {if empty {
                view! { <p class="muted">{format!("{whose}: none expire in the next {EXPIRING_WITHIN_DAYS} days.")}</p> }.into_any()
            } else {
                view! {
                    <p>{format!("{whose} that expire in the next {EXPIRING_WITHIN_DAYS} days (roll them on the keys page to keep applications working):")}</p>
                    <DataTable headers=&["Expires", "Name", "Key ID", "App", "Owner"]>{rows}</DataTable>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn ApprovalsPanel(queue: Vec<MessageInfo>, waiting: i64) -> impl IntoView {
    let summary = match waiting {
        0 => "No messages are waiting for your approval.".to_owned(),
        1 => "1 message is waiting for your approval.".to_owned(),
        n => format!("{n} messages are waiting for your approval."),
    };
    let rows = queue
        .into_iter()
        .map(|m| {
            let href = format!("/messages/{}", m.id);
            view! {
                <tr>
                    <td><a href=href><code>{m.id.clone()}</code></a></td>
                    <td>{m.app.clone()}</td>
                    <td>{m.subject.clone()}</td>
                    <td>{m.author.clone()}</td>
                    <td>{m.expires_at.map_or_else(String::new, format_time)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="pending-title">
            <h2 id="pending-title">"Pending approvals"</h2>
            <p>{summary}" "<a href="/approvals">"Open the approval queue"</a></p>
            {(waiting > 0).then(|| view! {
                <DataTable headers=&["ID", "App", "Subject", "Author", "Expires"]>{rows}</DataTable>
            })}
        </section>
    }
}

#[component]
fn MyMessages(messages: Vec<MessageInfo>) -> impl IntoView {
    let empty = messages.is_empty();
    let rows = messages
        .into_iter()
        .map(|m| {
            let href = format!("/messages/{}", m.id);
            view! {
                <tr>
                    <td><a href=href><code>{m.id.clone()}</code></a></td>
                    <td>{m.subject.clone()}</td>
                    <td><StatusBadge status=m.status.clone()/></td>
                    <td>{format_time(m.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="my-messages-title">
            <h2 id="my-messages-title">"My latest messages"</h2>
            {if empty {
                view! { <p class="muted">"You have not written any messages. "<a href="/messages">"Write one"</a></p> }.into_any()
            } else {
                view! {
                    <DataTable headers=&["ID", "Subject", "Status", "Created"]>{rows}</DataTable>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn AlertsPanel(alerts: Alerts) -> impl IntoView {
    let at_least = if alerts.more { "at least " } else { "" };
    let count = |n: i64, one: &str, many: &str| {
        format!("{at_least}{n} {}", if n == 1 { one } else { many })
    };
    let summary = format!(
        "In the last {ALERT_HOURS} hours: {} and {}.",
        count(
            alerts.failed_sign_ins,
            "failed sign-in step",
            "failed sign-in steps"
        ),
        count(
            alerts.refused_requests,
            "refused API key request",
            "refused API key requests"
        ),
    );
    let empty = alerts.recent.is_empty();
    let rows = alerts
        .recent
        .into_iter()
        .map(|a| {
            view! {
                <tr>
                    <td>{format_time(a.at)}</td>
                    <td>{a.what}</td>
                    <td>{a.target.unwrap_or_default()}</td>
                    <td>{a.ip.unwrap_or_default()}</td>
                    <td>{a.detail}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="alerts-title">
            <h2 id="alerts-title">"Failed authentication"</h2>
            <p>{summary}</p>
            {(!empty).then(|| view! {
                <DataTable headers=&["When", "What", "Account or key", "Address", "Details"]>{rows}</DataTable>
            })}
        </section>
    }
}
