//! API keys and apps: the types the panel and the REST API share.

// A server function's arguments are the fields of its form (a plain HTML form posts them
// by name), so the create form's nine cannot be grouped into a struct without renaming
// every field; the lint also fires in the code `#[server]` generates for the browser.
#![allow(clippy::too_many_arguments)]

use serde::{Deserialize, Serialize};

pub use model::keys::{
    AppChoice, AppInfo, KeyEvent, KeyFilter, KeyInfo, KeyPage, COUNT_CAP, DEFAULT_PAGE, EVENTS,
    MAX_PAGE,
};

use crate::error::AppError;
use leptos::prelude::*;

mod components;
mod usage;

pub use components::{AppDetailPage, AppsPage, KeyDetailPage, KeysPage};
pub(crate) use components::{ErrorOf, GraceField};

/// What the keys page needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysView {
    pub keys: Vec<KeyInfo>,
    /// The key to continue after when there are more than one page.
    pub next: Option<String>,
    pub apps: Vec<AppChoice>,
    /// Roles a new key may get (none above the viewer's own permissions).
    pub roles: Vec<(i64, String)>,
    pub can_create: bool,
    pub can_update: bool,
    pub can_revoke: bool,
    /// The viewer sees everyone's keys (the table then names each key's owner).
    pub can_view_all: bool,
    /// Settings > Keys, for the create form's choices.
    pub limits: model::keys::KeyLimits,
    /// The server's time when the page was loaded (the create form's "expires on" preview).
    pub now: i64,
}

/// What a key's page needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDetail {
    pub key: KeyInfo,
    /// Newest first, at most `HISTORY_EVENTS`.
    pub history: Vec<KeyEvent>,
    /// Roles the key may be given (none above the viewer's own permissions).
    pub roles: Vec<(i64, String)>,
    pub can_update: bool,
    pub can_revoke: bool,
    pub now: i64,
    /// Requests per hour and per day, and the latest refusals.
    pub usage: model::keys::KeyUsage,
}

/// Events a key's page shows from its history.
pub const HISTORY_EVENTS: i64 = 50;

/// A key just made (or rolled): the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSecret {
    pub key: KeyInfo,
    pub secret: String,
}

/// The confirmation text a revoke asks for (PRODUCT.md).
pub const REVOKE_WARNING: &str = "Applications using this key will stop working";

/// The filters as the page's query string has them ("" for any); `after`: the key to
/// continue after (the previous page's `next`).
#[server(prefix = "/fn", endpoint = "keys/list")]
pub async fn list_keys(
    #[server(default)] app: String,
    #[server(default)] environment: String,
    #[server(default)] status: String,
    #[server(default)] after: String,
    #[server(default)] q: String,
    #[server(default)] sort: String,
) -> Result<KeysView, AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyView, |ctx, grant| async {
        use crate::roles::Permission as P;
        let st = &ctx.state;
        let p = grant.principal();
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        let filter = KeyFilter {
            app_id: match app.as_str() {
                "" => None,
                a => Some(
                    a.parse()
                        .map_err(|_| AppError::validation("app", "Choose an app."))?,
                ),
            },
            environment: some(environment),
            status: some(status),
            q: some(q),
            after: some(after),
            limit: None,
            sort: some(sort),
        };
        let page = crate::core::keys::list_keys(&st.db, st.clock.now(), p, &filter).await?;
        let apps = crate::core::keys::apps::app_choices(&st.db).await?;
        // A new key is the viewer's own: the roles they may give it.
        let roles = crate::core::keys::role_choices(&st.db, p, p.user_id()).await?;
        Ok(KeysView {
            now: st.clock.now(),
            limits: {
                let k = crate::core::settings::keys(&st.db).await?;
                model::keys::KeyLimits {
                    max_active_per_user_per_app: k.max_active_per_user_per_app,
                    max_expiry_days: k.max_expiry_days,
                    default_expiry: k.default_expiry,
                    approval_required: k.require_approval,
                }
            },
            keys: page.keys,
            next: page.next,
            apps,
            roles,
            can_create: p.has(P::ApiKeyCreate),
            can_update: p.has(P::ApiKeyUpdate),
            can_revoke: p.has(P::ApiKeyDelete),
            can_view_all: p.has(P::ApiKeyViewAll),
        })
    })
}

/// One key with its history, for whoever may see it (their own; everyone's with
/// `api.key.view_all`); another's key is "not found".
#[server(prefix = "/fn", endpoint = "keys/get")]
pub async fn get_key(key_id: String) -> Result<KeyDetail, AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyView, |ctx, grant| async {
        use crate::roles::Permission as P;
        let st = &ctx.state;
        let p = grant.principal();
        let now = st.clock.now();
        let key = crate::core::keys::visible_key(&st.db, now, p, &key_id).await?;
        let history = crate::core::keys::history(&st.db, now, p, &key_id, HISTORY_EVENTS).await?;
        // Seen by whoever may see the key (checked just above by `visible_key`).
        let usage = crate::core::keys::usage::of_key(&st.db, &key.key_id, now).await?;
        // The roles this key may be given: within the viewer's and its owner's.
        let owner = key.owner_id.unwrap_or(p.user_id());
        let roles = crate::core::keys::role_choices(&st.db, p, owner).await?;
        Ok(KeyDetail {
            key,
            history,
            roles,
            can_update: p.has(P::ApiKeyUpdate),
            can_revoke: p.has(P::ApiKeyDelete),
            now,
            usage,
        })
    })
}

/// `expiry`: "7", "30", "90" (days), "never", or "date" with `expiry_date` (YYYY-MM-DD);
/// `expiry_end`: when the browser knows its time zone, the end of that date there (Unix
/// seconds), else the end of the date in the zone the browser named for the panel's
/// pages (`kw_tz`), else in UTC.
#[server(prefix = "/fn", endpoint = "keys/create")]
pub async fn create_key(
    name: String,
    app_id: i64,
    environment: String,
    role_id: i64,
    expiry: String,
    #[server(default)] expiry_date: String,
    #[server(default)] networks: String,
    #[server(default)] expiry_end: String,
    #[server(default)] form_token: String,
) -> Result<NewSecret, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::ApiKeyCreate, |ctx, grant| async {
        use crate::core::keys;
        let cx = ctx.cx();
        let expires_at = parse_expiry(cx.now, &expiry, &expiry_date, &expiry_end)?;
        let new = keys::NewKey {
            name: &name,
            app_id,
            environment: keys::parse_environment(&environment)?,
            role_id,
            expires_at,
            networks: keys::parse_networks("networks", &networks)?,
        };
        let made = |s: &NewSecret| {
            format!(
                "the key {} (its secret was shown only in the answer to that first \
                 submission: if nobody copied it, roll or revoke that key)",
                s.key.key_id
            )
        };
        crate::auth::ssr::once_per_form(
            &ctx,
            grant.principal().user_id(),
            &form_token,
            made,
            async {
                let (key, secret) = keys::create_key(&cx, &grant, &new).await?;
                Ok(NewSecret { key, secret })
            },
        )
        .await
    })
}

/// The end of `date` (the next midnight) in the time zone the viewer's browser named, if
/// it named one.
#[cfg(feature = "ssr")]
fn zone_end_of(date: time::Date) -> Option<i64> {
    let parts = use_context::<http::request::Parts>()?;
    let zone = crate::time_zone::ViewerZone::from_headers(&parts.headers)?;
    let day = jiff::civil::Date::new(
        i16::try_from(date.year()).ok()?,
        i8::try_from(u8::from(date.month())).ok()?,
        i8::try_from(date.day()).ok()?,
    )
    .ok()?;
    let next = day.tomorrow().ok()?.to_zoned_datetime(zone.0).ok()?;
    Some(next.timestamp().as_second())
}

#[cfg(feature = "ssr")]
fn parse_expiry(
    now: i64,
    expiry: &str,
    date: &str,
    end_there: &str,
) -> Result<Option<i64>, AppError> {
    let days = |d: i64| Ok(Some(now + d * 86_400));
    match expiry {
        "7" => days(7),
        "30" => days(30),
        "90" => days(90),
        "never" => Ok(None),
        "date" => {
            let d = time::Date::parse(
                date.trim(),
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| AppError::validation("expiry_date", "Enter a date as YYYY-MM-DD."))?;
            // The key works through the whole of that day: in the browser's time zone
            // when it said where that day ends (somewhere between UTC+14 and UTC-12),
            // else in UTC.
            let utc_end = d.midnight().assume_utc().unix_timestamp() + 86_400;
            let end = match end_there.trim() {
                // The browser did not say (no script ran): the zone it named for the
                // panel's pages (`time_zone`), else UTC.
                "" => zone_end_of(d).unwrap_or(utc_end),
                t => t
                    .parse::<i64>()
                    .ok()
                    .filter(|t| (utc_end - 14 * 3600..=utc_end + 12 * 3600).contains(t))
                    .ok_or_else(|| {
                        AppError::validation(
                            "expiry_date",
                            "The end of that date could not be read: choose it again.",
                        )
                    })?,
            };
            if end <= now {
                return Err(AppError::validation(
                    "expiry_date",
                    "Choose a date in the future.",
                ));
            }
            // (The REST contract's bound, said of the date the user chose.)
            if end > model::keys::LATEST_EXPIRY {
                return Err(AppError::validation(
                    "expiry_date",
                    "Choose a date that ends before the year 10000 where you are.",
                ));
            }
            Ok(Some(end))
        }
        _ => Err(AppError::validation(
            "expiry",
            "Choose when the key expires.",
        )),
    }
}

#[server(prefix = "/fn", endpoint = "keys/revoke")]
pub async fn revoke_key(
    key_id: String,
    #[server(default)] reason: String,
    #[server(default)] confirm: String,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyDelete, |ctx, grant| async {
        if confirm != "yes" {
            return Err(AppError::validation(
                "confirm",
                format!("Tick the box to confirm: {REVOKE_WARNING}."),
            ));
        }
        crate::core::keys::revoke(&ctx.cx(), &grant, &key_id, &reason)
            .await
            .map(|_| ())
    })
}

/// Enables a key disabled for disuse (its owner, or someone who may change its owner's
/// keys), within the active-key limit.
#[server(prefix = "/fn", endpoint = "keys/enable")]
pub async fn enable_key(key_id: String) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyUpdate, |ctx, grant| async {
        crate::core::keys::lifecycle::enable(&ctx.cx(), &grant, &key_id)
            .await
            .map(|_| ())
    })
}

/// `decision`: "approve", or "reject" with a `reason` (required).
#[server(prefix = "/fn", endpoint = "approvals/key")]
pub async fn decide_key(
    key_id: String,
    decision: String,
    #[server(default)] reason: String,
) -> Result<String, AppError> {
    crate::guarded!(
        crate::roles::Permission::ApiKeyApprove,
        |ctx, grant| async {
            use crate::core::keys::lifecycle;
            let cx = ctx.cx();
            match decision.as_str() {
                "approve" => lifecycle::approve(&cx, &grant, &key_id)
                    .await
                    .map(|k| format!("{} approved: it works from now on.", k.key_id)),
                "reject" => lifecycle::reject(&cx, &grant, &key_id, &reason)
                    .await
                    .map(|k| format!("{} rejected: it will never work.", k.key_id)),
                _ => Err(AppError::validation("decision", "Approve or reject.")),
            }
        }
    )
}

/// The grace periods the panel offers when a key is replaced (rolled, or a regenerated
/// SDK or channel key): seconds the old key keeps working, and their names.
pub const GRACE_CHOICES: [(i64, &str); 4] = [
    (0, "no time (it ends now)"),
    (3600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

/// A panel form's grace period: one of [`GRACE_CHOICES`].
#[cfg(feature = "ssr")]
pub(crate) fn chosen_grace(grace: i64) -> Result<i64, AppError> {
    if GRACE_CHOICES.iter().any(|(secs, _)| *secs == grace) {
        Ok(grace)
    } else {
        Err(AppError::validation("grace", "Choose a grace period."))
    }
}

/// `grace`: seconds the old key keeps working (one of [`GRACE_CHOICES`]).
#[server(prefix = "/fn", endpoint = "keys/roll")]
pub async fn roll_key(key_id: String, grace: i64) -> Result<NewSecret, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::ApiKeyUpdate, |ctx, grant| async {
        let grace = chosen_grace(grace)?;
        let (key, secret) = crate::core::keys::roll(&ctx.cx(), &grant, &key_id, grace).await?;
        Ok(NewSecret { key, secret })
    })
}

/// `networks`: the key's own allow-list, one entry per line, replaced when
/// `set_networks` is "yes" (the key's page sends both; the table's row form neither, and
/// an emptied field must still mean "no list of its own").
#[server(prefix = "/fn", endpoint = "keys/update")]
pub async fn update_key(
    key_id: String,
    name: String,
    role_id: i64,
    #[server(default)] networks: String,
    #[server(default)] set_networks: String,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::ApiKeyUpdate, |ctx, grant| async {
        let networks = match set_networks.as_str() {
            "yes" => Some(crate::core::keys::parse_networks("networks", &networks)?),
            "" => None,
            _ => return Err(AppError::validation("set_networks", "Send yes or nothing.")),
        };
        let change = crate::core::keys::KeyChange {
            key_id: &key_id,
            name: Some(&name),
            role_id: Some(role_id),
            networks,
        };
        crate::core::keys::update(&ctx.cx(), &grant, &change)
            .await
            .map(|_| ())
    })
}

#[server(prefix = "/fn", endpoint = "apps/list")]
pub async fn list_apps() -> Result<Vec<AppInfo>, AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, _grant| async {
        crate::core::keys::apps::list_apps(&ctx.state.db)
            .await
            .map_err(AppError::internal)
    })
}

#[server(prefix = "/fn", endpoint = "apps/create")]
pub async fn create_app(
    name: String,
    #[server(default)] networks: String,
    #[server(default)] form_token: String,
) -> Result<i64, AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        let app = crate::core::keys::apps::AppInput {
            name: &name,
            networks: crate::core::keys::parse_networks("networks", &networks)?,
        };
        let made = |_: &i64| format!("the app {}", name.trim());
        crate::auth::ssr::once_per_form(
            &ctx,
            grant.principal().user_id(),
            &form_token,
            made,
            async { crate::core::keys::apps::create_app(&ctx.cx(), &grant, &app).await },
        )
        .await
    })
}

#[server(prefix = "/fn", endpoint = "apps/update")]
pub async fn update_app(
    id: i64,
    name: String,
    #[server(default)] networks: String,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        let app = crate::core::keys::apps::AppInput {
            name: &name,
            networks: crate::core::keys::parse_networks("networks", &networks)?,
        };
        crate::core::keys::apps::update_app(&ctx.cx(), &grant, id, &app).await
    })
}

/// Replaces an app's public SDK key for one environment; `grace`: seconds the old one
/// keeps working (0, 3600, 86400 or 604800; absent: 0).
#[server(prefix = "/fn", endpoint = "apps/regenerate_sdk_key")]
pub async fn regenerate_sdk_key(
    app_id: i64,
    environment: String,
    #[server(default)] grace: i64,
) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        let grace = chosen_grace(grace)?;
        let env = crate::core::keys::parse_environment(&environment)?;
        crate::core::keys::apps::regenerate_sdk_key(&ctx.cx(), &grant, app_id, env, grace).await
    })
}

/// Registers a webhook URL for an app, or gives a registered one a new signing secret.
/// Returns the secret: the only time it is shown.
#[server(prefix = "/fn", endpoint = "apps/webhooks/register")]
pub async fn register_webhook(app_id: i64, url: String) -> Result<String, AppError> {
    crate::auth::ssr::carries_secret();
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        let st = &ctx.state;
        crate::core::messages::webhooks::register(
            &st.db,
            st.clock.now(),
            st.master_key.expose(),
            &grant,
            &ctx.origin(),
            app_id,
            &url,
        )
        .await
    })
}

/// The key events a registered webhook URL of an app is sent (`events[]`: exactly
/// these; none: no events).
#[server(prefix = "/fn", endpoint = "apps/webhooks/events")]
pub async fn subscribe_events(
    app_id: i64,
    url: String,
    #[server(default)] events: Vec<String>,
) -> Result<Vec<String>, AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        let st = &ctx.state;
        crate::core::messages::events::subscribe(
            &st.db,
            st.clock.now(),
            &grant,
            &ctx.origin(),
            app_id,
            &url,
            &events,
        )
        .await
    })
}

/// Removes a registered webhook URL from an app (messages not yet sent to it fail).
#[server(prefix = "/fn", endpoint = "apps/webhooks/remove")]
pub async fn remove_webhook(app_id: i64, url: String) -> Result<(), AppError> {
    crate::guarded!(crate::roles::Permission::AppManage, |ctx, grant| async {
        let st = &ctx.state;
        crate::core::messages::webhooks::remove(
            &st.db,
            st.clock.now(),
            &grant,
            &ctx.origin(),
            app_id,
            &url,
        )
        .await
    })
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_date_must_end_before_the_year_10000_where_the_user_is() {
        let now = 1_800_000_000;
        // 9999-12-31 ends after the last second of 9999 anywhere west of UTC+1 (here
        // UTC-5): refused, beside the date field.
        let utc_end = model::keys::LATEST_EXPIRY + 1;
        let west = (utc_end + 5 * 3600).to_string();
        match parse_expiry(now, "date", "9999-12-31", &west) {
            Err(AppError::Validation { field, message }) => {
                assert_eq!(field, "expiry_date");
                assert!(message.contains("before the year 10000"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The day before ends in time even at UTC-12; 9999-12-31 does at UTC+14.
        let day_before = (utc_end - 86_400 + 12 * 3600).to_string();
        assert_eq!(
            parse_expiry(now, "date", "9999-12-30", &day_before).unwrap(),
            Some(utc_end - 86_400 + 12 * 3600)
        );
        let east = (utc_end - 14 * 3600).to_string();
        assert_eq!(
            parse_expiry(now, "date", "9999-12-31", &east).unwrap(),
            Some(utc_end - 14 * 3600)
        );
    }
}
