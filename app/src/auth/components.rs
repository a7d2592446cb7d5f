use super::{Login, Logout, GENERIC_SIGN_IN_ERROR};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    let query = use_query_map();
    // Without JavaScript a failed sign-in comes back as `?error=credentials`.
    let error = move || match action.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(())) => None,
        None => query.with(|q| q.get("error").map(|_| GENERIC_SIGN_IN_ERROR.to_owned())),
    };
    view! {
        <main id="main" class="auth-page">
            <section class="card auth-card" aria-labelledby="login-title">
                <h1 id="login-title">"Sign in to Keyward"</h1>
                <Show when=move || error().is_some()>
                    <p class="alert alert-error" role="alert">{error}</p>
                </Show>
                <ActionForm action>
                    <div class="field">
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required maxlength="320" autofocus/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"/>
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
