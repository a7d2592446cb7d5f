//! `/channels`: channel keys under their channel's policy (`core::channels`): listed by
//! channel, created, revealed (after the password, when the policy allows), regenerated
//! and revoked. Settings > Channels edits the policies (`settings::save_channel`).

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod components;

pub use components::ChannelsPage;
pub use model::keys::{AppChoice, KeyInfo, SenderNumber};
pub use model::settings::ChannelPolicy;

/// One channel's section of `/channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSection {
    pub channel: String,
    pub policy: ChannelPolicy,
    /// A page of the channel's keys, newest first.
    pub keys: Vec<KeyInfo>,
    /// The key to continue after, when the channel has more keys than shown.
    pub next: Option<String>,
    pub can_create: bool,
    /// The viewer may act on every key of the channel (`channel.key.manage`), not only
    /// their own.
    pub manages_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelsView {
    pub sections: Vec<ChannelSection>,
    pub apps: Vec<AppChoice>,
    /// SMS sender numbers, with their keys.
    pub numbers: Vec<SenderNumber>,
    /// The viewer may add and remove sender numbers (`app.manage`).
    pub manages_numbers: bool,
    pub me: i64,
    pub now: i64,
    /// A reveal will ask for the password (the last check is stale).
    pub needs_password: bool,
}

/// A channel key just made or regenerated, or revealed: its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSecret {
    pub key_id: String,
    pub secret: String,
    /// "made", "regenerated" or "revealed".
    pub what: String,
    /// Regenerated: seconds the key it replaces keeps working (0: it was revoked).
    #[serde(default)]
    pub old_works_for: i64,
    /// It waits for approval (Settings > Keys) before it works.
    #[serde(default)]
    pub pending: bool,
}

/// Every channel (the newest few keys of each), or with `channel` one channel a page
/// at a time (`after`: the previous page's `next`); `q` searches as on `/keys`. ("" for
/// none, as the page's query string has them.)
#[server(prefix = "/fn", endpoint = "channels/list")]
pub async fn list_channels(
    #[server(default)] channel: String,
    #[server(default)] q: String,
    #[server(default)] after: String,
) -> Result<ChannelsView, AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyView, |ctx, grant| async {
        let st = &ctx.state;
        let p = grant.principal();
        fn some(s: &str) -> Option<&str> {
            Some(s).filter(|s| !s.is_empty())
        }
        let query = crate::core::channels::ChannelQuery {
            channel: some(&channel),
            q: some(&q),
            after: some(&after),
        };
        let sections = crate::core::channels::list(&st.db, st.clock.now(), p, &query)
            .await?
            .into_iter()
            .map(|v| ChannelSection {
                channel: v.channel.to_owned(),
                policy: v.policy,
                keys: v.keys,
                next: v.next,
                can_create: v.can_create,
                manages_all: v.manages_all,
            })
            .collect::<Vec<_>>();
        let manages_numbers = p.has(crate::roles::Permission::AppManage);
        let apps = if manages_numbers || sections.iter().any(|s| s.can_create) {
            crate::core::keys::apps::app_choices(&st.db).await?
        } else {
            Vec::new()
        };
        // The sender numbers belong to the SMS section.
        let numbers = if sections.iter().any(|s| s.channel == "sms") {
            crate::core::channels::numbers::list(&st.db, st.clock.now(), p).await?
        } else {
            Vec::new()
        };
        Ok(ChannelsView {
            numbers,
            manages_numbers,
            sections,
            apps,
            me: p.user_id(),
            now: st.clock.now(),
            needs_password: !crate::auth::ssr::sudo_is_fresh(&ctx).await?,
        })
    })
}

/// `expiry`: "7", "30", "90" (days) or "never"; `networks`: one entry per line;
/// `events[]`: for email keys, `send` and/or `status`.
#[server(prefix = "/fn", endpoint = "channels/create")]
pub async fn create_channel_key(
    channel: String,
    name: String,
    app_id: i64,
    environment: String,
    expiry: String,
    #[server(default)] networks: String,
    #[server(default)] events: Vec<String>,
) -> Result<ChannelSecret, AppError> {
    crate::auth::ssr::carries_secret();
    async {
        use crate::core::{channels, keys};
        // The guard is the channel's policy: its permission, read now.
        let ctx = crate::auth::ssr::RequestCtx::from_leptos().await?;
        let p = ctx.signed_in().await?.principal;
        let grant = p.require(channels::create_permission(&ctx.state.db, &channel).await?)?;
        let cx = ctx.cx();
        let days = match expiry.as_str() {
            "7" => Some(7),
            "30" => Some(30),
            "90" => Some(90),
            "never" => None,
            _ => return Err(AppError::validation("expiry", "Choose an expiry.")),
        };
        let new = channels::NewChannelKey {
            channel: &channel,
            name: &name,
            app_id,
            environment: keys::parse_environment(&environment)?,
            expires_at: days.map(|d: i64| cx.now + d * 86_400),
            networks: keys::parse_networks("networks", &networks)?,
            events,
        };
        let (key, secret) = channels::create(&cx, &grant, &new).await?;
        Ok(ChannelSecret {
            pending: key.status == "pending",
            key_id: key.key_id,
            secret,
            what: "made".into(),
            old_works_for: 0,
        })
    }
    .await
    .map_err(crate::error::reply)
}

/// Shows a revealable key's secret again, after the password when the last check is
/// stale.
#[server(prefix = "/fn", endpoint = "channels/reveal")]
pub async fn reveal_channel_key(
    key_id: String,
    #[server(default)] password: String,
) -> Result<ChannelSecret, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::ApiKeyView, |ctx, grant| async {
        crate::auth::ssr::confirm_sudo(&ctx, grant.principal().user_id(), &password).await?;
        let secret = crate::core::channels::reveal(&ctx.cx(), &grant, &key_id).await?;
        Ok(ChannelSecret {
            key_id,
            secret,
            what: "revealed".into(),
            old_works_for: 0,
            pending: false,
        })
    })
}

/// The address of a `/channels` listing: one `channel` ("" for all), the search `q` and
/// the key to continue after ("" for none).
pub fn listing_href(channel: &str, q: &str, after: &str) -> String {
    let mut qs = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("channel", channel), ("q", q), ("after", after)] {
        if !v.is_empty() {
            qs.append_pair(k, v);
        }
    }
    match qs.finish() {
        qs if qs.is_empty() => "/channels".to_owned(),
        qs => format!("/channels?{qs}"),
    }
}

/// A sender number's row on `/channels` (its element is `row-<this>`; `manage=<this>`
/// opens its actions).
pub fn number_row(id: i64) -> String {
    format!("number-{id}")
}

/// What the answer to a regeneration says about the key it replaced (`old_works_for`).
pub fn old_key_note(works_for: i64) -> String {
    match crate::keys::GRACE_CHOICES
        .iter()
        .find(|(secs, _)| *secs == works_for && *secs > 0)
    {
        Some((_, name)) => {
            format!("The key it replaces keeps working for {name} (never past its own expiry), then stops.")
        }
        None => "The key it replaces no longer works.".to_owned(),
    }
}

/// `grace`: seconds the old key keeps working (one of `keys::GRACE_CHOICES`; a form
/// without it ends the old key now).
#[server(prefix = "/fn", endpoint = "channels/regenerate")]
pub async fn regenerate_channel_key(
    key_id: String,
    #[server(default)] grace: i64,
) -> Result<ChannelSecret, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::ApiKeyView, |ctx, grant| async {
        let grace = crate::keys::chosen_grace(grace)?;
        let (key, secret) =
            crate::core::channels::regenerate(&ctx.cx(), &grant, &key_id, grace).await?;
        Ok(ChannelSecret {
            pending: key.status == "pending",
            key_id: key.key_id,
            secret,
            what: "regenerated".into(),
            old_works_for: grace,
        })
    })
}

#[server(prefix = "/fn", endpoint = "channels/revoke")]
pub async fn revoke_channel_key(
    key_id: String,
    #[server(default)] reason: String,
    #[server(default)] confirm: String,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyView, |ctx, grant| async {
        if confirm != "yes" {
            return Err(AppError::validation(
                "confirm",
                "Tick the box to confirm: applications using this key will stop working.",
            ));
        }
        crate::core::channels::revoke(&ctx.cx(), &grant, &key_id, &reason).await
    })
}

/// Adds an SMS sender number to an app; its key is made with it and shown once.
/// `networks`: the key's allow-list, one entry per line.
#[server(prefix = "/fn", endpoint = "channels/numbers/add")]
pub async fn add_sender_number(
    app_id: i64,
    number: String,
    environment: String,
    #[server(default)] networks: String,
) -> Result<ChannelSecret, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        use crate::core::{channels::numbers, keys};
        let new = numbers::NewNumber {
            app_id,
            number: &number,
            environment: keys::parse_environment(&environment)?,
            networks: keys::parse_networks("networks", &networks)?,
        };
        let (_, key, secret) = numbers::add(&ctx.cx(), &grant, &new).await?;
        Ok(ChannelSecret {
            pending: key.status == "pending",
            key_id: key.key_id,
            secret,
            what: "made".into(),
            old_works_for: 0,
        })
    })
}

/// Makes a new key for a sender number whose key was revoked or expired.
#[server(prefix = "/fn", endpoint = "channels/numbers/key")]
pub async fn new_number_key(
    id: i64,
    environment: String,
    #[server(default)] networks: String,
) -> Result<ChannelSecret, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        use crate::core::{channels::numbers, keys};
        let (key, secret) = numbers::new_key(
            &ctx.cx(),
            &grant,
            id,
            keys::parse_environment(&environment)?,
            keys::parse_networks("networks", &networks)?,
        )
        .await?;
        Ok(ChannelSecret {
            pending: key.status == "pending",
            key_id: key.key_id,
            secret,
            what: "made".into(),
            old_works_for: 0,
        })
    })
}

/// Removes a sender number; its key stops working at once.
#[server(prefix = "/fn", endpoint = "channels/numbers/remove")]
pub async fn remove_sender_number(
    id: i64,
    #[server(default)] confirm: String,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        if confirm != "yes" {
            return Err(AppError::validation(
                "confirm",
                "Tick the box to confirm: the number's key will stop working.",
            ));
        }
        crate::core::channels::numbers::remove(&ctx.cx(), &grant, id).await
    })
}
