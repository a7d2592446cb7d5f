use super::{
    AppInfo, CreateApp, CreateKey, EnableKey, KeyDetail, KeyInfo, KeysView, NewSecret,
    RegenerateSdkKey, RegisterWebhook, RemoveWebhook, RevokeKey, RollKey, SubscribeEvents,
    UpdateApp, UpdateKey, REVOKE_WARNING,
};
use crate::auth::get_me;
use crate::shell_ui::{
    form_token, invalid, reset_on_success, sent_here, ActionResult, CancelButton, CopyButton,
    DataTable, Dialog, FieldError, FormToken, Page, RowActions, RowPanel, When,
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn KeysPage() -> impl IntoView {
    let create = ServerAction::<CreateKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let roll = ServerAction::<RollKey>::new();
    let edit = ServerAction::<UpdateKey>::new();
    let me = Resource::new(|| (), |_| get_me());
    let token = form_token(create);
    let query = use_query_map();
    let open_rows = crate::shell_ui::open_rows_from_query();
    crate::shell_ui::close_on_success(revoke);
    crate::shell_ui::close_on_success(roll);
    // One answer on screen at a time (a new secret, "Key saved.", "Key revoked.", an
    // error): starting an action puts the last answers away.
    crate::one_answer_at_a_time!(create, roll, revoke, edit);
    // The filters and the page live in the query string (a plain GET form and links),
    // so they work without JavaScript and survive a reload.
    // (A memo of the listing's own parameters: opening or closing a row changes
    // `manage` in the address, which reads nothing again.)
    let listing = Memo::new(move |_| {
        query.with(|q| {
            let arg = |k: &str| q.get(k).unwrap_or_default();
            (
                arg("app"),
                arg("environment"),
                arg("status"),
                arg("after"),
                arg("q"),
                arg("sort"),
            )
        })
    });
    let data = Resource::new(
        move || {
            (
                listing.get(),
                (
                    create.version().get(),
                    revoke.version().get(),
                    roll.version().get(),
                    edit.version().get(),
                ),
            )
        },
        |((app, environment, status, after, q, sort), _)| {
            super::list_keys(app, environment, status, after, q, sort)
        },
    );
    view! {
        <Page title="API keys" me data=move || data.get() render=move |_me, data| view! {
                    <h1>"API keys"</h1>
                    {data.can_create.then(|| view! { <NewKeyForm data=data.clone() create token/> })}
                    <Secret value=move || create.value().get()/>
                    <Secret value=move || roll.value().get()/>
                    <KeyTable data=data.clone() open_rows revoke roll edit/>
                }.into_any()/>
    }
}

/// The secret of a key just made: shown once, with a copy button.
#[component]
fn SecretBox(
    s: NewSecret,
    /// On a key's page: "I have copied it" opens the new key's page (a rolled key's
    /// page is the old key's).
    #[prop(optional)]
    open_new: bool,
) -> impl IntoView {
    let dismissed = RwSignal::new(false);
    let copied = RwSignal::new(false);
    #[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
    let kid = s.key.key_id.clone();
    let secret = s.secret.clone();
    // Focus moves to the new secret, so a screen reader reads it out and the keyboard
    // is where the copy button is (the form the user came from may be far below).
    let card = NodeRef::<leptos::html::Section>::new();
    // (After the frame in which a dialog that made it closes and gives focus back to
    // its opener.)
    Effect::new(move |_| {
        if let Some(el) = card.get() {
            request_animation_frame(move || {
                let _ = el.focus();
            });
        }
    });
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clip = window().navigator().clipboard();
            let _ = clip.write_text(&secret);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &secret;
        copied.set(true);
    };
    view! {
        <section class="card secret-card" aria-labelledby="secret-title" tabindex="-1" node_ref=card hidden=move || dismissed.get()>
            <h2 id="secret-title">{format!("Your new key {}", s.key.key_id)}</h2>
            <p><strong>"Copy it now: it is shown only this once."</strong>" Keyward keeps only a hash of it."</p>
            {(s.key.status == "pending").then(|| view! {
                <p class="alert alert-info">"This key waits for approval: requests with it are refused (key_pending) until someone other than you approves it. You are emailed when they decide."</p>
            })}
            <p><code class="secret" id="new-secret">{s.secret.clone()}</code></p>
            <button type="button" class="btn" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
            " "
            {open_new.then(|| view! {
                <a class="btn btn-primary" href=format!("/keys/{}", s.key.key_id)>"I have copied it: open the new key"</a>
            })}
            <button type="button" class="btn btn-primary" hidden=open_new on:click=move |_| {
                dismissed.set(true);
                // The card goes: the keyboard moves on to the new key's row.
                #[cfg(feature = "hydrate")]
                {
                    use leptos::wasm_bindgen::JsCast as _;
                    if let Some(link) = document()
                        .query_selector(&format!("#row-{kid} a"))
                        .ok()
                        .flatten()
                        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                    {
                        let _ = link.focus();
                    }
                }
            }>"I have copied it"</button>
        </section>
    }
}

/// The result of an action that makes a secret (create, roll): the secret once, or
/// why it failed.
#[component]
fn Secret(
    value: impl Fn() -> Option<Result<NewSecret, crate::error::AppError>> + Send + Sync + 'static,
    /// See [`SecretBox`].
    #[prop(optional)]
    open_new: bool,
) -> impl IntoView {
    move || {
        value().map(|v| match v {
            Ok(s) => view! { <SecretBox s open_new/> }.into_any(),
            // Shown beside the page for when the form's dialog is closed; its dialog
            // shows it too, so it is hidden while a dialog is open (CSS).
            Err(e) => {
                view! { <p class="alert alert-error beside-dialog" role="alert">{e.to_string()}</p> }.into_any()
            }
        })
    }
}

/// One page of keys with the filters (app, environment, status) the server applied.
#[component]
fn KeyTable(
    data: KeysView,
    open_rows: RwSignal<std::collections::BTreeSet<String>>,
    revoke: ServerAction<RevokeKey>,
    roll: ServerAction<RollKey>,
    edit: ServerAction<UpdateKey>,
) -> impl IntoView {
    let query = use_query_map();
    let (app_f, env_f, status_f, search, sort) = query.with_untracked(|q| {
        (
            q.get("app").unwrap_or_default(),
            q.get("environment").unwrap_or_default(),
            q.get("status").unwrap_or_default(),
            q.get("q").unwrap_or_default(),
            q.get("sort").unwrap_or_default(),
        )
    });
    let after_now = query.with_untracked(|q| q.get("after").unwrap_or_default());
    let first_page = after_now.is_empty();
    // Page and sort links keep the filters and the search (encoded: the search is free
    // text); a new order starts from its first page.
    let link = |sort: &str, after: Option<&str>| {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", search.as_str()),
            ("app", &app_f),
            ("environment", &env_f),
            ("status", &status_f),
            ("sort", sort),
            ("after", after.unwrap_or_default()),
        ] {
            if !v.is_empty() {
                qs.append_pair(k, v);
            }
        }
        match qs.finish() {
            qs if qs.is_empty() => "/keys".to_owned(),
            qs => format!("/keys?{qs}"),
        }
    };
    let href = |after: Option<&str>| link(&sort, after);
    // This page with one row's actions open, scrolled to that row (see `KeyRow`).
    let this_page = href(Some(&after_now));
    let manage_href = move |key_id: &str| crate::shell_ui::with_row_open(&this_page, key_id);
    let newest_href = href(None);
    let next_href = data.next.clone().map(|after| href(Some(&after)));
    // A column that sorts: its header is a link to that order (aria-sort says which
    // column the table is sorted by). Created sorts newest first; the others as named.
    let current = if sort.is_empty() {
        "newest"
    } else {
        sort.as_str()
    };
    let sortable = |label: &'static str, by: &'static str, dir: &'static str| {
        let on = current == by || (by == "newest" && current == "oldest");
        let (target, aria) = match (by, current) {
            // Created toggles between newest and oldest.
            ("newest", "newest") => ("oldest", "descending"),
            ("newest", "oldest") => ("newest", "ascending"),
            _ => (by, dir),
        };
        let href = link(if target == "newest" { "" } else { target }, None);
        view! {
            <th scope="col" aria-sort=on.then_some(aria)>
                <a href=href class="sort-link">{label}{on.then_some(if aria == "ascending" { " ↑" } else { " ↓" })}</a>
            </th>
        }
    };
    let empty = data.keys.is_empty();
    let (can_update, can_revoke, now) = (data.can_update, data.can_revoke, data.now);
    let show_owner = data.can_view_all;
    let roles = data.roles.clone();
    let rows = data
        .keys
        .clone()
        .into_iter()
        // Each row boxed: a row's full type nested in the table's would make the
        // server's rendering recurse through very large frames.
        .map(|k| {
            let manage = manage_href(&k.key_id);
            view! { <KeyRow k roles=roles.clone() can_update can_revoke show_owner now open_rows manage revoke roll edit/> }.into_any()
        })
        .collect_view();
    let app_options = data
        .apps
        .iter()
        .map(|a| {
            let selected = a.id.to_string() == app_f;
            view! { <option value=a.id.to_string() selected=selected>{a.name.clone()}</option> }
        })
        .collect_view();
    let opt = |value: &'static str, label: &'static str, current: &str| {
        let selected = value == current;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <section class="card" aria-labelledby="keys-title">
            <h2 id="keys-title">"Keys"</h2>
            <form method="get" action="/keys" class="inline-form filters" aria-label="Filter keys" role="search">
                // Each label wraps with its field (never a label at a line's end and
                // its field on the next).
                <span class="filter"><label for="f-q">"Search"</label>
                <input id="f-q" name="q" type="search" maxlength="100" value=search.clone()
                    placeholder="Name, key ID or owner"/></span>
                <span class="filter"><label for="f-app">"Filter by app"</label>
                <select id="f-app" name="app"><option value="">"All"</option>{app_options}</select></span>
                <span class="filter"><label for="f-env">"Filter by environment"</label>
                <select id="f-env" name="environment">
                    {opt("", "All", &env_f)}{opt("live", "live", &env_f)}{opt("test", "test", &env_f)}
                </select></span>
                <span class="filter"><label for="f-status">"Filter by status"</label>
                <select id="f-status" name="status">
                    {opt("", "All", &status_f)}{opt("active", "active", &status_f)}{opt("pending", "pending approval", &status_f)}{opt("disabled", "disabled", &status_f)}{opt("revoked", "revoked", &status_f)}{opt("expired", "expired", &status_f)}
                </select></span>
                {(!sort.is_empty()).then(|| view! { <input type="hidden" name="sort" value=sort.clone()/> })}
                <button type="submit" class="btn">"Filter"</button>
            </form>
            <ActionResult action=revoke ok=|_: &()| "Key revoked.".to_owned()/>
            <ActionResult action=edit ok=|_: &()| "Key saved.".to_owned()/>
            {if empty {
                view! { <p class="muted">"No keys to show."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0">
                        <table class="keys-table cards-table">
                            <thead><tr>
                                {sortable("Name", "name", "ascending")}<th scope="col">"Key ID"</th>
                                {show_owner.then(|| view! { <th scope="col">"Owner"</th> })}
                                <th scope="col">"App and environment"</th><th scope="col">"Role"</th>
                                {sortable("Created", "newest", "descending")}{sortable("Last used", "last_used", "descending")}{sortable("Expires", "expires", "ascending")}
                                <th scope="col">"Status"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <p class="pager">
                {(!first_page).then(|| view! { <a href=newest_href>"First page"</a> })}
                " "
                {next_href.map(|href| view! { <a href=href rel="next">"Next page"</a> })}
            </p>
        </section>
    }
}

#[component]
fn KeyRow(
    k: KeyInfo,
    roles: Vec<(i64, String)>,
    can_update: bool,
    can_revoke: bool,
    show_owner: bool,
    now: i64,
    open_rows: RwSignal<std::collections::BTreeSet<String>>,
    /// This page with the row's actions open (for a browser without JavaScript).
    manage: String,
    revoke: ServerAction<RevokeKey>,
    roll: ServerAction<RollKey>,
    edit: ServerAction<UpdateKey>,
) -> impl IntoView {
    let last_used = match k.last_used_at {
        Some(at) => {
            let from = k.last_used_ip.clone().map(|ip| format!(" from {ip}"));
            view! { <When now at/>{from} }.into_any()
        }
        None => "Never".into_any(),
    };
    let expires = match k.expires_at {
        Some(at) => view! { <When now at past_prefix="expired"/> }.into_any(),
        None => "Never".into_any(),
    };
    let owner = show_owner
        .then(|| view! { <td data-label="Owner">{k.owner.clone().unwrap_or_default()}</td> });
    let status = crate::shell_ui::key_status(&k.status, k.replaced_by.as_deref());
    let active = k.status == "active";
    let manageable = active && (can_update || can_revoke);
    let can_roll = can_update && k.replaced_by.is_none();
    let offer = crate::shell_ui::offer(&[
        (can_update && active, "edit"),
        (can_roll, "roll"),
        (can_revoke, "revoke"),
    ]);
    let k_body = k.clone();
    let body = move || {
        let edit_form = (can_update && active).then(|| {
            view! { <EditKeyForm k=k_body.clone() roles=roles.clone() edit with_networks=false/> }
        });
        let kid = k_body.key_id.clone();
        view! {
            {edit_form}
            <KeyActionForms key_id=kid can_revoke can_roll revoke roll/>
        }
        .into_any()
    };
    let row_id = k.key_id.clone();
    let panel_id = k.key_id.clone();
    // Name, key ID, app, role, created, last used, expires, status, actions; and owner.
    let columns = 9 + usize::from(show_owner);
    view! {
        <tr id=format!("row-{}", k.key_id)>
            // `data-label`: the column's name, shown beside the value when a phone's
            // narrow screen turns each row into a card.
            <td data-label="Name" class="key-name"><a href=format!("/keys/{}", k.key_id)>{k.name.clone()}</a></td>
            <td data-label="Key ID"><code>{k.key_id.clone()}</code>" "<CopyButton text=k.key_id.clone() what=format!("key ID {}", k.key_id)/><br/><span class="muted">{format!("…{}", k.last4)}</span></td>
            {owner}
            // (The kind is always `rest` here: channel keys have their own page.)
            <td data-label="App"><a href=format!("/apps/{}", k.app_id)>{k.app.clone()}</a><br/><span class="muted">{k.environment.clone()}</span></td>
            <td data-label="Role">{k.role.clone().unwrap_or_default()}</td>
            <td data-label="Created"><When now at=k.created_at/></td>
            <td data-label="Last used">{last_used}</td>
            <td data-label="Expires">{expires}</td>
            <td data-label="Status">{status}{(k.leak_flagged_at.is_some() && active).then(|| view! {
                <br/><span class="badge badge-danger" title="Reported as found in a public place; roll or revoke it">"Reported leaked"</span>
            })}</td>
            // Collapsed until asked for, so a row stays one line high; works without
            // JavaScript (a plain <details>).
            <td>
                {manageable.then(|| view! {
                    <RowActions id=row_id offer href=manage open_rows/>
                })}
            </td>
        </tr>
        {manageable.then(|| view! { <RowPanel id=panel_id columns open_rows body/> })}
    }
}

#[component]
fn NewKeyForm(
    data: KeysView,
    create: ServerAction<CreateKey>,
    token: Resource<Result<String, crate::error::AppError>>,
) -> impl IntoView {
    let apps = data
        .apps
        .iter()
        .map(|a| view! { <option value=a.id.to_string()>{a.name.clone()}</option> })
        .collect_view();
    let roles = data
        .roles
        .iter()
        .map(|(id, name)| {
            let selected = *id == crate::roles::BuiltinRole::Developer.id();
            view! { <option value=id.to_string() selected=selected>{name.clone()}</option> }
        })
        .collect_view();
    let no_apps = data.apps.is_empty();
    let limits = data.limits.clone();
    // Choices beyond Settings > Keys' maximum are not offered (the server refuses them too).
    let expiry_options = [
        ("7", "in 7 days", Some(7)),
        ("30", "in 30 days", Some(30)),
        ("90", "in 90 days", Some(90)),
        ("never", "never", None),
    ]
    .into_iter()
    .filter(|(_, _, days)| {
        limits.max_expiry_days == 0 || days.is_some_and(|d| d <= limits.max_expiry_days)
    })
    .map(|(value, label, _)| {
        let selected = limits.default_expiry == value;
        view! { <option value=value selected=selected>{label}</option> }
    })
    .collect_view();
    // The "expires on" preview follows the choice; a chosen date is the end of that day
    // where the browser is (UTC until the page's script runs, and without JavaScript).
    let now = data.now;
    // The fields the server may name when it refuses the form (each error is shown
    // beside its input).
    const NAME: &[&str] = &["name"];
    const EXPIRY: &[&str] = &["expiry", "expires_at"];
    const DATE: &[&str] = &["expiry_date"];
    const NETWORKS: &[&str] = &["networks"];
    // The dialog closes once the key is made (its secret is then shown on the page).
    crate::shell_ui::close_on_success(create);
    let default_choice = limits.default_expiry.clone();
    let choice = RwSignal::new(default_choice.clone());
    let date = RwSignal::new(String::new());
    let end_there = move || date.with(|d| local_end_of_day(d));
    let preview = move || choice.with(|c| date.with(|d| expiry_preview(now, c, d, end_there())));
    let end_field = move || end_there().map(|t| t.to_string()).unwrap_or_default();
    let day = 86_400;
    // Dates in the viewer's zone: from tomorrow to the last day whose end (the key's
    // expiry) is still within the limit.
    let min_date = crate::shell_ui::local_date(now + day);
    // (Without a limit, the last day that ends before the year 10000 here: the REST
    // contract's bound, in the viewer's zone, not UTC's.)
    let max_date = Some(if limits.max_expiry_days > 0 {
        crate::shell_ui::local_date(now + i64::from(limits.max_expiry_days - 1) * day)
    } else {
        crate::shell_ui::local_date(model::keys::LATEST_EXPIRY - day)
    });
    let max_note = (limits.max_expiry_days > 0).then(|| {
        format!(
            "Keys expire within {} days at most; you may hold {} active keys per app.",
            limits.max_expiry_days, limits.max_active_per_user_per_app
        )
    });
    view! {
        <div class="page-actions">
        <Dialog id="create-key".to_owned() opener="Create key…" opener_class="btn btn-primary" title="Create a key".to_owned()>
            {max_note.map(|n| view! { <p class="muted">{n}</p> })}
            {limits.approval_required.then(|| view! { <p class="muted">"New keys wait for approval: a key works once someone other than you approves it (you are emailed)."</p> })}
            {no_apps.then(|| view! { <p class="muted">"There are no apps yet: someone with app.manage creates them on the Apps page."</p> })}
            <ErrorOf action=create/>
            <ActionForm action=create attr:class="dialog-form" node_ref=reset_on_success(create) on:reset=move |_| {
                choice.set(default_choice.clone());
                date.set(String::new());
            }>
                <FormToken token/>
                <div class="field"><label for="key-name">"Key name"</label>
                    <input id="key-name" name="name" type="text" required maxlength="100"
                        aria-invalid=invalid(create, NAME) aria-describedby=move || invalid(create, NAME)().map(|_| "key-name-error")/>
                    <FieldError action=create fields=NAME id="key-name-error"/></div>
                <div class="field"><label for="key-app">"App"</label>
                    <select id="key-app" name="app_id" required>{apps}</select></div>
                <div class="field"><label for="key-env">"Environment"</label>
                    <select id="key-env" name="environment"><option value="live">"live"</option><option value="test">"test"</option></select></div>
                <div class="field"><label for="key-role">"Role of the key"</label>
                    <select id="key-role" name="role_id">{roles}</select></div>
                <div class="field"><label for="key-expiry">"Expires"</label>
                    <select id="key-expiry" name="expiry" aria-describedby="key-expiry-preview key-expiry-error"
                        aria-invalid=invalid(create, EXPIRY)
                        on:change=move |ev| choice.set(event_target_value(&ev))>
                        {expiry_options}<option value="date">"on a date"</option>
                    </select>
                    <p class="muted expiry-preview" id="key-expiry-preview" aria-live="polite">{preview}</p>
                    <FieldError action=create fields=EXPIRY id="key-expiry-error"/></div>
                // Shown only when "on a date" is chosen (CSS :has, so also without JavaScript).
                <div class="field expiry-date"><label for="key-date">"Expiry date"</label>
                    <input id="key-date" name="expiry_date" type="date" min=min_date max=max_date
                        aria-describedby="key-expiry-preview key-date-error" aria-invalid=invalid(create, DATE)
                        on:input=move |ev| date.set(event_target_value(&ev))/>
                    <FieldError action=create fields=DATE id="key-date-error"/>
                    <input type="hidden" name="expiry_end" value=end_field/></div>
                <div class="field"><label for="key-networks">"Allowed networks for this key (optional, one per line)"</label>
                    <textarea id="key-networks" name="networks" rows="2" maxlength="20000"
                        aria-invalid=invalid(create, NETWORKS) aria-describedby=move || invalid(create, NETWORKS)().map(|_| "key-networks-error")></textarea>
                    <FieldError action=create fields=NETWORKS id="key-networks-error"/></div>
                <div class="dialog-actions">
                    <CancelButton dialog="create-key".to_owned()/>
                    <button type="submit" class="btn btn-primary" disabled=move || no_apps || create.pending().get()>"Create key"</button>
                </div>
            </ActionForm>
        </Dialog>
        </div>
    }
}

#[component]
pub fn AppsPage() -> impl IntoView {
    let create = ServerAction::<CreateApp>::new();
    let update = ServerAction::<UpdateApp>::new();
    let regen = ServerAction::<RegenerateSdkKey>::new();
    let hook = ServerAction::<RegisterWebhook>::new();
    let unhook = ServerAction::<RemoveWebhook>::new();
    crate::shell_ui::close_on_success(regen);
    crate::one_answer_at_a_time!(create, update, regen, hook, unhook);
    let me = Resource::new(|| (), |_| get_me());
    let token = form_token(create);
    // The fields the server may name when it refuses a new app (shown beside them).
    const APP_NAME: &[&str] = &["name"];
    const APP_NETWORKS: &[&str] = &["networks"];
    let apps = Resource::new(
        move || {
            (
                create.version().get(),
                update.version().get(),
                regen.version().get(),
                hook.version().get(),
                unhook.version().get(),
            )
        },
        |_| super::list_apps(),
    );
    view! {
        <Page title="Apps" me data=move || apps.get() render=move |_me, apps| view! {
                    <h1>"Apps"</h1>
                    <section class="card" aria-labelledby="apps-title">
                        <h2 id="apps-title">"Apps"</h2>
                        <ActionResult action=update ok=|_: &()| "App saved.".to_owned()/>
                        <ActionResult action=regen ok=|_: &()| "SDK key regenerated; the old one works until the end of the grace period you chose.".to_owned()/>
                        {if apps.is_empty() { Some(view! { <p class="muted">"No apps yet."</p> }) } else { None }}
                        <ActionResult action=unhook ok=|_: &()| "Webhook URL removed; messages not yet sent to it will fail.".to_owned()/>
                        <WebhookSecret action=hook/>
                        {apps.into_iter().map(|a| view! { <AppRow a update regen hook unhook/> }).collect_view()}
                    </section>
                    <section class="card" aria-labelledby="new-app-title">
                        <h2 id="new-app-title">"Create an app"</h2>
                        <ActionResult action=create ok=|_: &i64| "App created.".to_owned()/>
                        <ActionForm action=create node_ref=reset_on_success(create)>
                            <FormToken token/>
                            <div class="field"><label for="app-name">"App name"</label>
                                <input id="app-name" name="name" type="text" required maxlength="100"
                                    aria-invalid=invalid(create, APP_NAME) aria-describedby=move || invalid(create, APP_NAME)().map(|_| "app-name-error")/>
                                <FieldError action=create fields=APP_NAME id="app-name-error"/></div>
                            <div class="field"><label for="app-networks">"REST IP allow-list (one address or range per line; empty: any)"</label>
                                <textarea id="app-networks" name="networks" rows="3" maxlength="20000"
                                    aria-invalid=invalid(create, APP_NETWORKS) aria-describedby=move || invalid(create, APP_NETWORKS)().map(|_| "app-networks-error")></textarea>
                                <FieldError action=create fields=APP_NETWORKS id="app-networks-error"/></div>
                            <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>"Create app"</button>
                        </ActionForm>
                    </section>
                }.into_any()/>
    }
}

#[component]
fn AppRow(
    a: AppInfo,
    update: ServerAction<UpdateApp>,
    regen: ServerAction<RegenerateSdkKey>,
    hook: ServerAction<RegisterWebhook>,
    unhook: ServerAction<RemoveWebhook>,
) -> impl IntoView {
    let name_id = format!("app-name-{}", a.id);
    let hook_id = format!("app-hook-{}", a.id);
    let hook_label = format!("Webhook URL for {}", a.name);
    let register_label = format!("Register a webhook URL for {}", a.name);
    let app_id = a.id.to_string();
    let id = a.id;
    let hooks = a
        .webhook_urls
        .clone()
        .into_iter()
        .map(|u| {
            let label = format!("Remove the webhook URL {u}");
            view! {
                <li>
                    <code class="webhook-url">{u.clone()}</code>" "
                    <ActionForm action=unhook attr:class="inline-form">
                        <input type="hidden" name="app_id" value=id.to_string()/>
                        <input type="hidden" name="url" value=u.clone()/>
                        <button type="submit" class="btn btn-danger" aria-label=label>"Remove"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let nets_id = format!("app-nets-{}", a.id);
    let sdk = a
        .sdk_keys
        .iter()
        .cloned()
        .map(|(env, value)| {
            let label = format!("Regenerate the {env} SDK key of {}", a.name);
            let dlg = format!("regen-{}-{env}", a.id);
            let (app_id, this_env) = (a.id, env.clone());
            let regen_here = sent_here(regen, move |r: &RegenerateSdkKey| {
                r.app_id == app_id && r.environment == this_env
            });
            view! {
                <li>
                    {format!("SDK key ({env}): ")}<code class="sdk-key">{value.clone()}</code>" "
                    <CopyButton text=value what=format!("the {env} SDK key of {}", a.name)/>" "
                    <Dialog id=dlg.clone() opener="Regenerate…" opener_label=format!("{label}…")
                        title=format!("Regenerate the {env} SDK key of {}?", a.name)>
                        <p>"Client apps carry this key: those not yet updated can no longer send events once the old key ends."</p>
                        <ErrorOf action=regen here=regen_here/>
                        <ActionForm action=regen attr:class="dialog-form">
                            <input type="hidden" name="app_id" value=a.id.to_string()/>
                            <input type="hidden" name="environment" value=env.clone()/>
                            <GraceField id=format!("{dlg}-grace")/>
                            <div class="dialog-actions">
                                <CancelButton dialog=dlg.clone()/>
                                <button type="submit" class="btn btn-danger" aria-label=label
                                    disabled=move || regen.pending().get()>"Regenerate"</button>
                            </div>
                        </ActionForm>
                    </Dialog>
                </li>
            }
        })
        .collect_view();
    view! {
        <h3><a href=format!("/apps/{id}")>{a.name.clone()}</a></h3>
        <p><a href=format!("/keys?app={id}")>{format!("Keys of {}", a.name)}</a></p>
        <p class="muted">"Public SDK keys go inside client apps; they can only identify the app and send events."</p>
        <ul class="plain-list">{sdk}</ul>
        <ActionForm action=update attr:class="app-row">
            <input type="hidden" name="id" value=a.id.to_string()/>
            <div class="field"><label for=name_id.clone()>{format!("Name of {}", a.name)}</label>
                <input id=name_id name="name" type="text" required maxlength="100" value=a.name.clone()/></div>
            <div class="field"><label for=nets_id.clone()>{format!("REST IP allow-list of {}", a.name)}</label>
                <textarea id=nets_id name="networks" rows="2" maxlength="20000">{crate::shell_ui::textarea_text(&a.networks.join("\n"))}</textarea></div>
            <button type="submit" class="btn">"Save"</button>
        </ActionForm>
        <h4>"Webhook URLs"</h4>
        <p class="muted">"Messages on the webhook channel can only go to these. Registering a listed URL again gives it a new signing secret."</p>
        <ul class="plain-list">{hooks}</ul>
        <ActionForm action=hook attr:class="inline-form" node_ref=reset_on_success(hook)>
            <input type="hidden" name="app_id" value=app_id/>
            <label for=hook_id.clone()>{hook_label}</label>
            <input id=hook_id name="url" type="url" required maxlength="2000" placeholder="https://hooks.example.com/keyward"/>
            <button type="submit" class="btn" aria-label=register_label>"Register"</button>
        </ActionForm>
    }
}

/// An app's keys on its page: the newest page of those the viewer may see, each
/// leading to its own page, and the rest on `/keys` filtered by the app.
#[component]
fn AppKeys(app_id: i64, v: KeysView) -> impl IntoView {
    let now = v.now;
    let rows = v
        .keys
        .iter()
        .map(|k| {
            let expires = match k.expires_at {
                Some(at) => view! { <When now at past_prefix="expired"/> }.into_any(),
                None => "Never".into_any(),
            };
            view! {
                <tr>
                    <td data-label="Name"><a href=format!("/keys/{}", k.key_id)>{k.name.clone()}</a></td>
                    <td data-label="Key ID"><code>{k.key_id.clone()}</code></td>
                    {v.can_view_all.then(|| view! { <td data-label="Owner">{k.owner.clone().unwrap_or_default()}</td> })}
                    <td data-label="Environment">{k.environment.clone()}</td>
                    <td data-label="Role">{k.role.clone().unwrap_or_default()}</td>
                    <td data-label="Expires">{expires}</td>
                    <td data-label="Status">{crate::shell_ui::key_status(&k.status, k.replaced_by.as_deref())}</td>
                </tr>
            }
        })
        .collect_view();
    let all = format!("/keys?app={app_id}");
    view! {
        <section class="card" aria-labelledby="app-keys-title">
            <h2 id="app-keys-title">"API keys"</h2>
            {if v.keys.is_empty() {
                view! { <p class="muted">{if v.can_view_all { "This app has no keys." } else { "You have no keys for this app." }}</p> }.into_any()
            } else {
                let headers: &'static [&'static str] = if v.can_view_all {
                    &["Name", "Key ID", "Owner", "Environment", "Role", "Expires", "Status"]
                } else {
                    &["Name", "Key ID", "Environment", "Role", "Expires", "Status"]
                };
                view! { <DataTable cards=true headers>{rows}</DataTable> }.into_any()
            }}
            <p><a href=all>{if v.next.is_some() { "All of this app's keys, with filters" } else { "This app's keys on the keys page, with filters" }}</a></p>
        </section>
    }
}

/// A webhook signing secret just made: shown once.
#[component]
fn WebhookSecret(action: ServerAction<RegisterWebhook>) -> impl IntoView {
    // The answer takes the focus (the form may be far below it), so a screen reader
    // reads it and the copy button is at hand, as for a new key's secret.
    let card = NodeRef::<leptos::html::Section>::new();
    Effect::new(move |_| {
        if let Some(el) = card.get() {
            request_animation_frame(move || {
                let _ = el.focus();
            });
        }
    });
    let node = crate::shell_ui::rescue_focus();
    move || {
        action.value().with(|v| match v {
            Some(Ok(secret)) => Some(
                view! {
                    <section class="card secret-card" aria-labelledby="whsec-title" tabindex="-1" node_ref=card>
                        <h3 id="whsec-title">"Webhook registered"</h3>
                        <p><strong>"Copy the signing secret now: it is shown only this once."</strong>
                            " Each POST carries X-Keyward-Signature: sha256=HMAC-SHA256(secret, timestamp + \".\" + body), with the timestamp in X-Keyward-Timestamp."</p>
                        <p><code class="secret" id="webhook-secret">{secret.clone()}</code></p>
                        <CopyButton text=secret.clone() what="the signing secret".to_owned()/>
                    </section>
                }
                .into_any(),
            ),
            Some(Err(e)) => Some(
                view! { <p class="alert alert-error" role="alert" tabindex="-1" node_ref=node>{e.to_string()}</p> }.into_any(),
            ),
            None => None,
        })
    }
}

/// What the create form says about its expiry choice. `end_there`: the end of the chosen
/// date in the browser's time zone, once the page's script knows it.
fn expiry_preview(now: i64, choice: &str, date: &str, end_there: Option<i64>) -> String {
    use crate::shell_ui::format_time;
    match choice {
        "never" => "The key never expires.".to_owned(),
        "date" if date.is_empty() => "Choose the date below.".to_owned(),
        "date" => match end_there {
            Some(t) => format!(
                "Expires at the end of {date} in your time zone ({}).",
                format_time(t)
            ),
            None => format!("Expires at the end of {date} (UTC)."),
        },
        days => match days.parse::<i64>() {
            Ok(d) => format!("Expires {}.", format_time(now + d * 86_400)),
            Err(_) => String::new(),
        },
    }
}

/// The end of a `YYYY-MM-DD` date in the browser's time zone (its next midnight, so
/// daylight saving time is the browser's to know), in Unix seconds.
#[cfg(feature = "hydrate")]
fn local_end_of_day(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let y: u32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next()?.parse().ok()?;
    let d: i32 = parts.next()?.parse().ok()?;
    let ms = js_sys::Date::new_with_year_month_day(y, m - 1, d + 1).get_time();
    (ms.is_finite()).then(|| (ms / 1000.0) as i64)
}

/// On the server the browser's time zone is unknown: the date is taken in UTC.
#[cfg(not(feature = "hydrate"))]
fn local_end_of_day(_date: &str) -> Option<i64> {
    None
}

/// A key's name and role (and, on its page, its own allow-list).
#[component]
fn EditKeyForm(
    k: KeyInfo,
    roles: Vec<(i64, String)>,
    edit: ServerAction<UpdateKey>,
    with_networks: bool,
) -> impl IntoView {
    let kid = k.key_id.clone();
    let name_id = format!("edit-name-{kid}");
    let role_id = format!("edit-role-{kid}");
    let nets_id = format!("edit-nets-{kid}");
    let current = k.role_id;
    let options = roles
        .into_iter()
        .map(|(id, name)| view! { <option value=id.to_string() selected=Some(id) == current>{name}</option> })
        .collect_view();
    let networks = with_networks.then(|| {
        let text = crate::shell_ui::textarea_text(&k.networks.join("\n"));
        view! {
            <input type="hidden" name="set_networks" value="yes"/>
            <label for=nets_id.clone()>"Allowed networks for this key (one per line; empty: only the app's list applies)"</label>
            <textarea id=nets_id name="networks" rows="3" maxlength="20000">{text}</textarea>
        }
    });
    view! {
        <ActionForm action=edit attr:class="row-action">
            <input type="hidden" name="key_id" value=kid/>
            <label for=name_id.clone()>"Name"</label>
            <input id=name_id name="name" type="text" required maxlength="100" value=k.name.clone()/>
            <label for=role_id.clone()>"Role"</label>
            <select id=role_id name="role_id">{options}</select>
            {networks}
            <button type="submit" class="btn" disabled=move || edit.pending().get()>"Save"</button>
        </ActionForm>
    }
}

/// Revoke (with a reason and the warning to confirm) and roll (with a grace period).
#[component]
fn KeyActionForms(
    key_id: String,
    can_revoke: bool,
    can_roll: bool,
    revoke: ServerAction<RevokeKey>,
    roll: ServerAction<RollKey>,
) -> impl IntoView {
    let kid = key_id;
    let confirm_id = format!("confirm-{kid}");
    let reason_id = format!("reason-{kid}");
    let grace_id = format!("grace-{kid}");
    let (revoke_dlg, roll_dlg) = (format!("revoke-{kid}"), format!("roll-{kid}"));
    let (k1, k2, k3, k4) = (kid.clone(), kid.clone(), kid.clone(), kid.clone());
    let (mine_revoke, mine_roll) = (kid.clone(), kid.clone());
    let revoke_here = sent_here(revoke, move |a: &RevokeKey| a.key_id == mine_revoke);
    let roll_here = sent_here(roll, move |a: &RollKey| a.key_id == mine_roll);
    // Each in a modal dialog (Escape closes it, focus stays inside and comes back):
    // nothing irreversible is one click away, and the row stays one line high.
    view! {
        {can_revoke.then(move || view! {
            <Dialog id=revoke_dlg.clone() opener="Revoke…" opener_label=format!("Revoke {k1}…")
                opener_class="btn btn-danger" title=format!("Revoke {k1}?")>
                <p><strong>{format!("{REVOKE_WARNING}.")}</strong>" The key is refused from the next request, on every instance; this cannot be undone."</p>
                <ErrorOf action=revoke here=revoke_here/>
                <ActionForm action=revoke attr:class="dialog-form">
                    <input type="hidden" name="key_id" value=k2/>
                    <div class="field"><label for=reason_id.clone()>"Reason (kept in the audit log)"</label>
                        <input id=reason_id type="text" name="reason" maxlength="500" placeholder="Reason"/></div>
                    <div class="check"><input id=confirm_id.clone() type="checkbox" name="confirm" value="yes" required/>
                        <label for=confirm_id>{format!("I understand: {}.", REVOKE_WARNING.to_lowercase())}</label></div>
                    <div class="dialog-actions">
                        <CancelButton dialog=revoke_dlg.clone()/>
                        <button type="submit" class="btn btn-danger" aria-label=format!("Revoke {k2}", k2 = k3)
                            disabled=move || revoke.pending().get()>"Revoke"</button>
                    </div>
                </ActionForm>
            </Dialog>
        })}
        {can_roll.then(move || view! {
            <Dialog id=roll_dlg.clone() opener="Roll…" opener_label=format!("Roll {k4}…") title=format!("Roll {k4}")>
                <p>"A new key with the same name, app, role and allow-list replaces this one; its secret is shown once. The new key gets a fresh expiry: as long as this one was given, counted from now."</p>
                <ErrorOf action=roll here=roll_here/>
                <ActionForm action=roll attr:class="dialog-form">
                    <input type="hidden" name="key_id" value=k4.clone()/>
                    <GraceField id=grace_id/>
                    <div class="dialog-actions">
                        <CancelButton dialog=roll_dlg.clone()/>
                        <button type="submit" class="btn btn-primary" aria-label=format!("Roll {k4}")
                            disabled=move || roll.pending().get()>"Roll"</button>
                    </div>
                </ActionForm>
            </Dialog>
        })}
    }
}

/// How long the key being replaced keeps working (a roll, a regenerated SDK or channel
/// key): a `grace` field of [`super::GRACE_CHOICES`], `default` (24 hours unless said)
/// chosen.
#[component]
pub fn GraceField(id: String, #[prop(default = 86_400)] default: i64) -> impl IntoView {
    let options = super::GRACE_CHOICES
        .iter()
        .map(|(secs, name)| {
            view! { <option value=secs.to_string() selected=*secs == default>{*name}</option> }
        })
        .collect_view();
    view! {
        <div class="field"><label for=id.clone()>"The old key keeps working for"</label>
            <select id=id name="grace">{options}</select></div>
    }
}

/// The error of an action's last submission, where its form is (in a dialog, the page's
/// own message would be behind the backdrop).
#[component]
pub fn ErrorOf<S>(
    action: ServerAction<S>,
    /// For a row's form: whether the action's last submission came from it (`sent_here`).
    #[prop(optional)]
    here: Option<RwSignal<Option<bool>>>,
) -> impl IntoView
where
    S: server_fn::ServerFn<Error = crate::error::AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let node = crate::shell_ui::rescue_focus();
    move || {
        if here.is_some_and(|h| h.get() == Some(false)) {
            return None;
        }
        action.value().with(|v| match v {
            Some(Err(e)) => Some(
                view! { <p class="alert alert-error" role="alert" tabindex="-1" node_ref=node>{e.to_string()}</p> },
            ),
            _ => None,
        })
    }
}

/// `/keys/{key_id}`: one key, every field, its allow-list (editable by whoever may edit
/// it), roll and revoke, and its history from the audit log.
#[component]
pub fn KeyDetailPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let key_id = move || params.with(|p| p.get("key_id").unwrap_or_default());
    let revoke = ServerAction::<RevokeKey>::new();
    let roll = ServerAction::<RollKey>::new();
    let edit = ServerAction::<UpdateKey>::new();
    let enable = ServerAction::<EnableKey>::new();
    crate::shell_ui::close_on_success(revoke);
    crate::shell_ui::close_on_success(roll);
    crate::one_answer_at_a_time!(revoke, roll, edit, enable);
    // The page stays when only its key changes (the new key's page, Back): a secret made
    // here is shown this once, never again when the old key's page comes back.
    Effect::new(move |shown: Option<String>| {
        let now = key_id();
        if shown.is_some_and(|k| k != now) {
            roll.value().set(None);
        }
        now
    });
    let me = Resource::new(|| (), |_| get_me());
    let data = Resource::new(
        move || {
            (
                key_id(),
                revoke.version().get(),
                roll.version().get(),
                edit.version().get(),
                enable.version().get(),
            )
        },
        |(id, ..)| super::get_key(id),
    );
    view! {
        <Page title="API key" me data=move || data.get() render=move |_me, d| view! {
            <p><a href="/keys">"← API keys"</a></p>
            <h1>{d.key.name.clone()}</h1>
            // The new key's secret, on the page of the key it replaces (not on its own
            // page, where "I have copied it" leads).
            <Secret value=move || roll.value().get().filter(|v| v.as_ref().map_or(true, |s| s.key.rolled_from.as_deref() == Some(key_id().as_str()))) open_new=true/>
            <ActionResult action=edit ok=|_: &()| "Key saved.".to_owned()/>
            <ActionResult action=revoke ok=|_: &()| "Key revoked.".to_owned()/>
            {(d.key.leak_flagged_at.is_some() && d.key.status == "active").then(|| view! {
                <p class="alert alert-error" role="alert">
                    <strong>"This key was reported as leaked"</strong>
                    {format!(" ({}) and still works. Roll it (its replacement can take over within a grace period) or revoke it.", crate::shell_ui::format_time(d.key.leak_flagged_at.unwrap_or_default()))}
                </p>
            })}
            <ActionResult action=enable ok=|_: &()| "Key enabled: it works again.".to_owned()/>
            {(d.key.status == "pending").then(|| view! {
                <p class="alert alert-info" role="status">
                    <strong>"Waiting for approval."</strong>
                    " Requests with this key are refused (key_pending) until someone holding api.key.approve, other than its owner, approves it under Approvals."
                </p>
            })}
            {(d.key.status == "disabled").then(|| view! {
                <p class="alert alert-error" role="status">
                    <strong>"Disabled because it went unused"</strong>
                    {format!(" ({}). Requests with it are refused (key_disabled) until it is enabled again.", crate::shell_ui::format_time(d.key.disabled_at.unwrap_or_default()))}
                </p>
            })}
            <KeyFacts d=d.clone()/>
            <KeyManage d=d.clone() revoke roll edit enable/>
            <super::usage::KeyUsageSection usage=d.usage.clone()/>
            <KeyHistory d/>
        }.into_any()/>
    }
}

#[component]
fn KeyFacts(d: KeyDetail) -> impl IntoView {
    let k = d.key;
    let now = d.now;
    let link = |id: &str| view! { <a href=format!("/keys/{id}")><code>{id.to_owned()}</code></a> };
    let last_used = match k.last_used_at {
        Some(at) => {
            let from = k.last_used_ip.clone().map(|ip| format!(" from {ip}"));
            view! { <When now at/>{from} }.into_any()
        }
        None => "Never".into_any(),
    };
    let expires = match k.expires_at {
        Some(at) => view! { <When now at past_prefix="expired"/> }.into_any(),
        None => "Never".into_any(),
    };
    let revoked = k.revoked_at.map(|at| {
        let why = k
            .revoke_reason
            .clone()
            .filter(|r| !r.is_empty())
            .map(|r| format!(": {r}"));
        view! { <dt>"Revoked"</dt><dd><When now at/>{why}</dd> }
    });
    let rolled_from = k
        .rolled_from
        .as_deref()
        .map(|id| view! { <dt>"Replaces"</dt><dd>{link(id)}</dd> });
    let replaced_by = k
        .replaced_by
        .as_deref()
        .map(|id| view! { <dt>"Replaced by"</dt><dd>{link(id)}</dd> });
    let networks = if k.networks.is_empty() {
        view! { <span>"Any address (only the app's list applies)"</span> }.into_any()
    } else {
        view! { <ul class="plain-list">{k.networks.iter().map(|n| view! { <li><code>{n.clone()}</code></li> }).collect_view()}</ul> }.into_any()
    };
    view! {
        <section class="card" aria-labelledby="key-facts-title">
            <h2 id="key-facts-title">"Details"</h2>
            <dl class="facts">
                <dt>"Key ID"</dt><dd><code>{k.key_id.clone()}</code>" "<CopyButton text=k.key_id.clone() what=format!("key ID {}", k.key_id)/></dd>
                <dt>"Secret"</dt><dd>{format!("…{} (Keyward keeps only a hash)", k.last4)}</dd>
                <dt>"Status"</dt><dd>{k.status.clone()}</dd>
                <dt>"App"</dt><dd><a href=format!("/apps/{}", k.app_id)>{k.app.clone()}</a></dd>
                <dt>"Environment"</dt><dd>{k.environment.clone()}</dd>
                <dt>"Kind"</dt><dd>{k.kind.clone()}</dd>
                <dt>"Owner"</dt><dd>{k.owner.clone().unwrap_or_else(|| "nobody".into())}</dd>
                <dt>"Role"</dt><dd>{k.role.clone().unwrap_or_default()}</dd>
                <dt>"Created"</dt><dd><When now at=k.created_at/></dd>
                <dt>"Last used"</dt><dd>{last_used}</dd>
                <dt>"Expires"</dt><dd>{expires}</dd>
                {revoked}
                {rolled_from}
                {replaced_by}
                <dt>"Allowed networks"</dt><dd>{networks}</dd>
            </dl>
        </section>
    }
}

#[component]
fn KeyManage(
    d: KeyDetail,
    revoke: ServerAction<RevokeKey>,
    roll: ServerAction<RollKey>,
    edit: ServerAction<UpdateKey>,
    enable: ServerAction<EnableKey>,
) -> impl IntoView {
    let k = d.key;
    // A pending or disabled key can be revoked (withdrawn), and a disabled one enabled;
    // only an active key is edited or rolled.
    let active = k.status == "active";
    if !matches!(k.status.as_str(), "active" | "pending" | "disabled")
        || !(d.can_update || d.can_revoke)
    {
        return None;
    }
    let can_roll = active && d.can_update && k.replaced_by.is_none();
    let edit_form = (active && d.can_update).then(|| {
        view! { <EditKeyForm k=k.clone() roles=d.roles.clone() edit with_networks=true/> }
    });
    let enable_id = k.key_id.clone();
    let enable_form = (k.status == "disabled" && d.can_update).then(move || {
        view! {
            <ActionForm action=enable attr:class="inline-form">
                <input type="hidden" name="key_id" value=enable_id/>
                <button type="submit" class="btn btn-primary">"Enable this key"</button>
                <p class="muted hint">"It works again at once; disuse is counted again from now."</p>
            </ActionForm>
        }
    });
    Some(view! {
        <section class="card" aria-labelledby="key-manage-title">
            <h2 id="key-manage-title">"Manage"</h2>
            {edit_form}
            {enable_form}
            <KeyActionForms key_id=k.key_id.clone() can_revoke=d.can_revoke can_roll revoke roll/>
        </section>
    })
}

#[component]
fn KeyHistory(d: KeyDetail) -> impl IntoView {
    let now = d.now;
    let empty = d.history.is_empty();
    let rows = d
        .history
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td><When now at=e.at/></td>
                    <td><code>{e.action}</code></td>
                    <td>{e.actor}</td>
                    <td>{e.ip.unwrap_or_default()}</td>
                    <td>{e.outcome}</td>
                    <td><code class="details">{e.details}</code></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="key-history-title">
            <h2 id="key-history-title">"History"</h2>
            <p class="muted">{format!("The latest {} changes to this key from the audit log, newest first (refused requests are under Usage).", super::HISTORY_EVENTS)}</p>
            {if empty {
                view! { <p class="muted">"Nothing recorded yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0"><table>
                        <thead><tr>
                            <th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Who"</th>
                            <th scope="col">"From"</th><th scope="col">"Outcome"</th><th scope="col">"Details"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

fn events_saved(e: &[String]) -> String {
    if e.is_empty() {
        "That URL is sent no events now.".to_owned()
    } else {
        format!("Events saved: {}.", e.join(", "))
    }
}

/// The key events each webhook URL of an app is sent: one form per URL.
#[component]
fn EventSubscriptions(a: AppInfo, subscribe: ServerAction<SubscribeEvents>) -> impl IntoView {
    let forms = a
        .webhook_events
        .into_iter()
        .enumerate()
        .map(|(i, (url, on))| {
            let boxes = super::EVENTS
                .iter()
                .map(|(event, what)| {
                    let id = format!("ev-{i}-{}", event.replace('.', "-"));
                    view! {
                        <div class="check">
                            <input id=id.clone() type="checkbox" name="events[]" value=*event checked=on.iter().any(|e| e == event)/>
                            <label for=id><code>{*event}</code>{format!(": {what}")}</label>
                        </div>
                    }
                })
                .collect_view();
            let legend = format!("Events sent to {url}");
            view! {
                <ActionForm action=subscribe>
                    <input type="hidden" name="app_id" value=a.id.to_string()/>
                    <input type="hidden" name="url" value=url.clone()/>
                    <fieldset>
                        <legend><code class="webhook-url">{legend}</code></legend>
                        {boxes}
                    </fieldset>
                    <button type="submit" class="btn" aria-label=format!("Save the events sent to {url}")>"Save events"</button>
                </ActionForm>
            }
        })
        .collect_view();
    let none = a.webhook_urls.is_empty();
    let saved = |e: &Vec<String>| events_saved(e);
    view! {
        <section class="card" aria-labelledby="events-title">
            <h2 id="events-title">"Key events"</h2>
            <p class="muted">"Keyward POSTs these events of this app's keys to the webhook URLs you choose, signed like message webhooks (X-Keyward-Signature over the timestamp and the body, with the URL's secret) and retried until they are accepted. They name keys by their ID, never by their secret. README: \"Event webhooks\"."</p>
            <ActionResult action=subscribe ok=saved/>
            {none.then(|| view! { <p class="muted">"Register a webhook URL above first."</p> })}
            {forms}
        </section>
    }
}

/// `/apps/{id}`: one app: its SDK keys, name and allow-list, webhook URLs, and a link to
/// its keys.
#[component]
pub fn AppDetailPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let update = ServerAction::<UpdateApp>::new();
    let regen = ServerAction::<RegenerateSdkKey>::new();
    let hook = ServerAction::<RegisterWebhook>::new();
    let unhook = ServerAction::<RemoveWebhook>::new();
    let subscribe = ServerAction::<SubscribeEvents>::new();
    crate::shell_ui::close_on_success(regen);
    crate::one_answer_at_a_time!(update, regen, hook, unhook, subscribe);
    let me = Resource::new(|| (), |_| get_me());
    let app = Resource::new(
        move || {
            (
                id(),
                update.version().get(),
                regen.version().get(),
                hook.version().get(),
                unhook.version().get(),
                subscribe.version().get(),
            )
        },
        |(id, ..)| async move {
            // Every app is visible to whoever may open this page (app.manage, which
            // `list_apps` checks first: without it the answer is 403, whatever the id).
            let apps = super::list_apps().await?;
            let id = crate::shell_ui::path_id(&id).ok_or(crate::error::AppError::NotFound)?;
            apps.into_iter()
                .find(|a| a.id == id)
                .ok_or(crate::error::AppError::NotFound)
        },
    );
    // The app's keys that the viewer may see (their own, or everyone's with
    // api.key.view_all): the newest page, the rest on /keys filtered by this app. A
    // viewer without api.key.view sees none (the answer is 403: nothing is drawn).
    let keys = Resource::new(id, |id| {
        super::list_keys(
            id,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        )
    });
    view! {
        <Page title="App" me data=move || app.get() render=move |_me, a| view! {
            <p><a href="/apps">"← Apps"</a></p>
            <h1>{a.name.clone()}</h1>
            <section class="card" aria-labelledby="app-title">
                <h2 id="app-title" class="visually-hidden">"Settings"</h2>
                <ActionResult action=update ok=|_: &()| "App saved.".to_owned()/>
                <ActionResult action=regen ok=|_: &()| "SDK key regenerated; the old one works until the end of the grace period you chose.".to_owned()/>
                <ActionResult action=unhook ok=|_: &()| "Webhook URL removed; messages not yet sent to it will fail.".to_owned()/>
                <WebhookSecret action=hook/>
                <AppRow a=a.clone() update regen hook unhook/>
            </section>
            <section class="card" aria-labelledby="numbers-title">
                <h2 id="numbers-title">"SMS sender numbers"</h2>
                {if a.sender_numbers.is_empty() {
                    view! { <p class="muted">"None yet."</p> }.into_any()
                } else {
                    view! { <ul>{a.sender_numbers.iter().map(|n| view! { <li><code>{n.clone()}</code></li> }).collect_view()}</ul> }.into_any()
                }}
                <p><a href="/channels#channel-sms">"Add or remove numbers and their keys on the Channels page"</a></p>
            </section>
            <Suspense>{move || keys.get().and_then(Result::ok).map(|v| view! { <AppKeys app_id=a.id v/> })}</Suspense>
            <EventSubscriptions a=a.clone() subscribe/>
        }.into_any()/>
    }
}
