//! Mail to an account's owner about what just happened to their account: a key created
//! or rolled in their name, an authenticator added or removed, recovery codes made,
//! the password changed, a browser signing in for the first time, wrong second-step
//! codes past the threshold. Each says what happened, when, from which address and
//! browser, and what to do if it was not them.
//!
//! A notification never blocks what it reports: a mail that cannot be sent is logged
//! (the action itself is already audited).

use crate::{
    audit::Origin,
    infra::mail::{Mail, Mailer},
};

/// What happened.
#[derive(Debug, Clone)]
pub enum AccountEvent {
    KeyCreated {
        key_id: String,
        name: String,
    },
    KeyRolled {
        old: String,
        new: String,
    },
    AuthenticatorAdded,
    AuthenticatorRemoved,
    /// A phone number for SMS sign-in codes was confirmed (`number`, masked).
    PhoneAdded {
        number: String,
    },
    PhoneRemoved,
    PasswordChanged,
    NewBrowser,
    SecondStepFailures {
        failures: i64,
    },
    /// A key reported as leaked (`POST /api/v1/leaks`) and revoked; `owner`: whose it
    /// was, when the mail goes to an administrator rather than to them.
    KeyLeaked {
        key_id: String,
        name: String,
        owner: Option<String>,
        /// False when Settings > Keys flags leaked keys instead (the key still works).
        revoked: bool,
    },
    /// Settings > Alerts: a key refused `count` times within `minutes`; `owner` as for
    /// `KeyLeaked`.
    KeyRefusals {
        key_id: String,
        name: String,
        owner: Option<String>,
        count: i64,
        minutes: u32,
        link: String,
    },
    /// Settings > Keys' approval: a key of `owner`'s waits for someone holding
    /// `api.key.approve`; `link`: the approval queue.
    KeyAwaitsApproval {
        key_id: String,
        name: String,
        owner: String,
        link: String,
    },
    /// Settings > Keys' approval: the owner's pending key was approved (it works now).
    KeyApproved {
        key_id: String,
        name: String,
    },
    /// … or rejected, with the approver's reason (it is revoked).
    KeyRejected {
        key_id: String,
        name: String,
        reason: String,
    },
    /// Settings > Keys: the key went unused for `days` days and was disabled; `link`:
    /// its page, where it can be enabled again.
    KeyDisabled {
        key_id: String,
        name: String,
        days: u32,
        link: String,
    },
    /// Settings > Alerts: `count` failed sign-in steps of an account within `minutes`;
    /// `account`: whose, when the mail goes to an administrator rather than to them.
    SignInFailures {
        account: Option<String>,
        count: i64,
        minutes: u32,
        link: String,
    },
}

impl AccountEvent {
    fn subject(&self) -> &'static str {
        match self {
            Self::KeyCreated { .. } => "A new API key was created in your name",
            Self::KeyRolled { .. } => "One of your API keys was rolled",
            Self::AuthenticatorAdded => "An authenticator app was added to your account",
            Self::AuthenticatorRemoved => "Your second factors were reset",
            Self::PhoneAdded { .. } => "A phone number was added to your account",
            Self::PhoneRemoved => "The phone number was removed from your account",
            Self::PasswordChanged => "Your Keyward password was changed",
            Self::NewBrowser => "New sign-in to your Keyward account",
            Self::SecondStepFailures { .. } => {
                "Someone who knows your password is trying to sign in"
            }
            Self::KeyLeaked { revoked: true, .. } => {
                "An API key was reported as leaked and revoked"
            }
            Self::KeyLeaked { revoked: false, .. } => "An API key was reported as leaked",
            Self::KeyRefusals { .. } => "Alert: an API key is being refused",
            Self::SignInFailures { .. } => "Alert: repeated failed sign-ins",
            Self::KeyAwaitsApproval { .. } => "An API key is waiting for your approval",
            Self::KeyApproved { .. } => "Your API key was approved",
            Self::KeyRejected { .. } => "Your API key was not approved",
            Self::KeyDisabled { .. } => "An unused API key of yours was disabled",
        }
    }

    fn what(&self) -> String {
        match self {
            Self::KeyCreated { key_id, name } => {
                format!("An API key named \"{name}\" ({key_id}) was created in your name.")
            }
            Self::KeyRolled { old, new } => {
                format!("Your API key {old} was rolled: {new} replaces it.")
            }
            Self::AuthenticatorAdded => {
                "An authenticator app was set up for your account, and new recovery codes were made (the old ones no longer work).".into()
            }
            Self::AuthenticatorRemoved => {
                "An administrator removed the second factors of your account (authenticator app, recovery codes, phone for SMS codes); every session of yours was ended.".into()
            }
            Self::PhoneAdded { number } => format!(
                "The phone number {number} was confirmed for your account: sign-in codes may now be sent to it by SMS."
            ),
            Self::PhoneRemoved => "The phone number was removed from your account: sign-in codes are no longer sent to it.".into(),
            Self::PasswordChanged => "The password of your account was changed; your other sessions were ended.".into(),
            Self::NewBrowser => "Your account was signed in to from a browser that had not signed in to it before.".into(),
            Self::KeyLeaked { key_id, name, owner, revoked } => {
                let whose = owner.as_ref().map_or_else(
                    || format!("Your API key \"{name}\" ({key_id})"),
                    |o| format!("The API key \"{name}\" ({key_id}) of {o}"),
                );
                let then = if *revoked {
                    "Keyward revoked it at once: it no longer works."
                } else {
                    "Keyward flagged it: it still works until someone rolls or revokes it."
                };
                format!("{whose} was reported as found in a public place, and {then}")
            }
            Self::SecondStepFailures { failures } => format!(
                "Your password was entered correctly, then {failures} wrong sign-in codes followed. Further tries are now slowed down."
            ),
            Self::KeyRefusals { key_id, name, owner, count, minutes, link } => {
                let whose = owner.as_ref().map_or_else(
                    || format!("Your API key \"{name}\" ({key_id})"),
                    |o| format!("The API key \"{name}\" ({key_id}) of {o}"),
                );
                format!(
                    "{whose} was refused {count} times within {} (revoked, expired, from an address not allowed, or lacking a permission). Its usage and refusals: {link}",
                    minutes_text(*minutes)
                )
            }
            Self::KeyAwaitsApproval { key_id, name, owner, link } => format!(
                "{owner} made the API key \"{name}\" ({key_id}); it is refused until someone other than them approves it. The approval queue: {link}"
            ),
            Self::KeyApproved { key_id, name } => format!(
                "Your API key \"{name}\" ({key_id}) was approved: it works from now on."
            ),
            Self::KeyRejected { key_id, name, reason } => format!(
                "Your API key \"{name}\" ({key_id}) was not approved, so it will never work. The reason given: {reason}"
            ),
            Self::KeyDisabled { key_id, name, days, link } => format!(
                "Your API key \"{name}\" ({key_id}) was not used for {days} days, so Keyward disabled it (Settings > Keys): requests made with it are refused. If something still needs it, enable it again on its page: {link}"
            ),
            Self::SignInFailures { account, count, minutes, link } => {
                let whose = account
                    .as_ref()
                    .map_or("your account".to_owned(), |a| format!("the account {a}"));
                format!(
                    "{count} sign-in steps to {whose} failed within {} (wrong passwords or wrong codes). The audit log: {link}",
                    minutes_text(*minutes)
                )
            }
        }
    }

    fn if_not_you(&self) -> &'static str {
        match self {
            Self::KeyCreated { .. } | Self::KeyRolled { .. } => {
                "If this was not you, revoke the key on the Keys page, change your password, and tell your administrator."
            }
            Self::SecondStepFailures { .. } => {
                "If this was not you, someone has your password: change it now on the Account page and tell your administrator."
            }
            Self::KeyLeaked { revoked: true, .. } => {
                "Make a new key on the Keys page for whatever used this one, and find where it leaked (a commit, a log, a shared file). The report came from the address below."
            }
            Self::KeyLeaked { revoked: false, .. } => {
                "Roll the key on its page now (its replacement can take over within a grace period), and find where it leaked (a commit, a log, a shared file). The report came from the address below."
            }
            Self::KeyRefusals { .. } => {
                "If nothing of yours should be using this key, it may have leaked: revoke it. If an application of yours is failing, its key page says why."
            }
            Self::SignInFailures { .. } => {
                "If this was not you, someone is guessing the password: make sure it is long and unique, and that an authenticator app is set up. Further tries are slowed down. This alert is sent at most once per window."
            }
            Self::KeyApproved { .. } => {
                "If you did not ask for this key, revoke it on its page and tell your administrator."
            }
            Self::KeyAwaitsApproval { .. } => {
                "Approve it only if you know what it is for: the queue shows its role, app, networks and expiry. You are told because you hold api.key.approve."
            }
            Self::KeyRejected { .. } => {
                "Ask the approver, or make a new key that fits what they asked for."
            }
            Self::KeyDisabled { .. } => {
                "If nothing uses it any more, revoke it instead: a key nobody uses is a key nobody would notice leaking."
            }
            _ => "If this was not you, change your password now on the Account page and tell your administrator.",
        }
    }
}

/// "1 minute", "15 minutes".
fn minutes_text(n: u32) -> String {
    if n == 1 {
        "1 minute".to_owned()
    } else {
        format!("{n} minutes")
    }
}

fn when(now: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| now.to_string())
}

/// The mail for `ev`: (subject, text, html).
pub fn render(ev: &AccountEvent, origin: &Origin, now: i64) -> (&'static str, String, String) {
    let at = when(now);
    let what = ev.what();
    let advice = ev.if_not_you();
    // What Keyward does by itself (a job) has no address nor browser to name.
    let from = (origin.ip.is_some() || origin.user_agent.is_some()).then(|| {
        let ip = origin.ip.as_deref().unwrap_or("an unknown address");
        let browser = crate::infra::user_agent::describe_browser(origin.user_agent.as_deref());
        format!("{ip} ({browser})")
    });
    let from_line = from
        .as_deref()
        .map(|f| format!("\nFrom: {f}"))
        .unwrap_or_default();
    let text = format!("{what}\n\nWhen: {at}{from_line}\n\n{advice}\n");
    let html = maud::html! {
        p { (what) }
        p { "When: " (at) @if let Some(f) = &from { br; "From: " (f) } }
        p { (advice) }
    };
    (ev.subject(), text, html.into_string())
}

/// How long the action waits for its notification to be handed over: a working mail
/// server answers within it (so the mail is out when the page says done), a hung one
/// keeps the sending in the background instead of holding a sign-in or a key's
/// creation for its whole timeout.
const WAIT_FOR_MAIL: std::time::Duration = std::time::Duration::from_secs(2);

/// Mails `to` about `ev`; a failure is logged, never returned, and a slow mail server
/// never holds the action it reports for more than [`WAIT_FOR_MAIL`].
pub async fn account(
    mailer: &std::sync::Arc<Mailer>,
    to: &str,
    ev: AccountEvent,
    origin: &Origin,
    now: i64,
) {
    let (subject, text, html) = render(&ev, origin, now);
    let (mailer, to) = (mailer.clone(), to.to_owned());
    let send = tokio::spawn(async move {
        let mail = Mail {
            to: &to,
            subject,
            text,
            html,
        };
        if let Err(e) = mailer.send(mail).await {
            tracing::warn!(error = %e, subject, "account notification not sent");
        }
    });
    if tokio::time::timeout(WAIT_FOR_MAIL, send).await.is_err() {
        tracing::info!(
            subject,
            "account notification still being sent (slow mail server)"
        );
    }
}

/// Who a security notice goes to (see [`owner_and_admins`]).
#[derive(Debug, Clone, Copy)]
pub struct Recipients<'a> {
    /// The key's owner or the account, when there is one to mail.
    pub owner: Option<&'a str>,
    /// How the administrators' mail names whose it is when `owner` is `None`.
    pub whose: &'a str,
    /// Whether the active Owners and Admins are mailed too.
    pub admins: bool,
}

/// Mails `to.owner` (when there is one) with `make(None)`, and, when `to.admins`, every
/// active Owner and Admin other than them with `make(Some(whose))` (`whose`: the owner,
/// else `to.whose`). The mails are rendered here and sent one after another in the
/// background: the caller (a sign-in's answer, the jobs loop) never waits for the mail
/// server, so neither a slow one nor the number of recipients shows in its timing. A
/// failed send is logged, never returned.
pub async fn owner_and_admins(
    st: &crate::state::Services,
    now: i64,
    origin: &Origin,
    to: Recipients<'_>,
    make: impl Fn(Option<String>) -> AccountEvent,
) -> Result<(), sqlx::Error> {
    let Recipients {
        owner,
        whose,
        admins,
    } = to;
    let mut mails = Vec::new();
    if let Some(to) = owner {
        mails.push((to.to_owned(), render(&make(None), origin, now)));
    }
    if admins {
        let whose = owner.unwrap_or(whose).to_owned();
        for to in super::users::admin_emails(&st.db).await? {
            if Some(to.as_str()) != owner {
                let ev = make(Some(whose.clone()));
                mails.push((to, render(&ev, origin, now)));
            }
        }
    }
    let mailer = st.mailer.clone();
    tokio::spawn(async move {
        for (to, (subject, text, html)) in mails {
            let mail = Mail {
                to: &to,
                subject,
                text,
                html,
            };
            if let Err(e) = mailer.send(mail).await {
                tracing::warn!(error = %e, subject, "security notification not sent");
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_says_what_when_where_and_what_to_do() {
        let origin = Origin {
            ip: Some("203.0.113.9".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36".into()),
        };
        let ev = AccountEvent::KeyCreated {
            key_id: "key_abcdefghijklmnop".into(),
            name: "<b>prod</b>".into(),
        };
        let (subject, text, html) = render(&ev, &origin, 1_800_000_000);
        assert!(subject.contains("API key"));
        assert!(text.contains("key_abcdefghijklmnop"));
        assert!(text.contains("2027-01-15 08:00:00 UTC"), "{text}");
        assert!(text.contains("203.0.113.9 (Chrome on Linux)"));
        assert!(text.contains("If this was not you"));
        assert!(html.contains("&lt;b&gt;prod&lt;/b&gt;") && !html.contains("<b>prod"));
    }
}
