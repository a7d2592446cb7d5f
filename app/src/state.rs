//! `AppState`: what a request handler or server function needs — the domain's `Core`
//! (reached through `Deref`, so `state.db` reads as before), plus what only the web
//! side needs: the Leptos options and the REST API's OpenAPI document. One `Arc`.

use axum::extract::FromRef;
use keyward_core::state::{Core, Services};
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Web>);

#[derive(Debug)]
pub struct Web {
    pub core: Core,
    pub leptos_options: LeptosOptions,
    /// The REST API's OpenAPI document (JSON), set by the server at start-up.
    pub api_doc: Arc<String>,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0.core
    }
}

/// leptos_axum reads the options from the router state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.0.leptos_options.clone()
    }
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, core: Core, api_doc: Arc<String>) -> Self {
        Self(Arc::new(Web {
            core,
            leptos_options,
            api_doc,
        }))
    }

    /// The domain's services (for background jobs that outlive a request).
    pub fn core(&self) -> &Core {
        &self.0.core
    }

    pub fn leptos_options(&self) -> &LeptosOptions {
        &self.0.leptos_options
    }

    pub fn api_doc(&self) -> &Arc<String> {
        &self.0.api_doc
    }
}
