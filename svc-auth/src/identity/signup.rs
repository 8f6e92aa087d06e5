//! Sign-up (a new tenant and its owner) and platform administrators.

use platform::context::{Role, TenantId, UserId};
use proto::formflow::events::v1 as events;
use proto::formflow::events::v1::RegistrationMethod;
use proto::formflow::tenant::v1::Tenant;
use secrecy::SecretString;

use super::sessions::{SessionSubject, SessionTokens};
use super::{Caller, Identity};
use crate::domain::{Email, PersonName};
use crate::error::Error;
use crate::store::{self, AuditEntry, MemberRow, UserRow};

/// A validated sign-up.
#[derive(Debug)]
pub struct SignUp {
    /// Slug of the new tenant (validated by svc-tenant).
    pub tenant_slug: String,
    /// Name of the new tenant (validated by svc-tenant).
    pub tenant_display_name: String,
    /// The owner's email.
    pub email: Email,
    /// The owner's password.
    pub password: SecretString,
    /// The owner's name (ignored when the email has an account).
    pub display_name: PersonName,
}

/// What sign-up created.
#[derive(Debug)]
pub struct SignedUp {
    /// The tenant.
    pub tenant: Tenant,
    /// The owner.
    pub user: UserRow,
    /// Their membership.
    pub member: MemberRow,
    /// Their first session.
    pub tokens: SessionTokens,
    /// Whether the account is new.
    pub new_user: bool,
}

impl Identity {
    /// Creates a tenant through svc-tenant and its owner, and logs the owner in. An email with
    /// an account joins with that account, if the password is its password. If anything fails
    /// after the tenant was created, the tenant is deleted again.
    pub async fn sign_up(&self, caller: Caller<'_>, request: SignUp) -> Result<SignedUp, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let existing = store::find_user_by_email(&mut transaction, &request.email).await?;
        transaction.commit().await?;
        let password_hash = match &existing {
            Some(user) => {
                if !self
                    .passwords
                    .verify(&request.password, Some(&user.password_hash))
                    .await?
                {
                    return Err(Error::AlreadyExists(
                        "an account with this email exists: sign up with its password, or log in",
                    ));
                }
                None
            }
            None => {
                let policy = self.settings.password_policy();
                let inputs = [request.email.as_str(), request.display_name.as_str()];
                if let Err(error) = policy.check(&request.password, &inputs) {
                    return Err(platform::error::FieldViolations::single(
                        "password",
                        error.to_string(),
                    )
                    .into());
                }
                Some(self.passwords.hash(&request.password).await?)
            }
        };

        let tenant = self
            .tenants
            .create(
                &request.tenant_slug,
                &request.tenant_display_name,
                &caller.context.request_id,
            )
            .await
            .map_err(sign_up_field_names)?;
        let tenant_id = TenantId::parse(&tenant.id).map_err(anyhow::Error::from)?;
        match self
            .register_owner(caller, tenant_id, &request, existing, password_hash)
            .await
        {
            Ok((user, member, tokens, new_user)) => Ok(SignedUp {
                tenant,
                user,
                member,
                tokens,
                new_user,
            }),
            Err(error) => {
                if let Err(undo) = self
                    .tenants
                    .delete(tenant_id, &caller.context.request_id)
                    .await
                {
                    tracing::error!(%tenant_id, error = %undo, "sign-up failed and its tenant could not be deleted");
                }
                Err(error)
            }
        }
    }

    async fn register_owner(
        &self,
        caller: Caller<'_>,
        tenant: TenantId,
        request: &SignUp,
        existing: Option<UserRow>,
        password_hash: Option<String>,
    ) -> Result<(UserRow, MemberRow, SessionTokens, bool), Error> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let (user_id, new_user) = match (&existing, password_hash) {
            (Some(user), _) => (user.user_id(), false),
            (None, Some(hash)) => {
                let user_id = UserId::generate();
                let inserted = store::insert_user(
                    &mut transaction,
                    user_id,
                    &request.email,
                    request.display_name.as_str(),
                    &hash,
                    false,
                )
                .await?;
                if !inserted {
                    return Err(Error::AlreadyExists(
                        "an account with this email was just created; log in",
                    ));
                }
                (user_id, true)
            }
            (None, None) => {
                return Err(anyhow::anyhow!("a new user without a password hash").into());
            }
        };
        store::insert_member(&mut transaction, tenant, user_id, Role::Owner).await?;
        let tokens = self
            .start_session(
                &mut transaction,
                user_id,
                SessionSubject::Member {
                    tenant,
                    role: Role::Owner,
                },
                &caller.context.client_ip,
                &caller.context.user_agent,
            )
            .await?;
        let user = store::get_user(&mut transaction, user_id, false)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user {user_id} vanished"))?;
        let member = store::get_member(&mut transaction, tenant, user_id, false)
            .await?
            .ok_or_else(|| anyhow::anyhow!("membership of {user_id} vanished"))?;
        store::insert_audit(
            &mut transaction,
            AuditEntry {
                tenant_id: Some(tenant),
                actor: format!("user:{user_id}"),
                action: "user.sign_up",
                target: format!("members/{user_id}"),
                details: serde_json::json!({"new_user": new_user, "role": "owner"}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        let event = events::UserRegistered {
            user: Some(crate::grpc::convert::user_to_proto(&user)),
            member: Some(crate::grpc::convert::member_to_proto(&member)),
            method: RegistrationMethod::SignUp as i32,
            new_user,
        };
        self.outbox
            .enqueue(&mut transaction, Some(tenant), event)
            .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok((user, member, tokens, new_user))
    }
}

/// svc-tenant names the fields of its Tenant (`tenant.slug`); SignUp's are `tenant_slug` and
/// `tenant_display_name`.
fn sign_up_field_names(error: Error) -> Error {
    use tonic_types::StatusExt;
    let Error::Status(status) = &error else {
        return error;
    };
    let Some(bad_request) = status.get_details_bad_request() else {
        return error;
    };
    let mut violations = platform::error::FieldViolations::new();
    for violation in bad_request.field_violations {
        let field = match violation.field.as_str() {
            "tenant.slug" => "tenant_slug".to_owned(),
            "tenant.display_name" => "tenant_display_name".to_owned(),
            other => other.to_owned(),
        };
        violations.add(field, violation.description);
    }
    Error::InvalidArgument(violations)
}
