//! Users: the rows and the queries on them.

use super::db::{is_unique_violation, Db};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    Invited,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "invited" => Self::Invited,
            // Anything unexpected is treated as the most restrictive state.
            _ => Self::Disabled,
        }
    }
}

/// A user row. Holds the password hash, so it is not `Serialize` and its `Debug` omits it.
#[derive(Clone)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub status: UserStatus,
    pub role: String,
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

type Row = (i64, String, String, String, String, String, Option<i64>);

fn from_row((id, email, display_name, password_hash, status, role, last_login_at): Row) -> UserRow {
    UserRow {
        id,
        email,
        display_name,
        password_hash,
        status: UserStatus::parse(&status),
        role,
        last_login_at,
    }
}

const COLUMNS: &str = "id, email, display_name, password_hash, status, role, last_login_at";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    InvalidEmail(&'static str),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Lowercases and trims an email and checks that it is one plain address.
/// (Domain allow-lists and international names are the sign-in security issue's.)
pub fn normalise_email(input: &str) -> Result<String, UserError> {
    let e = input.trim().to_lowercase();
    if e.is_empty() {
        return Err(UserError::InvalidEmail("Enter an email address."));
    }
    if e.len() > 254
        || e.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, ',' | ';' | '<' | '>' | '"' | '(' | ')')
        })
    {
        return Err(UserError::InvalidEmail(
            "Enter a single email address such as name@example.com.",
        ));
    }
    match e.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(e)
        }
        _ => Err(UserError::InvalidEmail(
            "Enter a single email address such as name@example.com.",
        )),
    }
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!("select {COLUMNS} from users where email = $1"))
        .bind(email)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(from_row))
}

pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!("select {COLUMNS} from users where id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(from_row))
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub status: UserStatus,
}

/// Inserts a user; the unique index on email decides races.
pub async fn create(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    u: &NewUser<'_>,
) -> Result<i64, UserError> {
    let res: Result<(i64,), sqlx::Error> = sqlx::query_as(
        "insert into users (email, display_name, password_hash, status, role, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6) returning id",
    )
    .bind(u.email)
    .bind(u.display_name)
    .bind(u.password_hash)
    .bind(u.status.as_str())
    .bind(u.role)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalisation() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a@b@c.com",
            "ada@example.com, eve@evil.com",
            "ada @example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "ada@example.com\r\nBcc: x@y.z",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?} accepted");
        }
    }
}
