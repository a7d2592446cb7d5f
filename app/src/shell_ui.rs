//! The signed-in page frame: header with the user and sign-out, navigation, main landmark.

use crate::auth::{Me, SignOutButton};
use crate::error::AppError;
use crate::roles::Permission;
use leptos::prelude::*;
use leptos_meta::Title;

/// The sections that exist, with the permissions that open each (any one of them;
/// none: every signed-in user). Navigation shows only the ones the user's role opens.
const SECTIONS: &[(&str, &str, &[Permission])] = &[
    ("/", "Overview", &[]),
    ("/keys", "API keys", &[Permission::ApiKeyView]),
    ("/apps", "Apps", &[Permission::AppManage]),
    ("/channels", "Channels", &[Permission::ApiKeyView]),
    ("/messages", "Messages", &[Permission::MessageCreate]),
    (
        "/approvals",
        "Approvals",
        &[Permission::MessageApprove, Permission::ApiKeyApprove],
    ),
    ("/api", "REST API", &[]),
    ("/users", "Users", &[Permission::UserManage]),
    ("/roles", "Roles", &[Permission::RoleManage]),
    ("/audit", "Audit log", &[Permission::AuditView]),
    ("/settings", "Settings", &[Permission::SettingsManage]),
];

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
                        .filter(|(_, _, any)| any.is_empty() || any.iter().any(|p| me.permissions.contains(p)))
                        .map(|(href, label, _)| {
                            let href = *href;
                            let current = move || if path.get() == href { Some("page") } else { None };
                            view! { <li><a href=href aria-current=current>{*label}</a></li> }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <div class="user">
                <a class="user-name" href="/account" title=me.email.clone()>{me.display_name.clone()}</a>
                <SignOutButton/>
            </div>
        </header>
        <main id="main" class="content" tabindex="-1">{children()}</main>
    }
}

/// The document's title: the page's name, then "Keyward". Each page writes it whole:
/// a formatter in the app's frame hydrates before the page's own code (loaded lazily,
/// see `pages`) and emptied the title until that came.
#[component]
pub fn PageTitle(text: &'static str) -> impl IntoView {
    view! { <Title text=format!("{text} · Keyward")/> }
}

/// The frame every signed-in page shares: its title, "Loading…" while the data first
/// comes, the signed-in shell around what `render` makes of the data, or the error that
/// stopped it (with its HTTP status). `data` reads the page's resources. A reload after
/// an action keeps the page on screen until the new data is there (a `Transition`): the
/// page neither blanks nor jumps to the top.
#[component]
pub fn Page<T, D, R>(
    title: &'static str,
    me: Resource<Result<Me, AppError>>,
    data: D,
    render: R,
) -> impl IntoView
where
    T: 'static,
    D: Fn() -> Option<Result<T, AppError>> + Send + Sync + 'static,
    R: Fn(Me, T) -> AnyView + Send + Sync + 'static,
{
    view! {
        <PageTitle text=title/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let me = me.get()?;
                let data = data()?;
                Some(match (me, data) {
                    (Ok(me), Ok(data)) => {
                        let body = render(me.clone(), data);
                        view! { <SignedIn me>{body}</SignedIn> }.into_any()
                    }
                    // Signed in but not allowed, not found, or a bad address: the answer
                    // inside the shell, with the navigation to go elsewhere.
                    (Ok(me), Err(e)) if !matches!(e, AppError::Unauthenticated) => {
                        view! { <SignedIn me><LoadError error=e in_shell=true/></SignedIn> }
                            .into_any()
                    }
                    (Err(e), _) | (_, Err(e)) => view! { <LoadError error=e/> }.into_any(),
                })
            }}
        </Transition>
    }
}

/// Two loads as one: both values, or the first error.
pub fn both<A, B>(a: Result<A, AppError>, b: Result<B, AppError>) -> Result<(A, B), AppError> {
    Ok((a?, b?))
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <PageTitle text="Not found"/>
        <main id="main" class="auth-page" tabindex="-1">
            <section class="card">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address."</p>
                <p><a href="/">"Go to the overview"</a></p>
            </section>
        </main>
    }
}

/// Shown when a data load fails: signed out (with a link to sign in), not allowed (403),
/// or another error.
#[component]
pub fn LoadError(
    error: AppError,
    /// Inside the signed-in shell (which has the page's `main`), not a page of its own.
    #[prop(optional)]
    in_shell: bool,
) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        crate::error::set_status(&resp, &error);
    }
    let signed_out = matches!(error, AppError::Unauthenticated);
    if matches!(error, AppError::Forbidden | AppError::Refused(_)) {
        let why = match &error {
            AppError::Refused(m) => m.clone(),
            _ => "Your role does not allow this page.".to_owned(),
        };
        let card = view! {
            <section class="card">
                <h1>"Not allowed"</h1>
                <p role="alert">{why}</p>
                <p><a href="/">"Go to the overview"</a></p>
            </section>
        };
        return if in_shell {
            card.into_any()
        } else {
            view! { <main id="main" class="auth-page" tabindex="-1">{card}</main> }.into_any()
        };
    }
    let card = view! {
            <section class="card">
                {if signed_out {
                    view! { <h1>"You are signed out"</h1> <p><a href="/login">"Sign in"</a></p> }.into_any()
                } else if matches!(error, AppError::Validation { .. }) {
                    // E.g. a hand-edited filter in the address: say what is wrong with it.
                    view! {
                        <h1>"This address asks for something invalid"</h1>
                        <p role="alert">{error.to_string()}</p>
                        <p><a href="/">"Go to the overview"</a></p>
                    }
                    .into_any()
                } else {
                    view! { <h1>"Something went wrong"</h1> <p role="alert">{error.to_string()}</p> }.into_any()
                }}
            </section>
    };
    if in_shell {
        card.into_any()
    } else {
        view! { <main id="main" class="auth-page" tabindex="-1">{card}</main> }.into_any()
    }
}

/// The outcome of a form's last submission: the error (also after a plain form post
/// without JavaScript, which comes back with it in the URL) or a confirmation.
#[component]
pub fn ActionResult<S, F>(
    action: ServerAction<S>,
    ok: F,
    /// For forms sharing one action: whether its last submission was this form's
    /// (`sent_here`); another form's outcome is not shown here.
    #[prop(optional, into)]
    here: Option<Signal<Option<bool>>>,
) -> impl IntoView
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
    F: Fn(&S::Output) -> String + Send + Sync + 'static,
{
    let value = action.value();
    let node = rescue_focus();
    move || {
        if here.is_some_and(|h| h.get() == Some(false)) {
            return None;
        }
        value.with(|v| match v {
            Some(Ok(out)) => Some(
                view! { <p class="alert alert-ok" role="status" tabindex="-1" node_ref=node>{ok(out)}</p> }
                    .into_any(),
            ),
            Some(Err(e)) => Some(
                view! { <p class="alert alert-error" role="alert" tabindex="-1" node_ref=node>{e.to_string()}</p> }
                    .into_any(),
            ),
            None => None,
        })
    }
}

/// A reference for an action's answer that takes the focus when it appears, if the
/// focus was lost on the way (the focused button was disabled while the action ran, or
/// the form it was in was drawn again): the keyboard and a screen reader go on from the
/// answer, never from the top of the page.
pub fn rescue_focus() -> NodeRef<leptos::html::P> {
    let node = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            request_animation_frame(move || {
                let lost = document()
                    .active_element()
                    .is_none_or(|a| a.tag_name().eq_ignore_ascii_case("body"));
                if lost {
                    let _ = el.focus();
                }
            });
        }
    });
    node
}

/// A time as shown in the panel: in the viewer's time zone, naming its offset
/// (`2030-01-16 00:00 UTC+3`; UTC while the zone is unknown: see `time_zone`).
pub fn format_time(unix: i64) -> String {
    format_time_at(unix, crate::time_zone::offset_at(unix))
}

/// `unix` as the wall-clock time `offset` seconds east of UTC, with that offset named.
fn format_time_at(unix: i64, offset: i32) -> String {
    let local = unix.saturating_add(i64::from(offset));
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} {}",
        secs / 3600,
        (secs % 3600) / 60,
        crate::time_zone::offset_label(offset)
    )
}

/// How far `t` is from `now` in words: "in 5 days", "3 hours ago", "in 2 minutes".
/// (`now` is the server's time of the page's data, so server and browser agree.)
pub fn relative_time(now: i64, t: i64) -> String {
    // Saturating: a stored time far outside any real range (a damaged row) must not
    // overflow and abort the page being drawn.
    let d = t.saturating_sub(now);
    let a = d.unsigned_abs();
    let (n, unit) = match a {
        0..60 => {
            return if d > 0 {
                "in under a minute".into()
            } else {
                "just now".into()
            }
        }
        // Rounded to the nearest unit: a 30-day key drawn a second after it was made
        // expires "in 30 days", not 29.
        60..3_600 => (a.saturating_add(30) / 60, "minute"),
        3_600..86_400 => (a.saturating_add(1_800) / 3_600, "hour"),
        86_400..5_184_000 => (a.saturating_add(43_200) / 86_400, "day"),
        5_184_000..63_072_000 => (a.saturating_add(1_296_000) / 2_592_000, "month"),
        _ => (a.saturating_add(15_768_000) / 31_536_000, "year"),
    };
    let s = if n == 1 { "" } else { "s" };
    if d >= 0 {
        format!("in {n} {unit}{s}")
    } else {
        format!("{n} {unit}{s} ago")
    }
}

/// A time shown relative to now, with the exact time on hover and for screen readers.
/// A deadline (an expiry) names what it is once past (`past_prefix`: "expired 2 days
/// ago"); without one, the time is of something that happened (made, used, revoked),
/// never said to be ahead: the page's `now` may be read a moment before the action it
/// shows ("just now", not "in under a minute").
#[component]
pub fn When(now: i64, at: i64, #[prop(optional)] past_prefix: &'static str) -> impl IntoView {
    let exact = format_time(at);
    let words = if past_prefix.is_empty() {
        relative_time(now.max(at), at)
    } else if at < now {
        format!("{past_prefix} {}", relative_time(now, at))
    } else {
        relative_time(now, at)
    };
    view! {
        <time datetime=iso_time(at) title=exact.clone()>{words}</time>
        <span class="visually-hidden">{format!(" ({exact})")}</span>
    }
}

/// A time as HTML's `datetime` attribute takes it (UTC).
fn iso_time(unix: i64) -> String {
    let s = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(unix),
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// A day as `YYYY-MM-DD` (UTC), as a date input takes it.
pub fn format_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The viewer's own date (in their time zone, see `time_zone`) at the instant `unix`,
/// as a date input takes it.
pub fn local_date(unix: i64) -> String {
    format_date(unix.saturating_add(i64::from(crate::time_zone::offset_at(unix))))
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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::format_time(1_795_000_000), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn relative_times_round_to_the_nearest_unit() {
        let day = 86_400;
        assert_eq!(super::relative_time(0, 30 * day - 5), "in 30 days");
        assert_eq!(super::relative_time(0, 6 * day + day / 2 + 1), "in 7 days");
        assert_eq!(super::relative_time(0, 6 * day + 3600), "in 6 days");
        assert_eq!(super::relative_time(10 * day, 8 * day - 60), "2 days ago");
        assert_eq!(super::relative_time(0, 89), "in 1 minute");
        assert_eq!(super::relative_time(0, 90), "in 2 minutes");
        assert_eq!(super::relative_time(0, 30), "in under a minute");
        assert_eq!(super::relative_time(30, 30), "just now");
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        for t in [i64::MIN, i64::MAX, 0] {
            for now in [i64::MIN, i64::MAX, 1_795_000_000] {
                let _ = super::relative_time(now, t);
            }
            let _ = super::format_time_at(t, 14 * 3600);
            let _ = super::format_time_at(t, -12 * 3600);
        }
    }

    #[test]
    fn formats_the_wall_clock_of_an_offset() {
        // The day changes with the offset, both ways.
        assert_eq!(
            super::format_time_at(1_894_741_200, 3 * 3600),
            "2030-01-16 00:00 UTC+3"
        );
        assert_eq!(
            super::format_time_at(0, -5 * 3600),
            "1969-12-31 19:00 UTC-5"
        );
        assert_eq!(
            super::format_time_at(0, 5 * 3600 + 1800),
            "1970-01-01 05:30 UTC+5:30"
        );
    }
}

/// A table with its column headers that scrolls sideways on a narrow screen, or
/// (`cards`) becomes a list of cards there, each cell labelled by its `data-label`.
#[component]
pub fn DataTable(
    headers: &'static [&'static str],
    #[prop(optional)] cards: bool,
    children: Children,
) -> impl IntoView {
    let headers = headers
        .iter()
        .map(|h| match *h {
            "" => view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> }
                .into_any(),
            h => view! { <th scope="col">{h}</th> }.into_any(),
        })
        .collect_view();
    view! {
        <div class="table-wrap" tabindex="0">
            <table class:cards-table=cards>
                <thead><tr>{headers}</tr></thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// The text inside a `<textarea>`. Leptos writes a textarea's children into the
/// server's HTML without escaping them (as for `<script>`), so stored text starting
/// with `</textarea>` would become markup: the server escapes it here (the browser
/// decodes it back to the same text). In the browser the text becomes a text node,
/// which needs no escaping.
pub(crate) fn textarea_text(text: &str) -> String {
    #[cfg(feature = "ssr")]
    {
        html_escape::encode_text(text).into_owned()
    }
    #[cfg(not(feature = "ssr"))]
    {
        text.to_owned()
    }
}

/// The token a create form carries so that the server acts on its submission once (a
/// double click or a resent post makes one key, one message): a new one each time the
/// form's action completes. Made at the page's top level like its other resources.
pub fn form_token<S>(action: ServerAction<S>) -> Resource<Result<String, AppError>>
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Resource::new(
        move || action.version().get(),
        |_| crate::auth::new_form_token(),
    )
}

/// The hidden field holding a form's token (see `form_token`).
#[component]
pub fn FormToken(token: Resource<Result<String, AppError>>) -> impl IntoView {
    move || {
        token
            .get()
            .and_then(Result::ok)
            .map(|t| view! { <input type="hidden" name="form_token" value=t/> })
    }
}

/// A form's node, cleared after its action succeeded (after an error what the user
/// typed stays, to be corrected).
pub fn reset_on_success<S>(action: ServerAction<S>) -> NodeRef<leptos::html::Form>
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let form = NodeRef::<leptos::html::Form>::new();
    // On a completion seen by this form (not on its first run: a page drawn again after
    // another action must not clear what is being typed).
    Effect::new(move |seen: Option<usize>| {
        let version = action.version().get();
        let succeeded = action.value().with_untracked(|v| matches!(v, Some(Ok(_))));
        if seen.is_some_and(|s| s != version) && succeeded {
            if let Some(f) = form.get_untracked() {
                f.reset();
            }
        }
        version
    });
    form
}

/// The attributes of a button that opens (`"show-modal"`) or closes (`"close"`) the
/// `<dialog>` with id `dialog`, by the browser's own invoker commands: no script needed
/// (it works without JavaScript too), Escape closes, focus stays inside the modal and
/// returns to the button that opened it.
pub fn invokes(
    dialog: String,
    command: &'static str,
) -> impl leptos::tachys::html::attribute::Attribute {
    use leptos::tachys::html::attribute::custom::custom_attribute;
    (
        custom_attribute("commandfor", dialog),
        custom_attribute("command", command),
    )
}

/// A modal dialog with a heading, opened by a button of its own (see `invokes`); its
/// content is typically a form whose Cancel button closes it.
#[component]
pub fn Dialog(
    /// The element id (unique on the page).
    id: String,
    /// The opening button's text and, if different, its accessible name.
    opener: &'static str,
    #[prop(optional)] opener_label: Option<String>,
    #[prop(optional)] opener_class: Option<&'static str>,
    title: String,
    children: Children,
) -> impl IntoView {
    let title_id = format!("{id}-title");
    let labelled_by = title_id.clone();
    let class = opener_class.unwrap_or("btn");
    let opens = invokes(id.clone(), "show-modal");
    view! {
        <button type="button" class=class aria-label=opener_label aria-haspopup="dialog" {..opens}>{opener}</button>
        <dialog id=id class="dialog" aria-labelledby=labelled_by>
            <h2 id=title_id>{title}</h2>
            {children()}
        </dialog>
    }
}

/// The Cancel button of a dialog's form.
#[component]
pub fn CancelButton(dialog: String) -> impl IntoView {
    view! { <button type="button" class="btn" {..invokes(dialog, "close")}>"Cancel"</button> }
}

/// Closes the open dialog when `action` succeeds (after an error it stays open, showing
/// the error beside the form). One modal is open at a time.
pub fn close_on_success<S>(action: ServerAction<S>)
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Effect::new(move |seen: Option<usize>| {
        let version = action.version().get();
        let succeeded = action.value().with_untracked(|v| matches!(v, Some(Ok(_))));
        if seen.is_some_and(|s| s != version) && succeeded {
            #[cfg(feature = "hydrate")]
            {
                use leptos::wasm_bindgen::JsCast as _;
                if let Some(d) = document()
                    .query_selector("dialog[open]")
                    .ok()
                    .flatten()
                    .and_then(|e| e.dyn_into::<web_sys::HtmlDialogElement>().ok())
                {
                    d.close();
                }
            }
        }
        version
    });
}

/// Whether the last submission of `action` was sent by this row's form (`is_this` on
/// its arguments): a table holds one form of the action per row, and its error belongs
/// beside that one. `None` until the browser sends one (a page drawn by the server shows
/// the error in every form of the action; the server opens only the one that sent it).
pub fn sent_here<S>(
    action: ServerAction<S>,
    is_this: impl Fn(&S) -> bool + Send + Sync + 'static,
) -> RwSignal<Option<bool>>
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let here = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(yes) = action.input().with(|i| i.as_ref().map(&is_this)) {
            here.set(Some(yes));
        }
    });
    here
}

/// True when the last submission of `action` was refused for `field` (one of the
/// `fields` a form's input stands for: the server may name a field by another name).
pub fn refused_for<S>(action: ServerAction<S>, fields: &'static [&'static str]) -> Option<String>
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    action.value().with(|v| match v {
        Some(Err(AppError::Validation { field, message })) if fields.contains(&field.as_str()) => {
            Some(message.clone())
        }
        _ => None,
    })
}

/// [`refused_for`] for one field named at run time (a component's `id`).
pub fn refused_for_field<S>(action: ServerAction<S>, field: &str) -> Option<String>
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    action.value().with(|v| match v {
        Some(Err(AppError::Validation { field: f, message })) if f == field => {
            Some(message.clone())
        }
        _ => None,
    })
}

/// After `action` is refused for a field, the keyboard moves to the field marked
/// invalid (`aria-invalid`, set beside its error), so the user fixes it where it is
/// instead of hunting for it from the button they pressed.
pub fn focus_refused_field<S>(action: ServerAction<S>)
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        let refused = action
            .value()
            .with(|v| matches!(v, Some(Err(AppError::Validation { .. }))));
        if refused {
            request_animation_frame(move || {
                #[cfg(feature = "hydrate")]
                {
                    use leptos::wasm_bindgen::JsCast as _;
                    if let Some(el) = document()
                        .query_selector("[aria-invalid=\"true\"]")
                        .ok()
                        .flatten()
                        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                    {
                        let _ = el.focus();
                    }
                }
            });
        }
    });
}

/// `aria-invalid` for an input standing for `fields` of `action`'s form.
pub fn invalid<S>(
    action: ServerAction<S>,
    fields: &'static [&'static str],
) -> impl Fn() -> Option<&'static str> + Send + Sync + Copy + 'static
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    move || refused_for(action, fields).map(|_| "true")
}

/// The server's message about `fields`, beside the input (whose `aria-describedby` names
/// `id`), after a refused submission; what the user typed stays in the form.
#[component]
pub fn FieldError<S>(
    action: ServerAction<S>,
    fields: &'static [&'static str],
    id: &'static str,
) -> impl IntoView
where
    S: server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    move || {
        refused_for(action, fields)
            .map(|message| view! { <p class="field-error" id=id>{message}</p> })
    }
}

/// A numeric id in a page's path, written the one way it is linked (`/apps/7`, never
/// `/apps/07` or `/apps/+7`): every other spelling is "not found", so one resource has
/// one address.
pub fn path_id(s: &str) -> Option<i64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    canonical.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod path_id_tests {
    #[test]
    fn one_spelling_per_id() {
        assert_eq!(super::path_id("7"), Some(7));
        assert_eq!(super::path_id("120"), Some(120));
        for s in [
            "",
            "0",
            "07",
            "+7",
            "-7",
            "7 ",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(super::path_id(s), None, "{s:?}");
        }
    }
}

/// A button that copies `text` to the clipboard and says so ("Copied", announced). Its
/// accessible name says what it copies (`what`, e.g. "key ID key_…"). Disabled until the
/// page has hydrated: without JavaScript there is nothing to copy with (the text beside
/// it can still be selected).
#[component]
pub fn CopyButton(
    text: String,
    what: String,
    /// The visible label (default "Copy").
    #[prop(optional, into)]
    label: Option<String>,
    #[prop(optional, into)] class: Option<String>,
) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let copied = RwSignal::new(false);
    let label = label.unwrap_or_else(|| "Copy".to_owned());
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().navigator().clipboard().write_text(&text);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
        copied.set(true);
        set_timeout(move || copied.set(false), std::time::Duration::from_secs(2));
    };
    view! {
        <button
            type="button"
            class=class.unwrap_or_else(|| "btn btn-small".to_owned())
            aria-label=format!("Copy {what}")
            disabled=move || !hydrated.get()
            on:click=copy
        >
            <span aria-live="polite">{move || if copied.get() { "Copied".to_owned() } else { label.clone() }}</span>
        </button>
    }
}

/// Which rows of a table have their actions open, by key id (see [`RowActions`]): the
/// row the address names (`manage`, the link a browser without JavaScript follows), and
/// any the user opens. The table is drawn again after every action and rows move (a
/// roll puts the new key on top), so this state follows the key, not the position.
pub fn open_rows_from_query() -> RwSignal<std::collections::BTreeSet<String>> {
    let query = leptos_router::hooks::use_query_map();
    let open_rows = RwSignal::new(
        query
            .with_untracked(|q| q.get("manage"))
            .into_iter()
            .collect::<std::collections::BTreeSet<String>>(),
    );
    // (Also when that link is followed in the browser by a client-side navigation.)
    Effect::new(move |_| {
        if let Some(id) = query.with(|q| q.get("manage")) {
            if !open_rows.with_untracked(|o| o.contains(&id)) {
                open_rows.update(|o| {
                    o.insert(id);
                });
            }
        }
    });
    open_rows
}

/// A table row's actions behind "Manage" (a `<details>`, so a row stays one line high;
/// works without JavaScript). The forms (`body`) exist only while the row is open: a page
/// of closed rows holds no form fields, which a browser otherwise examines one by one as
/// the page loads (120 fields in 24 rows held the keys page's first load back by about
/// 140 ms). With JavaScript, opening draws them; without, the open row shows a link
/// (`href`: this page with `manage=<id>#row-<id>`) to the page with the row open. (Each
/// row has its own memo: opening another row draws nothing again here, so what was
/// typed in this one stays.)
#[component]
pub fn RowActions(
    /// The row's id (a key id; `number-<id>` for a sender number), which `manage=` names.
    id: String,
    /// What the row is called in the controls' names, when not its id (a sender number).
    #[prop(optional)]
    label: Option<String>,
    /// What the actions are, for the link ("Edit, roll or revoke").
    offer: String,
    /// This page with the row open (see above).
    href: String,
    open_rows: RwSignal<std::collections::BTreeSet<String>>,
    /// The row's forms, drawn inside the `<details>`; none when a [`RowPanel`] under the
    /// row draws them (a wide table: the forms then never widen it).
    #[prop(optional, into)]
    body: Option<ViewFn>,
) -> impl IntoView {
    let name = label.unwrap_or_else(|| id.clone());
    let summary_label = format!("Manage {name}");
    let link_label = format!("{offer} {name}");
    let link_text = format!("{offer}…");
    let id_open = id.clone();
    let is_open = Memo::new(move |_| open_rows.with(|o| o.contains(&id_open)));
    let body_ref = NodeRef::<leptos::html::Div>::new();
    let id_link = id.clone();
    // Followed once the page runs (a row opened before it did): the row opens here, and
    // focus moves from the link, which goes away, to the row's first field. (A click
    // meant for a new tab or window goes there, as links do.)
    let open_here = move |ev: leptos::ev::MouseEvent| {
        if ev.button() != 0 || ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key() {
            return;
        }
        ev.prevent_default();
        open_rows.update(|o| {
            o.insert(id_link.clone());
        });
        #[cfg(feature = "hydrate")]
        let panel = format!("panel-{id_link}");
        request_animation_frame(move || {
            #[cfg(feature = "hydrate")]
            if let Some(first) = document()
                .get_element_by_id(&panel)
                .or_else(|| body_ref.get().map(web_sys::Element::from))
                .and_then(|b| {
                    b.query_selector("input:not([type=hidden]), select, textarea, button")
                        .ok()
                        .flatten()
                })
            {
                use leptos::wasm_bindgen::JsCast as _;
                if let Ok(first) = first.dyn_into::<web_sys::HtmlElement>() {
                    let _ = first.focus();
                }
            }
        });
    };
    let drawn = move || {
        if is_open.get() {
            body.as_ref().map_or_else(|| ().into_any(), |b| b.run())
        } else {
            view! { <a href=href.clone() aria-label=link_label.clone() on:click=open_here.clone()>{link_text.clone()}</a> }
                .into_any()
        }
    };
    #[cfg(feature = "hydrate")]
    let navigate = leptos_router::hooks::use_navigate();
    let id_toggle = id;
    view! {
        <details class="row-actions" open=move || is_open.get() on:toggle=move |_ev| {
            #[cfg(feature = "hydrate")]
            {
                let open = event_target::<web_sys::HtmlDetailsElement>(&_ev).open();
                open_rows.update(|o| {
                    if open { o.insert(id_toggle.clone()); } else { o.remove(&id_toggle); }
                });
                if !open {
                    forget_managed_row(&navigate, &id_toggle);
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = &id_toggle;
        }>
            <summary aria-label=summary_label>"Manage"</summary>
            <div class="row-actions-body" node_ref=body_ref>{drawn}</div>
        </details>
    }
}

/// The forms of a table row whose "Manage" ([`RowActions`] without a body) is open, in a
/// row of their own under it that spans the table: an open row never widens the table,
/// however wide its forms. Drawn only while open, as [`RowActions`]' body is.
#[component]
pub fn RowPanel(
    /// The row's id, as given to its [`RowActions`].
    id: String,
    /// What the row is called (its forms' group is named "Manage …").
    #[prop(optional)]
    label: Option<String>,
    /// How many columns the table has.
    columns: usize,
    open_rows: RwSignal<std::collections::BTreeSet<String>>,
    #[prop(into)] body: ViewFn,
) -> impl IntoView {
    let name = label.unwrap_or_else(|| id.clone());
    let id_open = id.clone();
    let is_open = Memo::new(move |_| open_rows.with(|o| o.contains(&id_open)));
    view! {
        <tr class="row-panel" id=format!("panel-{id}") hidden=move || !is_open.get()>
            <td colspan=columns.to_string()>
                <div class="row-actions-body" role="group" aria-label=format!("Manage {name}")>
                    {move || is_open.get().then(|| body.run())}
                </div>
            </td>
        </tr>
    }
}

/// A row the address opened (`manage`, see [`RowActions`]) that is closed: the address no
/// longer names it (replaced, not a new history entry), so a reload or a copied link
/// does not open it again.
#[cfg(feature = "hydrate")]
fn forget_managed_row(navigate: &impl Fn(&str, leptos_router::NavigateOptions), key_id: &str) {
    let location = window().location();
    let Ok(search) = location.search() else {
        return;
    };
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(search.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect();
    if !pairs.iter().any(|(k, v)| k == "manage" && v == key_id) {
        return;
    }
    let mut qs = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "manage") {
        qs.append_pair(k, v);
    }
    let path = location.pathname().unwrap_or_else(|_| "/".to_owned());
    let address = match qs.finish() {
        q if q.is_empty() => path,
        q => format!("{path}?{q}"),
    };
    navigate(
        &address,
        leptos_router::NavigateOptions {
            replace: true,
            scroll: false,
            ..Default::default()
        },
    );
}

/// `page` (a path with its query) with one row's actions open and scrolled to (see
/// [`RowActions`]).
pub fn with_row_open(page: &str, key_id: &str) -> String {
    let sep = if page.contains('?') { '&' } else { '?' };
    let id: String = form_urlencoded::byte_serialize(key_id.as_bytes()).collect();
    format!("{page}{sep}manage={id}#row-{id}")
}

/// "Edit, roll or revoke" from the actions a viewer may take on a row, in order.
pub fn offer(actions: &[(bool, &str)]) -> String {
    let offered: Vec<&str> = actions
        .iter()
        .filter_map(|(may, what)| may.then_some(*what))
        .collect();
    let text = match offered.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    };
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A key's status in a table: "active", and for a key replaced by a roll or a
/// regeneration (working until its grace period ends) the key that replaces it, on a line
/// of its own (read as "active, replaced by key_…").
pub fn key_status(status: &str, replaced_by: Option<&str>) -> AnyView {
    match replaced_by {
        Some(new) if status == "active" => view! {
            "active"<span class="visually-hidden">","</span>
            <span class="replaced-by">{format!(" replaced by {new}")}</span>
        }
        .into_any(),
        _ => status.to_owned().into_any(),
    }
}
