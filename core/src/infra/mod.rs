//! What the domain runs on. Nothing here imports a domain area.

pub mod client_ip;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod password;
pub mod phone;
pub mod sealing;
pub mod session_store;
pub mod sms;
pub mod submissions;
pub mod text;
pub mod user_agent;
