//! Roles and permissions: the catalogue, the built-in roles, custom roles and the
//! permission matrix (`/roles`, `role.manage`).

use crate::error::AppError;
use leptos::prelude::*;

mod components;

pub use components::RolesPage;
pub use model::roles::{BuiltinRole, Permission, RoleInfo};

#[server(prefix = "/fn", endpoint = "roles/list")]
pub async fn list_roles() -> Result<Vec<RoleInfo>, AppError> {
    crate::guarded!(Permission::RoleManage, |ctx, _grant| async {
        crate::core::identity::roles::list(&ctx.state.db)
            .await
            .map_err(AppError::internal)
    })
}

#[server(prefix = "/fn", endpoint = "roles/create")]
pub async fn create_role(
    name: String,
    #[server(default)] permission: Vec<Permission>,
    #[server(default)] form_token: String,
) -> Result<i64, AppError> {
    crate::guarded!(Permission::RoleManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        let perms = permission.into_iter().collect();
        let made = |_: &i64| format!("the role {}", name.trim());
        let origin = ctx.origin();
        let create = crate::core::identity::roles::create(
            &ctx.state.db,
            ctx.state.clock.now(),
            &grant,
            &origin,
            &name,
            &perms,
        );
        crate::auth::ssr::once_per_form(
            &ctx,
            grant.principal().user_id(),
            &form_token,
            made,
            create,
        )
        .await
    })
}

#[server(prefix = "/fn", endpoint = "roles/rename")]
pub async fn rename_role(id: i64, name: String) -> Result<(), AppError> {
    crate::guarded!(Permission::RoleManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::roles::rename(
            &ctx.state.db,
            ctx.state.clock.now(),
            &grant,
            &ctx.origin(),
            id,
            &name,
        )
        .await
    })
}

#[server(prefix = "/fn", endpoint = "roles/delete")]
pub async fn delete_role(id: i64) -> Result<(), AppError> {
    crate::guarded!(Permission::RoleManage, |ctx, grant| async {
        crate::auth::ssr::require_sudo(&ctx).await?;
        crate::core::identity::roles::delete(
            &ctx.state.db,
            ctx.state.clock.now(),
            &grant,
            &ctx.origin(),
            id,
        )
        .await
    })
}

/// Saves the whole matrix: `role` lists the custom roles the form showed, `grant` holds
/// `ROLE_ID:PERMISSION` for every ticked box.
#[server(prefix = "/fn", endpoint = "roles/save")]
pub async fn save_roles(
    #[server(default)] role: Vec<i64>,
    #[server(default)] grant: Vec<String>,
) -> Result<usize, AppError> {
    crate::guarded!(Permission::RoleManage, |ctx, g| async {
        use std::collections::{BTreeMap, BTreeSet};
        crate::auth::ssr::require_sudo(&ctx).await?;
        let mut wanted: BTreeMap<i64, BTreeSet<Permission>> =
            role.iter().map(|id| (*id, BTreeSet::new())).collect();
        for cell in &grant {
            let parsed = cell
                .split_once(':')
                .and_then(|(r, p)| Some((r.parse::<i64>().ok()?, Permission::parse(p)?)));
            let Some((role_id, p)) = parsed else {
                return Err(AppError::validation(
                    "grant",
                    "The matrix form was malformed.",
                ));
            };
            match wanted.get_mut(&role_id) {
                Some(set) => {
                    set.insert(p);
                }
                None => {
                    return Err(AppError::validation(
                        "grant",
                        "The matrix form was malformed.",
                    ))
                }
            }
        }
        let changed = crate::core::identity::roles::save_matrix(
            &ctx.state.db,
            ctx.state.clock.now(),
            &g,
            &ctx.origin(),
            &wanted,
        )
        .await?;
        // Keys carry roles too: their cached permissions are stale now.
        ctx.state.keys.bump();
        Ok(changed)
    })
}
