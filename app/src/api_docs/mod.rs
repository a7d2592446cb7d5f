//! `/api`: the REST API's reference, rendered from the OpenAPI document the server
//! generates from its handlers (also served at `/api/v1/openapi.json`). Its descriptions
//! are Markdown, rendered to HTML on the server (raw HTML in them is escaped, not kept).

use crate::auth::get_me;
use crate::error::AppError;
use crate::shell_ui::Page;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The reference as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReference {
    /// The document's introduction, as HTML.
    pub intro_html: String,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub method: String,
    pub path: String,
    /// What it does, as HTML.
    pub description_html: String,
    pub statuses: Vec<String>,
}

#[server(prefix = "/fn", endpoint = "api/doc")]
pub async fn api_doc() -> Result<ApiReference, AppError> {
    async {
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        ctx.signed_in().await?;
        let doc: serde_json::Value =
            serde_json::from_str(ctx.state.api_doc()).map_err(AppError::internal)?;
        Ok(reference(&doc))
    }
    .await
    .map_err(crate::error::reply)
}

/// Markdown to HTML; HTML written in the source is shown as text, never kept as markup.
#[cfg(feature = "ssr")]
fn markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Parser};
    let events = Parser::new(text).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(feature = "ssr")]
fn reference(doc: &serde_json::Value) -> ApiReference {
    let mut operations = Vec::new();
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
                operations.push(Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    description_html: markdown(op["description"].as_str().unwrap_or_default()),
                    statuses,
                });
            }
        }
    }
    ApiReference {
        intro_html: markdown(doc["info"]["description"].as_str().unwrap_or_default()),
        operations,
    }
}

#[component]
pub fn ApiPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    let doc = Resource::new(|| (), |_| api_doc());
    view! {
        <Page title="REST API" me data=move || doc.get() render=move |_me, doc| {
            let ops = doc
                .operations
                .into_iter()
                .map(|o| view! {
                    <tr>
                        <td><code>{o.method}</code></td>
                        <td><code>{o.path}</code></td>
                        // Rendered on the server from the document's own Markdown.
                        <td class="markdown" inner_html=o.description_html></td>
                        <td>{o.statuses.join(", ")}</td>
                    </tr>
                }.into_any())
                .collect_view();
            view! {
                <h1>"REST API"</h1>
                <section class="card" aria-labelledby="api-intro">
                    <h2 id="api-intro">"Version 1"</h2>
                    <div class="markdown" inner_html=doc.intro_html></div>
                    <p><a href="/api/v1/openapi.json">"OpenAPI document (JSON)"</a></p>
                </section>
                <section class="card" aria-labelledby="api-ops">
                    <h2 id="api-ops">"Endpoints"</h2>
                    <div class="table-wrap" tabindex="0">
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

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::markdown;

    #[test]
    fn markdown_is_rendered_and_html_in_it_is_escaped() {
        assert_eq!(
            markdown("Bearer `kw_live_…` keys"),
            "<p>Bearer <code>kw_live_…</code> keys</p>\n"
        );
        let html = markdown("a <script>alert(1)</script> b\n\n<img src=x onerror=alert(1)>");
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"));
    }
}
