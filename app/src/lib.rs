//! Keyward's panel: pages rendered on the server and hydrated in the browser, the server
//! functions behind them, and (with `ssr`) the domain code both the panel and the REST
//! API call.

#![recursion_limit = "256"]

/// The answers of a page's actions replace each other instead of stacking up: when one
/// of them starts, the last answers of all of them are put away.
#[macro_export]
macro_rules! one_answer_at_a_time {
    ($($a:ident),+ $(,)?) => {
        $crate::one_answer_at_a_time!(@each [$($a),+] [$($a),+])
    };
    (@each [$($a:ident),+] $all:tt) => {
        $( $crate::one_answer_at_a_time!(@one $a $all); )+
    };
    (@one $a:ident [$($b:ident),+]) => {
        ::leptos::prelude::Effect::new(move |_| {
            if $a.pending().get() {
                $( $b.value().set(None); )+
            }
        })
    };
}

/// Runs the body of a server function that needs `$perm`: signs in, authorises, and sets
/// the HTTP status of any error. `$ctx` and `$grant` are bound for the body.
#[cfg(feature = "ssr")]
#[macro_export]
macro_rules! guarded {
    ($perm:expr, |$ctx:ident, $grant:ident| $body:expr) => {{
        async {
            let $ctx = $crate::auth::ssr::RequestCtx::from_leptos().await?;
            let who = $ctx.signed_in().await?;
            let $grant = who.principal.require($perm)?;
            $body.await
        }
        .await
        .map_err($crate::error::reply)
    }};
}

pub mod account;
pub mod api_docs;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod error;
pub mod invite;
pub mod keys;
pub mod messages;
pub mod overview;
pub mod roles;
pub mod settings;
mod shell_ui;
pub mod time_zone;
pub mod users;

/// The domain (its own crate, which knows no web framework), under its old path.
#[cfg(feature = "ssr")]
pub use keyward_core as core;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::{
    components::{Route, Router, Routes},
    path, Lazy, SsrMode,
};

/// The HTML document. Runs on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        // The CSP nonce the security-headers middleware put in this response's header.
        let parts = use_context::<http::request::Parts>();
        if let Some(nonce) = parts
            .as_ref()
            .and_then(|p| p.extensions.get::<CspNonce>().cloned())
        {
            provide_context(Nonce::from_value(nonce.0));
        }
        // Times are drawn in the zone the browser said it is in (`time_zone`).
        if let Some(zone) = parts
            .as_ref()
            .and_then(|p| time_zone::ViewerZone::from_headers(&p.headers))
        {
            provide_context(zone);
        }
    }
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // No favicon request (and no 404) on every page.
                <link rel="icon" href="data:,"/>
                // The content-addressed stylesheet of the bundle (see `keyward serve`).
                <link rel="stylesheet" href=stylesheet/>
                <AutoReload options=options.clone()/>
                <Hydration options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Loads the bundle and hydrates the page, starting after the first paint: the page is
/// drawn and usable (every form works without script) before a byte of wasm is asked
/// for, so the bundle never competes with the stylesheet for the first paint on a slow
/// link. (Leptos's `HydrationScripts` preloads the wasm from the head, which a slow
/// phone's first paint then waits behind.) The names are the content-addressed bundle's
/// (`keyward serve` sets them); the nonce is the page's. The wasm is asked for beside
/// the script that loads it, not after it (its glue, 60 KB, took a round trip and a
/// parse before the wasm's download began).
///
/// It also keeps what the user chose in a `<select>` while the page is drawn again
/// after an action: drawing a form again puts each option's `selected` attribute back,
/// and a browser then selects the default option anew (a role chosen as Viewer would
/// quietly become Developer again after an unrelated field's error, and be sent so).
/// The choice is noted on the select when the user makes it, put back whenever an
/// option's `selected` attribute is written, and forgotten when its form is reset.
///
/// A form refused after a plain post comes back as the answer to the post, with the
/// page's own address in `<meta name="kw-page">` (see the server's `kept_form`): that
/// address is put back in the browser's location before the router reads it, and the
/// selects' values written back by the server count as chosen.
///
/// If the wasm crashes (a panic aborts it: a page's chunk that could not be loaded,
/// after a deploy removed the bundle an open tab was using, or on a network failure),
/// the page falls back to plain HTML: links and forms work as they do without script
/// (the router's and the forms' handlers, now dead, never see them), and the browser
/// goes where the user was going (the link clicked in the last 10 s) or reloads the
/// page, once in 30 s at most (so a chunk that keeps failing cannot loop).
#[component]
fn Hydration(options: LeptosOptions) -> impl IntoView {
    let nonce = use_nonce();
    let base = format!("/{}/{}", options.site_pkg_dir, options.output_name);
    let script = format!(
        "addEventListener('change',e=>{{const s=e.target;if(s instanceof HTMLSelectElement)s.dataset.chosen=s.value}},true);\
         addEventListener('reset',e=>{{for(const s of e.target.querySelectorAll('select[data-chosen]'))delete s.dataset.chosen}},true);\
         new MutationObserver(()=>{{for(const s of document.querySelectorAll('select[data-chosen]'))\
         if(s.value!==s.dataset.chosen&&[...s.options].some(o=>o.value===s.dataset.chosen))s.value=s.dataset.chosen}})\
         .observe(document,{{subtree:true,attributeFilter:['selected']}});\
         {{const p=document.querySelector('meta[name=kw-page]');if(p){{try{{history.replaceState(null,'',p.content)}}catch(e){{}}for(const s of document.querySelectorAll('select'))s.dataset.chosen=s.value}}}}\
         {{let dead=false,href='',at=0;\
         addEventListener('click',e=>{{const a=e.target.closest&&e.target.closest('a[href]');if(a){{href=a.href;at=Date.now()}}if(dead)e.stopImmediatePropagation()}},true);\
         addEventListener('submit',e=>{{if(dead)e.stopImmediatePropagation()}},true);\
         const crashed=r=>{{if(!(r instanceof WebAssembly.RuntimeError)||dead)return;dead=true;\
         try{{const k='kw-crash',last=+sessionStorage.getItem(k)||0;if(Date.now()-last<30000)return;sessionStorage.setItem(k,String(Date.now()))}}catch(e){{return}}\
         if(href&&Date.now()-at<10000&&href!==location.href)location.assign(href);else location.reload()}};\
         addEventListener('error',e=>crashed(e.error));addEventListener('unhandledrejection',e=>crashed(e.reason))}}\
         requestAnimationFrame(()=>setTimeout(()=>{{const w=fetch('{base}.wasm');import('{base}.js')\
         .then(m=>m.default({{module_or_path:w}}).then(()=>m.hydrate()))}},0));"
    );
    view! { <script type="module" nonce=nonce>{script}</script> }
}

/// Every page is a lazy route: its code is a chunk of the browser bundle, loaded when
/// the page is shown (the build cuts the wasm at these points, see `tools/wasm-split`),
/// so a cold visit downloads the shell and that one page, not the whole panel. Each
/// route's data is loaded by the page itself (its resources were already resolved and
/// sent with the HTML when the server drew it).
mod pages {
    use leptos::prelude::*;
    use leptos_router::{lazy_route, LazyRoute};

    macro_rules! lazy_pages {
        ($($page:ident => $view:path),+ $(,)?) => {$(
            pub struct $page;

            #[lazy_route]
            impl LazyRoute for $page {
                fn data() -> Self {
                    Self
                }

                fn view(_this: Self) -> AnyView {
                    #[cfg(feature = "ssr")]
                    super::preload_chunks();
                    super::forget_stale_action_error();
                    $view().into_any()
                }
            }
        )+};
    }

    lazy_pages! {
        LoginPage => crate::auth::LoginPage,
        VerifyPage => crate::auth::VerifyPage,
        InvitePage => crate::invite::InvitePage,
        OverviewPage => crate::overview::OverviewPage,
        UsersPage => crate::users::UsersPage,
        RolesPage => crate::roles::RolesPage,
        SettingsPage => crate::settings::SettingsPage,
        AccountPage => crate::account::AccountPage,
        KeysPage => crate::keys::KeysPage,
        KeyDetailPage => crate::keys::KeyDetailPage,
        AppsPage => crate::keys::AppsPage,
        AppDetailPage => crate::keys::AppDetailPage,
        ApiPage => crate::api_docs::ApiPage,
        MessagesPage => crate::messages::MessagesPage,
        MessagePage => crate::messages::MessagePage,
        ApprovalsPage => crate::messages::ApprovalsPage,
        ChannelsPage => crate::channels::ChannelsPage,
        AuditPage => crate::audit::AuditPage,
    }
}

/// A form refused before the page hydrated comes back at an address naming its error
/// (`__path`, `__err`), which the router reads into a context of its own that it replaces
/// only with another such error: after navigating away, every later page with an action
/// for that path would show the old error again (in an emptied form). A page drawn at an
/// address without one shadows it with an error of no server function.
fn forget_stale_action_error() {
    let carries = leptos_router::hooks::use_location()
        .query
        .with_untracked(|q| q.get_str("__err").is_some() && q.get_str("__path").is_some());
    if !carries {
        provide_context(ServerActionError::new("", ""));
    }
}

/// The browser bundle's chunks (`manifest.json` beside it, written by the build's
/// `wasm-split`): the folder they are served from, and for each lazy page's function the
/// chunks it needs. Provided to every page by the server.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone)]
pub struct BundleChunks {
    /// `/pkg/keyward-<hash>`.
    pub base: String,
    pub by_page: std::sync::Arc<std::collections::HashMap<String, Vec<String>>>,
}

/// Names the chunks of the page being drawn in a `Link: rel=preload` header of its
/// answer, so the browser fetches them beside the main module instead of after it.
/// Runs in the page's lazy view on the server, when Leptos has just noted the page's
/// function as used. (Leptos's own `<link>` for it is written only if the page was drawn
/// before the head was, which a page with data is often not; a header is there from
/// the answer's start.)
#[cfg(feature = "ssr")]
fn preload_chunks() {
    let (Some(chunks), Some(used), Some(opts)) = (
        use_context::<BundleChunks>(),
        use_context::<leptos::PrefetchLazyFn>(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let Some(used) = used
        .0
        .try_with_value(|used| used.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    else {
        return;
    };
    let mut links: Vec<String> = used
        .iter()
        .filter_map(|f| chunks.by_page.get(f))
        .flatten()
        .map(|chunk| {
            format!(
                "<{}/{chunk}.wasm>; rel=preload; as=fetch; type=\"application/wasm\"; crossorigin",
                chunks.base
            )
        })
        .collect();
    if links.is_empty() {
        return;
    }
    // The chunks' loader, which the main script imports before it can ask for them.
    links.push(format!(
        "<{}/__wasm_split.js>; rel=modulepreload",
        chunks.base
    ));
    for link in links {
        if let Ok(value) = http::HeaderValue::from_str(&link) {
            opts.append_header(http::header::LINK, value);
        }
    }
}

/// After hydration, the address no longer carries a refused form's error (`__path`,
/// `__err`, `__sig`: a form posted before the page hydrated comes back at an address
/// naming its error, which the page was drawn and hydrated with). A reload then draws
/// the page afresh, instead of the old error above emptied fields. The router is not
/// told: it read the address when it hydrated and reads it again only on navigation.
#[cfg(feature = "hydrate")]
pub fn forget_form_error_in_address() {
    let window = window();
    let location = window.location();
    let Ok(search) = location.search() else {
        return;
    };
    let query = search.strip_prefix('?').unwrap_or(&search);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let is_error = |k: &str| matches!(k, "__path" | "__err" | "__sig");
    if !pairs.iter().any(|(k, _)| is_error(k)) {
        return;
    }
    let mut address = location.pathname().unwrap_or_default();
    let kept: Vec<_> = pairs.iter().filter(|(k, _)| !is_error(k)).collect();
    if !kept.is_empty() {
        address.push('?');
        address.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .extend_pairs(kept)
                .finish(),
        );
    }
    address.push_str(&location.hash().unwrap_or_default());
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&address));
    }
}

/// A per-request CSP nonce (base64), set by the server's middleware.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <a class="skip-link" href="#main" rel="external">"Skip to content"</a>
        <Router>
            <Routes fallback=shell_ui::NotFound>
                <Route path=path!("/login") view={Lazy::<pages::LoginPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/login/verify") view={Lazy::<pages::VerifyPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view={Lazy::<pages::InvitePage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/") view={Lazy::<pages::OverviewPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/users") view={Lazy::<pages::UsersPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/roles") view={Lazy::<pages::RolesPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/settings") view={Lazy::<pages::SettingsPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/account") view={Lazy::<pages::AccountPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/keys") view={Lazy::<pages::KeysPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/keys/:key_id") view={Lazy::<pages::KeyDetailPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/apps") view={Lazy::<pages::AppsPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/apps/:id") view={Lazy::<pages::AppDetailPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/api") view={Lazy::<pages::ApiPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/messages") view={Lazy::<pages::MessagesPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/messages/:id") view={Lazy::<pages::MessagePage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/approvals") view={Lazy::<pages::ApprovalsPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/channels") view={Lazy::<pages::ChannelsPage>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/audit") view={Lazy::<pages::AuditPage>::new()} ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
