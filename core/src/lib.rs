//! Keyward's domain and its infrastructure, called by both doors (the panel's server
//! functions and the REST API): configuration, the database, mail, crypto, clock,
//! passwords, sessions, client address; access rules, keys, users and roles, messages
//! and their delivery, audit, settings. It knows no web framework: no Leptos, no axum
//! (Cargo keeps it so; the panel and the server depend on it, never the other way).

pub mod access;
pub mod audit;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod delivery;
pub mod device;
pub mod email_code;
pub mod invitations;
pub mod key_format;
pub mod keys;
pub mod mail;
pub mod messages;
pub mod notify;
pub mod password;
pub mod roles;
pub mod session_store;
pub mod settings;
pub mod state;
pub mod text;
pub mod throttle;
pub mod totp;
pub mod user_agent;
pub mod users;
pub mod webhooks;
