//! TOTP enrolment, confirmation, recovery codes, and turning it off.

use chrono::{DateTime, Utc};
use platform::context::RequestContext;
use platform::error::FieldViolations;
use secrecy::SecretString;
use sqlx::PgConnection;

use super::login::totp_context;
use super::sessions::session_of;
use super::{Identity, own_account_entry};
use crate::domain::User;
use crate::error::Error;
use crate::store;
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
    /// The calling user, locked, if their session is live.
    async fn calling_user(
        &self,
        context: &RequestContext,
        connection: &mut PgConnection,
    ) -> Result<User, Error> {
        let (user_id, _, session) = session_of(context)?;
        self.require_live_session(session).await?;
        store::get_user(connection, user_id, true)
            .await?
            .ok_or(Error::AccountGone)
    }

    /// Starts enrolment after checking the password.
    #[tracing::instrument(skip_all)]
    pub async fn enrol_totp(
        &self,
        context: &RequestContext,
        password: &SecretString,
    ) -> Result<Enrolment, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.calling_user(context, &mut transaction).await?;
        if user.two_factor_enabled() {
            return Err(Error::TwoFactorEnabled);
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
        store::set_pending_totp(&mut transaction, user.id, &sealed, expires_at).await?;
        transaction.commit().await?;
        let (base32, uri) = totp::provisioning(&secret, user.email.as_str())?;
        Ok(Enrolment {
            secret: SecretString::from(base32),
            otpauth_uri: SecretString::from(uri),
            expires_at,
        })
    }

    /// Confirms enrolment with a first code; answers the recovery codes.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_totp(
        &self,
        context: &RequestContext,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.calling_user(context, &mut transaction).await?;
        let Some(pending) = &user.totp_pending else {
            return Err(Error::NoTotpEnrolment);
        };
        if pending.until <= Utc::now() {
            return Err(Error::TotpEnrolmentExpired);
        }
        let secret = self
            .sealer
            .open(&totp_context(user.id), &pending.sealed_secret)?;
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
        let Some(step) = totp::matching_step(&secret, code.trim(), now) else {
            return Err(FieldViolations::single("code", "does not match the authenticator").into());
        };
        store::enable_totp(
            &mut transaction,
            user.id,
            i64::try_from(step).unwrap_or(i64::MAX),
        )
        .await?;
        let codes = self.replace_recovery_codes(&mut transaction, &user).await?;
        let entry = own_account_entry(context, user.id, "totp.enable");
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        Ok(codes)
    }

    /// Turns two-factor authentication off after checking the password and a code.
    #[tracing::instrument(skip_all)]
    pub async fn disable_totp(
        &self,
        context: &RequestContext,
        password: &SecretString,
        code: &str,
    ) -> Result<(), Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.calling_user(context, &mut transaction).await?;
        if !user.two_factor_enabled() {
            return Err(Error::TwoFactorDisabled);
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
        store::disable_totp(&mut transaction, user.id).await?;
        let entry = own_account_entry(context, user.id, "totp.disable");
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Replaces the recovery codes after checking a TOTP code.
    #[tracing::instrument(skip_all)]
    pub async fn regenerate_recovery_codes(
        &self,
        context: &RequestContext,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let mut transaction = self.db.platform_tx().await?;
        let user = self.calling_user(context, &mut transaction).await?;
        if !user.two_factor_enabled() {
            return Err(Error::TwoFactorDisabled);
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
        let entry = own_account_entry(context, user.id, "totp.recovery_codes");
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        Ok(codes)
    }

    async fn replace_recovery_codes(
        &self,
        connection: &mut PgConnection,
        user: &User,
    ) -> Result<Vec<String>, Error> {
        let codes = totp::new_recovery_codes();
        let digests: Vec<Vec<u8>> = codes
            .iter()
            .map(|code| totp::recovery_code_digest(user.id, code))
            .collect();
        store::replace_recovery_codes(connection, user.id, &digests).await?;
        Ok(codes)
    }
}
