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

use crate::infra::db::Db;
use model::error::AppError;
use model::roles::{BuiltinRole, Permission};
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
    /// The role the acting user holds (for a key: its owner's role).
    pub role_id: i64,
    /// True when this principal may act as an Owner: a user with the Owner role, or a
    /// key whose role is Owner and whose owner is an Owner now.
    owner: bool,
    permissions: BTreeSet<Permission>,
    /// A key acts for its app only (`acts_for_app`); a user for every app.
    app: Option<i64>,
}

impl Principal {
    /// A signed-in user with the permissions their role holds now.
    pub fn user(user_id: i64, role_id: i64, permissions: BTreeSet<Permission>) -> Self {
        Self {
            subject: Subject::User(user_id),
            role_id,
            owner: role_id == BuiltinRole::Owner.id(),
            permissions,
            app: None,
        }
    }

    /// An API key acting for its owner: what it may do is [`key_permissions`] of its
    /// role and its owner's role, both as they are now.
    pub fn key(
        key_id: String,
        owner_id: i64,
        owner_role_id: i64,
        key_role_id: i64,
        permissions: BTreeSet<Permission>,
        app_id: i64,
    ) -> Self {
        let owner_id_role = BuiltinRole::Owner.id();
        Self {
            subject: Subject::Key { key_id, owner_id },
            role_id: owner_role_id,
            owner: key_role_id == owner_id_role && owner_role_id == owner_id_role,
            permissions,
            app: Some(app_id),
        }
    }

    /// Whether this principal acts for app `app_id`: a user, for every app; a key, for
    /// its own app only, whatever its owner may do in the panel. Another app's keys,
    /// messages, sender numbers and webhooks are not a key's to use: that app's REST
    /// allow-list says where calls for it come from.
    pub fn acts_for_app(&self, app_id: i64) -> bool {
        self.app.is_none_or(|own| own == app_id)
    }

    /// The one app a key acts for (`None`: a user, every app).
    pub fn app_scope(&self) -> Option<i64> {
        self.app
    }

    /// [`Self::acts_for_app`], as the refusal a write of another app's gets.
    pub fn require_app(&self, app_id: i64) -> Result<(), AppError> {
        match self.app {
            Some(own) if own != app_id => Err(AppError::Refused(format!(
                "This key belongs to app {own}: it acts for that app's keys and messages only."
            ))),
            _ => Ok(()),
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
    pub fn actor(&self) -> crate::audit::Actor<'_> {
        match &self.subject {
            Subject::User(id) => crate::audit::Actor::User(*id),
            Subject::Key { key_id, .. } => crate::audit::Actor::Key(key_id),
        }
    }

    pub fn is_owner(&self) -> bool {
        self.owner
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

/// What a key may do: its role's permissions that its owner also holds now (a key
/// never does more than the person it belongs to; an owner who loses a permission takes
/// their keys down with them).
pub fn key_permissions(
    key_role: &BTreeSet<Permission>,
    owner_role: &BTreeSet<Permission>,
) -> BTreeSet<Permission> {
    key_role.intersection(owner_role).copied().collect()
}

/// May `actor` give `role_id` (holding `role_perms`) to someone: never a role holding a
/// permission the actor lacks, and the Owner role only from an Owner. The one rule for
/// users' roles, invitations and (with [`may_set_key_role`]) keys' roles.
pub fn may_assign_role(
    actor: &Principal,
    role_id: i64,
    role_perms: &BTreeSet<Permission>,
) -> Result<(), AppError> {
    if role_id == BuiltinRole::Owner.id() && !actor.is_owner() {
        tracing::info!(subject = ?actor.subject, "refused: only an Owner gives the Owner role");
        return Err(AppError::Forbidden);
    }
    if let Some(missing) = role_perms.iter().find(|x| !actor.has(**x)) {
        tracing::info!(subject = ?actor.subject, role_id, permission = %missing, "refused: a role above the actor's own");
        return Err(AppError::Forbidden);
    }
    Ok(())
}

/// May `actor` set a key's role to `role_id`: [`may_assign_role`] for the actor, and the
/// role never above what the key's owner holds now (`owner_role_id`, `owner_perms`).
pub fn may_set_key_role(
    actor: &Principal,
    owner_role_id: i64,
    owner_perms: &BTreeSet<Permission>,
    role_id: i64,
    role_perms: &BTreeSet<Permission>,
) -> Result<(), AppError> {
    may_assign_role(actor, role_id, role_perms)?;
    let owner_role = BuiltinRole::Owner.id();
    if (role_id == owner_role && owner_role_id != owner_role)
        || role_perms.iter().any(|x| !owner_perms.contains(x))
    {
        return Err(AppError::validation(
            "role_id",
            "A key's role cannot hold more than its owner's role: choose a role within what the key's owner may do.",
        ));
    }
    Ok(())
}

/// May `actor` act on another user (disable, change the role, reset the second
/// factor, end the sessions of) who holds `target_role_id` with `target_perms`: never
/// on themselves this way, never on someone holding a permission the actor lacks, and
/// on an Owner only as an Owner.
pub fn may_act_on_user(
    actor: &Principal,
    target_id: i64,
    target_role_id: i64,
    target_perms: &BTreeSet<Permission>,
    what: &str,
) -> Result<(), AppError> {
    if actor.user_id() == target_id {
        return Err(AppError::validation(
            "user",
            format!("You cannot change your own {what}."),
        ));
    }
    if target_role_id == BuiltinRole::Owner.id() && !actor.is_owner() {
        tracing::info!(subject = ?actor.subject, target_id, "refused: only an Owner acts on an Owner");
        return Err(AppError::Forbidden);
    }
    if let Some(missing) = target_perms.iter().find(|x| !actor.has(**x)) {
        tracing::info!(subject = ?actor.subject, target_id, permission = %missing, "refused: the target holds a permission the actor lacks");
        return Err(AppError::Refused(format!(
            "This user holds a permission you do not ({missing}): only someone who holds every permission they have can change them."
        )));
    }
    Ok(())
}

/// May `actor` edit (permissions, name) or delete the role `role_id`, which holds
/// `role_perms` now: never the role they hold themselves, and never a role holding a
/// permission they lack (its holders may hold more than the actor: the rule of
/// [`may_act_on_user`], applied to everyone holding the role).
pub fn may_edit_role(
    actor: &Principal,
    role_id: i64,
    role_perms: &BTreeSet<Permission>,
) -> Result<(), AppError> {
    if actor.role_id == role_id {
        return Err(AppError::Refused(
            "You cannot edit the role you hold: ask someone with another role that manages roles."
                .into(),
        ));
    }
    if let Some(missing) = role_perms.iter().find(|x| !actor.has(**x)) {
        tracing::info!(subject = ?actor.subject, role_id, permission = %missing, "refused: editing a role that holds more than the actor");
        return Err(AppError::Refused(format!(
            "This role holds a permission you do not ({missing}): only someone who holds every permission in it can change it."
        )));
    }
    Ok(())
}

/// May `actor` see a key owned by `owner_id`: its owner with `api.key.view`, anyone
/// with `api.key.view_all`.
pub fn may_view_key(actor: &Principal, owner_id: Option<i64>, app_id: i64) -> bool {
    actor.acts_for_app(app_id)
        && (actor.has(Permission::ApiKeyViewAll)
            || (actor.has(Permission::ApiKeyView) && owner_id == Some(actor.user_id())))
}

/// Does a listing of keys show `p` everyone's keys, or only their own: REST keys with
/// `api.key.view_all`; channel keys (`channel_keys`) also with `channel.key.manage`,
/// which acts on all of them.
pub fn sees_every_key(p: &Principal, channel_keys: bool) -> bool {
    p.has(Permission::ApiKeyViewAll) || (channel_keys && p.has(Permission::ChannelKeyManage))
}

/// May `actor` change (rename, change the role of, revoke) a key owned by `owner_id`,
/// who holds `owner_role_id` with `owner_perms` now: their own keys, or the keys of
/// someone holding no permission the actor lacks (an Owner's only as an Owner) — the
/// rule of [`may_act_on_user`], for what a user owns.
pub fn may_act_on_key(
    actor: &Principal,
    owner_id: Option<i64>,
    owner_role_id: i64,
    owner_perms: &BTreeSet<Permission>,
) -> Result<(), AppError> {
    if owner_id == Some(actor.user_id()) {
        return Ok(());
    }
    let missing = owner_perms.iter().find(|x| !actor.has(**x));
    if (owner_role_id == BuiltinRole::Owner.id() && !actor.is_owner()) || missing.is_some() {
        tracing::info!(subject = ?actor.subject, ?owner_id, "refused: a key of someone who holds more");
        return Err(AppError::Refused(
            "This key belongs to someone who holds permissions you do not: only they, or someone holding every permission they have, can change or revoke it.".into(),
        ));
    }
    Ok(())
}

/// May `actor` roll a key owned by `owner_id`: only its owner (the new key is theirs,
/// with the old key's role), holding `api.key.update`.
pub fn may_roll_key(actor: &Principal, owner_id: Option<i64>) -> Result<(), AppError> {
    if owner_id != Some(actor.user_id()) {
        return Err(AppError::Refused(
            "Only the key's owner can roll it. To stop this key, revoke it instead.".into(),
        ));
    }
    Ok(())
}

/// May `actor` (who holds `api.key.approve`) approve or reject a pending key owned by
/// `owner_id` with the role `role_id` holding `key_perms`: never their own key (four
/// eyes), and only a role the approver could give themselves (no permission they lack;
/// the Owner role only by an Owner): an approver vouches only for access they hold.
pub fn may_decide_key(
    actor: &Principal,
    owner_id: Option<i64>,
    role_id: i64,
    key_perms: &BTreeSet<Permission>,
) -> Result<(), AppError> {
    if owner_id == Some(actor.user_id()) {
        return Err(AppError::Refused(
            "You cannot approve or reject your own key: someone else who holds api.key.approve decides on it.".into(),
        ));
    }
    if role_id == BuiltinRole::Owner.id() && !actor.is_owner() {
        return Err(AppError::Refused(
            "This key has the Owner role: only an Owner can approve or reject it.".into(),
        ));
    }
    if let Some(missing) = key_perms.iter().find(|x| !actor.has(**x)) {
        tracing::info!(subject = ?actor.subject, ?owner_id, permission = %missing, "refused: deciding on a key that may do more");
        return Err(AppError::Refused(format!(
            "This key may do what you may not ({missing}): only someone holding every permission it has can approve or reject it."
        )));
    }
    Ok(())
}

/// May `p` create keys of a channel whose policy is `policy`: they hold the permission
/// it names (a name this version does not know allows nobody).
pub fn may_create_channel_key(p: &Principal, policy: &model::settings::ChannelPolicy) -> bool {
    Permission::parse(&policy.create_permission).is_some_and(|perm| p.has(perm))
}

/// May `p` act on a channel key owned by `owner_id` under `policy`. A channel key
/// acts for its owner, so its secret is theirs alone: only the owner reveals or
/// regenerates it (as only the owner rolls a REST key), and only while they still hold
/// the permission that creates the channel's keys (what a key of theirs yields never
/// outlives what they may do). Anyone may revoke their own key; a holder of
/// `channel.key.manage` may revoke someone else's under [`may_act_on_key`] (never the
/// key of someone who holds a permission the manager lacks). Someone else's key,
/// without `channel.key.manage`: NotFound, as if it did not exist. `owner_perms`:
/// `owner_role_id`'s permissions now (read only when the key is someone else's).
pub fn may_act_on_channel_key(
    p: &Principal,
    owner_id: Option<i64>,
    owner: Option<(i64, &BTreeSet<Permission>)>,
    policy: &model::settings::ChannelPolicy,
    revoking: bool,
) -> Result<(), AppError> {
    let mine = owner_id == Some(p.user_id());
    if !mine && !p.has(Permission::ChannelKeyManage) {
        return Err(AppError::NotFound);
    }
    match (mine, revoking) {
        (true, true) => Ok(()),
        (true, false) if may_create_channel_key(p, policy) => Ok(()),
        (true, false) => Err(AppError::Refused(format!(
            "Revealing or regenerating this key needs {}, which you no longer hold; you can still revoke it.",
            policy.create_permission
        ))),
        (false, true) => match owner {
            Some((role, perms)) => may_act_on_key(p, owner_id, role, perms),
            // An owner who no longer exists holds nothing.
            None => Ok(()),
        },
        (false, false) => Err(AppError::Refused(
            "Only the key's owner can reveal or regenerate it: its secret acts in their name. To stop this key, revoke it.".into(),
        )),
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
