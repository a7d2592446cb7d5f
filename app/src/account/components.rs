use super::{
    ChangePassword, ConfirmPhone, ConfirmTotp, EndSession, PhoneInfo, RemovePhone, SessionInfo,
    StartPhone, StartTotp, TotpInfo,
};
use crate::auth::{get_me, SudoForm};
use crate::shell_ui::{both, format_time, ActionResult, Page};
use leptos::prelude::*;

#[component]
pub fn AccountPage() -> impl IntoView {
    let end = ServerAction::<EndSession>::new();
    let password = ServerAction::<ChangePassword>::new();
    let start = ServerAction::<StartTotp>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let phone_start = ServerAction::<StartPhone>::new();
    let phone_confirm = ServerAction::<ConfirmPhone>::new();
    let phone_remove = ServerAction::<RemovePhone>::new();
    let me = Resource::new(|| (), |_| get_me());
    let phone = Resource::new(
        move || (phone_confirm.version().get(), phone_remove.version().get()),
        |_| super::phone_status(),
    );
    let totp = Resource::new(
        move || (start.version().get(), confirm.version().get()),
        |_| super::totp_status(),
    );
    let sessions = Resource::new(
        move || (end.version().get(), password.version().get()),
        |_| super::list_sessions(),
    );
    view! {
        <Page title="Account" me data=move || Some(both(both(sessions.get()?, totp.get()?), phone.get()?))
            render=move |me, ((sessions, totp), phone)| view! {
                <h1>"Account"</h1>
                <Welcome name=me.display_name.clone() authenticator=totp.enrolled/>
                // Setting up an authenticator asks for the password again when it was
                // last checked more than 10 minutes ago.
                <SudoForm/>
                <Authenticator status=totp start confirm/>
                <Phone status=phone start=phone_start confirm=phone_confirm remove=phone_remove/>
                <Sessions sessions end/>
                <Password action=password/>
            }.into_any()/>
    }
}

/// After accepting an invitation (`?welcome`): who they are now and what to do first.
#[component]
fn Welcome(name: String, authenticator: bool) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    // Shown once: the address drops `welcome` (a reload or a later visit shows the
    // plain page), and the keyboard starts at the welcome.
    let shown = query.with_untracked(|q| q.get("welcome").is_some());
    let card = NodeRef::<leptos::html::Section>::new();
    #[cfg(feature = "hydrate")]
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(el) = card.get() {
            let _ = el.focus();
            #[cfg(feature = "hydrate")]
            navigate(
                "/account",
                leptos_router::NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    });
    move || {
        shown.then(|| {
            view! {
                <section class="alert alert-ok welcome" role="status" aria-labelledby="welcome-title" tabindex="-1" node_ref=card>
                    <h2 id="welcome-title">{format!("Welcome to Keyward, {name}")}</h2>
                    <p>"Your account is ready and you are signed in."</p>
                    <ol>
                        {(!authenticator).then(|| view! { <li><a href="#totp-title">"Set up an authenticator app"</a>" below: sign-in then asks for its code."</li> })}
                        <li>"Make the API keys you need on the "<a href="/keys">"Keys"</a>" page: each secret is shown once."</li>
                        <li>"The "<a href="/">"overview"</a>" lists your keys, those expiring soon and what waits for you."</li>
                    </ol>
                </section>
            }
        })
    }
}

#[component]
fn Sessions(sessions: Vec<SessionInfo>, end: ServerAction<EndSession>) -> impl IntoView {
    let rows = sessions
        .into_iter()
        .map(|s| {
            // The accessible name starts with the visible word (WCAG 2.5.3, label in name).
            let label = if s.current {
                format!("Sign out this browser, {} from {}", s.browser, s.ip)
            } else {
                format!("End the session of {} from {}", s.browser, s.ip)
            };
            view! {
                <tr>
                    <td>{s.browser.clone()}{s.current.then_some(" (this browser)")}</td>
                    <td>{s.ip.clone()}</td>
                    <td>{format_time(s.signed_in_at)}</td>
                    <td>{format_time(s.last_seen_at)}</td>
                    <td>
                        <ActionForm action=end attr:class="inline-form">
                            <input type="hidden" name="id" value=s.id.clone()/>
                            <button type="submit" class="btn" aria-label=label>{if s.current { "Sign out" } else { "End" }}</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="sessions-title">
            <h2 id="sessions-title">"Active sessions"</h2>
            <ActionResult action=end ok=|_: &()| "Session ended.".to_owned()/>
            <div class="table-wrap" tabindex="0">
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Browser"</th>
                            <th scope="col">"Address"</th>
                            <th scope="col">"Signed in"</th>
                            <th scope="col">"Last seen"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn Password(action: ServerAction<ChangePassword>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="password-title">
            <h2 id="password-title">"Change password"</h2>
            <p class="muted">"Your other sessions end when the password changes."</p>
            <ActionResult action ok=|_: &()| "Password changed. Your other sessions have ended.".to_owned()/>
            <ActionForm action>
                <div class="field">
                    <label for="current_password">"Current password"</label>
                    <input id="current_password" name="current_password" type="password" autocomplete="current-password" required maxlength="1024"/>
                </div>
                <div class="field">
                    <label for="new_password">"New password (12 to 128 characters)"</label>
                    <input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="12" maxlength="128"/>
                </div>
                <div class="field">
                    <label for="confirm_password">"New password again"</label>
                    <input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required minlength="12" maxlength="128"/>
                </div>
                <button type="submit" class="btn btn-primary">"Change password"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Authenticator(
    status: TotpInfo,
    start: ServerAction<StartTotp>,
    confirm: ServerAction<ConfirmTotp>,
) -> impl IntoView {
    let codes = status.new_codes.clone().map(|codes| {
        let text = codes.join("\n") + "\n";
        // A download made in the page (nothing is fetched again: the codes exist only here).
        let href = format!(
            "data:text/plain;charset=utf-8,{}",
            form_urlencoded::byte_serialize(text.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        );
        let copied = RwSignal::new(false);
        let copy = move |_| {
            #[cfg(feature = "hydrate")]
            {
                let _ = window().navigator().clipboard().write_text(&text);
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = &text;
            copied.set(true);
        };
        view! {
            <div class="alert alert-ok" role="status">
                <p><strong>"Your recovery codes."</strong>" Each works once, in place of a code from the app. Keep them somewhere safe: they are shown only now."</p>
                <ul class="codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
                <p>
                    <button type="button" class="btn" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>" "
                    <a class="btn" href=href download="keyward-recovery-codes.txt">"Download"</a>
                </p>
            </div>
        }
    });
    let body = if status.enrolled {
        view! {
            <p>{format!("An authenticator app is set up. Recovery codes left: {}.", status.recovery_left)}</p>
            <p class="muted">"To move to a new phone, ask an administrator to reset your second factor, then set it up again."</p>
        }
        .into_any()
    } else if let Some((secret, url, svg)) = status.pending {
        view! {
            <p>"Scan this QR code with your authenticator app, or enter the key by hand, then type the 6-digit code it shows."</p>
            <div class="qr" role="img" aria-label="QR code of the authenticator key" inner_html=svg></div>
            <p>"Key: "<code class="secret" data-otpauth=url>{secret}</code></p>
            <ActionResult action=confirm ok=|_: &()| "Authenticator app set up.".to_owned()/>
            <ActionForm action=confirm attr:class="inline-form">
                <label for="totp-code">"Code from the app"</label>
                <input id="totp-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="6"/>
                <button type="submit" class="btn btn-primary">"Confirm"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <p>"Add a second step to your sign-in: a code from an authenticator app on your phone."</p>
            <ActionResult action=start ok=|_: &()| String::new()/>
            <ActionForm action=start>
                <button type="submit" class="btn btn-primary">"Set up an authenticator app"</button>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-labelledby="totp-title">
            <h2 id="totp-title">"Authenticator app"</h2>
            {codes}
            {body}
        </section>
    }
}

/// The phone number for SMS sign-in codes: add (a code is sent to it, typed back to
/// confirm), or remove.
#[component]
fn Phone(
    status: PhoneInfo,
    start: ServerAction<StartPhone>,
    confirm: ServerAction<ConfirmPhone>,
    remove: ServerAction<RemovePhone>,
) -> impl IntoView {
    let sent_to = move || start.value().get().and_then(Result::ok);
    let body = match status.number {
        Some(number) => view! {
            <p>{format!("Sign-in codes can be sent by SMS to {number}.")}</p>
            <ActionResult action=remove ok=|_: &()| "Phone number removed.".to_owned()/>
            <ActionForm action=remove>
                <button type="submit" class="btn btn-danger">"Remove this number"</button>
            </ActionForm>
        }
        .into_any(),
        None if !status.available => view! {
            <p class="muted">"Sign-in codes by SMS are not enabled on this server (an administrator turns them on in Settings > General)."</p>
        }
        .into_any(),
        None => view! {
            <p>"Receive your sign-in codes by SMS: add your mobile number, then type the code sent to it."</p>
            <ActionResult action=start ok=|n: &String| format!("A code is on its way to {n}.")/>
            <ActionForm action=start attr:class="inline-form">
                <label for="phone-number">"Mobile number (international form, such as +905551234567)"</label>
                <input id="phone-number" name="number" type="tel" autocomplete="tel" required maxlength="32"/>
                <button type="submit" class="btn">"Send a code"</button>
            </ActionForm>
            {move || sent_to().map(|n| view! {
                <ActionResult action=confirm ok=|_: &()| "Phone number confirmed.".to_owned()/>
                <ActionForm action=confirm attr:class="inline-form">
                    <input type="hidden" name="number" value=n/>
                    <label for="phone-code">"Code from the SMS"</label>
                    <input id="phone-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="6"/>
                    <button type="submit" class="btn btn-primary">"Confirm the number"</button>
                </ActionForm>
            })}
        }
        .into_any(),
    };
    view! {
        <section class="card" aria-labelledby="phone-title">
            <h2 id="phone-title">"Phone for sign-in codes"</h2>
            {body}
        </section>
    }
}
