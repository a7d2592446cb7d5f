//! A user's phone number for SMS sign-in codes (`/account`). A number is kept only once
//! confirmed: a 6-digit code is sent to it by SMS and must be typed back (the one-time
//! codes of `email_code`, bound to the user and to that exact number, so a code sent to
//! one number cannot confirm another). The account's owner is mailed when a number is
//! added or removed. Only when Settings > General accepts SMS codes and names the
//! sender number they come from.

use crate::{
    audit::{self, Actor, Event},
    identity::{
        email_code::{self, Attempt, Purpose, Send, Via},
        notify::{self, AccountEvent},
    },
    infra::{db::Db, phone},
    settings,
    state::Ctx,
};
use model::error::AppError;

/// The confirmed phone number of a user, if any.
pub async fn confirmed(db: &Db, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("select phone from users where id = $1 and phone_confirmed_at is not null")
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.and_then(|(p,)| p))
}

/// `+90•••••••4567`: enough for its owner to recognise, not enough to call.
pub fn masked(number: &str) -> String {
    let n = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 3 || i + 4 >= n { c } else { '•' })
        .collect()
}

/// The sender number SMS codes come from, when SMS codes are accepted and can be sent.
pub async fn code_sender(cx: &Ctx<'_>) -> Result<Option<String>, AppError> {
    let s = settings::security(&cx.st.db, &cx.st.config).await?;
    code_sender_under(cx, &s).await
}

/// [`code_sender`] under the given settings (those about to be saved, say).
pub async fn code_sender_under(
    cx: &Ctx<'_>,
    s: &model::settings::SecuritySettings,
) -> Result<Option<String>, AppError> {
    if !(s.accept_sms_code
        && !s.sms_code_from.is_empty()
        && crate::infra::sms::available(&cx.st.config))
    {
        return Ok(None);
    }
    // Still one of the apps' sender numbers (a number removed since is not sent from).
    let registered: Option<(i64,)> =
        sqlx::query_as("select id from sender_numbers where number = $1")
            .bind(&s.sms_code_from)
            .fetch_optional(&cx.st.db.pool)
            .await?;
    Ok(registered.map(|_| s.sms_code_from.clone()))
}

/// The attempt a confirmation code is bound to: this user and this number.
fn attempt_id(user_id: i64, number: &str) -> String {
    format!("phone:{user_id}:{number}")
}

/// Sends a confirmation code to `number` (typed); returns the number as stored.
pub async fn start(
    cx: &Ctx<'_>,
    user_id: i64,
    email: &str,
    number: &str,
) -> Result<String, AppError> {
    let number = phone::mobile("phone", number)?;
    let from = code_sender(cx).await?.ok_or_else(|| {
        AppError::Refused(
            "Sign-in codes by SMS are not enabled on this server (Settings > General).".into(),
        )
    })?;
    let send = Send {
        user_id,
        email,
        via: Via::Sms {
            config: &cx.st.config,
            to: &number,
            from: &from,
        },
        purpose: Purpose::ConfirmPhone,
    };
    let attempt = attempt_id(user_id, &number);
    let attempt = Attempt {
        id: &attempt,
        device: None,
    };
    email_code::issue(&cx.st.db, cx.now, &send, &attempt, cx.origin).await?;
    Ok(number)
}

/// Confirms `number` with the code sent to it: it becomes the user's phone for SMS codes.
pub async fn confirm(
    cx: &Ctx<'_>,
    user_id: i64,
    email: &str,
    number: &str,
    code: &str,
) -> Result<(), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let number = phone::e164("phone", number)?;
    if !email_code::check(db, now, user_id, &attempt_id(user_id, &number), code).await? {
        return Err(AppError::validation(
            "code",
            "That code is not right, was already used or has expired. Send a new one.",
        ));
    }
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "update users set phone = $2, phone_confirmed_at = $3, updated_at = $3 where id = $1",
    )
    .bind(user_id)
    .bind(&number)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        Actor::User(user_id),
        "account.phone_added",
        cx.origin,
        Some(email.to_owned()),
        serde_json::json!({ "phone": masked(&number) }),
    );
    audit::commit(tx, now, &ev).await?;
    let added = AccountEvent::PhoneAdded {
        number: masked(&number),
    };
    notify::account(&cx.st.mailer, email, added, cx.origin, now).await;
    Ok(())
}

/// Removes the user's phone number (SMS codes stop; the next sign-in asks for another
/// factor), unless it is the only accepted factor they have while one is required.
pub async fn remove(cx: &Ctx<'_>, user_id: i64, email: &str) -> Result<(), AppError> {
    let (db, now) = (&cx.st.db, cx.now);
    let mut tx = db.pool.begin().await?;
    // With Settings > General's row locked (a save at the same moment waits, or is
    // seen): not the user's last accepted second factor while one is required.
    settings::lock_security(&mut tx, &cx.st.config, now).await?;
    let rules = settings::security_in(&mut tx, &cx.st.config).await?;
    if rules.second_factor_required
        && !rules.accept_email_code
        && !(rules.accept_totp && crate::identity::totp::is_enrolled(db, user_id).await?)
    {
        return Err(AppError::Conflict(
            "Your phone is the only second factor of yours this server accepts: without it you could not sign in. Set up another accepted factor first (or ask an administrator).".into(),
        ));
    }
    let r = sqlx::query(
        "update users set phone = null, phone_confirmed_at = null, updated_at = $2 where id = $1 and phone is not null",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "There is no phone number to remove.".into(),
        ));
    }
    let ev = Event::success(
        Actor::User(user_id),
        "account.phone_removed",
        cx.origin,
        Some(email.to_owned()),
        serde_json::json!({}),
    );
    audit::commit(tx, now, &ev).await?;
    notify::account(
        &cx.st.mailer,
        email,
        AccountEvent::PhoneRemoved,
        cx.origin,
        now,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_masked_number_keeps_its_country_and_last_four_digits() {
        assert_eq!(super::masked("+905551234567"), "+90••••••4567");
    }
}
