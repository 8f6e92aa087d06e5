//! API keys for machine clients, their states, and the ceiling on what a key may do: no more
//! than the person who creates it, never an owner's rights.

use chrono::{DateTime, Utc};
use platform::context::{ApiKeyId, Permission, Role, TenantId, UserId};

use super::account::{InvalidName, parse_name};

/// Most scopes one key may have.
pub const MAX_SCOPES: usize = 50;

/// An API key's name: 1 to 100 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// Trims and validates `text`.
    pub fn parse(text: &str) -> Result<ApiKeyName, InvalidName> {
        parse_name(text).map(ApiKeyName)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKeyState {
    /// Accepted.
    Active,
    /// Revoked by an admin.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl ApiKeyState {
    /// The name used in logs and list filters.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyState::Active => "active",
            ApiKeyState::Revoked => "revoked",
            ApiKeyState::Expired => "expired",
        }
    }
}

/// An API key (its secret exists only as a digest in the store).
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub display_name: ApiKeyName,
    /// The role it acts with (never owner).
    pub role: Role,
    /// The permissions it is limited to; empty means all its role has.
    pub scopes: Vec<Permission>,
    /// The first characters of its secret, to recognise it.
    pub secret_prefix: String,
    /// Who created it.
    pub creator_id: UserId,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last verified at (at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Its state at `now`: revoked wins over expired.
    pub fn state_at(&self, now: DateTime<Utc>) -> ApiKeyState {
        if self.revoked_at.is_some() {
            ApiKeyState::Revoked
        } else if self.expires_at.is_some_and(|expires_at| expires_at <= now) {
            ApiKeyState::Expired
        } else {
            ApiKeyState::Active
        }
    }

    /// What it may do: its scopes, or, without scopes, everything its role may.
    pub fn permissions(&self) -> Vec<Permission> {
        if self.scopes.is_empty() {
            self.role.permissions()
        } else {
            self.scopes.clone()
        }
    }
}

/// Why a key may not have a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRoleError {
    /// Owners' rights stay with people.
    #[error("an API key cannot be an owner")]
    Owner,
    /// A key cannot do more than its creator.
    #[error("must not exceed the creator's role")]
    AboveCreator,
}

/// Checks the role of a key created by someone with `creator_role`: at most the creator's,
/// never owner.
pub fn check_key_role(creator_role: Role, role: Role) -> Result<(), KeyRoleError> {
    if role == Role::Owner {
        Err(KeyRoleError::Owner)
    } else if !creator_role.includes(role) {
        Err(KeyRoleError::AboveCreator)
    } else {
        Ok(())
    }
}

/// A scope the key's role does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} is beyond the key's role", .0.as_str())]
pub struct ScopeBeyondRole(pub Permission);

/// Checks that a key with `role` has every permission its `scopes` name: scopes narrow a key,
/// they never widen it.
pub fn check_key_scopes(role: Role, scopes: &[Permission]) -> Result<(), ScopeBeyondRole> {
    match scopes
        .iter()
        .find(|scope| !role.includes(scope.least_role()))
    {
        Some(scope) => Err(ScopeBeyondRole(*scope)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::sample::subsequence;

    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits = proto::published_limits("formflow.auth.v1.ApiKey", "scopes");
        assert_eq!(limits.max_items as usize, MAX_SCOPES);
    }

    const ROLES: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    fn key(role: Role, scopes: Vec<Permission>) -> ApiKey {
        let now = Utc::now();
        ApiKey {
            id: ApiKeyId::generate(),
            tenant_id: TenantId::generate(),
            display_name: ApiKeyName::parse("ci").unwrap(),
            role,
            scopes,
            secret_prefix: "ffk_abcdefgh".to_owned(),
            creator_id: UserId::generate(),
            expires_at: None,
            last_used_at: None,
            created_at: now,
            revoked_at: None,
        }
    }

    #[test]
    fn keys_act_with_at_most_their_creators_role_and_never_as_owners() {
        assert_eq!(check_key_role(Role::Admin, Role::Member), Ok(()));
        assert_eq!(check_key_role(Role::Admin, Role::Admin), Ok(()));
        assert_eq!(
            check_key_role(Role::Member, Role::Admin),
            Err(KeyRoleError::AboveCreator)
        );
        assert_eq!(
            check_key_role(Role::Owner, Role::Owner),
            Err(KeyRoleError::Owner)
        );
    }

    #[test]
    fn scopes_must_lie_within_the_keys_role() {
        assert_eq!(check_key_scopes(Role::Member, &[]), Ok(()));
        assert_eq!(
            check_key_scopes(
                Role::Member,
                &[Permission::FormsRead, Permission::FormsWrite]
            ),
            Ok(())
        );
        assert_eq!(
            check_key_scopes(
                Role::Member,
                &[Permission::FormsRead, Permission::MembersManage]
            ),
            Err(ScopeBeyondRole(Permission::MembersManage))
        );
        assert_eq!(
            ScopeBeyondRole(Permission::MembersManage).to_string(),
            "members:manage is beyond the key's role"
        );
    }

    #[test]
    fn revoked_wins_over_expired_and_expiry_is_inclusive() {
        let now = Utc::now();
        let mut api_key = key(Role::Member, Vec::new());
        assert_eq!(api_key.state_at(now), ApiKeyState::Active);
        api_key.expires_at = Some(now);
        assert_eq!(api_key.state_at(now), ApiKeyState::Expired);
        assert_eq!(
            api_key.state_at(now - chrono::Duration::seconds(1)),
            ApiKeyState::Active
        );
        api_key.revoked_at = Some(now);
        assert_eq!(api_key.state_at(now), ApiKeyState::Revoked);
    }

    #[test]
    fn unscoped_keys_have_their_roles_permissions_and_scoped_ones_their_scopes() {
        assert_eq!(
            key(Role::Viewer, Vec::new()).permissions(),
            Role::Viewer.permissions()
        );
        assert_eq!(
            key(Role::Admin, vec![Permission::FormsRead]).permissions(),
            [Permission::FormsRead]
        );
    }

    proptest! {
        #[test]
        fn an_accepted_key_never_does_more_than_its_creator(
            creator in 0..4_usize,
            role in 0..4_usize,
            scopes in subsequence(Permission::ALL.to_vec(), 0..=Permission::ALL.len()),
        ) {
            let (creator, role) = (ROLES[creator], ROLES[role]);
            if check_key_role(creator, role).is_ok() && check_key_scopes(role, &scopes).is_ok() {
                prop_assert_ne!(role, Role::Owner);
                let creators = creator.permissions();
                let granted = key(role, scopes).permissions();
                prop_assert!(granted.iter().all(|permission| creators.contains(permission)));
                prop_assert!(!granted.contains(&Permission::OwnersManage));
            }
        }
    }
}
