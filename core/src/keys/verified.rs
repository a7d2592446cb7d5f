//! A known key as verification reads it (cached per secret), and the refusals that
//! depend on the key alone.

use crate::access::Principal;
use ipnet::IpNet;
use model::roles::Permission;
use std::sync::Arc;

/// Why a request's key is refused, before any permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No key was sent.
    Missing,
    /// Malformed, a wrong checksum, or no key has this secret: one refusal for all
    /// three, so a caller cannot tell a mistyped key from an unknown one.
    Invalid,
    Revoked,
    /// The owner's account is disabled (a key acts for its owner, so it stops with them).
    OwnerDisabled,
    Expired,
    /// Settings > Keys require approval and nobody has approved the key yet.
    Pending,
    /// Disabled after Settings > Keys' days of disuse; its owner can enable it again.
    Disabled,
    /// The caller's address is outside the app's or the key's allow-list.
    IpNotAllowed,
    /// A public SDK key on a server endpoint.
    SdkNotAllowed,
    /// The address or the key is past its allowance of refusals (see `refusals`).
    RateLimited {
        retry_after_secs: u64,
    },
}

impl Refusal {
    /// The contract's error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_api_key",
            Self::Invalid => "invalid_api_key",
            Self::Revoked | Self::OwnerDisabled => "key_revoked",
            Self::Expired => "key_expired",
            Self::Pending => "key_pending",
            Self::Disabled => "key_disabled",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::SdkNotAllowed => "sdk_key_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
        }
    }
}

/// A verified key as the REST API needs it.
#[derive(Debug)]
pub struct VerifiedKey {
    pub key_id: String,
    pub kind: String,
    pub environment: String,
    pub app_id: i64,
    pub app: String,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub role_id: Option<i64>,
    /// The owner's role now (None for SDK keys).
    pub owner_role_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    /// Waiting for approval (`lifecycle`).
    pub pending: bool,
    /// Disabled for disuse (`lifecycle`).
    pub disabled: bool,
    /// Channel keys: their channel (`core::channels`), and what they may do with it
    /// (`send`, `status`).
    pub channel: Option<String>,
    pub channel_events: Vec<String>,
    /// SMS keys: the only number (E.164) they may send from.
    pub sender: Option<String>,
    /// False when the owner's account is disabled (or no longer active): a key acts
    /// for its owner, so it stops with them.
    pub owner_active: bool,
    pub app_networks: Vec<IpNet>,
    pub key_networks: Vec<IpNet>,
    /// What the key may do now: its role's permissions that its owner also holds
    /// (`access::key_permissions`).
    pub permissions: std::collections::BTreeSet<Permission>,
    /// The `GET /api/v1/whoami` body of this key, rendered on first use: everything in
    /// it is fixed for as long as this cache entry lives.
    pub whoami: std::sync::OnceLock<bytes::Bytes>,
    /// The second of the last use noted (see `KeyCache::touch`).
    pub last_touched: std::sync::atomic::AtomicI64,
    /// This copy's count of accepted requests (see `usage`).
    pub tally: Arc<super::usage::Tally>,
}

impl VerifiedKey {
    /// A copy with its own rendered body and use marker (see `LOCAL`).
    pub(super) fn copy_for_thread(&self, tally: Arc<super::usage::Tally>) -> Self {
        Self {
            key_id: self.key_id.clone(),
            kind: self.kind.clone(),
            environment: self.environment.clone(),
            app_id: self.app_id,
            app: self.app.clone(),
            owner_id: self.owner_id,
            owner: self.owner.clone(),
            role_id: self.role_id,
            owner_role_id: self.owner_role_id,
            expires_at: self.expires_at,
            revoked: self.revoked,
            pending: self.pending,
            disabled: self.disabled,
            channel: self.channel.clone(),
            channel_events: self.channel_events.clone(),
            sender: self.sender.clone(),
            owner_active: self.owner_active,
            app_networks: self.app_networks.clone(),
            key_networks: self.key_networks.clone(),
            permissions: self.permissions.clone(),
            whoami: std::sync::OnceLock::new(),
            last_touched: std::sync::atomic::AtomicI64::new(
                self.last_touched.load(std::sync::atomic::Ordering::Relaxed),
            ),
            tally,
        }
    }

    /// Counts a request this key was let through for (after its permission check):
    /// one add to a counter only this thread writes.
    pub fn accepted(&self) {
        self.tally.add();
    }

    /// Revoked, its owner disabled, expired at `now`, waiting for approval or disabled
    /// for disuse, in that order. Expired at `now` (a key whose expiry is T works at T−1 s and is
    /// refused from T on; a rolled key's expiry is its grace deadline).
    pub fn refusal(&self, now: i64) -> Option<Refusal> {
        if self.revoked {
            Some(Refusal::Revoked)
        } else if !self.owner_active {
            Some(Refusal::OwnerDisabled)
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some(Refusal::Expired)
        } else if self.pending {
            Some(Refusal::Pending)
        } else if self.disabled {
            Some(Refusal::Disabled)
        } else {
            None
        }
    }

    /// True when `ip` is inside the app's allow-list and the key's own (an empty list
    /// allows any address). `ip` is already normalised (IPv4-mapped IPv6 → IPv4).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let inside = |nets: &[IpNet]| nets.is_empty() || nets.iter().any(|n| n.contains(&ip));
        inside(&self.app_networks) && inside(&self.key_networks)
    }

    /// The principal a secret key acts as: its owner, limited to the key's effective
    /// permissions. `None` for a public SDK key, which acts for nobody. (A channel key
    /// has no role of its own: it acts in its owner's, limited to writing messages.)
    pub fn principal(&self) -> Option<Principal> {
        let role = if self.channel.is_some() {
            self.owner_role_id?
        } else {
            self.role_id?
        };
        Some(Principal::key(
            self.key_id.clone(),
            self.owner_id?,
            self.owner_role_id?,
            role,
            self.permissions.clone(),
            self.app_id,
        ))
    }

    /// Whether this channel key may write a message of `channel` from `sender` (an
    /// SMS's number, else empty): only on its own channel with its `send` event, and an
    /// SMS key only from its own number. A REST key: always (its app is checked by
    /// `Principal::acts_for_app`, its permissions decide the rest).
    pub fn may_write(&self, channel: &str, sender: &str) -> bool {
        if self.channel.is_none() {
            return true;
        }
        self.channel_allows("send", Some(channel))
            && self.sender.as_deref().is_none_or(|own| {
                crate::infra::phone::e164("from", sender).is_ok_and(|given| given == own)
            })
    }

    /// For a channel key: whether it may be used for `event` (`send`, `status`) on
    /// `channel` (`None`: any of its own). A REST or SDK key: always false.
    pub fn channel_allows(&self, event: &str, channel: Option<&str>) -> bool {
        self.channel.as_deref().is_some_and(|own| {
            channel.is_none_or(|c| c == own) && self.channel_events.iter().any(|e| e == event)
        })
    }
}
