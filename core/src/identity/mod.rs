//! Who is who: users and their email addresses, roles, invitations, the second factors
//! (TOTP, email codes), sign-in throttling, device tokens and mail to account owners.

pub mod address;
pub mod device;
pub mod email_code;
pub mod invitations;
pub mod notify;
pub mod phone;
pub mod roles;
pub mod sign_in;
pub mod throttle;
pub mod totp;
pub mod users;
