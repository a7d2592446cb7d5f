//! Invitations: a user with `user.manage` invites an email (domain list and role rules
//! apply); the invitee gets a mail with a single-use link valid 72 hours, sets a
//! password (12..=128 characters, not a common one), and is signed in.
//!
//! The token (256 random bits) is only in the mail; the database keeps its SHA-256.
//! Acceptance is a conditional update (`accepted_at is null and expires_at > now`), so
//! a link works once even when submitted twice at the same instant. Inviting the same
//! address again replaces the earlier link.

use crate::{
    access::Grant,
    audit::{self, Actor, Event, Origin},
    identity::users::{self, NewUser, UserError, UserStatus},
    infra::config::Config,
    infra::db::Db,
    infra::mail::{Mail, Mailer},
    infra::password::{check_new_password, Hasher},
};
use base64::Engine as _;
use model::error::AppError;
use model::roles::Permission;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

pub const VALID_SECS: i64 = 72 * 3600;

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What an invitation link leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// `display_name`: the name the inviter gave (the form is prefilled with it).
    Valid {
        email: String,
        display_name: String,
    },
    Expired,
    Used,
    Unknown,
}

pub struct Invite<'a> {
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub role_id: i64,
}

pub async fn invite(
    db: &Db,
    config: &Config,
    mailer: &Mailer,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    inv: &Invite<'_>,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::UserManage)?;
    // How the invitation mail names the person inviting.
    let invited_by = users::find_by_id(db, p.user_id())
        .await?
        .map(|u| format!("{} ({})", u.display_name, u.email))
        .unwrap_or_else(|| "An administrator".into());
    let email = crate::identity::address::normalise_email(inv.email)
        .map_err(|e| AppError::validation("email", e.to_string()))?;
    users::check_domain(db, config, &email).await?;
    let display_name = users::display_name_or_default(inv.display_name, &email)?;
    let role_name = users::check_may_assign(db, p, inv.role_id).await?;

    let mut token_bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut token_bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token_bytes);

    let mut tx = db.pool.begin().await?;
    let existing: Option<(i64, String, i64)> =
        sqlx::query_as("select id, status, role_id from users where email = $1")
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
    let user_id = match existing {
        Some((id, status, role_id)) if status == UserStatus::Invited.as_str() => {
            // Inviting again changes the pending user's role: the rule for acting on a
            // user applies (not someone invited with more than the actor holds).
            let held = crate::access::role_permissions(db, role_id).await?;
            crate::access::may_act_on_user(p, id, role_id, &held, "invitation")?;
            sqlx::query(
                "update users set display_name = $2, role_id = $3, updated_at = $4 where id = $1",
            )
            .bind(id)
            .bind(&display_name)
            .bind(inv.role_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The earlier link stops working.
            sqlx::query("update invitations set expires_at = $2, updated_at = $2 where user_id = $1 and accepted_at is null")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            id
        }
        Some(_) => {
            return Err(AppError::validation(
                "email",
                "This address already has an account.",
            ))
        }
        None => users::create(
            &mut tx,
            now,
            &NewUser {
                email: &email,
                display_name: &display_name,
                password_hash: "",
                role_id: inv.role_id,
                status: UserStatus::Invited,
            },
        )
        .await
        .map_err(UserError::into_field_error)?,
    };
    sqlx::query(
        "insert into invitations (user_id, token_hash, invited_by, expires_at, accepted_at, created_at, updated_at) \
         values ($1, $2, $3, $4, null, $5, $5)",
    )
    .bind(user_id)
    .bind(token_hash(&token))
    .bind(p.user_id())
    .bind(now + VALID_SECS)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let ev = Event::success(
        Actor::User(p.user_id()),
        "invitation.sent",
        origin,
        Some(email.clone()),
        serde_json::json!({ "user_id": user_id, "role": role_name }),
    );
    audit::commit(tx, now, &ev).await?;

    let link = format!(
        "{}/invite/{token}",
        config.public_url.url.trim_end_matches('/')
    );
    mailer
        .send(Mail {
            to: &email,
            subject: "You are invited to Keyward",
            text: format!(
                "{} invited you to Keyward, where your organisation's API keys are managed.\n\n\
                 Set your password here (the link works once, for 72 hours):\n{link}\n\n\
                 If you did not expect this, ignore this message.\n",
                &invited_by
            ),
            html: maud::html! {
                p { (invited_by) " invited you to Keyward, where your organisation's API keys are managed." }
                p { a href=(link) { "Set your password" } " (the link works once, for 72 hours)." }
                p { "If you did not expect this, ignore this message." }
            }
            .into_string(),
        })
        .await
        .map_err(AppError::internal)
}

pub async fn lookup(db: &Db, now: i64, token: &str) -> Result<LinkState, AppError> {
    if token.len() > 100 {
        return Ok(LinkState::Unknown);
    }
    let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "select u.email, u.display_name, i.expires_at, i.accepted_at from invitations i join users u on u.id = i.user_id where i.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        None => LinkState::Unknown,
        Some((_, _, _, Some(_))) => LinkState::Used,
        Some((_, _, exp, None)) if exp <= now => LinkState::Expired,
        Some((email, display_name, _, None)) => LinkState::Valid {
            email,
            display_name,
        },
    })
}

/// Sets the invitee's password and activates the account; returns (user id, email).
/// What the invitee sends back: the link's token, their name and a new password.
pub struct Acceptance<'a> {
    pub token: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
}

/// Accepts an invitation: the account becomes active with the chosen password. The
/// rules are checked again now, not only when the link was sent: the address's domain
/// must still be allowed, and the inviter must still be an active user who may give the
/// role (someone disabled or demoted since cannot plant an account with their old
/// powers).
pub async fn accept(
    db: &Db,
    config: &Config,
    hasher: &Hasher,
    now: i64,
    origin: &Origin,
    a: &Acceptance<'_>,
) -> Result<i64, AppError> {
    let (token, display_name, password) = (a.token, a.display_name, a.password);
    let email = match lookup(db, now, token).await? {
        LinkState::Valid { email, .. } => email,
        LinkState::Expired => return Err(link_error(LinkState::Expired)),
        LinkState::Used => return Err(link_error(LinkState::Used)),
        LinkState::Unknown => return Err(link_error(LinkState::Unknown)),
    };
    users::check_domain(db, config, &email).await?;
    inviter_may_still_give(db, token).await?;
    check_new_password(password).map_err(|e| AppError::validation("password", e.to_string()))?;
    let display_name = users::display_name_or_default(Some(display_name), &email)?;
    let hash = hasher.hash(password).await.map_err(AppError::internal)?;
    let mut tx = db.pool.begin().await?;
    let claimed: Option<(i64,)> = sqlx::query_as(
        "update invitations set accepted_at = $2, updated_at = $2 \
         where token_hash = $1 and accepted_at is null and expires_at > $2 returning user_id",
    )
    .bind(token_hash(token))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id,)) = claimed else {
        return Err(link_error(LinkState::Used));
    };
    let r = sqlx::query(
        "update users set password_hash = $2, display_name = $3, status = 'active', updated_at = $4 \
         where id = $1 and status = 'invited'",
    )
    .bind(user_id)
    .bind(&hash)
    .bind(&display_name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "This account is no longer waiting for an invitation. Ask your administrator.".into(),
        ));
    }
    let ev = Event::success(
        Actor::User(user_id),
        "invitation.accepted",
        origin,
        Some(email.clone()),
        serde_json::json!({ "user_id": user_id }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(user_id)
}

/// Refuses an invitation whose inviter is gone, no longer active, or no longer holds
/// `user.manage` and every permission of the role it gives (`access::may_assign_role`).
async fn inviter_may_still_give(db: &Db, token: &str) -> Result<(), AppError> {
    let row: Option<(Option<i64>, i64)> = sqlx::query_as(
        "select i.invited_by, u.role_id from invitations i join users u on u.id = i.user_id where i.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.pool)
    .await?;
    let refused = || {
        AppError::validation(
            "token",
            "The person who invited you can no longer give you this role. Ask your administrator for a new invitation.",
        )
    };
    let Some((Some(inviter), role_id)) = row else {
        return Err(refused());
    };
    let Some(who) = users::find_by_id(db, inviter)
        .await?
        .filter(|u| u.status == UserStatus::Active)
    else {
        return Err(refused());
    };
    let perms = crate::access::role_permissions(db, who.role_id).await?;
    let principal = crate::access::Principal::user(who.id, who.role_id, perms);
    let role_perms = crate::access::role_permissions(db, role_id).await?;
    if !principal.has(Permission::UserManage)
        || crate::access::may_assign_role(&principal, role_id, &role_perms).is_err()
    {
        return Err(refused());
    }
    Ok(())
}

pub fn link_error(state: LinkState) -> AppError {
    AppError::validation(
        "token",
        match state {
            LinkState::Expired => {
                "This invitation has expired. Ask your administrator for a new one."
            }
            LinkState::Used => {
                "This invitation was already used. Sign in with your email and password."
            }
            _ => "This invitation link is not valid. Check that you copied all of it.",
        },
    )
}
