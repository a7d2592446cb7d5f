use super::{AcceptInvite, InviteView};
use crate::shell_ui::PageTitle;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.with(|p| p.get("token").unwrap_or_default());
    let accept = ServerAction::<AcceptInvite>::new();
    let invite = Resource::new(token, super::get_invite);
    let error = move || match accept.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <PageTitle text="Invitation"/>
        <main id="main" class="auth-page" tabindex="-1">
            <section class="card auth-card" aria-labelledby="invite-title">
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || invite.get().map(|r| match r {
                        Ok(InviteView::Valid { email, display_name }) => view! {
                            <h1 id="invite-title">"Welcome to Keyward"</h1>
                            <p>"Choose a password for "<strong>{email}</strong>"."</p>
                            <Show when=move || error().is_some()>
                                <p class="alert alert-error" role="alert">{error}</p>
                            </Show>
                            <ActionForm action=accept>
                                <input type="hidden" name="token" value=token()/>
                                <div class="field">
                                    <label for="display_name">"Your name"</label>
                                    <input id="display_name" name="display_name" type="text" autocomplete="name" maxlength="100" value=display_name/>
                                </div>
                                <div class="field">
                                    <label for="password">"Password (12 to 128 characters)"</label>
                                    <input id="password" name="password" type="password" autocomplete="new-password" required minlength="12" maxlength="128"/>
                                </div>
                                <div class="field">
                                    <label for="confirm_password">"Password again"</label>
                                    <input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required minlength="12" maxlength="128"/>
                                </div>
                                <button type="submit" class="btn btn-primary">"Set password and sign in"</button>
                            </ActionForm>
                        }.into_any(),
                        Ok(other) => {
                            let (title, text) = match other {
                                InviteView::Expired => ("This invitation has expired", "Invitations work for 72 hours. Ask your administrator for a new one."),
                                InviteView::Used => ("This invitation was already used", "Sign in with your email and the password you chose."),
                                _ => ("This invitation link is not valid", "Check that you copied the whole link from the email."),
                            };
                            #[cfg(feature = "ssr")]
                            if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
                                resp.set_status(http::StatusCode::GONE);
                            }
                            view! {
                                <h1 id="invite-title">{title}</h1>
                                <p role="alert">{text}</p>
                                <p><a href="/login">"Go to sign-in"</a></p>
                            }.into_any()
                        }
                        Err(e) => view! { <h1 id="invite-title">"Something went wrong"</h1><p role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
        </main>
    }
}
