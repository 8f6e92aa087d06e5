//! Members of a tenant and their roles. Only owners grant, change or remove the owner role,
//! and a tenant always keeps at least one owner.

use chrono::{DateTime, Utc};
use platform::audit::AuditEntry;
use platform::context::{Permission, Principal, RequestContext, Role, TenantId, UserId};
use platform::error::CommonError;
use platform::paging::{fetch_limit, split_page};

use super::Identity;
use crate::domain::Member;
use crate::error::Error;
use crate::store;

/// Where a page of members starts: after this member, in joining order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberPosition {
    /// When the member joined.
    pub joined_at: DateTime<Utc>,
    /// The member's user (joining times can be equal).
    pub user_id: UserId,
}

/// A page of members, and where the next starts if more follow.
#[derive(Debug)]
pub struct MemberPage {
    /// The members, oldest first.
    pub members: Vec<Member>,
    /// The last member of this page, when more follow.
    pub next_after: Option<MemberPosition>,
}

impl Identity {
    /// One page of the tenant's members after `after` (oldest first), with `role` if given.
    #[tracing::instrument(skip_all)]
    pub async fn list_members(
        &self,
        context: &RequestContext,
        page_size: usize,
        after: Option<MemberPosition>,
        role: Option<Role>,
    ) -> Result<MemberPage, Error> {
        let tenant = context.authorize(Permission::MembersRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let limit = fetch_limit(page_size);
        let after = after.map(|position| (position.joined_at, position.user_id));
        let members = store::list_members(&mut transaction, tenant, after, role, limit).await?;
        transaction.commit().await?;
        let (members, next_after) = split_page(members, page_size, |last| MemberPosition {
            joined_at: last.created_at,
            user_id: last.user_id,
        });
        Ok(MemberPage {
            members,
            next_after,
        })
    }

    /// One member.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn get_member(
        &self,
        context: &RequestContext,
        user: UserId,
    ) -> Result<Member, Error> {
        let tenant = context.authorize(Permission::MembersRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let member = store::get_member(&mut transaction, tenant, user, false)
            .await?
            .ok_or(Error::MemberNotFound(user))?;
        transaction.commit().await?;
        Ok(member)
    }

    /// Changes a member's role, if `expected_version` (when given) is still theirs, and ends
    /// their sessions in the tenant: they sign in again with the new role.
    #[tracing::instrument(skip_all, fields(user_id = %user, role = role.as_str()))]
    pub async fn update_member_role(
        &self,
        context: &RequestContext,
        user: UserId,
        role: Role,
        expected_version: Option<i64>,
    ) -> Result<Member, Error> {
        let tenant = self
            .authorize_live(context, Permission::MembersManage)
            .await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let owners = store::lock_owners(&mut transaction, tenant).await?;
        let member = store::get_member(&mut transaction, tenant, user, true)
            .await?
            .ok_or(Error::MemberNotFound(user))?;
        if expected_version.is_some_and(|version| version != member.version) {
            return Err(CommonError::EtagMismatch("member").into());
        }
        if role == Role::Owner || member.role == Role::Owner {
            context
                .authorize_on(tenant, Permission::OwnersManage)
                .map_err(|_| Error::OwnersOnly)?;
        }
        if member.role == Role::Owner && role != Role::Owner && owners <= 1 {
            return Err(Error::LastOwner);
        }
        // Tokens carry the role they were issued with: the member's sessions in the tenant
        // end with the change, so that no service acts on the old role until it expires.
        let mut revoked = Vec::new();
        if member.role != role {
            store::update_role(&mut transaction, tenant, user, role).await?;
            revoked =
                store::revoke_user_sessions(&mut transaction, user, None, "role changed").await?;
            let details = serde_json::json!({"from": member.role.as_str(), "to": role.as_str()});
            let entry = member_entry(context, tenant, user, "member.update", details);
            self.audit(&mut transaction, entry).await?;
        }
        let updated = store::get_member(&mut transaction, tenant, user, false)
            .await?
            .ok_or(Error::MemberNotFound(user))?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(updated)
    }

    /// Removes a member (admins, or the member themselves) and ends their sessions in the
    /// tenant.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn remove_member(&self, context: &RequestContext, user: UserId) -> Result<(), Error> {
        let removing_self =
            matches!(context.principal()?, Principal::User { user_id, .. } if *user_id == user);
        let tenant = if removing_self {
            context.acting_tenant()?
        } else {
            self.authorize_live(context, Permission::MembersManage)
                .await?
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let owners = store::lock_owners(&mut transaction, tenant).await?;
        let member = store::get_member(&mut transaction, tenant, user, true)
            .await?
            .ok_or(Error::MemberNotFound(user))?;
        if member.role == Role::Owner {
            if !removing_self {
                context
                    .authorize_on(tenant, Permission::OwnersManage)
                    .map_err(|_| Error::OwnersOnly)?;
            }
            if owners <= 1 {
                return Err(Error::LastOwner);
            }
        }
        store::delete_member(&mut transaction, tenant, user).await?;
        let revoked =
            store::revoke_user_sessions(&mut transaction, user, None, "removed from the tenant")
                .await?;
        let details = serde_json::json!({"role": member.role.as_str()});
        let entry = member_entry(context, tenant, user, "member.remove", details);
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(())
    }
}

/// The audit entry of the caller acting on `user`'s membership.
fn member_entry(
    context: &RequestContext,
    tenant: TenantId,
    user: UserId,
    action: &'static str,
    details: serde_json::Value,
) -> AuditEntry {
    let target = platform::wire::resource_name("members", user);
    AuditEntry::by(context, Some(tenant), action, target, details)
}
