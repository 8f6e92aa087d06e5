//! Invitations: an admin invites an email with a role; the invitee accepts with the emailed
//! token, registering an account or using the one they have.

use chrono::Utc;
use platform::audit::AuditEntry;
use platform::context::{Permission, Principal, RequestContext, Role, TenantId, UserId};
use platform::error::FieldViolations;
use platform::paging::{fetch_limit, split_page};
use secrecy::{ExposeSecret, SecretString};

use super::{Identity, audit_as_user};
use crate::crypto::{new_token, token_digest};
use crate::domain::{Email, Invitation, InvitationId, InvitationState, Member, PersonName, User};
use crate::error::Error;
use crate::events::{self, Registration};
use crate::store::{self, NewInvitation};

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

/// A page of invitations, and where the next starts if more follow.
#[derive(Debug)]
pub struct InvitationPage {
    /// The invitations, newest first.
    pub invitations: Vec<Invitation>,
    /// The last invitation of this page, when more follow.
    pub next_before: Option<InvitationId>,
}

/// What AcceptInvitation did.
#[derive(Debug)]
pub struct AcceptedInvitation {
    /// The user, created or existing.
    pub user: User,
    /// The new membership.
    pub member: Member,
    /// Whether the account was created.
    pub new_user: bool,
}

impl Identity {
    /// Invites an email to the tenant and emits the event that mails the token.
    #[tracing::instrument(skip_all, fields(role = request.role.as_str()))]
    pub async fn create_invitation(
        &self,
        context: &RequestContext,
        request: NewInvitationRequest,
    ) -> Result<Invitation, Error> {
        let tenant = self
            .authorize_live(context, Permission::MembersManage)
            .await?;
        if request.role == Role::Owner {
            context
                .authorize_on(tenant, Permission::OwnersManage)
                .map_err(|_| Error::OwnersOnly)?;
        }
        let inviter = match context.principal()? {
            Principal::User { user_id, .. } | Principal::PlatformAdmin { user_id } => *user_id,
            Principal::ApiKey { .. } | Principal::Service { .. } => return Err(Error::PeopleOnly),
        };
        let resolved = self.tenants.resolve(tenant, &context.request_id).await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if let Some(user) = store::find_user_by_email(&mut transaction, &request.email).await?
            && store::get_member(&mut transaction, tenant, user.id, false)
                .await?
                .is_some()
        {
            return Err(Error::AlreadyMember);
        }
        store::expire_invitations(&mut transaction, tenant).await?;
        let (token, digest) = new_token("ffi_");
        let id = InvitationId::generate();
        let new_invitation = NewInvitation {
            id,
            tenant_id: tenant,
            email: &request.email,
            role: request.role,
            message: &request.message,
            token_digest: &digest,
            inviter_id: inviter,
            expires_at: Utc::now() + request.ttl,
        };
        if !store::insert_invitation(&mut transaction, &new_invitation).await? {
            return Err(Error::InvitationPending);
        }
        let invitation = store::get_invitation(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("invitation {id} vanished"))?;
        let inviter_name = store::get_user(&mut transaction, inviter, false)
            .await?
            .map(|user| user.display_name.as_str().to_owned())
            .unwrap_or_default();
        let event = events::invitation_created(&invitation, &token, &resolved, &inviter_name);
        self.enqueue_sealed(&mut transaction, Some(tenant), event, |event| {
            event.token.clear();
        })
        .await?;
        let details =
            serde_json::json!({"email": request.email.as_str(), "role": request.role.as_str()});
        let entry = invitation_entry(context, tenant, id, "invitation.create", details);
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(invitation)
    }

    /// One page of the tenant's invitations before `before` (newest first), in `state` or
    /// all.
    #[tracing::instrument(skip_all)]
    pub async fn list_invitations(
        &self,
        context: &RequestContext,
        page_size: usize,
        before: Option<InvitationId>,
        state: Option<InvitationState>,
    ) -> Result<InvitationPage, Error> {
        let tenant = context.authorize(Permission::MembersRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        // Stored states catch up with expiry first, so the filter sees what clients see.
        store::expire_invitations(&mut transaction, tenant).await?;
        let limit = fetch_limit(page_size);
        let state = state.map(InvitationState::as_str);
        let invitations =
            store::list_invitations(&mut transaction, tenant, before, state, limit).await?;
        transaction.commit().await?;
        let (invitations, next_before) = split_page(invitations, page_size, |last| last.id);
        Ok(InvitationPage {
            invitations,
            next_before,
        })
    }

    /// Revokes a pending invitation.
    #[tracing::instrument(skip_all, fields(invitation_id = %id))]
    pub async fn revoke_invitation(
        &self,
        context: &RequestContext,
        id: InvitationId,
    ) -> Result<Invitation, Error> {
        let tenant = self
            .authorize_live(context, Permission::MembersManage)
            .await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let invitation = store::get_invitation(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::InvitationNotFound(id))?;
        if !invitation.is_pending_at(Utc::now())
            || !store::close_invitation(&mut transaction, id, InvitationState::Revoked, None)
                .await?
        {
            return Err(Error::InvitationClosed);
        }
        let entry = invitation_entry(
            context,
            tenant,
            id,
            "invitation.revoke",
            serde_json::json!({}),
        );
        self.audit(&mut transaction, entry).await?;
        let revoked = store::get_invitation(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::InvitationNotFound(id))?;
        transaction.commit().await?;
        Ok(revoked)
    }

    /// Accepts an invitation: an unknown email registers with `display_name` and `password`;
    /// a known one proves it is theirs with the account's password.
    #[tracing::instrument(skip_all)]
    pub async fn accept_invitation(
        &self,
        context: &RequestContext,
        token: &SecretString,
        display_name: Option<PersonName>,
        password: &SecretString,
    ) -> Result<AcceptedInvitation, Error> {
        let mut lookup = self.db.platform_tx().await?;
        let invitation =
            store::find_invitation_by_token(&mut lookup, &token_digest(token.expose_secret()))
                .await?
                .ok_or(Error::InvalidInvitation)?;
        lookup.commit().await?;
        let tenant = invitation.tenant_id;
        if !invitation.is_pending_at(Utc::now())
            || context.tenant_id.is_some_and(|routed| routed != tenant)
        {
            return Err(Error::InvalidInvitation);
        }

        let mut transaction = self.db.tenant_tx(tenant).await?;
        let existing = store::find_user_by_email(&mut transaction, &invitation.email).await?;
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
                (user.id, false)
            }
            None => {
                let Some(display_name) = display_name else {
                    return Err(FieldViolations::single(
                        "display_name",
                        "is required for a new account",
                    )
                    .into());
                };
                let inputs = [invitation.email.as_str(), display_name.as_str()];
                if let Err(error) = self.settings.password_policy().check(password, &inputs) {
                    return Err(FieldViolations::single("password", error.to_string()).into());
                }
                let hash = self.passwords.hash(password).await?;
                let user_id = UserId::generate();
                if !store::insert_user(
                    &mut transaction,
                    user_id,
                    &invitation.email,
                    &display_name,
                    &hash,
                    false,
                )
                .await?
                {
                    return Err(Error::AccountCreatedMeanwhile);
                }
                (user_id, true)
            }
        };
        if !store::insert_member(&mut transaction, tenant, user_id, invitation.role).await? {
            return Err(Error::AlreadyMember);
        }
        let accepted = InvitationState::Accepted;
        if !store::close_invitation(&mut transaction, invitation.id, accepted, Some(user_id))
            .await?
        {
            return Err(Error::InvalidInvitation);
        }
        let user = store::get_user(&mut transaction, user_id, false)
            .await?
            .ok_or(Error::InvalidInvitation)?;
        let member = store::get_member(&mut transaction, tenant, user_id, false)
            .await?
            .ok_or(Error::InvalidInvitation)?;
        let event = events::user_registered(&user, &member, Registration::Invitation, new_user);
        self.enqueue(&mut transaction, Some(tenant), event).await?;
        let entry = audit_as_user(
            context,
            user_id,
            Some(tenant),
            "invitation.accept",
            platform::wire::resource_name("invitations", invitation.id),
            serde_json::json!({"new_user": new_user, "role": invitation.role.as_str()}),
        );
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(AcceptedInvitation {
            user,
            member,
            new_user,
        })
    }
}

/// The audit entry of the caller acting on invitation `id`.
fn invitation_entry(
    context: &RequestContext,
    tenant: TenantId,
    id: InvitationId,
    action: &'static str,
    details: serde_json::Value,
) -> AuditEntry {
    let target = platform::wire::resource_name("invitations", id);
    AuditEntry::by(context, Some(tenant), action, target, details)
}
