//! The overview page: who is signed in and this session's limits. (Keys, approvals and
//! alerts join it as those features land.)

use crate::auth::{get_me, Me};
use crate::shell_ui::{LoadError, SignedIn};
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

fn format_time(unix: i64) -> String {
    // Rendered identically on server and client (UTC), so hydration matches.
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// "owner" → "Owner".
fn role_label(role: &str) -> String {
    let mut c = role.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
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
                <dt>"Role"</dt><dd>{role_label(&me.role)}</dd>
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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::format_time(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
