use super::{Login, Logout, GENERIC_SIGN_IN_ERROR};
use crate::shell_ui::PageTitle;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// On a sign-in page drawn in the browser (Back after signing in: the router draws it
/// without asking the server): someone signed in is sent on as a page load would be,
/// by asking the server for this address again in place of this history entry; it
/// answers with the panel, or the same-site page `next` names (one rule, the server's).
fn leave_if_signed_in() {
    leptos::task::spawn_local(async {
        if super::is_signed_in().await == Ok(true) {
            let location = window().location();
            if let Ok(here) = location.href() {
                let _ = location.replace(&here);
            }
        }
    });
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    Effect::new(move |_| leave_if_signed_in());
    let query = use_query_map();
    // Without JavaScript a failed sign-in comes back as `?error=credentials`.
    let error = move || match action.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(())) => None,
        None => query.with(|q| q.get("error").map(|_| GENERIC_SIGN_IN_ERROR.to_owned())),
    };
    // After a refusal the password field is emptied and takes the focus, ready for the
    // next try (the email stays): a wrong password is not left in the form.
    let password = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Err(_))) {
            if let Some(el) = password.get_untracked() {
                el.set_value("");
                let _ = el.focus();
            }
        }
    });
    view! {
        <PageTitle text="Sign in"/>
        <main id="main" class="auth-page" tabindex="-1">
            <section class="card auth-card" aria-labelledby="login-title">
                <h1 id="login-title">"Sign in to Keyward"</h1>
                <Show when=move || error().is_some()>
                    <p class="alert alert-error" role="alert">{error}</p>
                </Show>
                <ActionForm action>
                    // The page a signed-out visitor asked for (checked by the server).
                    <input type="hidden" name="next" value=move || query.with(|q| q.get("next").unwrap_or_default())/>
                    <div class="field">
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required maxlength="320" autofocus/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024" node_ref=password/>
                    </div>
                    <button type="submit" class="btn btn-primary" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </section>
        </main>
    }
}

#[component]
pub fn SignOutButton() -> impl IntoView {
    let action = ServerAction::<Logout>::new();
    view! {
        <ActionForm action attr:class="inline-form">
            <button type="submit" class="btn btn-link">"Sign out"</button>
        </ActionForm>
    }
}

/// `/login/verify`: the second step of sign-in.
#[component]
pub fn VerifyPage() -> impl IntoView {
    use super::{Resend, SecondFactor, Verify};
    let verify = ServerAction::<Verify>::new();
    let resend = ServerAction::<Resend>::new();
    let pending = Resource::new(move || resend.version().get(), |_| super::get_pending());
    let query = use_query_map();
    // No sign-in in progress because it finished: Back after signing in.
    Effect::new(move |_| {
        if matches!(pending.get(), Some(Ok(None))) {
            leave_if_signed_in();
        }
    });
    let error = move || match verify.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let resent = move || match resend.value().get() {
        Some(Ok(())) => Some(("alert alert-ok", "A new code is on its way.".to_owned())),
        Some(Err(e)) => Some(("alert alert-error", e.to_string())),
        None => None,
    };
    view! {
        <PageTitle text="Confirm it is you"/>
        <main id="main" class="auth-page" tabindex="-1">
            <section class="card auth-card" aria-labelledby="verify-title">
                <h1 id="verify-title">"Confirm it is you"</h1>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || pending.get().map(|p| match p {
                        Ok(Some(step)) => {
                            let method = step.method;
                            let (hint, label) = match method {
                                SecondFactor::Totp => ("Enter the 6-digit code from your authenticator app, or one of your recovery codes.".to_owned(), "Code"),
                                SecondFactor::Email => ("We sent a 6-digit code to your email address. It is valid for 10 minutes.".to_owned(), "Code from the email"),
                                SecondFactor::Sms => (format!("We sent a 6-digit code by SMS to {}. It is valid for 10 minutes.", step.phone.clone().unwrap_or_default()), "Code from the SMS"),
                            };
                            let switches = step.others.iter().map(|o| {
                                let (value, text) = match o {
                                    SecondFactor::Sms => ("sms", "Send the code by SMS instead"),
                                    _ => ("email", "Send the code by email instead"),
                                };
                                view! {
                                    <ActionForm action=resend attr:class="inline-form">
                                        <input type="hidden" name="method" value=value/>
                                        <button type="submit" class="btn btn-link">{text}</button>
                                    </ActionForm>
                                }
                            }).collect_view();
                            view! {
                                <p>{hint}</p>
                                <Show when=move || error().is_some()>
                                    <p class="alert alert-error" role="alert">{error}</p>
                                </Show>
                                <ActionForm action=verify>
                                    <input type="hidden" name="next" value=move || query.with(|q| q.get("next").unwrap_or_default())/>
                                    <div class="field">
                                        <label for="code">{label}</label>
                                        <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="64" autofocus/>
                                    </div>
                                    <button type="submit" class="btn btn-primary">"Verify"</button>
                                </ActionForm>
                                {(method != SecondFactor::Totp).then(|| view! {
                                    {move || resent().map(|(class, text)| view! { <p class=class role="status">{text}</p> })}
                                    <ActionForm action=resend attr:class="inline-form">
                                        <button type="submit" class="btn btn-link">"Send a new code"</button>
                                    </ActionForm>
                                    {switches}
                                })}
                                <p><a href="/login">"Start again"</a></p>
                            }.into_any()
                        }
                        Ok(None) => view! {
                            <p role="alert">"This sign-in has expired or was never started."</p>
                            <p><a href="/login">"Sign in"</a></p>
                        }.into_any(),
                        Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
        </main>
    }
}

/// Sudo mode: the password again before sensitive actions (shown by pages whose
/// actions need it when the last check is older than 10 minutes).
#[component]
pub fn SudoForm() -> impl IntoView {
    let action = ServerAction::<super::ConfirmPassword>::new();
    // Asked again when the last check runs out: a page left open longer than that
    // offers the form before its actions are refused for want of it.
    let ran_out = RwSignal::new(0u32);
    let left = Resource::new(
        move || (action.version().get(), ran_out.get()),
        |_| super::sudo_secs_left(),
    );
    Effect::new(move |_| {
        if let Some(Ok(secs)) = left.get() {
            if secs > 0 {
                set_timeout(
                    move || ran_out.update(|n| *n += 1),
                    std::time::Duration::from_secs(secs.unsigned_abs()),
                );
            }
        }
    });
    let needed = move || left.get().map(|l| l.map(|secs| secs == 0));
    let form = move || {
        view! {
            <section class="card sudo" aria-labelledby="sudo-title">
                <h2 id="sudo-title">"Confirm your password"</h2>
                <p class="muted">"Changes on this page need your password when it was last checked more than 10 minutes ago."</p>
                {move || match action.value().get() {
                    Some(Ok(())) => Some(view! { <p class="alert alert-ok" role="status">"Confirmed for the next 10 minutes."</p> }.into_any()),
                    Some(Err(e)) => Some(view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any()),
                    None => None,
                }}
                <ActionForm action attr:class="inline-form">
                    <label for="sudo-confirm" class="visually-hidden">"Your password"</label>
                    <input id="sudo-confirm" name="password" type="password" autocomplete="current-password" required maxlength="1024" placeholder="Your password"/>
                    <button type="submit" class="btn">"Confirm"</button>
                </ActionForm>
            </section>
        }
    };
    view! {
        <Suspense fallback=|| ()>
            {move || needed().map(|n| match n {
                Ok(true) => Some(form()),
                _ => None,
            })}
        </Suspense>
    }
}
