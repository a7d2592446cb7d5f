//! Keyward's domain and its infrastructure, called by both doors (the panel's server
//! functions and the REST API). It knows no web framework: no Leptos, no axum (Cargo
//! keeps it so; the panel and the server depend on it, never the other way).
//!
//! - [`infra`]: database, configuration, mail, crypto, clock, passwords, sessions,
//!   client address, outbound HTTP. It imports no domain area.
//! - [`access`]: principals, grants and every authorisation rule, each written once.
//! - [`identity`]: users, roles, invitations, second factors, sign-in throttling,
//!   device tokens and account mail.
//! - [`keys`]: apps, keys, their format, verification and the key cache.
//! - [`channels`]: channel keys under their channels' policies.
//! - [`messages`]: four-eyes messages, their delivery and registered webhooks.
//! - [`audit`], [`settings`], [`state`] (the services every area is handed).

pub mod access;
pub mod audit;
pub mod channels;
pub mod identity;
pub mod infra;
pub mod keys;
pub mod master_key;
pub mod messages;
pub mod settings;
pub mod state;
