//! `/api`: the REST API's reference, rendered from the OpenAPI document the server
//! generates from its handlers (also served at `/api/v1/openapi.json`).

use crate::auth::get_me;
use crate::error::AppError;
use crate::shell_ui::Page;
use leptos::prelude::*;

#[server(prefix = "/fn", endpoint = "api/doc")]
pub async fn api_doc() -> Result<String, AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        ctx.signed_in().await?;
        Ok(ctx.state.api_doc().to_string())
    }
    .await
    .map_err(crate::error::reply)
}

/// One operation of the document: (method, path, description, statuses).
fn operations(doc: &serde_json::Value) -> Vec<(String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "patch", "put", "delete"] {
                let op = &item[method];
                if op.is_null() {
                    continue;
                }
                let statuses = op["responses"]
                    .as_object()
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default();
                out.push((
                    method.to_uppercase(),
                    path.clone(),
                    op["description"].as_str().unwrap_or_default().to_owned(),
                    statuses,
                ));
            }
        }
    }
    out
}

#[component]
pub fn ApiPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    let doc = Resource::new(|| (), |_| api_doc());
    view! {
        <Page title="REST API" me data=move || doc.get() render=move |_me, doc| {
            let v: serde_json::Value = serde_json::from_str(&doc).unwrap_or_default();
            let intro = v["info"]["description"].as_str().unwrap_or_default().to_owned();
            let ops = operations(&v)
                .into_iter()
                .map(|(m, p, d, st)| view! {
                    <tr>
                        <td><code>{m}</code></td>
                        <td><code>{p}</code></td>
                        <td>{d}</td>
                        <td>{st.join(", ")}</td>
                    </tr>
                })
                .collect_view();
            view! {
                <h1>"REST API"</h1>
                <section class="card" aria-labelledby="api-intro">
                    <h2 id="api-intro">"Version 1"</h2>
                    <p>{intro}</p>
                    <p><a href="/api/v1/openapi.json">"OpenAPI document (JSON)"</a></p>
                </section>
                <section class="card" aria-labelledby="api-ops">
                    <h2 id="api-ops">"Endpoints"</h2>
                    <div class="table-wrap">
                        <table>
                            <thead><tr><th scope="col">"Method"</th><th scope="col">"Path"</th><th scope="col">"What it does"</th><th scope="col">"Answers"</th></tr></thead>
                            <tbody>{ops}</tbody>
                        </table>
                    </div>
                </section>
            }
            .into_any()
        }/>
    }
}
