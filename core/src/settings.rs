//! Organisation settings, stored as JSON per group in `settings`. The security group
//! (`/settings`, Settings > General) decides who may sign in and from where, the session
//! timeouts and the sign-in throttling limits. It is read from the database on every
//! panel request, so a change applies at once on every instance.

use crate::{
    access::Grant,
    audit::{self, Actor, Event},
    identity::address::normalise_domain,
    infra::config::{parse_cidr, Config},
    infra::db::Db,
    state::Ctx,
};
use ipnet::IpNet;
use model::error::AppError;
use model::roles::Permission;
use model::settings::{
    AlertSettings, ChannelPolicy, ChannelSettings, KeySettings, MessageSettings, SecuritySettings,
};
use std::net::IpAddr;

const SECURITY: &str = "security";
const KEYS: &str = "keys";
const MESSAGES: &str = "messages";
const ALERTS: &str = "alerts";
const CHANNELS: &str = "channels";
/// The row `lock_security` takes (no settings in it).
const SECURITY_LOCK: &str = "security_lock";
const MAX_LINES: usize = 500;

/// The security settings now: the saved ones, else (never saved) the defaults, with
/// timeouts from the configuration.
///
/// Fails closed: a saved value this version cannot read is an error, never the
/// defaults — those would silently drop the network allow-list and a required second
/// factor. The panel then answers 503 until an operator repairs or deletes the row.
pub async fn security(db: &Db, config: &Config) -> Result<SecuritySettings, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("select value from settings where name = $1")
        .bind(SECURITY)
        .fetch_optional(&db.pool)
        .await?;
    match row {
        Some((json,)) => parse_stored(SECURITY, &json),
        None => Ok(defaults(config)),
    }
}

/// A stored settings group, or a decode error that names the group (fail closed).
fn parse_stored<T: serde::de::DeserializeOwned>(name: &str, json: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(json).map_err(|e| {
        tracing::error!(
            error = %e,
            group = name,
            "stored settings unreadable: refusing what depends on them until the settings row is repaired (or deleted, for the defaults)"
        );
        sqlx::Error::Decode(Box::new(e))
    })
}

pub fn defaults(config: &Config) -> SecuritySettings {
    SecuritySettings {
        session_idle_minutes: (config.session_idle.as_secs() / 60) as u32,
        session_absolute_hours: (config.session_absolute.as_secs() / 3600) as u32,
        ..SecuritySettings::default()
    }
}

/// The panel allow-list as networks (entries were validated when saved).
pub fn networks(s: &SecuritySettings) -> Vec<IpNet> {
    s.panel_networks
        .iter()
        .filter_map(|n| parse_cidr(n))
        .collect()
}

/// True when the panel may be used from `ip` (an empty list allows every address).
pub fn network_allowed(s: &SecuritySettings, ip: IpAddr) -> bool {
    s.panel_networks.is_empty() || networks(s).iter().any(|n| n.contains(&ip))
}

/// True when a normalised email's domain is on the list (an empty list allows any).
/// Exact match: a subdomain is not its parent.
pub fn domain_allowed(s: &SecuritySettings, normalised_email: &str) -> bool {
    s.allowed_domains.is_empty()
        || s.allowed_domains
            .iter()
            .any(|d| d == crate::identity::address::email_domain(normalised_email))
}

pub use model::settings::SecurityForm;

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l))
}

fn range(field: &str, label: &str, v: u32, min: u32, max: u32) -> Result<u32, AppError> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(AppError::validation(
            field,
            format!("{label} must be between {min} and {max}."),
        ))
    }
}

/// [`range`] for a number as typed into a form.
fn typed_range(field: &str, label: &str, text: &str, min: u32, max: u32) -> Result<u32, AppError> {
    let v = text.trim().parse::<u32>().map_err(|_| {
        AppError::validation(
            field,
            format!("{label} must be a whole number between {min} and {max}."),
        )
    })?;
    range(field, label, v, min, max)
}

/// Validates the form; `you` is the address of the admin saving it, which the panel
/// allow-list must contain.
pub fn parse_form(f: &SecurityForm, you: IpAddr) -> Result<SecuritySettings, AppError> {
    let mut domains = Vec::new();
    for (n, line) in lines(&f.allowed_domains) {
        let d = normalise_domain(line).map_err(|m| {
            AppError::validation("allowed_domains", format!("Line {n} ({line}): {m}"))
        })?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    let mut nets: Vec<IpNet> = Vec::new();
    for (n, line) in lines(&f.panel_networks) {
        let net = parse_cidr(line).ok_or_else(|| {
            AppError::validation(
                "panel_networks",
                format!("Line {n} ({line}) is not an IP address or a range such as 10.0.0.0/8 or 2001:db8::/32 (a range is written from its first address)."),
            )
        })?;
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    if domains.len() > MAX_LINES || nets.len() > MAX_LINES {
        return Err(AppError::validation(
            "form",
            format!("At most {MAX_LINES} entries per list."),
        ));
    }
    if !nets.is_empty() && !nets.iter().any(|n| n.contains(&you)) {
        return Err(AppError::validation(
            "panel_networks",
            format!("This list would block your own address ({you}). Add it, or a range that contains it, first."),
        ));
    }
    let idle = typed_range(
        "session_idle_minutes",
        "The idle timeout",
        &f.session_idle_minutes,
        5,
        24 * 60,
    )?;
    let absolute = typed_range(
        "session_absolute_hours",
        "The absolute timeout",
        &f.session_absolute_hours,
        1,
        24 * 30,
    )?;
    if u64::from(idle) * 60 > u64::from(absolute) * 3600 {
        return Err(AppError::validation(
            "session_idle_minutes",
            "The idle timeout cannot be longer than the absolute timeout.",
        ));
    }
    let second_factor_required = match f.second_factor.as_str() {
        "off" => false,
        "required" => true,
        _ => {
            return Err(AppError::validation(
                "second_factor",
                "Choose whether a second factor is required.",
            ))
        }
    };
    let ticked = |v: &str| v == "true";
    let (accept_totp, accept_email_code, accept_sms_code) = (
        ticked(&f.accept_totp),
        ticked(&f.accept_email_code),
        ticked(&f.accept_sms_code),
    );
    if !(accept_totp || accept_email_code || accept_sms_code) {
        return Err(AppError::validation(
            "accept_totp",
            "Accept at least one second factor.",
        ));
    }
    let sms_code_from = if f.sms_code_from.trim().is_empty() {
        String::new()
    } else {
        crate::infra::phone::e164("sms_code_from", &f.sms_code_from)?
    };
    if accept_sms_code && sms_code_from.is_empty() {
        return Err(AppError::validation(
            "sms_code_from",
            "Choose the sender number SMS codes are sent from (add one on the Channels page first).",
        ));
    }
    Ok(SecuritySettings {
        second_factor_required,
        accept_totp,
        accept_email_code,
        accept_sms_code,
        sms_code_from,
        allowed_domains: domains,
        panel_networks: nets.iter().map(ToString::to_string).collect(),
        session_idle_minutes: idle,
        session_absolute_hours: absolute,
        throttle_account_attempts: typed_range(
            "throttle_account_attempts",
            "Free attempts per account",
            &f.throttle_account_attempts,
            1,
            100,
        )?,
        throttle_ip_attempts: typed_range(
            "throttle_ip_attempts",
            "Free attempts per address",
            &f.throttle_ip_attempts,
            1,
            10_000,
        )?,
        throttle_max_delay_secs: typed_range(
            "throttle_max_delay_secs",
            "The longest delay",
            &f.throttle_max_delay_secs,
            1,
            3600,
        )?,
    })
}

/// Saves the security settings with their audit row (old and new values).
pub async fn save_security(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    new: &SecuritySettings,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::SettingsManage)?;
    let json = serde_json::to_string(new).map_err(AppError::internal)?;
    let mut tx = cx.st.db.pool.begin().await?;
    // With the row locked: a sender number removed meanwhile is seen here, and a removal
    // waits for this save and then sees it.
    lock_security(&mut tx, &cx.st.config, cx.now).await?;
    if !new.sms_code_from.is_empty() {
        let known: Option<(i64,)> =
            sqlx::query_as("select id from sender_numbers where number = $1")
                .bind(&new.sms_code_from)
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            return Err(AppError::validation(
                "sms_code_from",
                "Choose one of the sender numbers (Channels page).",
            ));
        }
    }
    let old = security_in(&mut tx, &cx.st.config).await?;
    let change = Change {
        row: SECURITY,
        label: "general",
        old: &old,
        new,
    };
    store_in(tx, cx, p, change, &json).await
}

/// Takes Settings > General's lock for the rest of `tx`: a save of these settings, the
/// removal of a sender number and the removal of a phone take turns on it, so none of
/// them decides on what another is changing at the same moment. The lock is a row of
/// its own (written unchanged, or made empty), so taking it never writes the settings:
/// unsaved settings keep following the configuration's defaults.
pub async fn lock_security(
    tx: &mut sqlx::AnyConnection,
    _config: &Config,
    now: i64,
) -> Result<(), AppError> {
    sqlx::query(
        "insert into settings (name, value, created_at, updated_at) values ($1, '{}', $2, $2) \
         on conflict (name) do update set updated_at = settings.updated_at",
    )
    .bind(SECURITY_LOCK)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Settings > General as saved, read inside `tx` (after [`lock_security`]).
pub async fn security_in(
    tx: &mut sqlx::AnyConnection,
    config: &Config,
) -> Result<SecuritySettings, AppError> {
    let row: Option<(String,)> = sqlx::query_as("select value from settings where name = $1")
        .bind(SECURITY)
        .fetch_optional(&mut *tx)
        .await?;
    match row {
        Some((json,)) => Ok(parse_stored(SECURITY, &json)?),
        None => Ok(defaults(config)),
    }
}

/// One settings group's change: its row, how the audit log names it, and both values.
struct Change<'a, T> {
    row: &'a str,
    label: &'a str,
    old: &'a T,
    new: &'a T,
}

/// Writes one settings group (`settings.manage`) with its audit row (old and new
/// values), in one transaction.
async fn store<T: serde::Serialize>(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    change: Change<'_, T>,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::SettingsManage)?;
    let json = serde_json::to_string(change.new).map_err(AppError::internal)?;
    let tx = cx.st.db.pool.begin().await?;
    store_in(tx, cx, p, change, &json).await
}

/// [`store`] in the caller's transaction (which may hold locks and checks of its own).
async fn store_in<T: serde::Serialize>(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    cx: &Ctx<'_>,
    p: &crate::access::Principal,
    change: Change<'_, T>,
    json: &str,
) -> Result<(), AppError> {
    let (now, origin) = (cx.now, cx.origin);
    let Change {
        row: name,
        label,
        old,
        new,
    } = change;
    sqlx::query(
        "insert into settings (name, value, created_at, updated_at) values ($1, $2, $3, $3) \
         on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(json)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        Actor::User(p.user_id()),
        "settings.changed",
        origin,
        Some(label.into()),
        serde_json::json!({ "from": old, "to": new }),
    );
    audit::commit(tx, now, &ev).await.map_err(AppError::from)
}

/// A settings group as saved, else (never saved) its defaults; a saved value this
/// version cannot read is an error (fail closed).
async fn load<T: serde::de::DeserializeOwned + Default>(
    db: &Db,
    name: &str,
) -> Result<T, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("select value from settings where name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    match row {
        Some((json,)) => parse_stored(name, &json),
        None => Ok(T::default()),
    }
}

/// Settings > Keys now (defaults when never saved).
pub async fn keys(db: &Db) -> Result<KeySettings, sqlx::Error> {
    load(db, KEYS).await
}

/// Settings > Channels now (the presets when never saved).
pub async fn channels(db: &Db) -> Result<ChannelSettings, sqlx::Error> {
    load(db, CHANNELS).await
}

/// One channel's policy from its settings form (SMS: who creates, how many and how
/// counted are fixed, and the form does not send them).
pub fn parse_channel(
    channel: &str,
    f: &model::settings::ChannelPolicyForm,
) -> Result<ChannelPolicy, AppError> {
    let mut f = f.clone();
    if channel == "sms" {
        let fixed = ChannelSettings::sms_preset();
        f.create_permission = fixed.create_permission;
        f.max_active = fixed.max_active.to_string();
        f.per = fixed.per;
    }
    let yes = |field: &str, v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AppError::validation(field, "Choose one of the options.")),
    };
    check_channel(
        channel,
        ChannelPolicy {
            create_permission: f.create_permission.clone(),
            max_active: typed_range(
                "max_active",
                "The number of active keys",
                &f.max_active,
                1,
                1000,
            )?,
            per: f.per.clone(),
            reveal: yes("reveal", &f.reveal)?,
            regenerate: yes("regenerate", &f.regenerate)?,
            max_expiry_days: typed_range(
                "max_expiry_days",
                "The longest expiry",
                &f.max_expiry_days,
                0,
                3650,
            )?,
            require_networks: yes("require_networks", &f.require_networks)?,
        },
    )
}

/// One channel's policy, checked.
pub fn check_channel(channel: &str, p: ChannelPolicy) -> Result<ChannelPolicy, AppError> {
    if channel == "sms" {
        let fixed = ChannelSettings::sms_preset();
        if (&p.create_permission, p.max_active, &p.per)
            != (&fixed.create_permission, fixed.max_active, &fixed.per)
        {
            return Err(AppError::validation(
                "per",
                "SMS keys are one per sender number, made by whoever adds the number (app.manage).",
            ));
        }
        range(
            "max_expiry_days",
            "The longest expiry",
            p.max_expiry_days,
            0,
            3650,
        )?;
        return Ok(p);
    }
    if !matches!(
        p.create_permission.as_str(),
        "api.key.create" | "channel.key.manage"
    ) {
        return Err(AppError::validation(
            "create_permission",
            "Choose api.key.create or channel.key.manage.",
        ));
    }
    range(
        "max_active",
        "The number of active keys",
        p.max_active,
        1,
        1000,
    )?;
    if !matches!(p.per.as_str(), "user" | "deployment") {
        return Err(AppError::validation(
            "per",
            "Count per user or for the deployment.",
        ));
    }
    range(
        "max_expiry_days",
        "The longest expiry",
        p.max_expiry_days,
        0,
        3650,
    )?;
    Ok(p)
}

/// Saves `channel`'s policy (the others unchanged), audited with the old and new values.
pub async fn save_channel(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    channel: &str,
    policy: ChannelPolicy,
) -> Result<(), AppError> {
    if !ChannelSettings::CHANNELS.contains(&channel) {
        return Err(AppError::validation(
            "channel",
            "Choose email, SMS, RCS or WhatsApp.",
        ));
    }
    let old = channels(&cx.st.db).await?;
    let mut new = old.clone();
    *new.get_mut(channel) = check_channel(channel, policy)?;
    let reveal = new.get(channel).reveal;
    let change = Change {
        row: CHANNELS,
        label: "channels",
        old: &old,
        new: &new,
    };
    store(cx, grant, change).await?;
    // Shown once from now on: the kept secrets go (turning reveal on again later does
    // not bring them back; keys made meanwhile are sealed again).
    if !reveal {
        sqlx::query(
            "update api_keys set secret_sealed = null where channel = $1 and secret_sealed is not null",
        )
        .bind(channel)
        .execute(&cx.st.db.pool)
        .await?;
    }
    Ok(())
}

/// Settings > Alerts now (defaults when never saved).
pub async fn alerts(db: &Db) -> Result<AlertSettings, sqlx::Error> {
    load(db, ALERTS).await
}

/// Validates Settings > Alerts as typed.
pub fn parse_alerts(
    key_refusals: u32,
    key_window_minutes: u32,
    sign_in_failures: u32,
    sign_in_window_minutes: u32,
) -> Result<AlertSettings, AppError> {
    Ok(AlertSettings {
        key_refusals: range(
            "key_refusals",
            "The refused requests",
            key_refusals,
            0,
            1_000_000,
        )?,
        key_window_minutes: range(
            "key_window_minutes",
            "The window",
            key_window_minutes,
            1,
            1440,
        )?,
        sign_in_failures: range(
            "sign_in_failures",
            "The failed sign-ins",
            sign_in_failures,
            0,
            10_000,
        )?,
        sign_in_window_minutes: range(
            "sign_in_window_minutes",
            "The window",
            sign_in_window_minutes,
            1,
            1440,
        )?,
    })
}

pub async fn save_alerts(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    new: &AlertSettings,
) -> Result<(), AppError> {
    let old = alerts(&cx.st.db).await?;
    let change = Change {
        row: ALERTS,
        label: "alerts",
        old: &old,
        new,
    };
    store(cx, grant, change).await
}

/// Settings > Messages now (defaults when never saved).
pub async fn messages(db: &Db) -> Result<MessageSettings, sqlx::Error> {
    load(db, MESSAGES).await
}

/// Validates Settings > Messages as typed: `overrides` holds `app_id=choice` entries
/// (`default`, `required`, `not_required`) for apps that exist.
pub async fn parse_messages(
    db: &Db,
    approval_required: &str,
    approvals_needed: u32,
    pending_expiry_hours: u32,
    overrides: &[String],
) -> Result<MessageSettings, AppError> {
    let approval_required = match approval_required {
        "required" => true,
        "not_required" => false,
        _ => {
            return Err(AppError::validation(
                "approval_required",
                "Choose whether messages need approval.",
            ))
        }
    };
    let approvals_needed = range(
        "approvals_needed",
        "Approvals needed",
        approvals_needed,
        1,
        2,
    )?;
    let pending_expiry_hours = range(
        "pending_expiry_hours",
        "The waiting time",
        pending_expiry_hours,
        1,
        24 * 90,
    )?;
    let apps: Vec<(i64,)> = sqlx::query_as("select id from apps")
        .fetch_all(&db.pool)
        .await?;
    // No rules sent (a form of an older page, or one without apps): the saved ones stay.
    // Rules sent: one per app, every app, each once — a stale or doctored form that
    // leaves one out or names one twice would silently change what it does not show.
    if overrides.is_empty() {
        let kept = messages(db)
            .await?
            .app_overrides
            .into_iter()
            .filter(|(a, _)| apps.iter().any(|(x,)| x == a))
            .collect();
        return Ok(MessageSettings {
            approval_required,
            approvals_needed,
            pending_expiry_hours,
            app_overrides: kept,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut app_overrides = Vec::new();
    for entry in overrides.iter().take(10_000) {
        let bad = || {
            AppError::validation(
                "overrides",
                format!(
                    "`{}` is not an app rule.",
                    entry.chars().take(60).collect::<String>()
                ),
            )
        };
        let (id, choice) = entry.split_once('=').ok_or_else(bad)?;
        let id: i64 = id.trim().parse().map_err(|_| bad())?;
        if !apps.iter().any(|(a,)| *a == id) {
            return Err(bad());
        }
        if !seen.insert(id) {
            return Err(AppError::validation(
                "overrides",
                "Each app has one rule: this form names one twice. Reload the page.",
            ));
        }
        let required = match choice.trim() {
            "default" => continue,
            "required" => true,
            "not_required" => false,
            _ => return Err(bad()),
        };
        app_overrides.push((id, required));
    }
    if seen.len() != apps.len() {
        return Err(AppError::validation(
            "overrides",
            "The apps changed since this page was loaded: reload it and choose again.",
        ));
    }
    Ok(MessageSettings {
        approval_required,
        approvals_needed,
        pending_expiry_hours,
        app_overrides,
    })
}

pub async fn save_messages(
    cx: &Ctx<'_>,
    grant: &Grant<'_>,
    new: &MessageSettings,
) -> Result<(), AppError> {
    let old = messages(&cx.st.db).await?;
    let change = Change {
        row: MESSAGES,
        label: "messages",
        old: &old,
        new,
    };
    store(cx, grant, change).await
}

/// Settings > Keys as a form or a request gave them, checked: every value in its range
/// and the default expiry within the maximum.
pub fn check_keys(new: KeySettings) -> Result<KeySettings, AppError> {
    if !matches!(new.leak_action.as_str(), "revoke" | "flag") {
        return Err(AppError::validation(
            "leak_action",
            "Choose what happens to a key reported as leaked.",
        ));
    }
    range(
        "max_active_per_user_per_app",
        "The key limit",
        new.max_active_per_user_per_app,
        1,
        1000,
    )?;
    let max_days = range(
        "max_expiry_days",
        "The longest expiry",
        new.max_expiry_days,
        0,
        3650,
    )?;
    let default_days = match new.default_expiry.as_str() {
        "7" => Some(7),
        "30" => Some(30),
        "90" => Some(90),
        "never" => None,
        _ => {
            return Err(AppError::validation(
                "default_expiry",
                "Choose a default expiry.",
            ))
        }
    };
    if max_days > 0 && default_days.is_none_or(|d| d > max_days) {
        return Err(AppError::validation(
            "default_expiry",
            format!("The default expiry must be within the maximum of {max_days} days."),
        ));
    }
    // A week at least: a key used weekly must never be disabled between two uses.
    if new.disable_unused_days != 0 && !(7..=3650).contains(&new.disable_unused_days) {
        return Err(AppError::validation(
            "disable_unused_days",
            "Disable keys after 7 to 3650 days without use, or 0 for never.",
        ));
    }
    Ok(new)
}

pub async fn save_keys(cx: &Ctx<'_>, grant: &Grant<'_>, new: &KeySettings) -> Result<(), AppError> {
    let old = keys(&cx.st.db).await?;
    let change = Change {
        row: KEYS,
        label: "keys",
        old: &old,
        new,
    };
    store(cx, grant, change).await
}
