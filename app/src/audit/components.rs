use super::{AuditEntry, AuditFilter, AuditView, ChainState};
use crate::auth::get_me;
use crate::error::AppError;
use crate::shell_ui::{Page, When};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The filters of the page's query string.
fn filter_of(q: &leptos_router::params::ParamsMap) -> AuditFilter {
    let arg = |k: &str| q.get(k).unwrap_or_default();
    AuditFilter {
        actor: arg("actor"),
        action: arg("action"),
        target: arg("target"),
        outcome: arg("outcome"),
        ip: arg("ip"),
        from: arg("from"),
        to: arg("to"),
        before: arg("before"),
    }
}

/// `path?query` of the filters in `f` plus `extra`.
fn href(path: &str, f: &AuditFilter, extra: &[(&str, &str)]) -> String {
    let mut qs = form_urlencoded::Serializer::new(String::new());
    for (k, v) in f.query().into_iter().chain(extra.iter().copied()) {
        qs.append_pair(k, v);
    }
    match qs.finish() {
        qs if qs.is_empty() => path.to_owned(),
        qs => format!("{path}?{qs}"),
    }
}

/// `/audit`: the audit log, newest first, filtered in the query string (a plain GET
/// form, so filters work without JavaScript and survive a reload), with the CSV export
/// of the same filters and the chain's state on request.
#[component]
pub fn AuditPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    let query = use_query_map();
    let data = Resource::new(
        move || query.with(|q| (filter_of(q), q.get("verify").unwrap_or_default())),
        |(f, verify)| super::list_audit(f, verify),
    );
    // A refused filter is shown beside its field, with the form still there to fix it.
    let data = move || {
        data.get().map(|r| match r {
            Err(e @ AppError::Validation { .. }) => Ok(Err(e)),
            other => other.map(Ok),
        })
    };
    let render = move |_me, d: Result<AuditView, AppError>| {
        // A refused filter is still a 400 to whoever reads the status.
        #[cfg(feature = "ssr")]
        if let (Err(e), Some(opts)) = (&d, use_context::<leptos_axum::ResponseOptions>()) {
            crate::error::set_status(&opts, e);
        }
        let f = query.with_untracked(filter_of);
        view! {
            <h1>"Audit log"</h1>
            <Chain f=f.clone() state=d.as_ref().ok().and_then(|v| v.chain.clone())/>
            <Events f d/>
        }
        .into_any()
    };
    view! { <Page title="Audit log" me data render/> }
}

#[component]
fn Chain(f: AuditFilter, state: Option<Result<ChainState, AppError>>) -> impl IntoView {
    let hidden = f
        .query()
        .into_iter()
        .map(|(k, v)| view! { <input type="hidden" name=k value=v.to_owned()/> })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="chain-title">
            <h2 id="chain-title">"Hash chain"</h2>
            <p class="muted">
                "Each event carries the hash of the one before it: an event edited, deleted "
                "or inserted in the database afterwards breaks the chain where it happened. "
                "Verifying reads every event; "<code>"keyward audit verify"</code>" does the same on the server."
            </p>
            {state.map(|r| match r {
                Ok(s) => {
                    let class = if s.broken.is_some() { "alert alert-error" } else { "alert alert-ok" };
                    view! { <p class=class role="status" id="chain-state">{s.sentence()}</p> }.into_any()
                }
                Err(e) => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <form method="get" action="/audit" class="inline-form">
                {hidden}
                <input type="hidden" name="verify" value="1"/>
                <button type="submit" class="btn">"Verify the chain"</button>
            </form>
        </section>
    }
}

#[component]
fn Events(f: AuditFilter, d: Result<AuditView, AppError>) -> impl IntoView {
    let (field, message) = match &d {
        Err(AppError::Validation { field, message }) => (field.clone(), Some(message.clone())),
        _ => (String::new(), None),
    };
    // One input of the filter form, with the refusal beside it when it is the one.
    let input = |name: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 value: String,
                 hint: &'static str| {
        let id = format!("f-{name}");
        let err_id = format!("f-{name}-error");
        let wrong = field == name;
        let described = wrong.then(|| err_id.clone());
        let error = message
            .clone()
            .filter(|_| wrong)
            .map(|m| view! { <p class="field-error" id=err_id.clone()>{m}</p> });
        view! {
            <div class="filter-field">
                <label for=id.clone()>{label}</label>
                <input id=id name=name type=kind value=value placeholder=hint maxlength="254"
                    aria-invalid=wrong.then_some("true") aria-describedby=described/>
                {error}
            </div>
        }
    };
    let outcome_wrong = field == "outcome";
    let opt = |value: &'static str, label: &'static str, current: &str| {
        let selected = value == current;
        view! { <option value=value selected=selected>{label}</option> }
    };
    let export = href("/audit/export.csv", &f, &[]);
    let first_page = f.before.is_empty();
    let body = match d {
        Ok(v) => {
            let next = v
                .page
                .next
                .map(|n| href("/audit", &f, &[("before", &n.to_string())]));
            let newest = href("/audit", &f, &[]);
            let empty = v.page.entries.is_empty();
            let now = v.now;
            let rows = v
                .page
                .entries
                .into_iter()
                .map(|e| view! { <EventRow e now/> }.into_any())
                .collect_view();
            view! {
                {if empty {
                    view! { <p class="muted">"No events match these filters."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap" tabindex="0">
                            <table class="audit-table cards-table">
                                <thead><tr>
                                    <th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th>
                                    <th scope="col">"Target"</th><th scope="col">"From"</th><th scope="col">"Outcome"</th>
                                    <th scope="col">"Details"</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
                <p class="pager">
                    {(!first_page).then(|| view! { <a href=newest>"Newest events"</a> })}
                    " "
                    {next.map(|href| view! { <a href=href rel="next">"Older events"</a> })}
                </p>
            }
            .into_any()
        }
        // A refusal of a field the form shows is beside it; any other (a broken page
        // link, a busy server) is said here.
        Err(e) => match &e {
            AppError::Validation { field, .. }
                if ["actor", "action", "target", "outcome", "ip", "from", "to"]
                    .contains(&field.as_str()) =>
            {
                view! { <p class="muted">"Change the filter marked above."</p> }.into_any()
            }
            _ => view! { <p class="alert alert-error" role="alert">{e.to_string()}</p> }.into_any(),
        },
    };
    view! {
        <section class="card" aria-labelledby="events-title">
            <h2 id="events-title">"Events"</h2>
            <form method="get" action="/audit" class="inline-form filters" aria-label="Filter events" role="search">
                {input("actor", "Who", "text", f.actor.clone(), "Email, key ID, system")}
                {input("action", "Action", "text", f.action.clone(), "api_key or api_key.created")}
                {input("target", "Target", "text", f.target.clone(), "Key ID, email…")}
                <div class="filter-field">
                    <label for="f-outcome">"Outcome"</label>
                    <select id="f-outcome" name="outcome" aria-invalid=outcome_wrong.then_some("true")>
                        {opt("", "Any", &f.outcome)}{opt("success", "Success", &f.outcome)}{opt("failure", "Failure", &f.outcome)}
                    </select>
                    {message.clone().filter(|_| outcome_wrong).map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                {input("ip", "Address", "text", f.ip.clone(), "203.0.113.7")}
                {input("from", "From (UTC)", "date", f.from.clone(), "")}
                {input("to", "To (UTC)", "date", f.to.clone(), "")}
                <button type="submit" class="btn">"Filter"</button>
                " "
                <a href="/audit">"Clear"</a>
            </form>
            <p><a href=export download="keyward-audit.csv">"Download these events as CSV"</a></p>
            {body}
        </section>
    }
}

#[component]
fn EventRow(e: AuditEntry, now: i64) -> impl IntoView {
    let from = match (e.ip, e.browser) {
        (None, None) => "—".into_any(),
        (ip, browser) => view! {
            {ip.map(|ip| view! { <span class="ip">{ip}</span> })}
            {browser.map(|b| view! { " " <span class="muted" title=e.user_agent.clone()>{b}</span> })}
        }
        .into_any(),
    };
    let outcome = if e.outcome == "failure" {
        view! { <span class="badge status-failed">"failure"</span> }.into_any()
    } else {
        view! { <span class="badge">{e.outcome}</span> }.into_any()
    };
    view! {
        <tr>
            <td data-label="When"><When now at=e.at/></td>
            <td data-label="Who">{e.actor}</td>
            <td data-label="What"><code>{e.action}</code>" "<span class="muted">{format!("#{}", e.seq)}</span></td>
            <td data-label="Target">{e.target.unwrap_or_default()}</td>
            <td data-label="From">{from}</td>
            <td data-label="Outcome">{outcome}</td>
            <td data-label="Details"><code class="details">{e.details}</code></td>
        </tr>
    }
}
