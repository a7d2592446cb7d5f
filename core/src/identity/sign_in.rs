//! Sign-in, the domain part: checking credentials and second-step codes, throttling,
//! device tokens, the audit trail and the mail to the account's owner. The panel keeps
//! only what belongs to HTTP: the session (its ID, the pending step's keys), cookies.
//!
//! 1. [`check_credentials`]: the attempt is counted before any password work (per
//!    account and per address, a browser that completed a sign-in to the account before
//!    keeping its own allowance: see `throttle`); argon2 always runs, against a dummy
//!    hash when there is no user, so unknown user, wrong password and disabled user get
//!    the same answer in about the same time; the real reason goes to the audit log.
//!    The answer says which second step follows, if any.
//! 2. [`second_step_started`]: audited; an email or SMS code is sent when that is the
//!    step. Which steps a user may take ([`factors_of`]) follows Settings > General's
//!    accepted factors: an authenticator app for users who set one up; else a code by
//!    SMS to a confirmed phone, or by email (the user may switch between the two).
//! 3. [`check_second_step`]: failures count per account across sign-ins (a correct
//!    password does not clear them); at the alert threshold the owner is told, once.
//! 4. [`signed_in`]: the account's failures are forgotten, the sign-in is audited, and
//!    the owner is told when the browser had not signed in to the account before.

use crate::{
    audit::{self, Actor, Event, Outcome},
    identity::{
        address, device, email_code,
        notify::{self, AccountEvent},
        phone, throttle, totp,
        users::{self, UserRow, UserStatus},
    },
    infra::password,
    settings,
    state::Ctx,
};
use model::error::AppError;
pub use model::users::{SecondFactor, GENERIC_SIGN_IN_ERROR as GENERIC_ERROR};
use std::net::IpAddr;

/// The browser making the attempt: its address and the device cookie it sent (when it
/// sent exactly one).
#[derive(Debug, Clone, Copy)]
pub struct Browser<'a> {
    pub ip: IpAddr,
    pub device_cookie: Option<&'a str>,
}

/// What a device token is bound to: the account, its current password hash, and the
/// second step as it is now (when the authenticator was confirmed, and whether Settings
/// require a second factor). A password change, an authenticator set up or removed, or
/// a second factor required ends every token made before, including the ones someone
/// with only the password could make while no second step was asked for. `None` when
/// the binding cannot be read (the browser then counts as unknown: fail closed).
async fn device_account(cx: &Ctx<'_>, user: &UserRow) -> Option<String> {
    let st = cx.st;
    let totp = totp::enrolled_at(&st.db, user.id).await.ok()?;
    let required = settings::security(&st.db, &st.config)
        .await
        .ok()?
        .second_factor_required;
    Some(format!(
        "{}\0{}\0{totp:?}\0{required}",
        user.email, user.password_hash
    ))
}

/// The id of the browser's device token for `user`, if it holds a valid one: it
/// completed a sign-in to that account since the password and the second step were last
/// set.
pub async fn device_of(cx: &Ctx<'_>, user: &UserRow, browser: Browser<'_>) -> Option<String> {
    let cookie = browser.device_cookie?;
    let account = device_account(cx, user).await?;
    device::check(cx.st.master_key.expose(), &account, cookie, cx.now)
}

/// The device cookie's new value after a completed sign-in to `user` (keeping the
/// tokens of other accounts the browser holds).
pub async fn device_cookie_value(
    cx: &Ctx<'_>,
    user: &UserRow,
    browser: Browser<'_>,
) -> Option<String> {
    let account = device_account(cx, user).await?;
    Some(device::with_token(
        cx.st.master_key.expose(),
        &account,
        browser.device_cookie,
        cx.now,
    ))
}

fn event<'a>(
    cx: &Ctx<'_>,
    actor: Actor<'a>,
    action: &'a str,
    outcome: Outcome,
    target: Option<String>,
    details: serde_json::Value,
) -> Event<'a> {
    let mut ev = Event::success(actor, action, cx.origin, target, details);
    ev.outcome = outcome;
    ev
}

/// A correct password: whose, and which second step follows (`None`: signed in now).
#[derive(Debug)]
pub struct PasswordOk {
    pub user: UserRow,
    pub next: Option<SecondFactor>,
    /// The browser's device token for the account, if it holds one.
    pub device: Option<String>,
}

/// The first step of a sign-in (see the module's documentation).
#[tracing::instrument(skip_all)]
pub async fn check_credentials(
    cx: &Ctx<'_>,
    browser: Browser<'_>,
    email: &str,
    password: &str,
) -> Result<PasswordOk, AppError> {
    let st = cx.st;
    let failed = || AppError::validation("credentials", GENERIC_ERROR);
    if email.trim().is_empty() || password.is_empty() {
        return Err(AppError::validation(
            "credentials",
            "Enter your email and password.",
        ));
    }
    // Refused before any hashing: a huge password must not cost CPU.
    if password::is_too_long(password) || email.len() > 320 {
        return Err(failed());
    }
    let settings = settings::security(&st.db, &st.config).await?;
    let normalised = address::normalise_email(email).ok();
    let account = normalised
        .clone()
        .unwrap_or_else(|| email.trim().to_lowercase());
    let user = match &normalised {
        Some(e) => users::find_by_email(&st.db, e).await?,
        None => None,
    };
    let device = match &user {
        Some(u) => device_of(cx, u, browser).await,
        None => None,
    };
    if let Err(e) = throttle::attempt(
        &st.db,
        &settings,
        cx.now,
        &account,
        browser.ip,
        device.as_deref(),
    )
    .await
    {
        tracing::info!(ip = %browser.ip, "sign-in refused: throttled");
        return Err(e);
    }
    let matches = st
        .hasher
        // An invited user has no password yet: the dummy hash keeps the timing.
        .verify(
            password,
            user.as_ref()
                .map(|u| u.password_hash.as_str())
                .filter(|h| !h.is_empty()),
        )
        .await
        .map_err(AppError::internal)?;
    let reason = match &user {
        None => Some("unknown_user"),
        Some(u) if u.status == UserStatus::Invited => Some("invitation_not_accepted"),
        Some(_) if !matches => Some("wrong_password"),
        Some(u) if u.status != UserStatus::Active => Some("user_not_active"),
        Some(u) if !settings::domain_allowed(&settings, &u.email) => Some("domain_not_allowed"),
        Some(_) => None,
    };
    if let Some(reason) = reason {
        let actor = user
            .as_ref()
            .map_or(Actor::Anonymous, |u| Actor::User(u.id));
        let details = serde_json::json!({ "reason": reason });
        let ev = event(
            cx,
            actor,
            "auth.sign_in",
            Outcome::Failure,
            normalised,
            details,
        );
        audit::record(&st.db, cx.now, &ev).await?;
        tracing::info!(reason, ip = %browser.ip, "sign-in failed");
        if let (Some(u), "wrong_password") = (&user, reason) {
            failure_alert(cx, u.id, &u.email, u.status == UserStatus::Active).await;
        }
        return Err(failed());
    }
    let Some(user) = user else {
        return Err(failed());
    };
    // The password counters are cleared when the sign-in completes, not here: a correct
    // password alone (without the second step) earns nothing.

    // The second step (see `factors_of`).
    let factors = factors_of(cx, &settings, user.id).await?;
    // Required for everyone, or chosen by the user (an authenticator app: when the app is
    // no longer accepted they get a code by SMS or email instead, never less; only when
    // no accepted factor is left for them and none is required does the password do).
    let enrolled = totp::is_enrolled(&st.db, user.id).await?;
    let needed = settings.second_factor_required || (enrolled && !factors.is_empty());
    let next = match (needed, factors.first()) {
        (false, _) => None,
        (true, Some(f)) => Some(*f),
        (true, None) => {
            let details = serde_json::json!({ "reason": "no_accepted_second_factor" });
            let ev = event(
                cx,
                Actor::User(user.id),
                "auth.sign_in",
                Outcome::Failure,
                Some(user.email.clone()),
                details,
            );
            audit::record(&st.db, cx.now, &ev).await?;
            return Err(AppError::validation(
                "credentials",
                "Your account has none of the second factors this server accepts (Settings > General). Ask an administrator.",
            ));
        }
    };
    Ok(PasswordOk { user, next, device })
}

/// The second steps `user_id` may take now, the one to use first: an authenticator app
/// when they set one up and it is accepted (then only that); else an SMS code when they
/// confirmed a phone and SMS codes are on, and an email code when accepted.
pub async fn factors_of(
    cx: &Ctx<'_>,
    settings: &model::settings::SecuritySettings,
    user_id: i64,
) -> Result<Vec<SecondFactor>, AppError> {
    if settings.accept_totp && totp::is_enrolled(&cx.st.db, user_id).await? {
        return Ok(vec![SecondFactor::Totp]);
    }
    let mut out = Vec::new();
    if phone::code_sender_under(cx, settings).await?.is_some()
        && phone::confirmed(&cx.st.db, user_id).await?.is_some()
    {
        out.push(SecondFactor::Sms);
    }
    if settings.accept_email_code {
        out.push(SecondFactor::Email);
    }
    Ok(out)
}

/// Where a sign-in may send the browser afterwards (the page a signed-out visitor asked
/// for, carried as `next` through the sign-in forms): a path of this site only. Anything
/// else — another origin (`https://…`, `//host`, `/\host`, which browsers read as
/// `//host`), a control character, a sign-in page itself, more than 2,000 characters —
/// gives `None`, and the caller sends the browser to the overview. The path must also be
/// written plainly: no empty segment (`/a//b`) and no `.` or `..` segment, spelt with dots
/// or `%2e` (a browser resolves `/.//host` to the path `//host`, and `/./login` is the
/// sign-in page the prefixes below refuse).
pub fn return_path(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let segments = path.split('/').skip(1).count();
    let plain = path.split('/').skip(1).enumerate().all(|(i, seg)| {
        let dots = seg.to_ascii_lowercase().replace("%2e", ".");
        // (Empty only at the end: `/`, `/keys/`.)
        !(seg.is_empty() && i + 1 < segments) && dots != "." && dots != ".."
    });
    let ok = plain
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2000
        && next.bytes().all(|b| b.is_ascii_graphic())
        && !next.starts_with("/login")
        && !next.starts_with("/fn/")
        && !next.starts_with("/api/");
    ok.then_some(next)
}

/// `page` with `next` added to its query (percent-encoded) when `next` is a place to
/// return to ([`return_path`]); else `page` as it is.
pub fn with_return(page: &str, next: &str) -> String {
    match return_path(next) {
        // The overview is where a sign-in goes anyway.
        Some("/") | None => page.to_owned(),
        Some(next) => {
            let sep = if page.contains('?') { '&' } else { '?' };
            let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            format!("{page}{sep}next={next}")
        }
    }
}

/// A new name for a pending sign-in (144 random bits, URL-safe): an email code is bound
/// to the attempt that asked for it.
pub fn new_attempt_id() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// After a correct password, once the session waits for the second step: audited, and
/// the email code sent when that is the step. `attempt` names this pending sign-in.
pub async fn second_step_started(
    cx: &Ctx<'_>,
    ok: &PasswordOk,
    method: SecondFactor,
    attempt: &str,
) -> Result<(), AppError> {
    let st = cx.st;
    let user = &ok.user;
    let ev = event(
        cx,
        Actor::User(user.id),
        "auth.password_ok",
        Outcome::Success,
        Some(user.email.clone()),
        serde_json::json!({ "next": method }),
    );
    audit::record(&st.db, cx.now, &ev).await?;
    if method != SecondFactor::Totp {
        send_code(cx, user, method, attempt, ok.device.as_deref()).await?;
    }
    Ok(())
}

async fn send_code(
    cx: &Ctx<'_>,
    user: &UserRow,
    method: SecondFactor,
    attempt: &str,
    device: Option<&str>,
) -> Result<(), AppError> {
    let st = cx.st;
    let attempt = email_code::Attempt {
        id: attempt,
        device,
    };
    let (number, from);
    let via = match method {
        SecondFactor::Totp => return Ok(()),
        SecondFactor::Email => email_code::Via::Email(&st.mailer),
        SecondFactor::Sms => {
            from = phone::code_sender(cx).await?;
            number = phone::confirmed(&st.db, user.id).await?;
            let (Some(to), Some(from)) = (number.as_deref(), from.as_deref()) else {
                return Err(AppError::Refused(
                    "Codes by SMS are not available for this account any more: have the code sent by email.".into(),
                ));
            };
            email_code::Via::Sms {
                config: &st.config,
                to,
                from,
            }
        }
    };
    let send = email_code::Send {
        user_id: user.id,
        email: &user.email,
        via,
        purpose: email_code::Purpose::SignIn,
    };
    email_code::issue(&st.db, cx.now, &send, &attempt, cx.origin).await
}

/// Sends a new code for a pending sign-in by `method` (email or SMS; at most every 30
/// seconds), which must be one the user may take now: switching between email and SMS
/// is this with the other method.
pub async fn resend_code(
    cx: &Ctx<'_>,
    browser: Browser<'_>,
    user_id: i64,
    method: SecondFactor,
    attempt: &str,
) -> Result<(), AppError> {
    let user = users::find_by_id(&cx.st.db, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let settings = settings::security(&cx.st.db, &cx.st.config).await?;
    if method == SecondFactor::Totp || !factors_of(cx, &settings, user_id).await?.contains(&method)
    {
        return Err(AppError::validation(
            "method",
            "That way of receiving a code is not available for this account.",
        ));
    }
    let device = device_of(cx, &user, browser).await;
    send_code(cx, &user, method, attempt, device.as_deref()).await
}

/// Saves Settings > General (`settings::save_security`) unless the one saving could not
/// sign in again under them: their email's domain not allowed, or a second factor
/// required none of whose accepted kinds they have (as the panel network list may not
/// block the saver's own address). Others
/// in that case are refused at sign-in with a message to ask an administrator, who can
/// still change it.
pub async fn save_security_settings(
    cx: &Ctx<'_>,
    grant: &crate::access::Grant<'_>,
    new: &model::settings::SecuritySettings,
) -> Result<(), AppError> {
    let saver = grant.principal().user_id();
    let me = users::find_by_id(&cx.st.db, saver)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !settings::domain_allowed(new, &me.email) {
        return Err(AppError::validation(
            "allowed_domains",
            format!(
                "This list would block your own account ({}): add its domain first.",
                me.email
            ),
        ));
    }
    if new.second_factor_required && factors_of(cx, new, saver).await?.is_empty() {
        return Err(AppError::validation(
            "second_factor",
            "With these settings you could not sign in again: none of the accepted second factors is set up for your account. Accept the email code, or set up what you accept (an authenticator app, a phone for SMS codes) on your Account page first.",
        ));
    }
    settings::save_security(cx, grant, new).await
}

/// What the second-step page shows for a pending sign-in of `user_id` by `method`.
pub async fn pending_step(
    cx: &Ctx<'_>,
    user_id: i64,
    method: SecondFactor,
) -> Result<model::users::PendingStep, AppError> {
    let settings = settings::security(&cx.st.db, &cx.st.config).await?;
    let others = if method == SecondFactor::Totp {
        Vec::new()
    } else {
        factors_of(cx, &settings, user_id)
            .await?
            .into_iter()
            .filter(|f| *f != method && *f != SecondFactor::Totp)
            .collect()
    };
    let phone = match method {
        SecondFactor::Sms => phone::confirmed(&cx.st.db, user_id)
            .await?
            .map(|n| phone::masked(&n)),
        _ => None,
    };
    Ok(model::users::PendingStep {
        method,
        others,
        phone,
    })
}

/// The second step of a pending sign-in: a TOTP or recovery code, or the emailed code.
/// Returns the user and how the step was passed.
#[tracing::instrument(skip_all)]
pub async fn check_second_step(
    cx: &Ctx<'_>,
    browser: Browser<'_>,
    pending: (i64, SecondFactor, &str),
    code: &str,
) -> Result<(UserRow, &'static str), AppError> {
    let st = cx.st;
    let (uid, method, attempt) = pending;
    let user = users::find_by_id(&st.db, uid)
        .await?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(|| AppError::validation("code", GENERIC_ERROR))?;
    // Counted per account across sign-ins and addresses before the code is checked; a
    // correct password does not clear it, only a completed sign-in does.
    let device = device_of(cx, &user, browser).await;
    let failures = throttle::second_step_attempt(&st.db, cx.now, uid, device.as_deref()).await?;
    let code = code.trim();
    let accepted = if code.len() > 64 {
        None
    } else {
        match method {
            SecondFactor::Totp => {
                totp::verify(&st.db, st.master_key.expose(), cx.now, uid, code).await?
            }
            SecondFactor::Email => email_code::check(&st.db, cx.now, uid, attempt, code)
                .await?
                .then_some("email_code"),
            SecondFactor::Sms => email_code::check(&st.db, cx.now, uid, attempt, code)
                .await?
                .then_some("sms_code"),
        }
    };
    if let Some(kind) = accepted {
        return Ok((user, kind));
    }
    let ev = event(
        cx,
        Actor::User(uid),
        "auth.code_failed",
        Outcome::Failure,
        Some(user.email.clone()),
        serde_json::json!({ "method": method }),
    );
    audit::record(&st.db, cx.now, &ev).await?;
    failure_alert(cx, uid, &user.email, true).await;
    if failures == throttle::SECOND_STEP_FREE {
        // Someone with the password is guessing codes: tell the owner, once per run.
        let alert = event(
            cx,
            Actor::User(uid),
            "auth.alert",
            Outcome::Failure,
            Some(user.email.clone()),
            serde_json::json!({ "reason": "second_step_failures", "failures": failures }),
        );
        audit::record(&st.db, cx.now, &alert).await?;
        let warning = AccountEvent::SecondStepFailures { failures };
        notify::account(&st.mailer, &user.email, warning, cx.origin, cx.now).await;
    }
    Err(AppError::validation(
        "code",
        "That code is not right, or was already used.",
    ))
}

/// A completed sign-in (the session is signed in by the caller): the account's sign-in
/// failures (password and second step) are forgotten, the last login noted, the sign-in
/// audited, and the owner told when this browser had not signed in to the account
/// before. Returns the user.
pub async fn signed_in(
    cx: &Ctx<'_>,
    browser: Browser<'_>,
    user_id: i64,
    method: &str,
) -> Result<UserRow, AppError> {
    let st = cx.st;
    let user = users::find_by_id(&st.db, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let known_device = device_of(cx, &user, browser).await;
    let settings = settings::security(&st.db, &st.config).await?;
    let device = known_device.as_deref();
    throttle::succeeded(&st.db, &settings, &user.email, browser.ip, device).await?;
    throttle::second_step_succeeded(&st.db, user_id, device).await?;
    users::touch_last_login(&st.db, user_id, cx.now).await?;
    let ev = event(
        cx,
        Actor::User(user_id),
        "auth.sign_in",
        Outcome::Success,
        Some(user.email.clone()),
        serde_json::json!({ "method": method }),
    );
    audit::record(&st.db, cx.now, &ev).await?;
    tracing::info!(user_id, ip = %browser.ip, method, "signed in");
    if known_device.is_none() {
        let new = AccountEvent::NewBrowser;
        notify::account(&st.mailer, &user.email, new, cx.origin, cx.now).await;
    }
    Ok(user)
}

/// Checks the signed-in user's own password (sudo, password change): throttled like a
/// sign-in (so a stolen session cannot guess it), and a wrong one is audited.
#[tracing::instrument(skip_all)]
pub async fn check_own_password(
    cx: &Ctx<'_>,
    browser: Browser<'_>,
    user_id: i64,
    password: &str,
    purpose: &str,
) -> Result<(), AppError> {
    let st = cx.st;
    if password.is_empty() {
        return Err(AppError::validation(
            "password",
            "Enter your password to confirm (it was last checked more than 10 minutes ago).",
        ));
    }
    if password::is_too_long(password) {
        return Err(AppError::validation("password", "Incorrect password."));
    }
    let user = users::find_by_id(&st.db, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let settings = settings::security(&st.db, &st.config).await?;
    let device = device_of(cx, &user, browser).await;
    let device = device.as_deref();
    throttle::attempt(&st.db, &settings, cx.now, &user.email, browser.ip, device).await?;
    let ok = st
        .hasher
        .verify(password, Some(&user.password_hash))
        .await
        .map_err(AppError::internal)?;
    if !ok {
        let ev = event(
            cx,
            Actor::User(user_id),
            "auth.password_check",
            Outcome::Failure,
            None,
            serde_json::json!({ "purpose": purpose }),
        );
        audit::record(&st.db, cx.now, &ev).await?;
        failure_alert(cx, user_id, &user.email, true).await;
        return Err(AppError::validation("password", "Incorrect password."));
    }
    throttle::succeeded(&st.db, &settings, &user.email, browser.ip, device).await
}

/// Counts a failed sign-in step of an account towards Settings > Alerts (an alert that
/// cannot be counted or sent is logged; the sign-in's answer does not change).
async fn failure_alert(cx: &Ctx<'_>, user_id: i64, email: &str, active: bool) {
    if let Err(e) =
        audit::alerts::sign_in_failed(cx.st, cx.now, cx.origin, user_id, email, active).await
    {
        tracing::warn!(error = %e, "counting a failed sign-in for alerts failed");
    }
}

#[cfg(test)]
mod tests {
    use super::return_path;

    #[test]
    fn only_a_path_of_this_site_is_a_place_to_return_to() {
        assert_eq!(return_path("/messages/42"), Some("/messages/42"));
        assert_eq!(
            return_path("/keys?status=active"),
            Some("/keys?status=active")
        );
        for bad in [
            "",
            "messages/42",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "/\\/evil.example/",
            "/keys\r\nSet-Cookie: x=1",
            "/a b",
            "/login",
            "/login/verify",
            "/fn/auth/logout",
            "/api/v1/whoami",
            "javascript:alert(1)",
            "/.//evil.example",
            "/./login",
            "/../fn/auth/logout",
            "/keys/..",
            "/keys/%2e%2e/login",
            "/%2E/login",
            "/keys//x",
        ] {
            assert_eq!(return_path(bad), None, "{bad:?}");
        }
        assert_eq!(return_path(&format!("/{}", "a".repeat(2000))), None);
        // Dots inside a segment, a trailing slash and a query are plain enough.
        for good in ["/", "/keys/", "/keys?q=a//b", "/audit?x=..", "/keys/v1.2"] {
            assert_eq!(return_path(good), Some(good), "{good:?}");
        }
    }

    #[test]
    fn a_return_path_rides_in_the_query_encoded() {
        use super::with_return;
        assert_eq!(
            with_return("/login", "/keys?status=active&app=2"),
            "/login?next=%2Fkeys%3Fstatus%3Dactive%26app%3D2"
        );
        assert_eq!(
            with_return("/login?error=credentials", "/messages/7"),
            "/login?error=credentials&next=%2Fmessages%2F7"
        );
        assert_eq!(with_return("/login", "//evil.example"), "/login");
        assert_eq!(with_return("/login", "/"), "/login");
    }
}
