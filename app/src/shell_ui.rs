//! The signed-in page frame: header with the user and sign-out, navigation, main landmark.

use crate::auth::{Me, SignOutButton};
use leptos::prelude::*;
use leptos_meta::Title;

/// The sections that exist. Navigation shows only these.
const SECTIONS: &[(&str, &str)] = &[("/", "Overview")];

#[component]
pub fn SignedIn(me: Me, children: Children) -> impl IntoView {
    let path = leptos_router::hooks::use_location().pathname;
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Keyward"</a>
            <nav aria-label="Main">
                <ul>
                    {SECTIONS
                        .iter()
                        .map(|(href, label)| {
                            let href = *href;
                            let current = move || if path.get() == href { Some("page") } else { None };
                            view! { <li><a href=href aria-current=current>{*label}</a></li> }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <div class="user">
                <span class="user-name" title=me.email.clone()>{me.display_name.clone()}</span>
                <SignOutButton/>
            </div>
        </header>
        <main id="main" class="content">{children()}</main>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main id="main" class="auth-page">
            <section class="card">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address."</p>
                <p><a href="/">"Go to the overview"</a></p>
            </section>
        </main>
    }
}

/// Shown when a data load fails: signed out (with a link to sign in) or another error.
#[component]
pub fn LoadError(error: crate::error::AppError) -> impl IntoView {
    let signed_out = matches!(error, crate::error::AppError::Unauthenticated);
    view! {
        <main id="main" class="auth-page">
            <section class="card">
                {if signed_out {
                    view! { <h1>"You are signed out"</h1> <p><a href="/login">"Sign in"</a></p> }.into_any()
                } else {
                    view! { <h1>"Something went wrong"</h1> <p role="alert">{error.to_string()}</p> }.into_any()
                }}
            </section>
        </main>
    }
}
