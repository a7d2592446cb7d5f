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
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
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
/// (`keyward serve` sets them); the nonce is the page's.
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
         requestAnimationFrame(()=>setTimeout(()=>import('{base}.js')\
         .then(m=>m.default({{module_or_path:'{base}.wasm'}}).then(()=>m.hydrate())),0));"
    );
    view! { <script type="module" nonce=nonce>{script}</script> }
}

/// A per-request CSP nonce (base64), set by the server's middleware.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Keyward".to_owned() } else { format!("{page} · Keyward") }/>
        <a class="skip-link" href="#main">"Skip to content"</a>
        <Router>
            <Routes fallback=shell_ui::NotFound>
                <Route path=path!("/login") view=auth::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/login/verify") view=auth::VerifyPage ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view=invite::InvitePage ssr=SsrMode::Async/>
                <Route path=path!("/") view=overview::OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/users") view=users::UsersPage ssr=SsrMode::Async/>
                <Route path=path!("/roles") view=roles::RolesPage ssr=SsrMode::Async/>
                <Route path=path!("/settings") view=settings::SettingsPage ssr=SsrMode::Async/>
                <Route path=path!("/account") view=account::AccountPage ssr=SsrMode::Async/>
                <Route path=path!("/keys") view=keys::KeysPage ssr=SsrMode::Async/>
                <Route path=path!("/keys/:key_id") view=keys::KeyDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/apps") view=keys::AppsPage ssr=SsrMode::Async/>
                <Route path=path!("/apps/:id") view=keys::AppDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/api") view=api_docs::ApiPage ssr=SsrMode::Async/>
                <Route path=path!("/messages") view=messages::MessagesPage ssr=SsrMode::Async/>
                <Route path=path!("/messages/:id") view=messages::MessagePage ssr=SsrMode::Async/>
                <Route path=path!("/approvals") view=messages::ApprovalsPage ssr=SsrMode::Async/>
                <Route path=path!("/channels") view=channels::ChannelsPage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=audit::AuditPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
