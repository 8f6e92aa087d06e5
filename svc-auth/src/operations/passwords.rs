//! Changing a password, and resetting a forgotten one by email.

use chrono::Utc;
use platform::audit::AuditEntry;
use platform::context::RequestContext;
use platform::error::FieldViolations;
use secrecy::{ExposeSecret, SecretString};

use super::sessions::session_of;
use super::{Identity, audit_as_user, own_account_entry};
use crate::crypto::{new_token, token_digest};
use crate::domain::Email;
use crate::error::Error;
use crate::{events, store};

/// How long a reset token stays valid.
const RESET_TTL: chrono::Duration = chrono::Duration::hours(1);

impl Identity {
    /// Changes the caller's password after checking the current one; revokes their other
    /// sessions and answers how many.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        context: &RequestContext,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<usize, Error> {
        let (user_id, _, session) = session_of(context)?;
        self.require_live_session(session).await?;
        let mut transaction = self.db.platform_tx().await?;
        let user = store::get_user(&mut transaction, user_id, true)
            .await?
            .ok_or(Error::AccountGone)?;
        let mut violations = FieldViolations::new();
        if !self
            .passwords
            .verify(current, Some(&user.password_hash))
            .await?
        {
            violations.add("current_password", "is not the current password");
        } else if current.expose_secret() == new.expose_secret() {
            violations.add("new_password", "must differ from the current password");
        } else if let Err(error) = self
            .settings
            .password_policy()
            .check(new, &[user.email.as_str(), user.display_name.as_str()])
        {
            violations.add("new_password", error.to_string());
        }
        violations.into_result()?;
        let hash = self.passwords.hash(new).await?;
        store::set_password(&mut transaction, user_id, &hash, false).await?;
        let revoked = store::revoke_user_sessions(
            &mut transaction,
            user_id,
            Some(session),
            "password changed",
        )
        .await?;
        let entry = own_account_entry(context, user.id, "password.change");
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(revoked.len())
    }

    /// Starts a reset of `email` in the routed tenant: queues it for the worker
    /// ([`Identity::send_password_reset`]) and answers at once, the same whether or not the
    /// email belongs to a member, in the same time.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        context: &RequestContext,
        email: &Email,
    ) -> Result<(), Error> {
        context.routed_tenant()?;
        self.reset_requests.submit(context, email);
        Ok(())
    }

    /// Works a queued reset request: when `email` belongs to a member of the routed tenant,
    /// creates a token and emits the event that mails it; otherwise does nothing.
    #[tracing::instrument(skip_all, fields(request_id = %context.request_id))]
    pub(crate) async fn send_password_reset(
        &self,
        context: &RequestContext,
        email: &Email,
    ) -> Result<(), Error> {
        let tenant = context.routed_tenant()?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let Some(user) = store::find_user_by_email(&mut transaction, email).await? else {
            return Ok(());
        };
        if store::get_member(&mut transaction, tenant, user.id, false)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let resolved = self.tenants.resolve(tenant, &context.request_id).await?;
        let (token, digest) = new_token("ffp_");
        let expires_at = Utc::now() + RESET_TTL;
        store::insert_password_reset(&mut transaction, tenant, user.id, &digest, expires_at)
            .await?;
        let event = events::password_reset_requested(
            &user,
            &token,
            expires_at,
            &resolved,
            &context.client_ip,
        );
        self.enqueue_sealed(&mut transaction, Some(tenant), event, |event| {
            event.token.clear();
        })
        .await?;
        let entry = AuditEntry::by(
            context,
            Some(tenant),
            "password.reset_requested",
            platform::wire::resource_name("users", user.id),
            serde_json::json!({"ip_address": context.client_ip}),
        );
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(())
    }

    /// Sets a new password with a reset token; unlocks the account and revokes every session.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        context: &RequestContext,
        token: &SecretString,
        new: &SecretString,
    ) -> Result<(), Error> {
        let mut transaction = self.db.platform_tx().await?;
        let Some(reset) =
            store::find_password_reset(&mut transaction, &token_digest(token.expose_secret()))
                .await?
        else {
            return Err(Error::InvalidResetToken);
        };
        let tenant = reset.tenant_id;
        if !reset.is_open_at(Utc::now()) || context.tenant_id.is_some_and(|routed| routed != tenant)
        {
            return Err(Error::InvalidResetToken);
        }
        let user_id = reset.user_id;
        let user = store::get_user(&mut transaction, user_id, true)
            .await?
            .ok_or(Error::InvalidResetToken)?;
        if let Err(error) = self
            .settings
            .password_policy()
            .check(new, &[user.email.as_str(), user.display_name.as_str()])
        {
            return Err(FieldViolations::single("new_password", error.to_string()).into());
        }
        let hash = self.passwords.hash(new).await?;
        store::set_password(&mut transaction, user_id, &hash, true).await?;
        store::consume_password_resets(&mut transaction, user_id).await?;
        let revoked =
            store::revoke_user_sessions(&mut transaction, user_id, None, "password reset").await?;
        let entry = audit_as_user(
            context,
            user_id,
            Some(tenant),
            "password.reset",
            platform::wire::resource_name("users", user_id),
            serde_json::json!({"revoked_sessions": revoked.len(), "ip_address": context.client_ip}),
        );
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(())
    }
}
