//! Users: the rows and the queries on them.

use crate::{
    access::{Grant, Principal},
    audit::{self, Actor, Event, Origin},
    identity::{notify, roles},
    infra::config::Config,
    infra::db::{is_unique_violation, Db},
    infra::password::{check_new_password, Hasher},
    infra::session_store::DbSessionStore,
    settings,
    state::Ctx,
};
use model::error::AppError;
use model::roles::{BuiltinRole, Permission};
pub use model::users::UserInfo;
pub use model::users::UserStatus;

/// A user row. Holds the password hash, so it is not `Serialize` and its `Debug` omits it.
#[derive(Clone)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub status: UserStatus,
    pub role_id: i64,
    pub role_name: String,
    pub last_login_at: Option<i64>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
);

fn from_row(
    (id, email, display_name, password_hash, status, role_id, role_name, last_login_at): Row,
) -> UserRow {
    UserRow {
        id,
        email,
        display_name,
        password_hash,
        status: UserStatus::parse(&status),
        role_id,
        role_name,
        last_login_at,
    }
}

const SELECT: &str = "select u.id, u.email, u.display_name, u.password_hash, u.status, u.role_id, r.name, u.last_login_at \
     from users u join roles r on r.id = u.role_id";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    InvalidEmail(&'static str),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where u.email = $1"))
        .bind(email)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(from_row))
}

/// The emails of every active Owner and Admin (who security notices go to), in id
/// order.
pub async fn admin_emails(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select email from users where role_id in ($1, $2) and status = 'active' order by id",
    )
    .bind(BuiltinRole::Owner.id())
    .bind(BuiltinRole::Admin.id())
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(e,)| e).collect())
}

/// The active users (id, email) whose role holds `perm` (built-in roles from code,
/// custom roles from their rows), at most `limit`, oldest accounts first.
pub async fn holders_of(
    db: &Db,
    perm: Permission,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let builtin: Vec<i64> = BuiltinRole::ALL
        .into_iter()
        .filter(|r| r.permissions().contains(&perm))
        .map(|r| r.id())
        .collect();
    // The built-in roles' ids, as a short list of literals (they are constants).
    let ids = builtin
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let ids = if ids.is_empty() { "0".to_owned() } else { ids };
    sqlx::query_as(&format!(
        "select id, email from users where status = 'active' and (role_id in ({ids}) \
         or role_id in (select role_id from role_permissions where permission = $1)) order by id limit $2"
    ))
    .bind(perm.as_str())
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} where u.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(from_row))
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role_id: i64,
    pub status: UserStatus,
}

/// Inserts a user; the unique index on email decides races.
pub async fn create(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    u: &NewUser<'_>,
) -> Result<i64, UserError> {
    let res: Result<(i64,), sqlx::Error> = sqlx::query_as(
        "insert into users (email, display_name, password_hash, status, role_id, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6) returning id",
    )
    .bind(u.email)
    .bind(u.display_name)
    .bind(u.password_hash)
    .bind(u.status.as_str())
    .bind(u.role_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await;
    match res {
        Ok((id,)) => Ok(id),
        Err(e) if is_unique_violation(&e) => Err(UserError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("select count(*) from users")
        .fetch_one(&db.pool)
        .await?;
    Ok(n)
}

pub async fn touch_last_login(db: &Db, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update users set last_login_at = $2, updated_at = $2 where id = $1")
        .bind(id)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn set_status(
    db: &Db,
    id: i64,
    status: UserStatus,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("update users set status = $2, updated_at = $3 where id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Trims a display name (empty → the email's local part) and checks it.
pub fn display_name_or_default(name: Option<&str>, email: &str) -> Result<String, AppError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());
    crate::infra::text::label("display_name", &name, 100, "A name")
}

/// Refuses an address whose domain is not on Settings > General's list.
pub async fn check_domain(db: &Db, config: &Config, email: &str) -> Result<(), AppError> {
    let security = settings::security(db, config).await?;
    if settings::domain_allowed(&security, email) {
        return Ok(());
    }
    Err(AppError::validation(
        "email",
        format!(
            "Only addresses at these domains can have an account: {}.",
            security.allowed_domains.join(", ")
        ),
    ))
}

impl UserError {
    /// The client-safe error for the email field of a form.
    pub fn into_field_error(self) -> AppError {
        match self {
            UserError::EmailTaken => {
                AppError::validation("email", "A user with this email already exists.")
            }
            UserError::InvalidEmail(m) => AppError::validation("email", m),
            UserError::Db(e) => AppError::internal(e),
        }
    }
}

/// A new active user, from the panel's users page or the CLI.
pub struct Registration<'a> {
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub password: &'a str,
    pub role_id: i64,
}

/// Who adds a user: the operator at the command line, or a signed-in user in the panel.
#[derive(Debug, Clone, Copy)]
pub enum Registrar {
    Cli,
    Panel { user_id: i64 },
}

impl Registrar {
    fn actor(self) -> Actor<'static> {
        match self {
            Self::Cli => Actor::System,
            Self::Panel { user_id } => Actor::User(user_id),
        }
    }

    fn via(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Panel { .. } => "panel",
        }
    }
}

/// Validates, hashes the password and inserts the user with its audit row, in one
/// transaction. Who may assign which role is checked by the caller (`create_user` for
/// the panel; the CLI is the operator).
pub async fn register(
    db: &Db,
    config: &Config,
    hasher: &Hasher,
    now: i64,
    by: Registrar,
    origin: &Origin,
    r: &Registration<'_>,
) -> Result<i64, AppError> {
    let (actor, via) = (by.actor(), by.via());
    let email = crate::identity::address::normalise_email(r.email)
        .map_err(|e| AppError::validation("email", e))?;
    check_domain(db, config, &email).await?;
    let display_name = display_name_or_default(r.display_name, &email)?;
    check_new_password(r.password).map_err(|e| AppError::validation("password", e.to_string()))?;
    let (role_name,): (String,) = sqlx::query_as("select name from roles where id = $1")
        .bind(r.role_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| AppError::validation("role", "Choose a role that exists."))?;
    let hash = hasher.hash(r.password).await.map_err(AppError::internal)?;
    let mut tx = db.pool.begin().await?;
    let id = create(
        &mut tx,
        now,
        &NewUser {
            email: &email,
            display_name: &display_name,
            password_hash: &hash,
            role_id: r.role_id,
            status: UserStatus::Active,
        },
    )
    .await
    .map_err(UserError::into_field_error)?;
    let ev = Event::success(
        actor,
        "user.created",
        origin,
        Some(email),
        serde_json::json!({ "via": via, "user_id": id, "role": role_name }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(id)
}

/// Refuses (403) assigning a role that holds a permission the principal does not, or the
/// Owner role by anyone but an Owner (`access::may_assign_role`); returns the role's name.
pub(crate) async fn check_may_assign(
    db: &Db,
    p: &Principal,
    role_id: i64,
) -> Result<String, AppError> {
    let (name, perms) = roles::find(db, role_id)
        .await?
        .ok_or_else(|| AppError::validation("role", "Choose a role that exists."))?;
    crate::access::may_assign_role(p, role_id, &perms)?;
    Ok(name)
}

/// Panel: create an active user with a password and a role (until invitations land).
pub async fn create_user(
    db: &Db,
    config: &Config,
    hasher: &Hasher,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    r: &Registration<'_>,
) -> Result<i64, AppError> {
    let p = grant.ensure(Permission::UserManage)?;
    check_may_assign(db, p, r.role_id).await?;
    let by = Registrar::Panel {
        user_id: p.user_id(),
    };
    register(db, config, hasher, now, by, origin, r).await
}

/// Sets a user's own new password (the caller has checked the current one), audited;
/// the account's owner (`email`) is told.
pub async fn set_password(
    cx: &Ctx<'_>,
    user_id: i64,
    email: &str,
    new_password: &str,
) -> Result<(), AppError> {
    let (db, hasher, now, origin) = (&cx.st.db, &cx.st.hasher, cx.now, cx.origin);
    check_new_password(new_password)
        .map_err(|e| AppError::validation("new_password", e.to_string()))?;
    let hash = hasher
        .hash(new_password)
        .await
        .map_err(AppError::internal)?;
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
        .bind(user_id)
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() != 1 {
        return Err(AppError::NotFound);
    }
    let ev = Event::success(
        Actor::User(user_id),
        "user.password_changed",
        origin,
        None,
        serde_json::json!({ "user_id": user_id }),
    );
    audit::commit(tx, now, &ev).await?;
    let changed = notify::AccountEvent::PasswordChanged;
    notify::account(&cx.st.mailer, email, changed, origin, now).await;
    Ok(())
}

/// Everyone, for the users page.
pub async fn list(db: &Db) -> Result<Vec<UserInfo>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} order by u.email"))
        .fetch_all(&db.pool)
        .await?;
    let with_totp: Vec<(i64,)> =
        sqlx::query_as("select user_id from user_totp where confirmed_at is not null")
            .fetch_all(&db.pool)
            .await?;
    let with_totp: std::collections::HashSet<i64> = with_totp.into_iter().map(|(i,)| i).collect();
    let with_phone: Vec<(i64,)> =
        sqlx::query_as("select id from users where phone_confirmed_at is not null")
            .fetch_all(&db.pool)
            .await?;
    let with_phone: std::collections::HashSet<i64> = with_phone.into_iter().map(|(i,)| i).collect();
    Ok(rows
        .into_iter()
        .map(from_row)
        .map(|u| UserInfo {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            role_id: u.role_id,
            role_name: u.role_name,
            status: u.status,
            last_login_at: u.last_login_at,
            totp: with_totp.contains(&u.id),
            phone: with_phone.contains(&u.id),
        })
        .collect())
}

/// The target of a change made by someone else (disable, role, second factor,
/// sessions), with the rule every such change shares (`access::may_act_on_user`): not
/// yourself, not someone holding a permission you lack, an Owner only as an Owner.
pub(crate) async fn target_of(
    db: &Db,
    p: &Principal,
    target_id: i64,
    what: &str,
) -> Result<UserRow, AppError> {
    let target = find_by_id(db, target_id).await?.ok_or(AppError::NotFound)?;
    let perms = crate::access::role_permissions(db, target.role_id).await?;
    crate::access::may_act_on_user(p, target_id, target.role_id, &perms, what)?;
    Ok(target)
}

/// Serialises every change that could remove an active Owner: the Owner role's row is
/// written first, which takes its row lock on PostgreSQL (and the write lock on SQLite),
/// so two Owners demoting each other at once take turns and the second sees the first.
async fn lock_owners(tx: &mut sqlx::AnyConnection) -> Result<(), AppError> {
    sqlx::query("update roles set updated_at = updated_at where id = $1")
        .bind(BuiltinRole::Owner.id())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The condition a change must keep: the user is not an active Owner, or another
/// active Owner remains.
const KEEPS_AN_OWNER: &str = "(role_id <> 1 or status <> 'active' or exists \
     (select 1 from users o where o.role_id = 1 and o.status = 'active' and o.id <> $1))";

/// `Some(Conflict)` when the user's role is no longer the one a change was checked
/// against (someone changed it meanwhile); `None` when it still is.
async fn changed_meanwhile(db: &Db, checked: &UserRow) -> Result<Option<AppError>, AppError> {
    let now = find_by_id(db, checked.id).await?;
    Ok(match now {
        Some(u) if u.role_id == checked.role_id => None,
        _ => Some(AppError::Conflict(format!(
            "{} was changed by someone else meanwhile. Reload the page and try again.",
            checked.email
        ))),
    })
}

fn last_owner(email: &str) -> AppError {
    AppError::Conflict(format!(
        "{email} is the last active Owner. Make another user an Owner first."
    ))
}

pub async fn change_role(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    target_id: i64,
    role_id: i64,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::UserManage)?;
    let target = target_of(db, p, target_id, "role").await?;
    let role_name = check_may_assign(db, p, role_id).await?;
    if target.role_id == role_id {
        return Ok(());
    }
    let mut tx = db.pool.begin().await?;
    lock_owners(&mut tx).await?;
    // Only if the role is still the one the rules were checked against: a change made
    // meanwhile (e.g. a promotion) is not overwritten by someone it would now outrank.
    let r = sqlx::query(&format!(
        "update users set role_id = $2, updated_at = $3 where id = $1 and role_id = $4 and {KEEPS_AN_OWNER}"
    ))
    .bind(target_id)
    .bind(role_id)
    .bind(now)
    .bind(target.role_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        drop(tx);
        return Err(changed_meanwhile(db, &target)
            .await?
            .unwrap_or_else(|| last_owner(&target.email)));
    }
    let ev = Event::success(
        Actor::User(p.user_id()),
        "user.role_changed",
        origin,
        Some(target.email.clone()),
        serde_json::json!({ "user_id": target_id, "from": target.role_name, "to": role_name }),
    );
    audit::commit(tx, now, &ev).await.map_err(AppError::from)
}

/// Disables (ending every session of the user) or re-enables a user.
pub async fn set_enabled(
    db: &Db,
    sessions: &DbSessionStore,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    target_id: i64,
    enabled: bool,
) -> Result<(), AppError> {
    let p = grant.ensure(Permission::UserManage)?;
    let target = target_of(db, p, target_id, "status").await?;
    let (to, action) = if enabled {
        (UserStatus::Active, "user.enabled")
    } else {
        (UserStatus::Disabled, "user.disabled")
    };
    let mut tx = db.pool.begin().await?;
    lock_owners(&mut tx).await?;
    // Only while the role is the one the rules were checked against (see change_role).
    // Enabling returns a user who never accepted their invitation to `invited` (they
    // have no password to sign in with).
    let sql = if enabled {
        "update users set status = case when password_hash = '' then 'invited' else $2 end, updated_at = $3 \
         where id = $1 and status = 'disabled' and role_id = $4"
            .to_owned()
    } else {
        format!("update users set status = $2, updated_at = $3 where id = $1 and status <> 'disabled' and role_id = $4 and {KEEPS_AN_OWNER}")
    };
    let r = sqlx::query(&sql)
        .bind(target_id)
        .bind(to.as_str())
        .bind(now)
        .bind(target.role_id)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 1 && !enabled {
        // A pending invitation link stops working with the account.
        sqlx::query("update invitations set expires_at = $2, updated_at = $2 where user_id = $1 and accepted_at is null and expires_at > $2")
            .bind(target_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    if r.rows_affected() != 1 {
        drop(tx);
        if let Some(e) = changed_meanwhile(db, &target).await? {
            return Err(e);
        }
        let status = find_by_id(db, target_id).await?.map(|u| u.status);
        return match status {
            None => Err(AppError::NotFound),
            // Already in the asked state (or invited, which enabling does not change).
            Some(s) if enabled || s == UserStatus::Disabled => Ok(()),
            Some(_) => Err(last_owner(&target.email)),
        };
    }
    let ev = Event::success(
        Actor::User(p.user_id()),
        action,
        origin,
        Some(target.email.clone()),
        serde_json::json!({ "user_id": target_id }),
    );
    audit::commit(tx, now, &ev).await?;
    if !enabled {
        // After the commit, so a sign-in racing with this sees the disabled status.
        sessions.delete_for_user(target_id).await?;
    }
    Ok(())
}
