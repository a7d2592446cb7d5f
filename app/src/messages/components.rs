use super::{
    ApproveMessage, ComposeApp, CreateMessage, EditMessage, MessageDetail, MessageInfo,
    MessagesView, RejectMessage,
};
use crate::auth::get_me;
use crate::shell_ui::{
    form_token, format_time, invalid, reset_on_success, ActionResult, FieldError, FormToken, Page,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

fn status_label(s: &str) -> String {
    s.replace('_', " ")
}

/// A message's status as a coloured badge (the overview uses it too).
#[component]
pub fn StatusBadge(status: String) -> impl IntoView {
    view! { <span class=format!("badge status-{status}")>{status_label(&status)}</span> }
}

fn created_note(m: &MessageInfo) -> String {
    match m.status.as_str() {
        "pending_approval" => format!(
            "Message {} is waiting for approval ({} of {} so far).",
            m.id, m.approvals, m.approvals_needed
        ),
        _ => format!("Message {} is queued for delivery.", m.id),
    }
}

#[component]
pub fn MessagesPage() -> impl IntoView {
    let create = ServerAction::<CreateMessage>::new();
    let me = Resource::new(|| (), |_| get_me());
    let token = form_token(create);
    // The page lives in the query string (`?before=`), so paging is a plain link.
    let query = leptos_router::hooks::use_query_map();
    let data = Resource::new(
        move || {
            (
                query.with(|q| q.get("before").unwrap_or_default()),
                create.version().get(),
            )
        },
        |(before, _)| super::list_messages(before),
    );
    view! {
        <Page title="Messages" me data=move || data.get() render=move |_me, data| view! {
                    <h1>"Messages"</h1>
                    <ActionResult action=create ok=created_note/>
                    {data.can_create.then(|| view! { <ComposeForm apps=data.apps.clone() create token/> })}
                    <MessageTable data/>
                }.into_any()/>
    }
}

#[component]
fn ComposeForm(
    apps: Vec<ComposeApp>,
    create: ServerAction<CreateMessage>,
    token: Resource<Result<String, crate::error::AppError>>,
) -> impl IntoView {
    let no_apps = apps.is_empty();
    let app_options = apps
        .iter()
        .map(|a| {
            let label = if a.approval_required {
                format!("{} (needs approval)", a.name)
            } else {
                format!("{} (sent without approval)", a.name)
            };
            view! { <option value=a.id.to_string()>{label}</option> }
        })
        .collect_view();
    let hooks = apps
        .iter()
        .flat_map(|a| {
            a.webhooks
                .iter()
                .map(|w| (a.name.clone(), w.clone()))
                .collect::<Vec<_>>()
        })
        .map(|(app, w)| view! { <option value=w.reference.clone()>{format!("{app}: {}", w.label)}</option> })
        .collect_view();
    let senders = apps
        .iter()
        .flat_map(|a| {
            a.sender_numbers
                .iter()
                .map(|n| (a.name.clone(), n.clone()))
                .collect::<Vec<_>>()
        })
        .map(|(app, n)| view! { <option value=n.clone()>{format!("{app}: {n}")}</option> })
        .collect_view();
    // The fields the server may name when it refuses a message (each error beside its
    // input; the REST names `to` are the panel's `recipients`).
    const APP: &[&str] = &["app_id"];
    const CHANNEL: &[&str] = &["channel"];
    const RECIPIENTS: &[&str] = &["recipients", "to"];
    const WEBHOOK: &[&str] = &["webhook_url"];
    const FROM: &[&str] = &["from"];
    const SUBJECT: &[&str] = &["subject"];
    const BODY: &[&str] = &["body"];
    view! {
        <section class="card" aria-labelledby="compose-title">
            <h2 id="compose-title">"Write a message"</h2>
            {no_apps.then(|| view! { <p class="muted">"There are no apps yet: someone with app.manage creates them on the Apps page."</p> })}
            <ActionForm action=create node_ref=reset_on_success(create)>
                <FormToken token/>
                <div class="field"><label for="msg-app">"App"</label>
                    <select id="msg-app" name="app_id" required aria-invalid=invalid(create, APP) aria-describedby=move || invalid(create, APP)().map(|_| "msg-app-error")>{app_options}</select>
                    <FieldError action=create fields=APP id="msg-app-error"/></div>
                <div class="field"><label for="msg-channel">"Channel"</label>
                    <select id="msg-channel" name="channel" aria-invalid=invalid(create, CHANNEL) aria-describedby=move || invalid(create, CHANNEL)().map(|_| "msg-channel-error")>
                        <option value="email">"email"</option>
                        <option value="webhook">"webhook"</option>
                        <option value="sms">"SMS"</option>
                    </select>
                    <FieldError action=create fields=CHANNEL id="msg-channel-error"/></div>
                // Each channel's own field shows only when that channel is chosen (CSS :has,
                // so also without JavaScript).
                <div class="field for-recipients"><label for="msg-recipients">"Recipients (one per line: email addresses, or for SMS numbers such as +905551234567)"</label>
                    <textarea id="msg-recipients" name="recipients" rows="2" maxlength="10000" aria-invalid=invalid(create, RECIPIENTS) aria-describedby=move || invalid(create, RECIPIENTS)().map(|_| "msg-recipients-error")></textarea>
                    <FieldError action=create fields=RECIPIENTS id="msg-recipients-error"/></div>
                <div class="field for-webhook"><label for="msg-webhook">"Webhook URL (registered on the Apps page)"</label>
                    <select id="msg-webhook" name="webhook_url" aria-invalid=invalid(create, WEBHOOK) aria-describedby=move || invalid(create, WEBHOOK)().map(|_| "msg-webhook-error")><option value="">"—"</option>{hooks}</select>
                    <FieldError action=create fields=WEBHOOK id="msg-webhook-error"/></div>
                <div class="field for-sms"><label for="msg-from">"Send from (the app's sender numbers, Channels page)"</label>
                    <select id="msg-from" name="from" aria-invalid=invalid(create, FROM) aria-describedby=move || invalid(create, FROM)().map(|_| "msg-from-error")><option value="">"—"</option>{senders}</select>
                    <FieldError action=create fields=FROM id="msg-from-error"/></div>
                <div class="field"><label for="msg-subject">"Subject (for SMS, optional: a title for this list)"</label>
                    <input id="msg-subject" name="subject" type="text" maxlength="200" aria-invalid=invalid(create, SUBJECT) aria-describedby=move || invalid(create, SUBJECT)().map(|_| "msg-subject-error")/>
                    <FieldError action=create fields=SUBJECT id="msg-subject-error"/></div>
                <div class="field"><label for="msg-body">"Message"</label>
                    <textarea id="msg-body" name="body" rows="6" required maxlength="32768" aria-invalid=invalid(create, BODY) aria-describedby=move || invalid(create, BODY)().map(|_| "msg-body-error")></textarea>
                    <FieldError action=create fields=BODY id="msg-body-error"/></div>
                <button type="submit" class="btn btn-primary" disabled=move || no_apps || create.pending().get()>"Submit"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn MessageTable(data: MessagesView) -> impl IntoView {
    let first_page = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("before").unwrap_or_default().is_empty());
    let older = data.older.clone();
    let empty = data.messages.is_empty();
    let rows = data
        .messages
        .into_iter()
        .map(|m| {
            let href = format!("/messages/{}", m.id);
            view! {
                <tr>
                    <td><a href=href><code>{m.id.clone()}</code></a></td>
                    <td>{m.app.clone()}</td>
                    <td>{m.channel.clone()}</td>
                    <td>{if m.subject.is_empty() { m.body.chars().take(60).collect::<String>() } else { m.subject.clone() }}</td>
                    <td><StatusBadge status=m.status.clone()/></td>
                    <td>{m.author.clone()}</td>
                    <td>{format_time(m.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="messages-title">
            <h2 id="messages-title">"Messages"</h2>
            {if empty {
                view! { <p class="muted">"No messages yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0">
                        <table>
                            <thead><tr>
                                <th scope="col">"ID"</th><th scope="col">"App"</th><th scope="col">"Channel"</th>
                                <th scope="col">"Subject"</th><th scope="col">"Status"</th><th scope="col">"Author"</th>
                                <th scope="col">"Created"</th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <p class="pager">
                {(!first_page).then(|| view! { <a href="/messages">"Newest messages"</a> })}
                " "
                {older.map(|id| view! { <a href=format!("/messages?before={id}") rel="next">"Older messages"</a> })}
            </p>
        </section>
    }
}

/// The exact payload that will be sent.
#[component]
fn Payload(m: MessageInfo) -> impl IntoView {
    let to = match &m.webhook_url {
        Some(u) => format!("POST {u}"),
        None => m.recipients.join(", "),
    };
    view! {
        <dl class="payload">
            <dt>"App"</dt><dd>{m.app.clone()}</dd>
            <dt>"Channel"</dt><dd>{m.channel.clone()}</dd>
            <dt>"To"</dt><dd class="payload-to">{to}</dd>
            {m.sender.clone().map(|f| view! { <dt>"From"</dt><dd class="payload-from">{f}</dd> })}
            <dt>"Subject"</dt><dd class="payload-subject">{m.subject.clone()}</dd>
            <dt>"Message"</dt><dd><pre class="payload-body">{m.body.clone()}</pre></dd>
            <dt>"Written by"</dt><dd>{m.author.clone()}{m.created_by_key.clone().map(|k| format!(" (with key {k})"))}</dd>
            <dt>"Payload hash"</dt><dd><code>{m.payload_hash.clone()}</code></dd>
        </dl>
    }
}

/// Approve and reject, bound to the payload hash the approver is looking at.
#[component]
fn Decide(
    m: MessageInfo,
    approve: ServerAction<ApproveMessage>,
    reject: ServerAction<RejectMessage>,
) -> impl IntoView {
    let reason_id = format!("reason-{}", m.id);
    let reason_label = format!("Reason for rejecting {}", m.id);
    let (approve_label, reject_label) = (format!("Approve {}", m.id), format!("Reject {}", m.id));
    let (id1, hash1) = (m.id.clone(), m.payload_hash.clone());
    let (id2, hash2) = (m.id, m.payload_hash);
    view! {
        <div class="decide">
            <ActionForm action=approve attr:class="inline-form">
                <input type="hidden" name="id" value=id1/>
                <input type="hidden" name="payload_hash" value=hash1/>
                <button type="submit" class="btn btn-primary" aria-label=approve_label>"Approve"</button>
            </ActionForm>
            <ActionForm action=reject attr:class="inline-form">
                <input type="hidden" name="id" value=id2/>
                <input type="hidden" name="payload_hash" value=hash2/>
                <label for=reason_id.clone()>{reason_label}</label>
                <input id=reason_id name="reason" type="text" required maxlength="500"/>
                <button type="submit" class="btn btn-danger" aria-label=reject_label>"Reject"</button>
            </ActionForm>
        </div>
    }
}

fn decided_note(m: &MessageInfo) -> String {
    match m.status.as_str() {
        "queued" | "sending" | "sent" => format!("Approved: {} is queued for delivery.", m.id),
        "rejected" => format!("{} was rejected.", m.id),
        _ => format!(
            "Approved: {} of {} approvals so far.",
            m.approvals, m.approvals_needed
        ),
    }
}

#[component]
pub fn MessagePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let approve = ServerAction::<ApproveMessage>::new();
    let reject = ServerAction::<RejectMessage>::new();
    let edit = ServerAction::<EditMessage>::new();
    let me = Resource::new(|| (), |_| get_me());
    let data = Resource::new(
        move || {
            (
                id(),
                approve.version().get(),
                reject.version().get(),
                edit.version().get(),
            )
        },
        |(id, ..)| super::get_message(id),
    );
    view! {
        <Page title="Message" me data=move || data.get() render=move |_me, d| view! {
            <h1>{format!("Message {}", d.message.id)}</h1>
            <ActionResult action=approve ok=decided_note/>
            <ActionResult action=reject ok=decided_note/>
            <ActionResult action=edit ok=|m: &MessageInfo| format!("Saved. Earlier approvals no longer count; {} needs {} again.", m.id, m.approvals_needed)/>
            <MessageCard d approve reject edit/>
        }.into_any()/>
    }
}

#[component]
fn MessageCard(
    d: MessageDetail,
    approve: ServerAction<ApproveMessage>,
    reject: ServerAction<RejectMessage>,
    edit: ServerAction<EditMessage>,
) -> impl IntoView {
    let m = d.message.clone();
    let status = format!(
        "{}{}",
        status_label(&m.status),
        if m.status == "pending_approval" {
            format!(" ({} of {} approvals)", m.approvals, m.approvals_needed)
        } else {
            String::new()
        }
    );
    let history = d
        .history
        .iter()
        .map(|h| {
            view! {
                <tr>
                    <td>{format_time(h.at)}</td>
                    <td>{h.action.trim_start_matches("message.").replace('_', " ")}</td>
                    <td>{h.actor.clone()}</td>
                    <td>{h.details.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    let edit_form = d.can_edit.then(|| {
        let m = m.clone();
        view! {
            <section class="card" aria-labelledby="edit-title">
                <h2 id="edit-title">"Edit"</h2>
                <p class="muted">"Editing voids the approvals given so far."</p>
                <ActionForm action=edit>
                    <input type="hidden" name="id" value=m.id.clone()/>
                    <input type="hidden" name="webhook_url" value=m.webhook_ref.clone().unwrap_or_default()/>
                    <input type="hidden" name="from" value=m.sender.clone().unwrap_or_default()/>
                    {(m.channel == "email" || m.channel == "sms").then(|| view! {
                        <div class="field"><label for="edit-recipients">"Recipients"</label>
                            <textarea id="edit-recipients" name="recipients" rows="2" maxlength="10000">{crate::shell_ui::textarea_text(&m.recipients.join("\n"))}</textarea></div>
                    })}
                    <div class="field"><label for="edit-subject">"Subject"</label>
                        <input id="edit-subject" name="subject" type="text" required=m.channel != "sms" maxlength="200" value=m.subject.clone()/></div>
                    <div class="field"><label for="edit-body">"Message"</label>
                        <textarea id="edit-body" name="body" rows="6" required maxlength="32768">{crate::shell_ui::textarea_text(&m.body)}</textarea></div>
                    <button type="submit" class="btn">"Save changes"</button>
                </ActionForm>
            </section>
        }
    });
    view! {
        <section class="card" aria-labelledby="msg-title">
            <h2 id="msg-title">{match m.status.as_str() {
                "sent" => "What was sent",
                "pending_approval" | "approved" | "queued" | "sending" => "What will be sent",
                _ => "The message",
            }}</h2>
            <p>"Status: "<strong class="message-status">{status}</strong>
                {m.expires_at.filter(|_| m.status == "pending_approval").map(|e| format!(" · expires {}", format_time(e)))}
                {(m.attempts > 0).then(|| format!(" · {} delivery attempt(s)", m.attempts))}
            </p>
            {m.last_error.clone().map(|e| view! { <p class="alert alert-error">{format!("Last delivery error: {e}")}</p> })}
            <Payload m=m.clone()/>
            {d.can_decide.then(|| view! { <Decide m=m.clone() approve reject/> })}
            {d.decide_blocked.clone().map(|b| view! { <p class="muted decide-blocked">{b}</p> })}
        </section>
        {edit_form}
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">"History"</h2>
            <div class="table-wrap" tabindex="0">
                <table>
                    <thead><tr><th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Who"</th><th scope="col">"Details"</th></tr></thead>
                    <tbody>{history}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let approve = ServerAction::<ApproveMessage>::new();
    let reject = ServerAction::<RejectMessage>::new();
    let decide_key = ServerAction::<crate::keys::DecideKey>::new();
    crate::one_answer_at_a_time!(approve, reject, decide_key);
    let me = Resource::new(|| (), |_| get_me());
    let queue = Resource::new(
        move || {
            (
                approve.version().get(),
                reject.version().get(),
                decide_key.version().get(),
            )
        },
        |_| super::load_approvals(),
    );
    view! {
        <Page title="Approvals" me data=move || queue.get() render=move |_me, v| view! {
                    <h1>"Approvals"</h1>
                    <ActionResult action=approve ok=decided_note/>
                    <ActionResult action=reject ok=decided_note/>
                    <ActionResult action=decide_key ok=|m: &String| m.clone()/>
                    {v.messages.map(|queue| view! {
                        <h2>"Messages"</h2>
                        <p class="muted">"Nothing is sent until it is approved here by someone other than its author. You approve exactly what is shown."</p>
                        {queue.is_empty().then(|| view! { <p class="muted">"No messages are waiting for you."</p> })}
                        {(v.own_waiting > 0).then(|| {
                            let n = v.own_waiting;
                            let text = if n == 1 {
                                "1 message of yours waits for someone else's approval: nobody approves their own. "
                                    .to_owned()
                            } else {
                                format!("{n} messages of yours wait for someone else's approval: nobody approves their own. ")
                            };
                            view! { <p class="muted" id="own-waiting">{text}<a href="/messages">"See them under Messages"</a>"."</p> }
                        })}
                        {queue.into_iter().map(|m| {
                            let title = format!("approval-{}", m.id);
                            let title2 = title.clone();
                            let href = format!("/messages/{}", m.id);
                            view! {
                                <section class="card approval" aria-labelledby=title2>
                                    <h3 id=title><a href=href>{m.id.clone()}</a></h3>
                                    <p class="muted">{format!("{} of {} approvals", m.approvals, m.approvals_needed)}
                                        {m.expires_at.map(|e| format!(" · expires {}", format_time(e)))}</p>
                                    <Payload m=m.clone()/>
                                    <Decide m approve reject/>
                                </section>
                            }
                        }).collect_view()}
                    })}
                    {v.keys.map(|keys| view! {
                        <h2>"API keys"</h2>
                        <p class="muted">"Settings > Keys make new keys wait for approval: a key listed here is refused until someone other than its owner approves it. You can decide only on keys that may do nothing you may not."</p>
                        {keys.is_empty().then(|| view! { <p class="muted">"No keys are waiting."</p> })}
                        {keys.into_iter().map(|k| view! { <PendingKey k decide=decide_key/> }).collect_view()}
                    })}
                }.into_any()/>
    }
}

/// A key waiting for approval: everything it would be allowed, and the two decisions.
#[component]
fn PendingKey(
    k: model::keys::KeyInfo,
    decide: ServerAction<crate::keys::DecideKey>,
) -> impl IntoView {
    let title = format!("pending-{}", k.key_id);
    let title2 = title.clone();
    let reason_id = format!("key-reason-{}", k.key_id);
    let (approve_label, reject_label, reason_label) = (
        format!("Approve {}", k.key_id),
        format!("Reject {}", k.key_id),
        format!("Reason for rejecting {}", k.key_id),
    );
    let networks = if k.networks.is_empty() {
        "any address the app allows".to_owned()
    } else {
        k.networks.join(", ")
    };
    let expires = k.expires_at.map_or_else(|| "never".to_owned(), format_time);
    let (id1, id2) = (k.key_id.clone(), k.key_id.clone());
    view! {
        <section class="card approval" aria-labelledby=title2>
            <h3 id=title>{k.name.clone()}" "<code>{k.key_id.clone()}</code></h3>
            <dl class="facts">
                <dt>"Owner"</dt><dd>{k.owner.clone().unwrap_or_default()}</dd>
                <dt>"App"</dt><dd>{format!("{} ({})", k.app, k.environment)}</dd>
                {match &k.channel {
                    // A channel key has no role: it may only write its channel's
                    // messages (and read those it wrote) for its owner.
                    Some(c) => view! {
                        <dt>"Channel key"</dt><dd>{format!("{c}: may {}", k.key_events.join(" and "))}{k.sender.clone().map(|s| format!(", from {s}"))}</dd>
                    }.into_any(),
                    None => view! { <dt>"Role"</dt><dd>{k.role.clone().unwrap_or_default()}</dd> }.into_any(),
                }}
                <dt>"Allowed networks"</dt><dd>{networks}</dd>
                <dt>"Expires"</dt><dd>{expires}</dd>
                <dt>"Requested"</dt><dd>{format_time(k.created_at)}</dd>
            </dl>
            <div class="decide">
                <ActionForm action=decide attr:class="inline-form">
                    <input type="hidden" name="key_id" value=id1/>
                    <input type="hidden" name="decision" value="approve"/>
                    <button type="submit" class="btn btn-primary" aria-label=approve_label>"Approve"</button>
                </ActionForm>
                <ActionForm action=decide attr:class="inline-form">
                    <input type="hidden" name="key_id" value=id2/>
                    <input type="hidden" name="decision" value="reject"/>
                    <label for=reason_id.clone()>{reason_label}</label>
                    <input id=reason_id name="reason" type="text" required maxlength="500"/>
                    <button type="submit" class="btn btn-danger" aria-label=reject_label>"Reject"</button>
                </ActionForm>
            </div>
        </section>
    }
}
