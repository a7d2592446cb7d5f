//! The overview page: who is signed in and this session's limits. (Keys, approvals and
//! alerts join it as those features land.)

use crate::auth::{get_me, Me};
use crate::shell_ui::{format_time, LoadError, SignedIn};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    view! {
        <Title text="Overview"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || me.get().map(|r| match r {
                Ok(me) => view! { <SignedIn me=me.clone()><Overview me/></SignedIn> }.into_any(),
                Err(e) => view! { <LoadError error=e/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn Overview(me: Me) -> impl IntoView {
    // Becomes true only once the wasm bundle has hydrated the page: the button below is
    // disabled in the server's HTML and comes alive in the browser.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let open = RwSignal::new(false);
    let signed_in = format_time(me.signed_in_at);
    let ends = format_time(me.session_ends_at);
    view! {
        <h1>"Overview"</h1>
        <section class="card" aria-labelledby="welcome">
            <h2 id="welcome">{format!("Welcome, {}", me.display_name)}</h2>
            <dl class="facts">
                <dt>"Email"</dt><dd>{me.email.clone()}</dd>
                <dt>"Role"</dt><dd>{me.role.clone()}</dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="session-title">
            <h2 id="session-title">"This session"</h2>
            <button
                type="button"
                class="btn"
                aria-expanded=move || open.get().to_string()
                aria-controls="session-details"
                disabled=move || !hydrated.get()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                {move || if open.get() { "Hide session details" } else { "Show session details" }}
            </button>
            <dl id="session-details" class="facts" hidden=move || !open.get()>
                <dt>"Signed in"</dt><dd>{signed_in}</dd>
                <dt>"Ends at the latest"</dt><dd>{ends}</dd>
            </dl>
        </section>
    }
}
