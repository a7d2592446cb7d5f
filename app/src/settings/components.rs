use super::{GeneralView, SaveAlerts, SaveChannel, SaveGeneral, SaveKeys, SaveMessages};
use crate::auth::get_me;
use crate::shell_ui::{invalid, ActionResult, FieldError, Page};
use leptos::prelude::*;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let save = ServerAction::<SaveGeneral>::new();
    let save_keys = ServerAction::<SaveKeys>::new();
    let save_messages = ServerAction::<SaveMessages>::new();
    let save_alerts = ServerAction::<SaveAlerts>::new();
    let save_channel = ServerAction::<SaveChannel>::new();
    crate::shell_ui::focus_refused_field(save);
    crate::shell_ui::focus_refused_field(save_keys);
    crate::shell_ui::focus_refused_field(save_messages);
    crate::shell_ui::focus_refused_field(save_alerts);
    crate::shell_ui::focus_refused_field(save_channel);
    // Which channel's form sent the last policy: noted here, above the forms, which are
    // drawn again when the answer comes (the four forms share one action).
    let channel_sent = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(c) = save_channel
            .input()
            .with(|i| i.as_ref().map(|a| a.channel.clone()))
        {
            channel_sent.set(Some(c));
        }
    });
    let me = Resource::new(|| (), |_| get_me());
    let view_data = Resource::new(
        move || {
            (
                save.version().get(),
                save_keys.version().get(),
                save_messages.version().get(),
                save_alerts.version().get(),
                save_channel.version().get(),
            )
        },
        |_| super::get_general(),
    );
    view! {
        <Page title="Settings" me data=move || view_data.get() render=move |_me, data| view! {
                    <h1>"Settings"</h1>
                    <General data=data.clone() save/>
                    <Keys data=data.clone() save_keys/>
                    <Messages data=data.clone() save_messages/>
                    <Alerts data=data.clone() save_alerts/>
                    <Channels data save_channel sent=channel_sent/>
                }.into_any()/>
    }
}

#[component]
fn Channels(
    data: GeneralView,
    save_channel: ServerAction<SaveChannel>,
    sent: RwSignal<Option<String>>,
) -> impl IntoView {
    let forms = [("email", "Email"), ("sms", "SMS"), ("rcs", "RCS"), ("whatsapp", "WhatsApp")]
        .into_iter()
        .map(|(c, label)| {
            let p = data.channels.get(c).clone();
            let id = move |f: &str| format!("ch-{c}-{f}");
            let here = Signal::derive(move || sent.with(|s| s.as_ref().map(|s| s == c)));
            // The server's word on one of this form's fields, beside it (only for the
            // form that was sent: the four share one action).
            let refused = move |field: &'static str| {
                move || {
                    (here.get() != Some(false))
                        .then(|| crate::shell_ui::refused_for_field(save_channel, field))
                        .flatten()
                }
            };
            let field_error = move |field: &'static str| {
                let error_id = id(&format!("{field}-error"));
                move || refused(field)().map(|m| view! { <p class="field-error" id=error_id.clone()>{m}</p> })
            };
            let yes_no = move |name: &'static str, value: bool, yes: &'static str, no: &'static str| {
                view! {
                    <select id=id(name) name=name>
                        <option value="true" selected=value>{yes}</option>
                        <option value="false" selected=!value>{no}</option>
                    </select>
                }
            };
            view! {
                <ActionForm action=save_channel>
                    <fieldset>
                        <legend>{label}</legend>
                        <input type="hidden" name="channel" value=c/>
                        {if c == "sms" {
                            view! { <p class="muted">"One key per sender number, made when someone holding app.manage adds the number on the Channels page."</p> }.into_any()
                        } else {
                            view! {
                        <div class="field"><label for=id("create_permission")>"Who creates its keys"</label>
                            <select id=id("create_permission") name="create_permission">
                                <option value="api.key.create" selected=p.create_permission == "api.key.create">"holders of api.key.create"</option>
                                <option value="channel.key.manage" selected=p.create_permission == "channel.key.manage">"holders of channel.key.manage only"</option>
                            </select></div>
                        <div class="field"><label for=id("max_active")>"Active keys allowed"</label>
                            <input id=id("max_active") name="max_active" type="number" required min="1" max="1000" value=p.max_active.to_string()
                                aria-invalid=move || refused("max_active")().map(|_| "true") aria-describedby=move || refused("max_active")().map(|_| id("max_active-error"))/>
                            {field_error("max_active")}</div>
                        <div class="field"><label for=id("per")>"Counted"</label>
                            <select id=id("per") name="per">
                                <option value="user" selected=p.per == "user">"per user"</option>
                                <option value="deployment" selected=p.per == "deployment">"for the whole deployment"</option>
                            </select></div>
                            }.into_any()
                        }}
                        <div class="field"><label for=id("reveal")>"The secret"</label>
                            {yes_no("reveal", p.reveal, "can be revealed again (password re-entry, audited)", "is shown once")}</div>
                        <div class="field"><label for=id("regenerate")>"Regenerating a key"</label>
                            {yes_no("regenerate", p.regenerate, "allowed", "not allowed")}</div>
                        <div class="field"><label for=id("max_expiry_days")>"Longest expiry (days; 0 for no maximum)"</label>
                            <input id=id("max_expiry_days") name="max_expiry_days" type="number" required min="0" max="3650" value=p.max_expiry_days.to_string()
                                aria-invalid=move || refused("max_expiry_days")().map(|_| "true") aria-describedby=move || refused("max_expiry_days")().map(|_| id("max_expiry_days-error"))/>
                            {field_error("max_expiry_days")}</div>
                        <div class="field"><label for=id("require_networks")>"IP allow-list"</label>
                            {yes_no("require_networks", p.require_networks, "required", "optional")}</div>
                        <SudoField id=format!("ch-{c}-sudo") needs=data.needs_password action=save_channel here=here/>
                        <ActionResult action=save_channel ok=move |_: &()| format!("{label} policy saved.") here=here/>
                        <button type="submit" class="btn">{format!("Save the {label} policy")}</button>
                    </fieldset>
                </ActionForm>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="channels-settings-title">
            <h2 id="channels-settings-title">"Channels"</h2>
            <p class="muted">"Policies for channel keys (/channels). A change applies to keys made from then on; the count of active keys is checked at each creation. Revealable keys made while their channel was shown-once cannot be revealed."</p>
            {forms}
        </section>
    }
}

#[component]
fn NumberField<S>(
    action: ServerAction<S>,
    id: &'static str,
    label: &'static str,
    hint: &'static str,
    value: u32,
    min: u32,
    max: u32,
) -> impl IntoView
where
    S: server_fn::ServerFn<Error = crate::error::AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let refused = move || crate::shell_ui::refused_for_field(action, id);
    let described = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || match refused() {
            Some(_) => format!("{error_id} {hint_id}"),
            None => hint_id.clone(),
        }
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id name=id type="number" required min=min.to_string() max=max.to_string() value=value.to_string()
                aria-invalid=move || refused().map(|_| "true") aria-describedby=described/>
            {move || refused().map(|message| view! { <p class="field-error" id=error_id.clone()>{message}</p> })}
            <p id=hint_id class="muted hint">{hint}</p>
        </div>
    }
}

/// The password field every settings form carries (saving asks for the password when
/// it was last confirmed more than 10 minutes ago), with a hint that says which, and the
/// server's word on a wrong or missing password beside it. `here`: for forms sharing
/// one action (the channel policies), whether the last submission was this form's
/// (`None` on a page drawn by the server: the error then shows in each of them).
#[component]
fn SudoField<S>(
    #[prop(into)] id: String,
    needs: bool,
    action: ServerAction<S>,
    #[prop(optional, into)] here: Option<Signal<Option<bool>>>,
) -> impl IntoView
where
    S: server_fn::ServerFn<Error = crate::error::AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let input = format!("{id}-password");
    let hint = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let refused = move || {
        if here.is_some_and(|h| h.get() == Some(false)) {
            None
        } else {
            crate::shell_ui::refused_for(action, &["password"])
        }
    };
    let described = {
        let (hint, error_id) = (hint.clone(), error_id.clone());
        move || match refused() {
            Some(_) => format!("{error_id} {hint}"),
            None => hint.clone(),
        }
    };
    view! {
        <div class="field">
            <label for=input.clone()>"Your password"</label>
            <input id=input name="password" type="password" autocomplete="current-password" maxlength="1024" required=needs
                aria-invalid=move || refused().map(|_| "true") aria-describedby=described/>
            {move || refused().map(|message| view! { <p class="field-error" id=error_id.clone()>{message}</p> })}
            <p id=hint class="muted hint">{if needs { "Needed to save: you last confirmed your password more than 10 minutes ago." } else { "Not needed: you confirmed your password less than 10 minutes ago." }}</p>
        </div>
    }
}

/// The General form's fields whose errors are shown beside them.
const DOMAINS: &[&str] = &["allowed_domains"];
const NETWORKS: &[&str] = &["panel_networks"];
const FACTORS: &[&str] = &["second_factor", "accept_totp", "sms_code_from"];

#[component]
fn General(data: GeneralView, save: ServerAction<SaveGeneral>) -> impl IntoView {
    let s = data.settings;
    let you = data.your_address;
    let sms_from = s.sms_code_from.clone();
    let sms_numbers = data
        .sender_numbers
        .into_iter()
        .map(|n| {
            let chosen = n == sms_from;
            let value = n.clone();
            view! { <option value=value selected=chosen>{n}</option> }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="general-title">
            <h2 id="general-title">"General security"</h2>
            <ActionForm action=save>
                <fieldset>
                    <legend>"Who may sign in"</legend>
                    <div class="field">
                        <label for="second_factor">"Second factor"</label>
                        <select id="second_factor" name="second_factor" aria-describedby="second-factor-hint">
                            <option value="off" selected=!s.second_factor_required>"Off"</option>
                            <option value="required" selected=s.second_factor_required>"Required for everyone"</option>
                        </select>
                        <p id="second-factor-hint" class="muted hint">"Users who set up an authenticator app on their Account page always use it (when accepted). When required, everyone else gets a 6-digit code by SMS (to a phone they confirmed) or by email at each sign-in."</p>
                    </div>
                    <fieldset>
                        <legend>"Second factors accepted"</legend>
                        <div class="check"><input id="accept_totp" type="checkbox" name="accept_totp" value="true" checked=s.accept_totp/>
                            <label for="accept_totp">"Authenticator app (TOTP)"</label></div>
                        <div class="check"><input id="accept_email_code" type="checkbox" name="accept_email_code" value="true" checked=s.accept_email_code/>
                            <label for="accept_email_code">"Code by email"</label></div>
                        <div class="check"><input id="accept_sms_code" type="checkbox" name="accept_sms_code" value="true" checked=s.accept_sms_code/>
                            <label for="accept_sms_code">"Code by SMS (to a phone number the user confirmed on their Account page)"</label></div>
                        <div class="field"><label for="sms_code_from">"SMS codes are sent from"</label>
                            <select id="sms_code_from" name="sms_code_from" aria-describedby="sms-from-hint">
                                <option value="" selected=s.sms_code_from.is_empty()>"—"</option>
                                {sms_numbers}
                            </select>
                            <p id="sms-from-hint" class="muted hint">"One of the sender numbers (Channels page)."</p></div>
                        <FieldError action=save fields=FACTORS id="factors-error"/>
                    </fieldset>
                    <div class="field">
                        <label for="allowed_domains">"Allowed email domains"</label>
                        <textarea id="allowed_domains" name="allowed_domains" rows="4" maxlength="20000" aria-describedby="domains-error domains-hint"
                            aria-invalid=invalid(save, DOMAINS)>{crate::shell_ui::textarea_text(&s.allowed_domains.join("\n"))}</textarea>
                        <FieldError action=save fields=DOMAINS id="domains-error"/>
                        <p id="domains-hint" class="muted hint">"One per line, e.g. example.com. Only these exact domains (not their subdomains) can be given accounts and sign in. Empty: any domain."</p>
                    </div>
                    <div class="field">
                        <label for="panel_networks">"Panel network allow-list"</label>
                        <textarea id="panel_networks" name="panel_networks" rows="4" maxlength="20000" aria-describedby="networks-error networks-hint"
                            aria-invalid=invalid(save, NETWORKS)>{crate::shell_ui::textarea_text(&s.panel_networks.join("\n"))}</textarea>
                        <FieldError action=save fields=NETWORKS id="networks-error"/>
                        <p id="networks-hint" class="muted hint">{format!("One IPv4 or IPv6 address or range per line, e.g. 10.0.0.0/8. Sign-in and every panel page are refused from anywhere else. Empty: any network. Your address is {you}.")}</p>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"Sessions"</legend>
                    <NumberField action=save id="session_idle_minutes" label="Idle timeout (minutes)" hint="A session ends after this long without a request." value=s.session_idle_minutes min=5 max=1440/>
                    <NumberField action=save id="session_absolute_hours" label="Absolute timeout (hours)" hint="A session ends this long after sign-in, however active." value=s.session_absolute_hours min=1 max=720/>
                </fieldset>
                <fieldset>
                    <legend>"Sign-in throttling"</legend>
                    <NumberField action=save id="throttle_account_attempts" label="Free attempts per account and address" hint="Failed sign-ins to one account from one address before each further attempt must wait." value=s.throttle_account_attempts min=1 max=100/>
                    <NumberField action=save id="throttle_ip_attempts" label="Free attempts per address" hint="Failed sign-ins from one address, to any account, before delays start." value=s.throttle_ip_attempts min=1 max=10000/>
                    <NumberField action=save id="throttle_max_delay_secs" label="Longest delay (seconds)" hint="Delays double from 1 second up to this, then end on their own: nobody is locked out for good." value=s.throttle_max_delay_secs min=1 max=3600/>
                </fieldset>
                <SudoField id="sudo" needs=data.needs_password action=save/>
                <ActionResult action=save ok=|_: &()| "Settings saved.".to_owned()/>
                <button type="submit" class="btn btn-primary">"Save settings"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Keys(data: GeneralView, save_keys: ServerAction<SaveKeys>) -> impl IntoView {
    let k = data.keys;
    let default_expiry = k.default_expiry.clone();
    let option = move |value: &'static str, label: &'static str| {
        let selected = default_expiry == value;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <section class="card" aria-labelledby="keys-settings-title">
            <h2 id="keys-settings-title">"Keys"</h2>
            <ActionForm action=save_keys>
                <NumberField action=save_keys id="max_active_per_user_per_app" label="Active keys per user per app" hint="A user who reaches it must revoke a key to make another." value=k.max_active_per_user_per_app min=1 max=1000/>
                <NumberField action=save_keys id="max_expiry_days" label="Longest expiry (days; 0 for no maximum)" hint="With a maximum, keys that never expire cannot be made." value=k.max_expiry_days min=0 max=3650/>
                <div class="field">
                    <label for="default_expiry">"Default expiry"</label>
                    <select id="default_expiry" name="default_expiry">
                        {[("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("never", "Never")].into_iter().map(|(v, l)| option(v, l)).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="leak_action">"A key reported as leaked"</label>
                    <select id="leak_action" name="leak_action" aria-describedby="leak_action-hint">
                        <option value="revoke" selected=k.leak_action == "revoke">"Revoke it at once"</option>
                        <option value="flag" selected=k.leak_action == "flag">"Flag it (it keeps working)"</option>
                    </select>
                    <p id="leak_action-hint" class="muted hint">"Reports come from secret scanners (POST /api/v1/leaks). Either way its owner and the administrators are emailed."</p>
                </div>
                <NumberField action=save_keys id="disable_unused_days" label="Disable keys unused for (days; 0 for never)" hint="Counted from a key's last use, or from its creation if never used; at least 7. Its owner is emailed and can enable it again on its page." value=k.disable_unused_days min=0 max=3650/>
                <div class="field">
                    <label for="require_approval">"New keys"</label>
                    <select id="require_approval" name="require_approval" aria-describedby="require_approval-hint">
                        <option value="off" selected=!k.require_approval>"Work at once"</option>
                        <option value="required" selected=k.require_approval>"Wait for approval"</option>
                    </select>
                    <p id="require_approval-hint" class="muted hint">"A key waiting for approval is refused (key_pending) until someone holding api.key.approve, other than its owner, approves it under Approvals. A rolled key's replacement works at once."</p>
                </div>
                <SudoField id="keys-sudo" needs=data.needs_password action=save_keys/>
                <ActionResult action=save_keys ok=|_: &()| "Key settings saved.".to_owned()/>
                <button type="submit" class="btn btn-primary">"Save key settings"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Messages(data: GeneralView, save_messages: ServerAction<SaveMessages>) -> impl IntoView {
    let m = data.messages;
    let overrides = data
        .apps
        .iter()
        .map(|(id, name)| {
            let current = m
                .app_overrides
                .iter()
                .find(|(a, _)| a == id)
                .map(|(_, r)| if *r { "required" } else { "not_required" })
                .unwrap_or("default");
            let field = format!("override-{id}");
            let opt = |choice: &'static str, label: &'static str| {
                view! { <option value=format!("{id}={choice}") selected=current == choice>{label}</option> }
            };
            view! {
                <div class="field">
                    <label for=field.clone()>{format!("Approval for {name}")}</label>
                    <select id=field name="overrides[]">
                        {opt("default", "as above")}{opt("required", "required")}{opt("not_required", "not required")}
                    </select>
                </div>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="messages-settings-title">
            <h2 id="messages-settings-title">"Messages"</h2>
            <p class="muted">"With approval required, a message waits until someone other than its author approves it."</p>
            <ActionForm action=save_messages>
                <div class="field">
                    <label for="approval_required">"Approval before sending"</label>
                    <select id="approval_required" name="approval_required">
                        <option value="required" selected=m.approval_required>"required"</option>
                        <option value="not_required" selected=!m.approval_required>"not required"</option>
                    </select>
                </div>
                <NumberField action=save_messages id="approvals_needed" label="Approvals needed (1 or 2 distinct approvers)" hint="Never the author; an edit voids the approvals given so far." value=m.approvals_needed min=1 max=2/>
                <NumberField action=save_messages id="pending_expiry_hours" label="A pending message expires after (hours)" hint="An expired message is never sent; its author can write it again." value=m.pending_expiry_hours min=1 max=2160/>
                {overrides}
                <SudoField id="messages-sudo" needs=data.needs_password action=save_messages/>
                <ActionResult action=save_messages ok=|_: &()| "Message settings saved.".to_owned()/>
                <button type="submit" class="btn btn-primary">"Save message settings"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Alerts(data: GeneralView, save_alerts: ServerAction<SaveAlerts>) -> impl IntoView {
    let a = data.alerts;
    view! {
        <section class="card" aria-labelledby="alerts-settings-title">
            <h2 id="alerts-settings-title">"Alerts"</h2>
            <p class="muted">"Past a threshold within a window, one email goes to the key's owner (or the account) and to every Owner and Admin, and the overview lists it; at most once per key or account per window. 0 turns an alert off."</p>
            <ActionForm action=save_alerts>
                <NumberField action=save_alerts id="key_refusals" label="Refused requests of one key" hint="Revoked, expired, from an address not allowed, or lacking a permission." value=a.key_refusals min=0 max=1_000_000/>
                <NumberField action=save_alerts id="key_window_minutes" label="…within (minutes)" hint="1 to 1440." value=a.key_window_minutes min=1 max=1440/>
                <NumberField action=save_alerts id="sign_in_failures" label="Failed sign-in steps of one account" hint="Wrong passwords and wrong codes, from any address." value=a.sign_in_failures min=0 max=10_000/>
                <NumberField action=save_alerts id="sign_in_window_minutes" label="…within (minutes)" hint="1 to 1440." value=a.sign_in_window_minutes min=1 max=1440/>
                <SudoField id="alerts-sudo" needs=data.needs_password action=save_alerts/>
                <ActionResult action=save_alerts ok=|_: &()| "Alert settings saved.".to_owned()/>
                <button type="submit" class="btn btn-primary">"Save alert settings"</button>
            </ActionForm>
        </section>
    }
}
