//! A key's usage on its page: per hour for 48 hours and per day for 90 days, each a
//! server-rendered SVG bar chart (accepted below, refused stacked above) with the same
//! numbers in a table behind it, and the key's latest refusals.

use crate::shell_ui::{format_date, format_time, When};
use leptos::prelude::*;
use model::keys::{KeyUsage, UsageBucket};

/// The chart's drawing box (the SVG scales to the card's width).
const WIDTH: u32 = 960;
const HEIGHT: u32 = 160;

/// "1,234,567".
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "ip_not_allowed 3, key_revoked 1".
fn codes(by_code: &[(String, u64)]) -> String {
    by_code
        .iter()
        .map(|(c, n)| format!("{c} {}", grouped(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Totals of a run of periods: (accepted, refused, refused per code).
fn totals(buckets: &[UsageBucket]) -> (u64, u64, Vec<(String, u64)>) {
    let mut by_code: Vec<(String, u64)> = Vec::new();
    for b in buckets {
        for (c, n) in &b.by_code {
            match by_code.iter_mut().find(|(k, _)| k == c) {
                Some((_, m)) => *m += n,
                None => by_code.push((c.clone(), *n)),
            }
        }
    }
    by_code.sort();
    (
        buckets.iter().map(|b| b.accepted).sum(),
        buckets.iter().map(|b| b.refused).sum(),
        by_code,
    )
}

/// `/keys/{key_id}`'s usage section.
#[component]
pub fn KeyUsageSection(usage: KeyUsage) -> impl IntoView {
    let now = usage.now;
    let refusals = if usage.recent_refusals.is_empty() {
        view! { <p class="muted">"No refused requests recorded."</p> }.into_any()
    } else {
        let rows = usage
            .recent_refusals
            .into_iter()
            .map(|r| {
                view! {
                    <tr>
                        <td><When now at=r.at/></td>
                        <td class="num">{grouped(r.requests)}</td>
                        <td>{codes(&r.by_code)}</td>
                        <td>{r.addresses.join(", ")}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap" tabindex="0"><table>
                <caption class="visually-hidden">"Latest refused requests"</caption>
                <thead><tr>
                    <th scope="col">"Until"</th><th scope="col">"Requests"</th>
                    <th scope="col">"Why"</th><th scope="col">"From"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-labelledby="key-usage-title">
            <h2 id="key-usage-title">"Usage"</h2>
            <p class="muted">"Requests made with this key, counted by every instance and written every few seconds. Hours are shown in your time zone; days are UTC days."</p>
            <UsageChart id="usage-hours" title="Last 48 hours, per hour" buckets=usage.hours hourly=true/>
            <UsageChart id="usage-days" title="Last 90 days, per day" buckets=usage.days hourly=false/>
            <h3>"Recent refusals"</h3>
            <p class="muted">"Refused requests are recorded in batches: each row counts those since the row before, with the first addresses they came from."</p>
            {refusals}
        </section>
    }
}

/// One chart with its table.
#[component]
fn UsageChart(
    id: &'static str,
    title: &'static str,
    buckets: Vec<UsageBucket>,
    hourly: bool,
) -> impl IntoView {
    let label = move |start: i64| {
        if hourly {
            format_time(start)
        } else {
            format_date(start)
        }
    };
    let (accepted, refused, by_code) = totals(&buckets);
    let summary = if accepted + refused == 0 {
        "No requests.".to_owned()
    } else if refused == 0 {
        format!("{} accepted, none refused.", grouped(accepted))
    } else {
        format!(
            "{} accepted, {} refused ({}).",
            grouped(accepted),
            grouped(refused),
            codes(&by_code)
        )
    };
    let peak = buckets
        .iter()
        .map(|b| b.accepted + b.refused)
        .max()
        .unwrap_or(0)
        .max(1);
    let n = u32::try_from(buckets.len()).unwrap_or(1).max(1);
    let slot = f64::from(WIDTH) / f64::from(n);
    let bar = (slot * 0.8).max(1.0);
    let scale = |v: u64| (v as f64 / peak as f64) * f64::from(HEIGHT);
    let bars = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b.accepted + b.refused > 0)
        .map(|(i, b)| {
            let x = format!("{:.1}", i as f64 * slot + (slot - bar) / 2.0);
            let w = format!("{bar:.1}");
            let ok_h = scale(b.accepted);
            let no_h = scale(b.refused);
            let tip = format!(
                "{}: {} accepted, {} refused",
                label(b.start),
                grouped(b.accepted),
                grouped(b.refused)
            );
            view! {
                <g>
                    <title>{tip}</title>
                    <rect class="bar-ok" x=x.clone() width=w.clone()
                        y=format!("{:.1}", f64::from(HEIGHT) - ok_h) height=format!("{ok_h:.1}")/>
                    <rect class="bar-refused" x=x width=w
                        y=format!("{:.1}", f64::from(HEIGHT) - ok_h - no_h) height=format!("{no_h:.1}")/>
                </g>
            }
        })
        .collect_view();
    let first = buckets.first().map(|b| label(b.start)).unwrap_or_default();
    let last = buckets.last().map(|b| label(b.start)).unwrap_or_default();
    // The table: every hour for the hourly chart; only days with requests for the
    // daily one (90 rows of zeros help nobody).
    let rows = buckets
        .iter()
        .rev()
        .filter(|b| hourly || b.accepted + b.refused > 0)
        .map(|b| {
            view! {
                <tr>
                    <th scope="row">{label(b.start)}</th>
                    <td class="num">{grouped(b.accepted)}</td>
                    <td class="num">{grouped(b.refused)}</td>
                    <td>{codes(&b.by_code)}</td>
                </tr>
            }
        })
        .collect_view();
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    view! {
        <figure class="usage-chart" id=id>
            <figcaption>
                <h3 id=title_id.clone()>{title}</h3>
                <p id=desc_id.clone()>{summary}</p>
            </figcaption>
            // (No requests: the sentence says so; an empty plot would say nothing more.)
            {(accepted + refused > 0).then(move || view! {
            <div class="chart-frame">
                <span class="chart-peak muted">{format!("{} requests", grouped(peak))}</span>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none"
                    role="img" aria-labelledby=format!("{title_id} {desc_id}")>
                    <line class="chart-axis" x1="0" y1=HEIGHT.to_string() x2=WIDTH.to_string() y2=HEIGHT.to_string()/>
                    {bars}
                </svg>
                <div class="chart-range muted"><span>{first}</span><span>{last}</span></div>
            </div>
            <p class="chart-legend muted">
                <span class="swatch swatch-ok" aria-hidden="true"></span>"Accepted "
                <span class="swatch swatch-refused" aria-hidden="true"></span>"Refused"
            </p>
            <details>
                <summary>{if hourly { "Show the hours as a table" } else { "Show the days as a table" }}</summary>
                <div class="table-wrap" tabindex="0"><table>
                    <caption class="visually-hidden">{title}</caption>
                    <thead><tr>
                        <th scope="col">{if hourly { "Hour" } else { "Day (UTC)" }}</th>
                        <th scope="col">"Accepted"</th><th scope="col">"Refused"</th><th scope="col">"Refused, by code"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
            </details>
            })}
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn totals_sum_every_code() {
        let b = |a, r, c: &[(&str, u64)]| UsageBucket {
            start: 0,
            accepted: a,
            refused: r,
            by_code: c.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect(),
        };
        let (a, r, by) = totals(&[
            b(5, 2, &[("key_revoked", 2)]),
            b(1, 4, &[("ip_not_allowed", 3), ("key_revoked", 1)]),
        ]);
        assert_eq!((a, r), (6, 6));
        assert_eq!(codes(&by), "ip_not_allowed 3, key_revoked 3");
    }
}
