//! TOTP enrolment, confirmation, recovery codes, and turning it off.

use chrono::{DateTime, Utc};
use platform::error::FieldViolations;
use secrecy::SecretString;

use super::login::totp_context;
use super::{Caller, Identity};
use crate::error::Error;
use crate::store::{self, AuditEntry, UserRow};
use crate::totp;

/// How long an unconfirmed TOTP secret waits for its first code.
const ENROLMENT_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A TOTP secret to import into an authenticator; shown once.
#[derive(Debug)]
pub struct Enrolment {
    /// Base32 secret.
    pub secret: SecretString,
    /// `otpauth://` URI.
    pub otpauth_uri: SecretString,
    /// When it is dropped unless confirmed.
    pub expires_at: DateTime<Utc>,
}

impl Identity {
    /// The calling user's row, locked, if their session is live.
    async fn caller_user(
        &self,
        caller: Caller<'_>,
        connection: &mut sqlx::PgConnection,
    ) -> Result<UserRow, Error> {
        let (user_id, _, session) = self.session_of(caller)?;
        self.require_live_session(session).await?;
        store::get_user(connection, user_id, true)
            .await?
            .ok_or(Error::Unauthenticated("the user no longer exists"))
    }

    /// Starts enrolment after checking the password.
    pub async fn enrol_totp(
        &self,
        caller: Caller<'_>,
        password: &SecretString,
    ) -> Result<Enrolment, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.caller_user(caller, &mut transaction).await?;
        if user.two_factor_enabled() {
            return Err(Error::FailedPrecondition(
                "two-factor authentication is already on",
            ));
        }
        if !self
            .passwords
            .verify(password, Some(&user.password_hash))
            .await?
        {
            return Err(FieldViolations::single("password", "is not the current password").into());
        }
        let secret = totp::new_secret();
        let sealed = self.sealer.seal(&totp_context(user.id), &secret)?;
        let expires_at = Utc::now() + ENROLMENT_TTL;
        store::set_pending_totp(&mut transaction, user.user_id(), &sealed, expires_at).await?;
        transaction.commit().await?;
        let (base32, uri) = totp::provisioning(&secret, &user.email)?;
        Ok(Enrolment {
            secret: SecretString::from(base32),
            otpauth_uri: SecretString::from(uri),
            expires_at,
        })
    }

    /// Confirms enrolment with a first code; answers the recovery codes.
    pub async fn confirm_totp(&self, caller: Caller<'_>, code: &str) -> Result<Vec<String>, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.caller_user(caller, &mut transaction).await?;
        let (Some(sealed), Some(until)) = (&user.totp_pending_secret, user.totp_pending_until)
        else {
            return Err(Error::FailedPrecondition(
                "no enrolment is in progress: call EnrolTotp first",
            ));
        };
        if until <= Utc::now() {
            return Err(Error::FailedPrecondition(
                "the enrolment expired: call EnrolTotp again",
            ));
        }
        let secret = self.sealer.open(&totp_context(user.id), sealed)?;
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
        let Some(step) = totp::matching_step(&secret, code.trim(), now) else {
            return Err(FieldViolations::single("code", "does not match the authenticator").into());
        };
        store::enable_totp(
            &mut transaction,
            user.user_id(),
            i64::try_from(step).unwrap_or(i64::MAX),
        )
        .await?;
        let codes = self.replace_recovery_codes(&mut transaction, &user).await?;
        self.audit_user(&mut transaction, caller, &user, "totp.enable")
            .await?;
        transaction.commit().await?;
        Ok(codes)
    }

    /// Turns two-factor authentication off after checking the password and a code.
    pub async fn disable_totp(
        &self,
        caller: Caller<'_>,
        password: &SecretString,
        code: &str,
    ) -> Result<(), Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.caller_user(caller, &mut transaction).await?;
        if !user.two_factor_enabled() {
            return Err(Error::FailedPrecondition(
                "two-factor authentication is off",
            ));
        }
        let mut violations = FieldViolations::new();
        if !self
            .passwords
            .verify(password, Some(&user.password_hash))
            .await?
        {
            violations.add("password", "is not the current password");
        }
        if violations.is_empty()
            && !self
                .accept_second_factor(&mut transaction, &user, code)
                .await?
        {
            violations.add("code", "is not a valid code");
        }
        violations.into_result()?;
        store::disable_totp(&mut transaction, user.user_id()).await?;
        self.audit_user(&mut transaction, caller, &user, "totp.disable")
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Replaces the recovery codes after checking a TOTP code.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: Caller<'_>,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.caller_user(caller, &mut transaction).await?;
        if !user.two_factor_enabled() {
            return Err(Error::FailedPrecondition(
                "two-factor authentication is off",
            ));
        }
        if !totp::is_totp_code(code.trim())
            || !self
                .accept_second_factor(&mut transaction, &user, code)
                .await?
        {
            return Err(
                FieldViolations::single("code", "is not a valid authenticator code").into(),
            );
        }
        let codes = self.replace_recovery_codes(&mut transaction, &user).await?;
        self.audit_user(&mut transaction, caller, &user, "totp.recovery_codes")
            .await?;
        transaction.commit().await?;
        Ok(codes)
    }

    async fn replace_recovery_codes(
        &self,
        connection: &mut sqlx::PgConnection,
        user: &UserRow,
    ) -> Result<Vec<String>, Error> {
        let codes = totp::new_recovery_codes();
        let digests: Vec<Vec<u8>> = codes
            .iter()
            .map(|code| totp::recovery_code_digest(user.id, code))
            .collect();
        store::replace_recovery_codes(connection, user.user_id(), &digests).await?;
        Ok(codes)
    }

    pub(crate) async fn audit_user(
        &self,
        connection: &mut sqlx::PgConnection,
        caller: Caller<'_>,
        user: &UserRow,
        action: &'static str,
    ) -> Result<(), Error> {
        store::insert_audit(
            connection,
            AuditEntry {
                tenant_id: caller.tenant().ok(),
                actor: format!("user:{}", user.id),
                action,
                target: format!("users/{}", user.id),
                details: serde_json::json!({"ip_address": caller.context.client_ip}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        Ok(())
    }
}
