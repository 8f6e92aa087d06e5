//! Invitations: an admin invites an email with a role; the invitee accepts with the emailed
//! token, registering an account or using the one they have.

use chrono::Utc;
use platform::context::{Permission, Role, TenantId, UserId};
use platform::error::FieldViolations;
use proto::formflow::events::v1 as events;
use proto::formflow::events::v1::RegistrationMethod;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{Caller, Identity};
use crate::crypto::{new_token, token_digest};
use crate::domain::{Email, PersonName};
use crate::error::Error;
use crate::grpc::convert;
use crate::store::{self, InvitationRow, MemberRow, NewInvitation, UserRow};

/// A validated CreateInvitation.
#[derive(Debug)]
pub struct NewInvitationRequest {
    /// Who is invited.
    pub email: Email,
    /// The role they get.
    pub role: Role,
    /// Note for the email, at most 500 characters.
    pub message: String,
    /// How long the token is valid.
    pub ttl: chrono::Duration,
}

/// What AcceptInvitation did.
#[derive(Debug)]
pub struct AcceptedInvitation {
    /// The user, created or existing.
    pub user: UserRow,
    /// The new membership.
    pub member: MemberRow,
    /// Whether the account was created.
    pub new_user: bool,
}

impl Identity {
    /// Invites an email to the tenant and emits the event that mails the token.
    pub async fn create_invitation(
        &self,
        caller: Caller<'_>,
        request: NewInvitationRequest,
    ) -> Result<InvitationRow, Error> {
        let tenant = caller.authorize(Permission::MembersManage)?;
        let principal = caller.principal()?;
        if request.role == Role::Owner && !principal.allows(tenant, Permission::OwnersManage) {
            return Err(Error::PermissionDenied("only owners invite owners"));
        }
        let inviter = match principal {
            platform::context::Principal::User { user_id, .. }
            | platform::context::Principal::PlatformAdmin { user_id } => *user_id,
            _ => return Err(Error::FailedPrecondition("invitations are sent by people")),
        };
        let resolved = self
            .tenants
            .resolve(tenant, &caller.context.request_id)
            .await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if let Some(user) = store::find_user_by_email(&mut transaction, &request.email).await?
            && store::get_member(&mut transaction, tenant, user.user_id(), false)
                .await?
                .is_some()
        {
            return Err(Error::AlreadyExists("this email is already a member"));
        }
        store::expire_invitations(&mut transaction, tenant).await?;
        let (token, digest) = new_token("ffi_");
        let id = Uuid::now_v7();
        let inserted = store::insert_invitation(
            &mut transaction,
            &NewInvitation {
                id,
                tenant_id: tenant,
                email: request.email.as_str(),
                role: request.role,
                message: &request.message,
                token_digest: &digest,
                inviter_id: inviter,
                expires_at: Utc::now() + request.ttl,
            },
        )
        .await?;
        if !inserted {
            return Err(Error::AlreadyExists(
                "this email has a pending invitation: revoke it first",
            ));
        }
        let invitation = store::get_invitation(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("invitation {id} vanished"))?;
        let inviter_name = store::get_user(&mut transaction, inviter, false)
            .await?
            .map(|user| user.display_name)
            .unwrap_or_default();
        let event = events::InvitationCreated {
            invitation: Some(convert::invitation_to_proto(&invitation)),
            token: token.expose_secret().to_owned(),
            tenant_slug: resolved.slug,
            tenant_display_name: resolved.display_name,
            inviter_display_name: inviter_name,
        };
        self.outbox
            .enqueue(&mut transaction, Some(tenant), event)
            .await?;
        store::insert_audit(
            &mut transaction,
            store::AuditEntry {
                tenant_id: Some(tenant),
                actor: principal.audit_name(),
                action: "invitation.create",
                target: format!("invitations/{id}"),
                details: serde_json::json!({"email": request.email.as_str(), "role": request.role.as_str()}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(invitation)
    }

    /// One page of the tenant's invitations before `before` (newest first), in `state` or
    /// all, and where the next page starts, if one does.
    pub async fn list_invitations(
        &self,
        caller: Caller<'_>,
        page_size: usize,
        before: Option<Uuid>,
        state: Option<&str>,
    ) -> Result<(Vec<InvitationRow>, Option<Uuid>), Error> {
        let tenant = caller.authorize(Permission::MembersRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        store::expire_invitations(&mut transaction, tenant).await?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut invitations =
            store::list_invitations(&mut transaction, tenant, before, state, limit).await?;
        transaction.commit().await?;
        let next = if invitations.len() > page_size {
            invitations.truncate(page_size);
            invitations.last().map(|last| last.id)
        } else {
            None
        };
        Ok((invitations, next))
    }

    /// Revokes a pending invitation.
    pub async fn revoke_invitation(
        &self,
        caller: Caller<'_>,
        id: Uuid,
    ) -> Result<InvitationRow, Error> {
        let tenant = caller.authorize(Permission::MembersManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let invitation = store::get_invitation(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        if !invitation.is_pending()
            || !store::close_invitation(&mut transaction, id, "revoked", None).await?
        {
            return Err(Error::FailedPrecondition(
                "the invitation is no longer pending",
            ));
        }
        store::insert_audit(
            &mut transaction,
            store::AuditEntry {
                tenant_id: Some(tenant),
                actor: caller.principal()?.audit_name(),
                action: "invitation.revoke",
                target: format!("invitations/{id}"),
                details: serde_json::json!({}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        let revoked = store::get_invitation(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        transaction.commit().await?;
        Ok(revoked)
    }

    /// Accepts an invitation: an unknown email registers with `display_name` and `password`;
    /// a known one proves it is theirs with the account's password.
    pub async fn accept_invitation(
        &self,
        caller: Caller<'_>,
        token: &SecretString,
        display_name: Option<PersonName>,
        password: &SecretString,
    ) -> Result<AcceptedInvitation, Error> {
        const REFUSED: Error = Error::Unauthenticated("invalid or expired invitation");
        let mut lookup = self.db.platform_tx().await?;
        let invitation =
            store::find_invitation_by_token(&mut lookup, &token_digest(token.expose_secret()))
                .await?
                .ok_or(REFUSED)?;
        lookup.commit().await?;
        let tenant = TenantId::from(invitation.tenant_id);
        if !invitation.is_pending()
            || caller
                .context
                .tenant_id
                .is_some_and(|routed| routed != tenant)
        {
            return Err(REFUSED);
        }
        let email = Email::parse(&invitation.email).map_err(|_| REFUSED)?;

        let mut transaction = self.db.tenant_tx(tenant).await?;
        let existing = store::find_user_by_email(&mut transaction, &email).await?;
        let (user_id, new_user) = match existing {
            Some(user) => {
                if !self
                    .passwords
                    .verify(password, Some(&user.password_hash))
                    .await?
                {
                    return Err(FieldViolations::single(
                        "password",
                        "is not the password of this email's account",
                    )
                    .into());
                }
                (user.user_id(), false)
            }
            None => {
                let Some(display_name) = display_name else {
                    return Err(FieldViolations::single(
                        "display_name",
                        "is required for a new account",
                    )
                    .into());
                };
                if let Err(error) = self
                    .settings
                    .password_policy()
                    .check(password, &[email.as_str(), display_name.as_str()])
                {
                    return Err(FieldViolations::single("password", error.to_string()).into());
                }
                let hash = self.passwords.hash(password).await?;
                let user_id = UserId::generate();
                if !store::insert_user(
                    &mut transaction,
                    user_id,
                    &email,
                    display_name.as_str(),
                    &hash,
                    false,
                )
                .await?
                {
                    return Err(Error::AlreadyExists(
                        "an account with this email was just created; accept again with its password",
                    ));
                }
                (user_id, true)
            }
        };
        if !store::insert_member(&mut transaction, tenant, user_id, invitation.role()).await? {
            return Err(Error::AlreadyExists("already a member of this tenant"));
        }
        if !store::close_invitation(&mut transaction, invitation.id, "accepted", Some(user_id))
            .await?
        {
            return Err(REFUSED);
        }
        let user = store::get_user(&mut transaction, user_id, false)
            .await?
            .ok_or(REFUSED)?;
        let member = store::get_member(&mut transaction, tenant, user_id, false)
            .await?
            .ok_or(REFUSED)?;
        let event = events::UserRegistered {
            user: Some(convert::user_to_proto(&user)),
            member: Some(convert::member_to_proto(&member)),
            method: RegistrationMethod::Invitation as i32,
            new_user,
        };
        self.outbox
            .enqueue(&mut transaction, Some(tenant), event)
            .await?;
        store::insert_audit(
            &mut transaction,
            store::AuditEntry {
                tenant_id: Some(tenant),
                actor: format!("user:{user_id}"),
                action: "invitation.accept",
                target: format!("invitations/{}", invitation.id),
                details: serde_json::json!({"new_user": new_user, "role": invitation.role().as_str()}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(AcceptedInvitation {
            user,
            member,
            new_user,
        })
    }
}

/// The state an invitation shows: a pending one past its expiry reads as expired.
pub fn invitation_state(invitation: &InvitationRow) -> &str {
    if invitation.state == "pending" && invitation.expires_at <= Utc::now() {
        "expired"
    } else {
        &invitation.state
    }
}

/// When an invitation's lifetime is valid.
pub fn check_ttl(ttl: Option<chrono::Duration>) -> Result<chrono::Duration, &'static str> {
    let ttl = ttl.unwrap_or(chrono::Duration::days(7));
    if ttl < chrono::Duration::hours(1) || ttl > chrono::Duration::days(30) {
        return Err("must be between 1 hour and 30 days");
    }
    Ok(ttl)
}
