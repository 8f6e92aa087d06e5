//! Members of a tenant and their roles. Only owners grant, change or remove the owner role,
//! and a tenant always keeps at least one owner.

use chrono::{DateTime, Utc};
use platform::context::{Permission, Principal, Role, TenantId, UserId};

use super::{Caller, Identity};
use crate::error::Error;
use crate::store::{self, AuditEntry, MemberRow};

impl Identity {
    /// One page of the tenant's members after `after` (oldest first), and where the next page
    /// starts, if one does.
    pub async fn list_members(
        &self,
        caller: Caller<'_>,
        page_size: usize,
        after: Option<(DateTime<Utc>, uuid::Uuid)>,
        role: Option<Role>,
    ) -> Result<(Vec<MemberRow>, Option<(DateTime<Utc>, uuid::Uuid)>), Error> {
        let tenant = caller.authorize(Permission::MembersRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut members = store::list_members(&mut transaction, tenant, after, role, limit).await?;
        transaction.commit().await?;
        let next = if members.len() > page_size {
            members.truncate(page_size);
            members.last().map(|last| (last.created_at, last.user_id))
        } else {
            None
        };
        Ok((members, next))
    }

    /// One member.
    pub async fn get_member(&self, caller: Caller<'_>, user: UserId) -> Result<MemberRow, Error> {
        let tenant = caller.authorize(Permission::MembersRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let member = store::get_member(&mut transaction, tenant, user, false)
            .await?
            .ok_or(Error::NotFound("member"))?;
        transaction.commit().await?;
        Ok(member)
    }

    /// Changes a member's role.
    pub async fn update_member_role(
        &self,
        caller: Caller<'_>,
        user: UserId,
        role: Role,
        expected_version: Option<i64>,
    ) -> Result<MemberRow, Error> {
        let tenant = caller.authorize(Permission::MembersManage)?;
        let principal = caller.principal()?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let owners = store::lock_owners(&mut transaction, tenant).await?;
        let member = store::get_member(&mut transaction, tenant, user, true)
            .await?
            .ok_or(Error::NotFound("member"))?;
        if expected_version.is_some_and(|version| version != member.version) {
            return Err(Error::EtagMismatch);
        }
        if (role == Role::Owner || member.role() == Role::Owner)
            && !principal.allows(tenant, Permission::OwnersManage)
        {
            return Err(Error::PermissionDenied(
                "only owners grant, change or remove the owner role",
            ));
        }
        if member.role() == Role::Owner && role != Role::Owner && owners <= 1 {
            return Err(Error::FailedPrecondition(
                "the last owner cannot be demoted: make another member owner first",
            ));
        }
        if member.role() != role {
            store::update_role(&mut transaction, tenant, user, role).await?;
            self.audit_member(
                &mut transaction,
                caller,
                tenant,
                user,
                "member.update",
                serde_json::json!({"from": member.role().as_str(), "to": role.as_str()}),
            )
            .await?;
        }
        let updated = store::get_member(&mut transaction, tenant, user, false)
            .await?
            .ok_or(Error::NotFound("member"))?;
        transaction.commit().await?;
        Ok(updated)
    }

    /// Removes a member (admins, or the member themselves) and ends their sessions in the
    /// tenant.
    pub async fn remove_member(&self, caller: Caller<'_>, user: UserId) -> Result<(), Error> {
        let principal = caller.principal()?;
        let removing_self =
            matches!(principal, Principal::User { user_id, .. } if *user_id == user);
        let tenant = if removing_self {
            caller.tenant()?
        } else {
            caller.authorize(Permission::MembersManage)?
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let owners = store::lock_owners(&mut transaction, tenant).await?;
        let member = store::get_member(&mut transaction, tenant, user, true)
            .await?
            .ok_or(Error::NotFound("member"))?;
        if member.role() == Role::Owner {
            if !removing_self && !principal.allows(tenant, Permission::OwnersManage) {
                return Err(Error::PermissionDenied("only owners remove owners"));
            }
            if owners <= 1 {
                return Err(Error::FailedPrecondition(
                    "the last owner cannot be removed: make another member owner first",
                ));
            }
        }
        store::delete_member(&mut transaction, tenant, user).await?;
        let revoked =
            store::revoke_user_sessions(&mut transaction, user, None, "removed from the tenant")
                .await?;
        self.audit_member(
            &mut transaction,
            caller,
            tenant,
            user,
            "member.remove",
            serde_json::json!({"role": member.role().as_str()}),
        )
        .await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(())
    }

    pub(crate) async fn audit_member(
        &self,
        connection: &mut sqlx::PgConnection,
        caller: Caller<'_>,
        tenant: TenantId,
        user: UserId,
        action: &'static str,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        store::insert_audit(
            connection,
            AuditEntry {
                tenant_id: Some(tenant),
                actor: caller.principal()?.audit_name(),
                action,
                target: format!("members/{user}"),
                details,
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        Ok(())
    }
}
