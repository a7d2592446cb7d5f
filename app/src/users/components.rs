use super::{
    CreateUser, InviteUser, ResetUser2fa, SetUserEnabled, SetUserRole, UserInfo, UserStatus,
    UsersData,
};
use crate::auth::{get_me, Me, SudoForm};
use crate::shell_ui::{
    form_token, format_time, invalid, reset_on_success, ActionResult, CancelButton, Dialog,
    FieldError, FormToken, Page,
};
use leptos::prelude::*;

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_enabled = ServerAction::<SetUserEnabled>::new();
    let reset = ServerAction::<ResetUser2fa>::new();
    let invite = ServerAction::<InviteUser>::new();
    crate::one_answer_at_a_time!(create, set_role, set_enabled, reset, invite);
    // Disabling and resetting ask first, in a dialog that closes when done.
    crate::shell_ui::close_on_success(set_enabled);
    crate::shell_ui::close_on_success(reset);
    let me = Resource::new(|| (), |_| get_me());
    let invite_token = form_token(invite);
    let create_token = form_token(create);
    let data = Resource::new(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                set_enabled.version().get(),
                reset.version().get(),
                invite.version().get(),
            )
        },
        |_| super::list_users(),
    );
    view! {
        <Page title="Users" me data=move || data.get() render=move |me, data| view! {
                    <h1>"Users"</h1>
                    <SudoForm/>
                    <UserTable me=me.clone() data=data.clone() set_role set_enabled reset/>
                    <Invite data=data.clone() invite token=invite_token/>
                    <NewUser data create token=create_token/>
                }.into_any()/>
    }
}

#[component]
fn UserTable(
    me: Me,
    data: UsersData,
    set_role: ServerAction<SetUserRole>,
    set_enabled: ServerAction<SetUserEnabled>,
    reset: ServerAction<ResetUser2fa>,
) -> impl IntoView {
    let roles = data.roles.clone();
    let rows = data
        .users
        .into_iter()
        .map(|u| view! { <UserRow me=me.clone() user=u roles=roles.clone() set_role set_enabled reset/> })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="users-title">
            <h2 id="users-title">"Everyone"</h2>
            <ActionResult action=set_role ok=|_: &()| "Role changed.".to_owned()/>
            <ActionResult action=set_enabled ok=|_: &()| "Status changed.".to_owned()/>
            <ActionResult action=reset ok=|_: &()| "Second factor reset; their sessions have ended.".to_owned()/>
            <div class="table-wrap" tabindex="0">
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Email"</th>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Role"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"2FA"</th>
                            <th scope="col">"Last sign-in"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn UserRow(
    me: Me,
    user: UserInfo,
    roles: Vec<(i64, String)>,
    set_role: ServerAction<SetUserRole>,
    set_enabled: ServerAction<SetUserEnabled>,
    reset: ServerAction<ResetUser2fa>,
) -> impl IntoView {
    let is_me = me.id == user.id;
    let factors = match (user.totp, user.phone) {
        (true, true) => "App and SMS",
        (true, false) => "App",
        (false, true) => "SMS",
        (false, false) => "Off",
    };
    let totp_cell = if (user.totp || user.phone) && !is_me {
        // Irreversible and felt at once (their sessions end): asked first.
        let dlg = format!("reset-2fa-{}", user.id);
        let id = user.id;
        let here = crate::shell_ui::sent_here(reset, move |a: &ResetUser2fa| a.user_id == id);
        let (opener_label, title, submit_label) = (
            format!("Reset the second factors of {}…", user.email),
            format!("Reset the second factors of {}?", user.email),
            format!("Reset the second factors of {}", user.email),
        );
        view! {
            {factors}" "
            <Dialog id=dlg.clone() opener="Reset…" opener_label
                opener_class="btn btn-danger" title>
                <p><strong>"Their authenticator app and SMS phone are removed and every session of theirs ends."</strong>" They sign in again with their password and set a second factor up anew (by email code meanwhile, if the settings require one). This cannot be undone."</p>
                <crate::keys::ErrorOf action=reset here/>
                <ActionForm action=reset attr:class="dialog-form">
                    <input type="hidden" name="user_id" value=user.id.to_string()/>
                    <div class="dialog-actions">
                        <CancelButton dialog=dlg.clone()/>
                        <button type="submit" class="btn btn-danger" aria-label=submit_label
                            disabled=move || reset.pending().get()>"Reset"</button>
                    </div>
                </ActionForm>
            </Dialog>
        }
        .into_any()
    } else {
        view! { {factors} }.into_any()
    };
    let last = user
        .last_login_at
        .map(format_time)
        .unwrap_or_else(|| "Never".to_owned());
    let select_id = format!("role-{}", user.id);
    let role_label = format!("Role of {}", user.email);
    let role_cell = if is_me {
        view! { {user.role_name.clone()}" (you)" }.into_any()
    } else {
        let options = roles
            .into_iter()
            .map(|(id, name)| {
                view! { <option value=id.to_string() selected=id == user.role_id>{name}</option> }
            })
            .collect_view();
        view! {
            <ActionForm action=set_role attr:class="inline-form">
                <input type="hidden" name="user_id" value=user.id.to_string()/>
                <label for=select_id.clone() class="visually-hidden">{role_label}</label>
                <select id=select_id name="role_id">{options}</select>
                <button type="submit" class="btn">"Change"</button>
            </ActionForm>
        }
        .into_any()
    };
    let status_cell = if is_me {
        view! { {user.status.label()} }.into_any()
    } else {
        let disabled = user.status == UserStatus::Disabled;
        let (label, next) = if disabled {
            ("Enable", "true")
        } else {
            ("Disable", "false")
        };
        let button_label = format!("{label} {}", user.email);
        if disabled {
            view! {
                {user.status.label()}" "
                <ActionForm action=set_enabled attr:class="inline-form">
                    <input type="hidden" name="user_id" value=user.id.to_string()/>
                    <input type="hidden" name="enabled" value=next/>
                    <button type="submit" class="btn" aria-label=button_label>{label}</button>
                </ActionForm>
            }
            .into_any()
        } else {
            // Disabling ends their sessions and stops their keys at once: asked first.
            let dlg = format!("disable-{}", user.id);
            let id = user.id;
            let here =
                crate::shell_ui::sent_here(set_enabled, move |a: &SetUserEnabled| a.user_id == id);
            view! {
                {user.status.label()}" "
                <Dialog id=dlg.clone() opener="Disable…" opener_label=format!("{button_label}…")
                    opener_class="btn btn-danger" title=format!("Disable {}?", user.email)>
                    <p><strong>"They are signed out everywhere, cannot sign in, and their API keys are refused from the next request"</strong>" (key_revoked), until someone enables them again."</p>
                    <crate::keys::ErrorOf action=set_enabled here/>
                    <ActionForm action=set_enabled attr:class="dialog-form">
                        <input type="hidden" name="user_id" value=user.id.to_string()/>
                        <input type="hidden" name="enabled" value=next/>
                        <div class="dialog-actions">
                            <CancelButton dialog=dlg.clone()/>
                            <button type="submit" class="btn btn-danger" aria-label=button_label
                                disabled=move || set_enabled.pending().get()>"Disable"</button>
                        </div>
                    </ActionForm>
                </Dialog>
            }
            .into_any()
        }
    };
    view! {
        <tr>
            <td>{user.email.clone()}</td>
            <td>{user.display_name.clone()}</td>
            <td>{role_cell}</td>
            <td>{status_cell}</td>
            <td>{totp_cell}</td>
            <td>{last}</td>
        </tr>
    }
}

fn role_options(data: &UsersData) -> impl IntoView {
    data.roles
        .iter()
        .map(|(id, name)| {
            let selected = *id == crate::roles::BuiltinRole::Developer.id();
            view! { <option value=id.to_string() selected=selected>{name.clone()}</option> }
        })
        .collect_view()
}

#[component]
fn Invite(
    data: UsersData,
    invite: ServerAction<InviteUser>,
    token: Resource<Result<String, crate::error::AppError>>,
) -> impl IntoView {
    // The fields the server may name when it refuses an invitation (shown beside them).
    const EMAIL: &[&str] = &["email"];
    const NAME: &[&str] = &["display_name", "name"];
    const ROLE: &[&str] = &["role", "role_id"];
    view! {
        <section class="card" aria-labelledby="invite-title">
            <h2 id="invite-title">"Invite someone"</h2>
            <p class="muted">"They get an email with a link to set their password. The link works once, for 72 hours."</p>
            <ActionResult action=invite ok=|_: &()| "Invitation sent.".to_owned()/>
            <ActionForm action=invite node_ref=reset_on_success(invite)>
                <FormToken token/>
                <div class="field">
                    <label for="invite-email">"Email to invite"</label>
                    <input id="invite-email" type="email" name="email" required maxlength="254" autocomplete="off"
                        aria-invalid=invalid(invite, EMAIL) aria-describedby=move || invalid(invite, EMAIL)().map(|_| "invite-email-error")/>
                    <FieldError action=invite fields=EMAIL id="invite-email-error"/>
                </div>
                <div class="field">
                    <label for="invite-name">"Their name"</label>
                    <input id="invite-name" type="text" name="display_name" maxlength="100" autocomplete="off"
                        aria-invalid=invalid(invite, NAME) aria-describedby=move || invalid(invite, NAME)().map(|_| "invite-name-error")/>
                    <FieldError action=invite fields=NAME id="invite-name-error"/>
                </div>
                <div class="field">
                    <label for="invite-role">"Their role"</label>
                    <select id="invite-role" name="role_id"
                        aria-invalid=invalid(invite, ROLE) aria-describedby=move || invalid(invite, ROLE)().map(|_| "invite-role-error")>{role_options(&data)}</select>
                    <FieldError action=invite fields=ROLE id="invite-role-error"/>
                </div>
                <button type="submit" class="btn btn-primary" disabled=move || invite.pending().get()>"Send invitation"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn NewUser(
    data: UsersData,
    create: ServerAction<CreateUser>,
    token: Resource<Result<String, crate::error::AppError>>,
) -> impl IntoView {
    let options = data
        .roles
        .into_iter()
        .map(|(id, name)| {
            let selected = id == crate::roles::BuiltinRole::Developer.id();
            view! { <option value=id.to_string() selected=selected>{name}</option> }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="new-user-title">
            <h2 id="new-user-title">"Add a user"</h2>
            <p class="muted">"The user signs in with this email and password; share the password with them over a safe channel."</p>
            <ActionResult action=create ok=|_: &i64| "User created.".to_owned()/>
            <ActionForm action=create node_ref=reset_on_success(create)>
                <FormToken token/>
                <div class="field">
                    <label for="new-email">"Email"</label>
                    <input id="new-email" type="email" name="email" required maxlength="254" autocomplete="off"/>
                </div>
                <div class="field">
                    <label for="new-name">"Name"</label>
                    <input id="new-name" type="text" name="display_name" maxlength="100" autocomplete="off"/>
                </div>
                <div class="field">
                    <label for="new-password">"Password (12 to 128 characters)"</label>
                    <input id="new-password" type="password" name="password" required minlength="12" maxlength="128" autocomplete="new-password"/>
                </div>
                <div class="field">
                    <label for="new-role">"Role"</label>
                    <select id="new-role" name="role_id">{options}</select>
                </div>
                <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>"Add user"</button>
            </ActionForm>
        </section>
    }
}
