//! Sign-up: a new tenant, created through svc-tenant, and its owner.

use platform::context::{RequestContext, Role, TenantId, UserId};
use platform::error::FieldViolations;
use proto::formflow::tenant::v1::Tenant;
use secrecy::SecretString;
use tonic_types::StatusExt;

use super::sessions::{SessionSubject, SessionTokens};
use super::{Identity, audit_as_user};
use crate::domain::{Email, Member, PersonName, User};
use crate::error::Error;
use crate::events::{self, Registration};
use crate::store;

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
    /// The tenant, as svc-tenant answered it.
    pub tenant: Tenant,
    /// The owner.
    pub user: User,
    /// Their membership.
    pub member: Member,
    /// Their first session.
    pub tokens: SessionTokens,
    /// Whether the account is new.
    pub new_user: bool,
}

/// The owner registered in a new tenant.
struct Owner {
    user: User,
    member: Member,
    tokens: SessionTokens,
    new_user: bool,
}

impl Identity {
    /// Creates a tenant through svc-tenant and its owner, and logs the owner in. An email with
    /// an account joins with that account, if the password is its password (a wrong one counts
    /// against the caller's address as a failed login does). If anything fails after the tenant
    /// was created, the tenant is deleted again.
    #[tracing::instrument(skip_all, fields(tenant_slug = %request.tenant_slug))]
    pub async fn sign_up(
        &self,
        context: &RequestContext,
        request: SignUp,
    ) -> Result<SignedUp, Error> {
        // Signing up with an account's email checks its password: the same per-address limit
        // as logins keeps that from being a way to guess passwords.
        self.refuse_throttled_address(context).await?;
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
                    self.count_address_failure(context).await;
                    return Err(Error::AccountExists);
                }
                None
            }
            None => {
                let policy = self.settings.password_policy();
                let inputs = [request.email.as_str(), request.display_name.as_str()];
                if let Err(error) = policy.check(&request.password, &inputs) {
                    return Err(FieldViolations::single("password", error.to_string()).into());
                }
                Some(self.passwords.hash(&request.password).await?)
            }
        };

        let tenant = self
            .tenants
            .create(
                &request.tenant_slug,
                &request.tenant_display_name,
                &context.request_id,
            )
            .await
            .map_err(sign_up_field_names)?;
        let tenant_id = TenantId::parse(&tenant.id).map_err(anyhow::Error::from)?;
        match self
            .register_owner(context, tenant_id, &request, existing, password_hash)
            .await
        {
            Ok(owner) => Ok(SignedUp {
                tenant,
                user: owner.user,
                member: owner.member,
                tokens: owner.tokens,
                new_user: owner.new_user,
            }),
            Err(error) => {
                if let Err(undo) = self.tenants.delete(tenant_id, &context.request_id).await {
                    tracing::error!(%tenant_id, error = %undo, "sign-up failed and its tenant could not be deleted");
                }
                Err(error)
            }
        }
    }

    async fn register_owner(
        &self,
        context: &RequestContext,
        tenant: TenantId,
        request: &SignUp,
        existing: Option<User>,
        password_hash: Option<String>,
    ) -> Result<Owner, Error> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let (user_id, new_user) = match (&existing, password_hash) {
            (Some(user), _) => (user.id, false),
            (None, Some(hash)) => {
                let user_id = UserId::generate();
                let inserted = store::insert_user(
                    &mut transaction,
                    user_id,
                    &request.email,
                    &request.display_name,
                    &hash,
                    false,
                )
                .await?;
                if !inserted {
                    return Err(Error::AccountCreatedMeanwhile);
                }
                (user_id, true)
            }
            (None, None) => {
                return Err(anyhow::anyhow!("a new user without a password hash").into());
            }
        };
        store::insert_member(&mut transaction, tenant, user_id, Role::Owner).await?;
        let subject = SessionSubject::Member {
            tenant,
            role: Role::Owner,
        };
        let tokens = self
            .start_session(&mut transaction, context, user_id, subject)
            .await?;
        let user = store::get_user(&mut transaction, user_id, false)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user {user_id} vanished"))?;
        let member = store::get_member(&mut transaction, tenant, user_id, false)
            .await?
            .ok_or_else(|| anyhow::anyhow!("membership of {user_id} vanished"))?;
        let entry = audit_as_user(
            context,
            user_id,
            Some(tenant),
            "user.sign_up",
            platform::wire::resource_name("members", user_id),
            serde_json::json!({"new_user": new_user, "role": "owner"}),
        );
        self.audit(&mut transaction, entry).await?;
        let event = events::user_registered(&user, &member, Registration::SignUp, new_user);
        self.enqueue(&mut transaction, Some(tenant), event).await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(Owner {
            user,
            member,
            tokens,
            new_user,
        })
    }
}

/// svc-tenant names the fields of its Tenant (`tenant.slug`); SignUp's are `tenant_slug` and
/// `tenant_display_name`.
fn sign_up_field_names(error: Error) -> Error {
    let Error::TenantRefused(status) = &error else {
        return error;
    };
    let Some(bad_request) = status.get_details_bad_request() else {
        return error;
    };
    let mut violations = FieldViolations::new();
    for violation in bad_request.field_violations {
        let field = match violation.field.as_str() {
            "tenant.slug" => "tenant_slug".to_owned(),
            "tenant.display_name" => "tenant_display_name".to_owned(),
            other => other.to_owned(),
        };
        violations.add(field, violation.description);
    }
    violations.into()
}
