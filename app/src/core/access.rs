//! The one guard: a session (or, with the keys feature, an API key) becomes a
//! `Principal` — who acts and the set of permissions their role holds right now.
//!
//! The permissions are read from the database on every request (the user's row and, for
//! a custom role, its permission rows: two indexed lookups). There is deliberately no
//! cache: a permission removed from a role is enforced at the very next request of every
//! session holding it, on every instance.
//!
//! `Principal::require` is the only way to get a `Grant`, and every write in the domain
//! code takes the `Grant` it needs as an argument (the habit of lldap's access-control
//! crate): a server function or REST route that forgot to check cannot call the write.

use super::db::Db;
use crate::error::AppError;
use crate::roles::{BuiltinRole, Permission};
use std::collections::BTreeSet;

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(i64),
    /// An API key, acting for the user who owns it.
    Key {
        key_id: String,
        owner_id: i64,
    },
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: Subject,
    pub role_id: i64,
    permissions: BTreeSet<Permission>,
}

impl Principal {
    pub fn new(subject: Subject, role_id: i64, permissions: BTreeSet<Permission>) -> Self {
        Self {
            subject,
            role_id,
            permissions,
        }
    }

    /// The user behind this principal.
    pub fn user_id(&self) -> i64 {
        match self.subject {
            Subject::User(id) => id,
            Subject::Key { owner_id, .. } => owner_id,
        }
    }

    /// Who the audit log names: the user, or the key.
    pub fn actor(&self) -> super::audit::Actor<'_> {
        match &self.subject {
            Subject::User(id) => super::audit::Actor::User(*id),
            Subject::Key { key_id, .. } => super::audit::Actor::Key(key_id),
        }
    }

    pub fn is_owner(&self) -> bool {
        self.role_id == BuiltinRole::Owner.id()
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    pub fn permissions(&self) -> &BTreeSet<Permission> {
        &self.permissions
    }

    /// The proof that this principal holds `p`, or `Forbidden`.
    pub fn require(&self, p: Permission) -> Result<Grant<'_>, AppError> {
        if self.has(p) {
            Ok(Grant {
                principal: self,
                permission: p,
            })
        } else {
            tracing::info!(subject = ?self.subject, permission = %p, "permission refused");
            Err(AppError::Forbidden)
        }
    }
}

/// Proof that `principal` holds `permission`; only `Principal::require` makes one.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    principal: &'a Principal,
    permission: Permission,
}

impl<'a> Grant<'a> {
    pub fn principal(&self) -> &'a Principal {
        self.principal
    }

    /// Domain functions call this first: a grant for another permission is refused.
    pub fn ensure(&self, p: Permission) -> Result<&'a Principal, AppError> {
        if self.permission == p {
            Ok(self.principal)
        } else {
            Err(AppError::internal(format!(
                "grant for {} used where {} is needed",
                self.permission, p
            )))
        }
    }
}

/// The permissions a role holds now: built-in roles from code, custom roles from their
/// rows (names this version does not know are ignored).
pub async fn role_permissions(db: &Db, role_id: i64) -> Result<BTreeSet<Permission>, sqlx::Error> {
    if let Some(b) = BuiltinRole::from_id(role_id) {
        return Ok(b.permissions().into_iter().collect());
    }
    let rows: Vec<(String,)> =
        sqlx::query_as("select permission from role_permissions where role_id = $1")
            .bind(role_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows
        .iter()
        .filter_map(|(p,)| Permission::parse(p))
        .collect())
}
