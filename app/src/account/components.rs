use super::{ChangePassword, EndSession, SessionInfo};
use crate::auth::get_me;
use crate::shell_ui::{format_time, ActionResult, LoadError, SignedIn};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AccountPage() -> impl IntoView {
    let end = ServerAction::<EndSession>::new();
    let password = ServerAction::<ChangePassword>::new();
    let me = Resource::new(|| (), |_| get_me());
    let sessions = Resource::new(
        move || (end.version().get(), password.version().get()),
        |_| super::list_sessions(),
    );
    view! {
        <Title text="Account"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let me = me.get()?;
                let sessions = sessions.get()?;
                Some(match (me, sessions) {
                    (Ok(me), Ok(sessions)) => view! {
                        <SignedIn me>
                            <h1>"Account"</h1>
                            <Sessions sessions end/>
                            <Password action=password/>
                        </SignedIn>
                    }
                    .into_any(),
                    (Err(e), _) | (_, Err(e)) => view! { <LoadError error=e/> }.into_any(),
                })
            }}
        </Suspense>
    }
}

#[component]
fn Sessions(sessions: Vec<SessionInfo>, end: ServerAction<EndSession>) -> impl IntoView {
    let rows = sessions
        .into_iter()
        .map(|s| {
            let label = format!("End the session of {} from {}", s.browser, s.ip);
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
            <div class="table-wrap">
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
