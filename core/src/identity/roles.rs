//! Roles: listing, custom roles (create, rename, delete) and the permission matrix.
//!
//! Escalation rule: nobody grants a permission they do not hold. A permission may be
//! added to a role only by someone who holds it; removing is always allowed. Built-in
//! roles are read-only.

use crate::{
    access::Grant,
    audit::{self, Actor, Event, Origin},
    infra::db::{Db, OnUnique as _},
};
use model::error::AppError;
use model::roles::{BuiltinRole, Permission, RoleInfo};
use std::collections::{BTreeMap, BTreeSet};

pub const MAX_ROLE_NAME_CHARS: usize = 50;

/// Trims a role name and checks it: 1..=50 visible characters on one line.
pub fn validate_name(input: &str) -> Result<String, AppError> {
    crate::infra::text::label("name", input, MAX_ROLE_NAME_CHARS, "A role name")
}

fn name_taken() -> AppError {
    AppError::validation("name", "A role with this name already exists.")
}

/// Every role with its permissions and how many users hold it, built-in ones first.
pub async fn list(db: &Db) -> Result<Vec<RoleInfo>, sqlx::Error> {
    let rows: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
        "select r.id, r.name, r.builtin, (select count(*) from users u where u.role_id = r.id) \
         from roles r order by r.id",
    )
    .fetch_all(&db.pool)
    .await?;
    let grants: Vec<(i64, String)> =
        sqlx::query_as("select role_id, permission from role_permissions")
            .fetch_all(&db.pool)
            .await?;
    let mut custom: BTreeMap<i64, BTreeSet<Permission>> = BTreeMap::new();
    for (role_id, p) in grants {
        if let Some(p) = Permission::parse(&p) {
            custom.entry(role_id).or_default().insert(p);
        }
    }
    let mut roles: Vec<RoleInfo> = rows
        .into_iter()
        .map(|(id, name, builtin, users)| {
            let builtin = builtin.as_deref().and_then(BuiltinRole::parse);
            let permissions = match builtin {
                Some(b) => b.permissions(),
                None => custom
                    .get(&id)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default(),
            };
            RoleInfo {
                id,
                name,
                builtin: builtin.is_some(),
                permissions,
                users,
            }
        })
        .collect();
    // Built-in roles first (ids 1..5), then custom roles by name.
    roles.sort_by(|a, b| {
        (!a.builtin, a.builtin.then_some(a.id), a.name.to_lowercase()).cmp(&(
            !b.builtin,
            b.builtin.then_some(b.id),
            b.name.to_lowercase(),
        ))
    });
    Ok(roles)
}

/// Refuses (403) when `granting` holds a permission the acting principal does not.
fn check_may_grant(grant: &Grant<'_>, granting: &BTreeSet<Permission>) -> Result<(), AppError> {
    let p = grant.principal();
    if let Some(missing) = granting.iter().find(|x| !p.has(**x)) {
        tracing::info!(subject = ?p.subject, permission = %missing, "refused: granting a permission not held");
        return Err(AppError::Forbidden);
    }
    Ok(())
}

fn names(set: &BTreeSet<Permission>) -> Vec<&'static str> {
    set.iter().map(|p| p.as_str()).collect()
}

pub async fn create(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    name: &str,
    permissions: &BTreeSet<Permission>,
) -> Result<i64, AppError> {
    let actor = grant.ensure(Permission::RoleManage)?;
    let name = validate_name(name)?;
    check_may_grant(grant, permissions)?;
    let mut tx = db.pool.begin().await?;
    let res: Result<(i64,), _> = sqlx::query_as(
        "insert into roles (name, name_key, created_at, updated_at) values ($1, $2, $3, $3) returning id",
    )
    .bind(&name)
    .bind(name.to_lowercase())
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let (id,) = res.on_unique(name_taken)?;
    for p in permissions {
        insert_permission(&mut tx, id, *p, now).await?;
    }
    let ev = Event::success(
        Actor::User(actor.user_id()),
        "role.created",
        origin,
        Some(name.clone()),
        serde_json::json!({ "role_id": id, "permissions": names(permissions) }),
    );
    audit::commit(tx, now, &ev).await?;
    Ok(id)
}

async fn insert_permission(
    tx: &mut sqlx::AnyConnection,
    role_id: i64,
    p: Permission,
    now: i64,
) -> Result<(), AppError> {
    sqlx::query(
        "insert into role_permissions (role_id, permission, created_at, updated_at) values ($1, $2, $3, $3)",
    )
    .bind(role_id)
    .bind(p.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The custom role `id` (name), or NotFound / a validation error for a built-in role.
async fn custom_role(tx: &mut sqlx::AnyConnection, id: i64) -> Result<String, AppError> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("select name, builtin from roles where id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match row {
        None => Err(AppError::NotFound),
        Some((_, Some(_))) => Err(AppError::validation(
            "role",
            "Built-in roles cannot be changed.",
        )),
        Some((name, None)) => Ok(name),
    }
}

pub async fn rename(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    id: i64,
    new_name: &str,
) -> Result<(), AppError> {
    let actor = grant.ensure(Permission::RoleManage)?;
    let new_name = validate_name(new_name)?;
    let held = crate::access::role_permissions(db, id).await?;
    crate::access::may_edit_role(actor, id, &held)?;
    let mut tx = db.pool.begin().await?;
    let old = custom_role(&mut tx, id).await?;
    let res =
        sqlx::query("update roles set name = $2, name_key = $3, updated_at = $4 where id = $1")
            .bind(id)
            .bind(&new_name)
            .bind(new_name.to_lowercase())
            .bind(now)
            .execute(&mut *tx)
            .await;
    res.on_unique(name_taken)?;
    let ev = Event::success(
        Actor::User(actor.user_id()),
        "role.renamed",
        origin,
        Some(new_name.clone()),
        serde_json::json!({ "role_id": id, "from": old, "to": new_name }),
    );
    audit::commit(tx, now, &ev).await.map_err(AppError::from)
}

/// Deletes a custom role; refused while any user holds it (the foreign key would refuse
/// it too, so a concurrent assignment cannot slip through).
pub async fn delete(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    id: i64,
) -> Result<(), AppError> {
    let actor = grant.ensure(Permission::RoleManage)?;
    let held = crate::access::role_permissions(db, id).await?;
    crate::access::may_edit_role(actor, id, &held)?;
    let mut tx = db.pool.begin().await?;
    let name = custom_role(&mut tx, id).await?;
    let (assigned,): (i64,) = sqlx::query_as("select count(*) from users where role_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let (keys,): (i64,) =
        sqlx::query_as("select count(*) from api_keys where role_id = $1 and revoked_at is null")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    let in_use = || {
        let mut holders = Vec::new();
        if assigned > 0 {
            holders.push(format!(
                "{assigned} {}",
                if assigned == 1 { "user" } else { "users" }
            ));
        }
        if keys > 0 {
            holders.push(format!(
                "{keys} API {}",
                if keys == 1 { "key" } else { "keys" }
            ));
        }
        AppError::Conflict(format!(
            "The role {name} is assigned to {}. Give them another role first.",
            holders.join(" and ")
        ))
    };
    if assigned > 0 || keys > 0 {
        return Err(in_use());
    }
    sqlx::query("delete from role_permissions where role_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let res = sqlx::query("delete from roles where id = $1 and builtin is null")
        .bind(id)
        .execute(&mut *tx)
        .await;
    match res {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => return Err(AppError::NotFound),
        Err(e) if is_foreign_key_violation(&e) => return Err(in_use()),
        Err(e) => return Err(AppError::internal(e)),
    }
    let ev = Event::success(
        Actor::User(actor.user_id()),
        "role.deleted",
        origin,
        Some(name),
        serde_json::json!({ "role_id": id }),
    );
    audit::commit(tx, now, &ev).await.map_err(AppError::from)
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_foreign_key_violation())
}

/// Saves the permission matrix in one transaction: for each listed custom role, the
/// complete set of permissions it should hold. Roles not listed are left alone (one
/// created by someone else meanwhile is not wiped).
pub async fn save_matrix(
    db: &Db,
    now: i64,
    grant: &Grant<'_>,
    origin: &Origin,
    wanted: &BTreeMap<i64, BTreeSet<Permission>>,
) -> Result<usize, AppError> {
    let actor = grant.ensure(Permission::RoleManage)?;
    let mut tx = db.pool.begin().await?;
    let mut changed = 0;
    for (&role_id, want) in wanted {
        let name = custom_role(&mut tx, role_id).await?;
        let rows: Vec<(String,)> =
            sqlx::query_as("select permission from role_permissions where role_id = $1")
                .bind(role_id)
                .fetch_all(&mut *tx)
                .await?;
        let have: BTreeSet<Permission> = rows
            .iter()
            .filter_map(|(p,)| Permission::parse(p))
            .collect();
        let added: BTreeSet<Permission> = want.difference(&have).copied().collect();
        let removed: BTreeSet<Permission> = have.difference(want).copied().collect();
        if added.is_empty() && removed.is_empty() {
            continue;
        }
        crate::access::may_edit_role(actor, role_id, &have)?;
        check_may_grant(grant, &added)?;
        for p in &removed {
            sqlx::query("delete from role_permissions where role_id = $1 and permission = $2")
                .bind(role_id)
                .bind(p.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for p in &added {
            insert_permission(&mut tx, role_id, *p, now).await?;
        }
        sqlx::query("update roles set updated_at = $2 where id = $1")
            .bind(role_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let ev = Event::success(
            Actor::User(actor.user_id()),
            "role.permissions_changed",
            origin,
            Some(name),
            serde_json::json!({ "role_id": role_id, "added": names(&added), "removed": names(&removed) }),
        );
        audit::record_in(&mut tx, now, &ev).await?;
        changed += 1;
    }
    tx.commit().await?;
    Ok(changed)
}

/// A role by id: (name, permissions), or None.
pub async fn find(db: &Db, id: i64) -> Result<Option<(String, BTreeSet<Permission>)>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("select name from roles where id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    match row {
        None => Ok(None),
        Some((name,)) => Ok(Some((name, crate::access::role_permissions(db, id).await?))),
    }
}
