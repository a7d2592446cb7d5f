//! `AppState`: what a request handler or server function needs — the domain's `Core`
//! (reached through `Deref`, so `state.db` reads as before), plus what only the web
//! side needs: the Leptos options and the REST API's OpenAPI document. One `Arc`, or,
//! for the server's own state, a reference for the life of the process (see
//! [`AppState::forever`]).

use axum::extract::FromRef;
use keyward_core::state::{Core, Services};
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState(Held);

/// How the state is held: counted, or for the life of the process.
#[derive(Clone, Debug)]
enum Held {
    Counted(Arc<Web>),
    Forever(&'static Web),
}

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
        &self.web().core
    }
}

/// leptos_axum reads the options from the router state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.web().leptos_options.clone()
    }
}

impl AppState {
    pub fn new(leptos_options: LeptosOptions, core: Core, api_doc: Arc<String>) -> Self {
        Self(Held::Counted(Arc::new(Web {
            core,
            leptos_options,
            api_doc,
        })))
    }

    /// The same state, kept for the life of the process: its clones are copies of a
    /// reference. The server's router clones its state several times for every request
    /// (each layer and route holds one); counted, each clone and drop is an atomic write
    /// to the one counter every worker thread writes, so that its cache line moves
    /// between cores on every request (measured with `perf`: samples pile up on those
    /// writes). For the server's one state only: it is never dropped (the jobs'
    /// shutdown closes the database pool itself).
    pub fn forever(self) -> Self {
        match self.0 {
            Held::Forever(_) => self,
            Held::Counted(web) => {
                let web: &'static Arc<Web> = Box::leak(Box::new(web));
                Self(Held::Forever(web))
            }
        }
    }

    fn web(&self) -> &Web {
        match &self.0 {
            Held::Counted(web) => web,
            Held::Forever(web) => web,
        }
    }

    /// The domain's services (for background jobs that outlive a request).
    pub fn core(&self) -> &Core {
        &self.web().core
    }

    pub fn leptos_options(&self) -> &LeptosOptions {
        &self.web().leptos_options
    }

    pub fn api_doc(&self) -> &Arc<String> {
        &self.web().api_doc
    }
}
