//! The types both the browser and the server see: the permission catalogue and
//! built-in roles, the client-safe error, and what the panel and the REST API show of
//! keys, apps, messages, settings and users. Serde only, so it compiles to wasm;
//! `openapi` adds the OpenAPI schemas, `server_fn` the server-function error encoding,
//! `server` logging of internal causes.

pub mod audit;
pub mod error;
pub mod keys;
pub mod messages;
pub mod roles;
pub mod settings;
pub mod users;
