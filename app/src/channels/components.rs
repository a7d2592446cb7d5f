use super::{
    AddSenderNumber, ChannelSecret, ChannelSection, ChannelsView, CreateChannelKey, NewNumberKey,
    RegenerateChannelKey, RemoveSenderNumber, RevealChannelKey, RevokeChannelKey, SenderNumber,
};
use crate::auth::get_me;
use crate::keys::{ErrorOf, GraceField, REVOKE_WARNING};
use crate::shell_ui::{
    sent_here, ActionResult, CancelButton, CopyButton, DataTable, Dialog, Page, RowActions, When,
};
use leptos::prelude::*;

/// "an email key", "an RCS key", "a WhatsApp key".
fn a_key(channel: &str) -> &'static str {
    match channel {
        "email" => "an email key",
        "sms" => "an SMS key",
        "rcs" => "an RCS key",
        "whatsapp" => "a WhatsApp key",
        _ => "a key",
    }
}

/// "email", "SMS", "RCS", "WhatsApp": the channel inside a sentence.
fn noun(channel: &str) -> &'static str {
    match channel {
        "email" => "email",
        other => title(other),
    }
}

fn title(channel: &str) -> &'static str {
    match channel {
        "email" => "Email",
        "sms" => "SMS",
        "rcs" => "RCS",
        "whatsapp" => "WhatsApp",
        _ => "Channel",
    }
}

/// What the policy says, in one line.
fn summary(s: &ChannelSection) -> String {
    let p = &s.policy;
    let head = match p.per.as_str() {
        "number" => {
            "One key per sender number, made when the number is added (app.manage)".to_owned()
        }
        "user" => format!(
            "Created by holders of {} · at most {} active per user",
            p.create_permission, p.max_active
        ),
        _ => format!(
            "Created by holders of {} · at most {} active for the whole deployment",
            p.create_permission, p.max_active
        ),
    };
    format!(
        "{head} · {} · {}{}{}",
        if p.reveal {
            "can be revealed again after your password"
        } else {
            "shown once, when made"
        },
        if p.regenerate {
            "can be regenerated"
        } else {
            "never regenerated"
        },
        if p.max_expiry_days > 0 {
            format!(" · expire within {} days", p.max_expiry_days)
        } else {
            String::new()
        },
        if p.require_networks {
            " · IP allow-list required"
        } else {
            ""
        },
    )
}

/// A secret just made, regenerated or revealed: shown here only, with a copy button.
#[component]
fn SecretCard(s: ChannelSecret) -> impl IntoView {
    let heading = match s.what.as_str() {
        "revealed" => format!("The secret of {}", s.key_id),
        "regenerated" => format!("The new secret of {}", s.key_id),
        _ => format!("Your new key {}", s.key_id),
    };
    let note = match s.what.as_str() {
        "revealed" => "This reveal was recorded in the audit log.".to_owned(),
        what => format!(
            "Copy it now. If this channel's keys are revealable you can show it again later with your password; otherwise it is shown only this once.{}",
            if what == "regenerated" {
                format!(" {}", super::old_key_note(s.old_works_for))
            } else {
                String::new()
            }
        ),
    };
    // Focus moves to the new secret (a dialog that made it closes first and gives focus
    // back to its opener, which the list may then draw no more), so a screen reader reads
    // it out and the copy button is at hand.
    let card = NodeRef::<leptos::html::Section>::new();
    Effect::new(move |_| {
        if let Some(el) = card.get() {
            request_animation_frame(move || {
                let _ = el.focus();
            });
        }
    });
    view! {
        <section class="card secret-card" aria-labelledby="channel-secret-title" tabindex="-1" node_ref=card>
            <h2 id="channel-secret-title">{heading}</h2>
            <p>{note}</p>
            {s.pending.then(|| view! {
                <p class="alert alert-info">"This key waits for approval (Settings > Keys): requests with it are refused (key_pending) until someone other than its owner approves it on the Approvals page. Its owner is emailed when they decide."</p>
            })}
            <p><code class="secret" id="channel-secret">{s.secret.clone()}</code></p>
            <CopyButton text=s.secret what=format!("the secret of {}", s.key_id)/>
        </section>
    }
}

#[component]
pub fn ChannelsPage() -> impl IntoView {
    let create = ServerAction::<CreateChannelKey>::new();
    let reveal = ServerAction::<RevealChannelKey>::new();
    let regen = ServerAction::<RegenerateChannelKey>::new();
    let revoke = ServerAction::<RevokeChannelKey>::new();
    let add_number = ServerAction::<AddSenderNumber>::new();
    let number_key = ServerAction::<NewNumberKey>::new();
    let remove_number = ServerAction::<RemoveSenderNumber>::new();
    // Which rows have their actions open (`RowActions`).
    let open_rows = crate::shell_ui::open_rows_from_query();
    // The listing lives in the query string (a plain GET form and links), so it works
    // without JavaScript and survives a reload; opening a row (`manage`) reads nothing
    // again.
    let query = leptos_router::hooks::use_query_map();
    let listing = Memo::new(move |_| {
        query.with(|q| {
            let arg = |k: &str| q.get(k).unwrap_or_default();
            (arg("channel"), arg("q"), arg("after"))
        })
    });
    crate::shell_ui::close_on_success(regen);
    crate::shell_ui::close_on_success(revoke);
    crate::shell_ui::close_on_success(number_key);
    crate::shell_ui::close_on_success(remove_number);
    crate::one_answer_at_a_time!(
        create,
        reveal,
        regen,
        revoke,
        add_number,
        number_key,
        remove_number
    );
    let me = Resource::new(|| (), |_| get_me());
    let data = Resource::new(
        move || {
            (
                listing.get(),
                create.version().get(),
                regen.version().get(),
                revoke.version().get(),
                add_number.version().get(),
                number_key.version().get(),
                remove_number.version().get(),
            )
        },
        |((channel, q, after), ..)| super::list_channels(channel, q, after),
    );
    let secret = move || {
        [
            create.value().get(),
            reveal.value().get(),
            regen.value().get(),
            add_number.value().get(),
            number_key.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(Result::ok)
        .map(|s| view! { <SecretCard s/> })
    };
    // Forms sent from this page by its script show their errors beside themselves
    // (and take the focus, `ErrorOf`); the page's own message is for the rest: a form
    // the server answered without script, and the dialogs' forms when closed.
    let (create_sent, reveal_sent, add_sent) = (
        sent_here(create, |_| true),
        sent_here(reveal, |_| true),
        sent_here(add_number, |_| true),
    );
    let failed = move || {
        let unless_sent =
            |v: Option<Result<ChannelSecret, crate::error::AppError>>,
             sent: RwSignal<Option<bool>>| { v.filter(|_| sent.get().is_none()) };
        [
            unless_sent(create.value().get(), create_sent),
            unless_sent(reveal.value().get(), reveal_sent),
            regen.value().get(),
            unless_sent(add_number.value().get(), add_sent),
            number_key.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(Result::err)
        // (Hidden while a dialog is open: the dialog shows its own.)
        .map(|e| view! { <p class="alert alert-error beside-dialog" role="alert">{e.to_string()}</p> })
    };
    view! {
        <Page title="Channel keys" me data=move || data.get() render=move |_me, v: ChannelsView| view! {
            <h1>"Channel keys"</h1>
            <p class="muted">"Keys that send messages of one channel only, each under its channel's policy (Settings > Channels). On the REST API a channel key may only send its channel's messages and read the ones it sent: anything else is refused with channel_not_allowed."</p>
            {secret}
            {failed}
            <ActionResult action=revoke ok=|_: &()| "Key revoked.".to_owned()/>
            <ActionResult action=remove_number ok=|_: &()| "Sender number removed; its key no longer works.".to_owned()/>
            <Search/>
            {v.sections.into_iter().map(|s| {
                let apps = v.apps.clone();
                let numbers = (s.channel == "sms").then(|| {
                    let (numbers, apps) = (v.numbers.clone(), v.apps.clone());
                    let require_networks = s.policy.require_networks;
                    view! { <Numbers numbers apps manages=v.manages_numbers require_networks open_rows add=add_number rekey=number_key remove=remove_number/> }.into_any()
                });
                view! { <Section s apps me=v.me now=v.now needs_password=v.needs_password open_rows create reveal regen revoke numbers/> }
            }).collect_view()}
        }.into_any()/>
    }
}

/// The address of the listing on screen (without `manage`).
fn this_listing(m: &leptos_router::params::ParamsMap) -> String {
    let arg = |k: &str| m.get(k).unwrap_or_default();
    super::listing_href(&arg("channel"), &arg("q"), &arg("after"))
}

/// The search over channel keys and the channel to list: a plain GET form, so it works
/// without JavaScript and its answer is an address to keep.
#[component]
fn Search() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let (channel, q) = query.with_untracked(|m| {
        (
            m.get("channel").unwrap_or_default(),
            m.get("q").unwrap_or_default(),
        )
    });
    let options = model::settings::ChannelSettings::CHANNELS
        .iter()
        .map(|c| {
            let selected = *c == channel;
            view! { <option value=*c selected=selected>{title(c)}</option> }
        })
        .collect_view();
    let all = (!channel.is_empty()).then(|| {
        view! { <p><a href=super::listing_href("", &q, "")>"All channels"</a></p> }
    });
    view! {
        <form method="get" action="/channels" class="inline-form filters" aria-label="Search channel keys" role="search">
            <span class="filter"><label for="c-q">"Search"</label>
            <input id="c-q" name="q" type="search" maxlength="100" value=q.clone()
                placeholder="Name, key ID or owner"/></span>
            <span class="filter"><label for="c-channel">"Channel"</label>
            <select id="c-channel" name="channel"><option value="">"All"</option>{options}</select></span>
            <button type="submit" class="btn">"Search"</button>
        </form>
        {all}
    }
}

#[component]
fn Section(
    s: ChannelSection,
    apps: Vec<model::keys::AppChoice>,
    me: i64,
    now: i64,
    needs_password: bool,
    open_rows: RwSignal<std::collections::BTreeSet<String>>,
    create: ServerAction<CreateChannelKey>,
    reveal: ServerAction<RevealChannelKey>,
    regen: ServerAction<RegenerateChannelKey>,
    revoke: ServerAction<RevokeChannelKey>,
    /// The SMS section's sender numbers.
    numbers: Option<AnyView>,
) -> impl IntoView {
    let name = title(&s.channel);
    // Where this listing is: every channel (a few keys of each, then a link to the
    // channel's own pages) or this channel alone, a page at a time.
    let query = leptos_router::hooks::use_query_map();
    let (chosen, search, after) = query.with_untracked(|m| {
        (
            m.get("channel").is_some_and(|c| !c.is_empty()),
            m.get("q").unwrap_or_default(),
            m.get("after").unwrap_or_default(),
        )
    });
    let this_page = query.with_untracked(this_listing);
    let pager = match (&s.next, chosen) {
        (Some(_), false) => Some(view! {
            <p class="pager"><a href=super::listing_href(&s.channel, &search, "")>{format!("All {} keys", noun(&s.channel))}</a></p>
        }.into_any()),
        (next, true) if next.is_some() || !after.is_empty() => {
            let first = (!after.is_empty()).then(|| super::listing_href(&s.channel, &search, ""));
            let next = next.as_deref().map(|n| super::listing_href(&s.channel, &search, n));
            Some(view! {
                <p class="pager">
                    {first.map(|href| view! { <a href=href>"First page"</a> })}
                    " "
                    {next.map(|href| view! { <a href=href rel="next">"Next page"</a> })}
                </p>
            }.into_any())
        }
        _ => None,
    };
    let heading_id = format!("channel-{}", s.channel);
    let heading_ref = heading_id.clone();
    let line = summary(&s);
    let policy = s.policy.clone();
    let channel = s.channel.clone();
    let (empty, manages_all, can_create) = (s.keys.is_empty(), s.manages_all, s.can_create);
    let rows = s
        .keys
        .into_iter()
        .map(|k| {
            let mine = k.owner_id == Some(me);
            let may_act = (mine || manages_all) && k.status == "active";
            let kid = k.key_id.clone();
            // Only the owner reveals or regenerates a key (its secret acts in their
            // name), and only while holding the channel's create permission, as
            // `access::may_act_on_channel_key` says; revoking one's own key never needs
            // it. (A manager's revocation of a key of someone holding more is refused
            // by the server, which reads the owner's permissions.)
            let may_more = mine && can_create && k.replaced_by.is_none();
            let may_reveal = policy.reveal && may_more;
            let may_regen = policy.regenerate && may_more;
            let offer = crate::shell_ui::offer(&[
                (may_reveal, "reveal"),
                (may_regen, "regenerate"),
                (true, "revoke"),
            ]);
            let href = crate::shell_ui::with_row_open(&this_page, &kid);
            let body_id = kid.clone();
            let body = move || {
                let (k1, k2, k3) = (body_id.clone(), body_id.clone(), body_id.clone());
                let reveal_here = {
                    let mine = k1.clone();
                    sent_here(reveal, move |a: &RevealChannelKey| a.key_id == mine)
                };
                let reveal_form = may_reveal.then(|| view! {
                    <ErrorOf action=reveal here=reveal_here/>
                    <ActionForm action=reveal attr:class="inline-form">
                        <input type="hidden" name="key_id" value=k1.clone()/>
                        {needs_password.then(|| view! {
                            <label for=format!("pw-{k1}")>{format!("Your password, to reveal {k1}")}</label>
                            <input id=format!("pw-{k1}") name="password" type="password" autocomplete="current-password" required/>
                        })}
                        <button type="submit" class="btn" aria-label=format!("Reveal {k1}")>"Reveal"</button>
                    </ActionForm>
                });
                // Asks first, in a modal dialog, and offers a grace period as a roll
                // does: one click must not stop a service that sends with this key.
                let regen_form = may_regen.then(|| {
                    let dlg = format!("regenerate-{k2}");
                    let mine = k2.clone();
                    let regen_here = sent_here(regen, move |a: &RegenerateChannelKey| a.key_id == mine);
                    view! {
                        <Dialog id=dlg.clone() opener="Regenerate…" opener_label=format!("Regenerate {k2}…") title=format!("Regenerate {k2}")>
                            <p>"A new key with the same name, app, expiry and allow-list replaces this one; its secret is shown once."</p>
                            <ErrorOf action=regen here=regen_here/>
                            <ActionForm action=regen attr:class="dialog-form">
                                <input type="hidden" name="key_id" value=k2.clone()/>
                                <GraceField id=format!("{dlg}-grace") default=0/>
                                <div class="dialog-actions">
                                    <CancelButton dialog=dlg.clone()/>
                                    <button type="submit" class="btn btn-primary" aria-label=format!("Regenerate {k2}")
                                        disabled=move || regen.pending().get()>"Regenerate"</button>
                                </div>
                            </ActionForm>
                        </Dialog>
                    }
                });
                // As on the keys page: asks in a modal dialog, with a reason for the
                // audit log.
                let revoke_form = {
                    let dlg = format!("revoke-{k3}");
                    let mine = k3.clone();
                    let revoke_here = sent_here(revoke, move |a: &RevokeChannelKey| a.key_id == mine);
                    view! {
                        <Dialog id=dlg.clone() opener="Revoke…" opener_label=format!("Revoke {k3}…")
                            opener_class="btn btn-danger" title=format!("Revoke {k3}?")>
                            <p><strong>{format!("{REVOKE_WARNING}.")}</strong>" The key is refused from the next request, on every instance; this cannot be undone."</p>
                            <ErrorOf action=revoke here=revoke_here/>
                            <ActionForm action=revoke attr:class="dialog-form">
                                <input type="hidden" name="key_id" value=k3.clone()/>
                                <div class="field"><label for=format!("reason-{k3}")>"Reason (kept in the audit log)"</label>
                                    <input id=format!("reason-{k3}") type="text" name="reason" maxlength="500" placeholder="Reason"/></div>
                                <div class="check"><input id=format!("confirm-{k3}") type="checkbox" name="confirm" value="yes" required/>
                                    <label for=format!("confirm-{k3}")>{format!("I understand: {}.", REVOKE_WARNING.to_lowercase())}</label></div>
                                <div class="dialog-actions">
                                    <CancelButton dialog=dlg.clone()/>
                                    <button type="submit" class="btn btn-danger" aria-label=format!("Revoke {k3}")
                                        disabled=move || revoke.pending().get()>"Revoke"</button>
                                </div>
                            </ActionForm>
                        </Dialog>
                    }
                };
                view! {
                    {reveal_form}
                    {regen_form}
                    {revoke_form}
                }
                .into_any()
            };
            let actions = may_act.then(|| view! {
                <RowActions id=kid.clone() offer href open_rows body/>
            });
            view! {
                <tr id=format!("row-{}", k.key_id)>
                    <td data-label="Name" class="key-name">{k.name.clone()}</td>
                    <td data-label="Key ID"><code>{k.key_id.clone()}</code><br/><span class="muted">{format!("…{}", k.last4)}</span></td>
                    <td data-label="App">{format!("{} ({})", k.app, k.environment)}</td>
                    <td data-label="Owner">{k.owner.clone().unwrap_or_default()}</td>
                    <td data-label="May">{k.key_events.join(", ")}</td>
                    <td data-label="Created"><When now at=k.created_at/></td>
                    <td data-label="Expires">{match k.expires_at {
                        Some(at) => view! { <When now at past_prefix="expired"/> }.into_any(),
                        None => "never".into_any(),
                    }}</td>
                    <td data-label="Status">{crate::shell_ui::key_status(&k.status, k.replaced_by.as_deref())}</td>
                    <td>{actions}</td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    let create_form = (s.can_create && s.channel != "sms").then(|| {
        let c = channel.clone();
        let create_here = {
            let mine = c.clone();
            sent_here(create, move |a: &CreateChannelKey| a.channel == mine)
        };
        let is_email = c == "email";
        let prefix = c.clone();
        let id = move |f: &str| format!("{prefix}-{f}");
        let options = apps
            .iter()
            .map(|a| view! { <option value=a.id.to_string()>{a.name.clone()}</option> })
            .collect_view();
        view! {
            <details class="create-channel-key">
                <summary>{format!("Create {}", a_key(&c))}</summary>
                <ErrorOf action=create here=create_here/>
                <ActionForm action=create>
                    <input type="hidden" name="channel" value=c.clone()/>
                    <div class="field"><label for=id("name")>"Key name"</label>
                        <input id=id("name") name="name" type="text" required maxlength="100"/></div>
                    <div class="field"><label for=id("app")>"App"</label>
                        <select id=id("app") name="app_id" required>{options}</select></div>
                    <div class="field"><label for=id("env")>"Environment"</label>
                        <select id=id("env") name="environment"><option value="live">"live"</option><option value="test">"test"</option></select></div>
                    <div class="field"><label for=id("expiry")>"Expires"</label>
                        <select id=id("expiry") name="expiry">
                            <option value="7">"in 7 days"</option><option value="30">"in 30 days"</option>
                            <option value="90" selected>"in 90 days"</option><option value="never">"never"</option>
                        </select></div>
                    <div class="field"><label for=id("networks")>{if policy.require_networks { "IP allow-list (required; one address or range per line)" } else { "IP allow-list (one address or range per line; empty: any)" }}</label>
                        <textarea id=id("networks") name="networks" rows="2" maxlength="20000" required=policy.require_networks></textarea></div>
                    {is_email.then(|| view! {
                        <fieldset><legend>"The key may"</legend>
                            <div class="check"><input id=id("send") type="checkbox" name="events[]" value="send" checked/><label for=id("send")>"send email messages"</label></div>
                            <div class="check"><input id=id("status") type="checkbox" name="events[]" value="status" checked/><label for=id("status")>"read the status of the messages it sent"</label></div>
                        </fieldset>
                    })}
                    <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>{format!("Create {}", a_key(&c))}</button>
                </ActionForm>
            </details>
        }
    });
    view! {
        <section class="card" aria-labelledby=heading_ref>
            <h2 id=heading_id>{name}</h2>
            <p class="muted">{line}</p>
            {numbers}
            {create_form}
            {match (empty, search.is_empty()) {
                (true, true) => view! { <p class="muted">"No keys."</p> }.into_any(),
                (true, false) => view! { <p class="muted">"No keys match the search."</p> }.into_any(),
                _ => view! { <DataTable cards=true headers=&["Name", "Key ID", "App", "Owner", "May", "Created", "Expires", "Status", ""]>{rows}</DataTable> }.into_any(),
            }}
            {pager}
        </section>
    }
}

/// The SMS section's sender numbers: listed for everyone who sees channel keys; added,
/// given a new key and removed by `app.manage`. A row's actions are behind its
/// "Manage" (`RowActions`, row `number-<id>`), each asking in a dialog: removing a number
/// stops its key at once.
#[component]
fn Numbers(
    numbers: Vec<SenderNumber>,
    apps: Vec<model::keys::AppChoice>,
    manages: bool,
    /// The SMS policy requires a key's IP allow-list.
    require_networks: bool,
    open_rows: RwSignal<std::collections::BTreeSet<String>>,
    add: ServerAction<AddSenderNumber>,
    rekey: ServerAction<NewNumberKey>,
    remove: ServerAction<RemoveSenderNumber>,
) -> impl IntoView {
    let empty = numbers.is_empty();
    let page = leptos_router::hooks::use_query_map().with_untracked(this_listing);
    let rows = numbers
        .into_iter()
        .map(|n| {
            let row = super::number_row(n.id);
            let has_key = n.key_id.is_some();
            let actions = manages.then(|| {
                let offer = crate::shell_ui::offer(&[(!has_key, "make its key"), (true, "remove")]);
                let href = crate::shell_ui::with_row_open(&page, &row);
                let (id, label) = (n.id, n.number.clone());
                let body = move || {
                    let (l1, l2) = (label.clone(), label.clone());
                    let rekey_form = (!has_key).then(|| {
                        let dlg = format!("rekey-{id}");
                        let here = sent_here(rekey, move |a: &NewNumberKey| a.id == id);
                        view! {
                            <Dialog id=dlg.clone() opener="Make its key…" opener_label=format!("Make its key for {l1}…") title=format!("A new SMS key for {l1}")>
                                <p>"The number's key was revoked or has expired: messages from it are refused until it has a key again. The new key's secret is shown once."</p>
                                <ErrorOf action=rekey here/>
                                <ActionForm action=rekey attr:class="dialog-form">
                                    <input type="hidden" name="id" value=id.to_string()/>
                                    <div class="field"><label for=format!("{dlg}-env")>"Environment"</label>
                                        <select id=format!("{dlg}-env") name="environment"><option value="live">"live"</option><option value="test">"test"</option></select></div>
                                    <div class="field"><label for=format!("{dlg}-networks")>{if require_networks { "IP allow-list (required by the SMS policy; one address or range per line)" } else { "IP allow-list (one address or range per line; empty: any)" }}</label>
                                        <textarea id=format!("{dlg}-networks") name="networks" rows="2" maxlength="20000" required=require_networks></textarea></div>
                                    <div class="dialog-actions">
                                        <CancelButton dialog=dlg.clone()/>
                                        <button type="submit" class="btn btn-primary" aria-label=format!("Make the key for {l1}")
                                            disabled=move || rekey.pending().get()>"Make the key"</button>
                                    </div>
                                </ActionForm>
                            </Dialog>
                        }
                    });
                    let dlg = format!("remove-number-{id}");
                    let here = sent_here(remove, move |a: &RemoveSenderNumber| a.id == id);
                    view! {
                        {rekey_form}
                        <Dialog id=dlg.clone() opener="Remove…" opener_label=format!("Remove {l2}…")
                            opener_class="btn btn-danger" title=format!("Remove {l2}?")>
                            <p><strong>"Its SMS key stops working at once, on every instance"</strong>", and messages still waiting to go from this number fail. This cannot be undone."</p>
                            <ErrorOf action=remove here/>
                            <ActionForm action=remove attr:class="dialog-form">
                                <input type="hidden" name="id" value=id.to_string()/>
                                <div class="check"><input id=format!("{dlg}-confirm") type="checkbox" name="confirm" value="yes" required/>
                                    <label for=format!("{dlg}-confirm")>"I understand: its key will stop working."</label></div>
                                <div class="dialog-actions">
                                    <CancelButton dialog=dlg.clone()/>
                                    <button type="submit" class="btn btn-danger" aria-label=format!("Remove {l2}")
                                        disabled=move || remove.pending().get()>"Remove"</button>
                                </div>
                            </ActionForm>
                        </Dialog>
                    }
                    .into_any()
                };
                view! { <RowActions id=row.clone() label=n.number.clone() offer href open_rows body/> }
            });
            view! {
                <tr id=format!("row-{row}")>
                    <td data-label="Number"><code>{n.number.clone()}</code></td>
                    <td data-label="App">{n.app.clone()}</td>
                    <td data-label="Key">{n.key_id.clone().map_or_else(|| view! { <span class="muted">"none (revoked or expired)"</span> }.into_any(), |k| view! { <code>{k}</code> }.into_any())}</td>
                    <td>{actions}</td>
                </tr>
            }
        })
        .collect_view();
    let add_form = manages.then(|| {
        let add_here = sent_here(add, |_| true);
        let options = apps
            .iter()
            .map(|a| view! { <option value=a.id.to_string()>{a.name.clone()}</option> })
            .collect_view();
        view! {
            <details class="create-channel-key">
                <summary>"Add a sender number"</summary>
                <ErrorOf action=add here=add_here/>
                <ActionForm action=add>
                    <div class="field"><label for="sms-number">"Number"</label>
                        <input id="sms-number" name="number" type="tel" required maxlength="32" placeholder="+905551234567" aria-describedby="sms-number-hint"/>
                        <p id="sms-number-hint" class="muted hint">"International (E.164) form: + and the country code. Its SMS key is made with it and shown once."</p></div>
                    <div class="field"><label for="sms-app">"App"</label>
                        <select id="sms-app" name="app_id" required>{options}</select></div>
                    <div class="field"><label for="sms-env">"Environment"</label>
                        <select id="sms-env" name="environment"><option value="live">"live"</option><option value="test">"test"</option></select></div>
                    <div class="field"><label for="sms-networks">"IP allow-list of its key (one address or range per line; empty: any, unless the SMS policy requires one)"</label>
                        <textarea id="sms-networks" name="networks" rows="2" maxlength="20000"></textarea></div>
                    <button type="submit" class="btn btn-primary" disabled=move || add.pending().get()>"Add the number"</button>
                </ActionForm>
            </details>
        }
    });
    view! {
        <h3>"Sender numbers"</h3>
        {add_form}
        {if empty {
            view! { <p class="muted">"No sender numbers yet."</p> }.into_any()
        } else {
            view! { <DataTable cards=true headers=&["Number", "App", "Key", ""]>{rows}</DataTable> }.into_any()
        }}
        <h3>"Keys"</h3>
    }
}
