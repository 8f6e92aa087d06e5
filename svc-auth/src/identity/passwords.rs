//! Changing a password, and resetting a forgotten one by email.

use chrono::Utc;
use platform::context::{TenantId, UserId};
use platform::error::FieldViolations;
use proto::formflow::events::v1 as events;
use secrecy::{ExposeSecret, SecretString};

use super::{Caller, Identity};
use crate::crypto::{new_token, token_digest};
use crate::domain::Email;
use crate::error::Error;
use crate::store::{self, AuditEntry};

/// How long a reset token stays valid.
const RESET_TTL: chrono::Duration = chrono::Duration::hours(1);

impl Identity {
    /// Changes the caller's password after checking the current one; revokes their other
    /// sessions and answers how many.
    pub async fn change_password(
        &self,
        caller: Caller<'_>,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<usize, Error> {
        let (user_id, _, session) = self.session_of(caller)?;
        self.require_live_session(session).await?;
        let mut transaction = self.db.platform_tx().await?;
        let user = store::get_user(&mut transaction, user_id, true)
            .await?
            .ok_or(Error::Unauthenticated("the user no longer exists"))?;
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
            .check(new, &[&user.email, &user.display_name])
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
        self.audit_user(&mut transaction, caller, &user, "password.change")
            .await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(revoked.len())
    }

    /// Starts a reset: when `email` belongs to a member of the routed tenant, creates a token
    /// and emits the event that mails it. Answers the same either way.
    pub async fn request_password_reset(
        &self,
        caller: Caller<'_>,
        email: &Email,
    ) -> Result<(), Error> {
        let tenant = caller.routed_tenant()?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let Some(user) = store::find_user_by_email(&mut transaction, email).await? else {
            return Ok(());
        };
        if store::get_member(&mut transaction, tenant, user.user_id(), false)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let resolved = self
            .tenants
            .resolve(tenant, &caller.context.request_id)
            .await?;
        let (token, digest) = new_token("ffp_");
        let expires_at = Utc::now() + RESET_TTL;
        store::insert_password_reset(
            &mut transaction,
            tenant,
            user.user_id(),
            &digest,
            expires_at,
        )
        .await?;
        let event = events::PasswordResetRequested {
            user_id: user.id.to_string(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            token: token.expose_secret().to_owned(),
            expire_time: Some(crate::grpc::convert::timestamp(expires_at)),
            tenant_slug: resolved.slug,
            tenant_display_name: resolved.display_name,
            ip_address: caller.context.client_ip.clone(),
        };
        self.outbox
            .enqueue(&mut transaction, Some(tenant), event)
            .await?;
        store::insert_audit(
            &mut transaction,
            AuditEntry {
                tenant_id: Some(tenant),
                actor: "anonymous".to_owned(),
                action: "password.reset_requested",
                target: format!("users/{}", user.id),
                details: serde_json::json!({"ip_address": caller.context.client_ip}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(())
    }

    /// Sets a new password with a reset token; unlocks the account and revokes every session.
    pub async fn reset_password(
        &self,
        caller: Caller<'_>,
        token: &SecretString,
        new: &SecretString,
    ) -> Result<(), Error> {
        const REFUSED: Error = Error::Unauthenticated("invalid or expired reset token");
        let mut transaction = self.db.platform_tx().await?;
        let Some(reset) =
            store::find_password_reset(&mut transaction, &token_digest(token.expose_secret()))
                .await?
        else {
            return Err(REFUSED);
        };
        let tenant = TenantId::from(reset.tenant_id);
        if reset.used_at.is_some()
            || reset.expires_at <= Utc::now()
            || caller
                .context
                .tenant_id
                .is_some_and(|routed| routed != tenant)
        {
            return Err(REFUSED);
        }
        let user_id = UserId::from(reset.user_id);
        let user = store::get_user(&mut transaction, user_id, true)
            .await?
            .ok_or(REFUSED)?;
        if let Err(error) = self
            .settings
            .password_policy()
            .check(new, &[&user.email, &user.display_name])
        {
            return Err(FieldViolations::single("new_password", error.to_string()).into());
        }
        let hash = self.passwords.hash(new).await?;
        store::set_password(&mut transaction, user_id, &hash, true).await?;
        store::consume_password_resets(&mut transaction, user_id).await?;
        let revoked =
            store::revoke_user_sessions(&mut transaction, user_id, None, "password reset").await?;
        store::insert_audit(
            &mut transaction,
            AuditEntry {
                tenant_id: Some(tenant),
                actor: format!("user:{user_id}"),
                action: "password.reset",
                target: format!("users/{user_id}"),
                details: serde_json::json!({"revoked_sessions": revoked.len(), "ip_address": caller.context.client_ip}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(())
    }
}
