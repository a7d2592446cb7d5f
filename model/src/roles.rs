//! The permission catalogue (the only place a permission is spelled), the built-in
//! roles, and a role as the panel shows it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One permission of the fixed catalogue, named by its dotted name (`api.key.view`)
/// everywhere it is written: JSON, the database, the panel, the REST API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::EnumCount,
)]
pub enum Permission {
    #[strum(serialize = "api.key.view")]
    ApiKeyView,
    #[strum(serialize = "api.key.view_all")]
    ApiKeyViewAll,
    #[strum(serialize = "api.key.create")]
    ApiKeyCreate,
    #[strum(serialize = "api.key.update")]
    ApiKeyUpdate,
    #[strum(serialize = "api.key.delete")]
    ApiKeyDelete,
    #[strum(serialize = "api.key.approve")]
    ApiKeyApprove,
    #[strum(serialize = "app.manage")]
    AppManage,
    #[strum(serialize = "channel.key.manage")]
    ChannelKeyManage,
    #[strum(serialize = "message.create")]
    MessageCreate,
    #[strum(serialize = "message.approve")]
    MessageApprove,
    #[strum(serialize = "user.manage")]
    UserManage,
    #[strum(serialize = "role.manage")]
    RoleManage,
    #[strum(serialize = "settings.manage")]
    SettingsManage,
    #[strum(serialize = "audit.view")]
    AuditView,
}

impl Permission {
    /// Every permission, in the order the panel lists them.
    pub fn all() -> impl Iterator<Item = Permission> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What the permission allows, in the panel's words.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::ApiKeyView => "See their own API keys",
            Self::ApiKeyViewAll => "See everyone's API keys",
            Self::ApiKeyCreate => "Create API keys",
            Self::ApiKeyUpdate => "Edit and roll API keys",
            Self::ApiKeyDelete => "Revoke API keys",
            Self::ApiKeyApprove => "Approve other people's new API keys",
            Self::AppManage => "Create and configure apps",
            Self::ChannelKeyManage => "Manage channel keys",
            Self::MessageCreate => "Compose messages",
            Self::MessageApprove => "Approve or reject messages",
            Self::UserManage => "Invite and manage users",
            Self::RoleManage => "Create and edit roles",
            Self::SettingsManage => "Change settings",
            Self::AuditView => "Read the audit log",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown permission {s:?}")))
    }
}

/// The built-in roles: read-only, with fixed ids (seeded by the first migration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinRole {
    Owner,
    Admin,
    Developer,
    Approver,
    Viewer,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 5] = [
        Self::Owner,
        Self::Admin,
        Self::Developer,
        Self::Approver,
        Self::Viewer,
    ];

    /// The row id the migration gives this role.
    pub const fn id(self) -> i64 {
        match self {
            Self::Owner => 1,
            Self::Admin => 2,
            Self::Developer => 3,
            Self::Approver => 4,
            Self::Viewer => 5,
        }
    }

    pub const fn key(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Approver => "approver",
            Self::Viewer => "viewer",
        }
    }

    pub fn from_id(id: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    /// The permissions of this role. Owner and Admin hold the whole catalogue; what sets
    /// the Owner apart (making and unmaking Owners) is not a permission but the role.
    pub fn permissions(self) -> Vec<Permission> {
        use Permission as P;
        match self {
            Self::Owner | Self::Admin => P::all().collect(),
            Self::Developer => vec![
                P::ApiKeyView,
                P::ApiKeyCreate,
                P::ApiKeyUpdate,
                P::ApiKeyDelete,
                P::MessageCreate,
            ],
            Self::Approver => vec![P::ApiKeyView, P::MessageApprove],
            Self::Viewer => vec![P::ApiKeyView, P::AuditView],
        }
    }
}

/// A role as the panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    pub id: i64,
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<Permission>,
    /// How many users hold this role.
    pub users: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in Permission::all() {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert!(seen.insert(p.as_str()));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<Permission>(&json).unwrap(), p);
        }
        assert!(Permission::parse("api.key.*").is_none());
        assert!(serde_json::from_str::<Permission>("\"root\"").is_err());
    }

    #[test]
    fn builtin_roles_match_the_product() {
        use Permission as P;
        assert_eq!(
            BuiltinRole::Owner.permissions().len(),
            <P as strum::EnumCount>::COUNT
        );
        assert_eq!(
            BuiltinRole::Admin.permissions().len(),
            <P as strum::EnumCount>::COUNT
        );
        assert!(!BuiltinRole::Developer
            .permissions()
            .contains(&P::ApiKeyViewAll));
        assert_eq!(
            BuiltinRole::Approver.permissions(),
            vec![P::ApiKeyView, P::MessageApprove]
        );
        assert_eq!(
            BuiltinRole::Viewer.permissions(),
            vec![P::ApiKeyView, P::AuditView]
        );
        for r in BuiltinRole::ALL {
            assert_eq!(BuiltinRole::from_id(r.id()), Some(r));
            assert_eq!(BuiltinRole::parse(r.key()), Some(r));
        }
    }
}
