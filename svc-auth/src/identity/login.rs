//! Login: password, then a second factor when enabled; lockout after repeated failures, a
//! per-address limit, and a record of every attempt.

use chrono::{DateTime, Utc};
use platform::context::{TenantId, UserId};
use proto::formflow::events::v1 as events;
use proto::formflow::events::v1::LoginFailureReason;
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;

use super::sessions::{SessionSubject, SessionTokens};
use super::{Caller, Identity};
use crate::crypto::{new_token, token_digest};
use crate::domain::Email;
use crate::error::Error;
use crate::store::{self, LoginAttempt, UserRow};
use crate::totp;

/// What Login answers.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in.
    Tokens(SessionTokens),
    /// A second factor is needed: VerifyTotp with this challenge.
    TwoFactor {
        /// Single-use challenge.
        challenge: SecretString,
        /// When it expires.
        expires_at: DateTime<Utc>,
    },
}

/// The one answer to every failed login, whatever failed.
const LOGIN_REFUSED: Error = Error::Unauthenticated("invalid email or password");
/// How long a two-factor challenge lives.
const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);

impl Identity {
    /// Logs in to the routed tenant, or, without one, as a platform administrator.
    pub async fn login(
        &self,
        caller: Caller<'_>,
        email: &Email,
        password: &SecretString,
    ) -> Result<LoginOutcome, Error> {
        let tenant = caller.context.tenant_id;
        self.refuse_throttled_address(caller).await?;
        let mut transaction = self.db.platform_tx().await?;
        let user = store::find_user_by_email(&mut transaction, email).await?;
        transaction.commit().await?;

        if let Some(user) = &user
            && let Some(until) = user.locked_until.filter(|until| *until > Utc::now())
        {
            self.record_failure(
                caller,
                tenant,
                email,
                Some(user),
                LoginFailureReason::AccountLocked,
            )
            .await?;
            return Err(Error::AccountLocked(until));
        }
        // Unknown users are checked against a dummy hash: the answer takes as long.
        let password_matches = self
            .passwords
            .verify(
                password,
                user.as_ref().map(|user| user.password_hash.as_str()),
            )
            .await?;
        let Some(user) = user else {
            self.record_failure(
                caller,
                tenant,
                email,
                None,
                LoginFailureReason::UnknownEmail,
            )
            .await?;
            return Err(LOGIN_REFUSED);
        };
        if !password_matches {
            let locked_until = self
                .record_failure(
                    caller,
                    tenant,
                    email,
                    Some(&user),
                    LoginFailureReason::WrongPassword,
                )
                .await?;
            return Err(match locked_until {
                Some(until) => Error::AccountLocked(until),
                None => LOGIN_REFUSED,
            });
        }
        let subject = match self.subject_for(&user, tenant).await? {
            Some(subject) => subject,
            None => {
                self.record_failure(
                    caller,
                    tenant,
                    email,
                    Some(&user),
                    LoginFailureReason::NotAMember,
                )
                .await?;
                return Err(LOGIN_REFUSED);
            }
        };
        self.complete_first_factor(caller, &user, subject, email)
            .await
    }

    /// The session subject `user` logs in as: a member of `tenant`, or, without a tenant, a
    /// platform administrator. `None` when they are neither.
    async fn subject_for(
        &self,
        user: &UserRow,
        tenant: Option<TenantId>,
    ) -> Result<Option<SessionSubject>, Error> {
        match tenant {
            Some(tenant) => {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                let member =
                    store::get_member(&mut transaction, tenant, user.user_id(), false).await?;
                transaction.commit().await?;
                Ok(member.map(|member| SessionSubject::Member {
                    tenant,
                    role: member.role(),
                }))
            }
            None if user.platform_admin => Ok(Some(SessionSubject::PlatformAdmin)),
            None => Ok(None),
        }
    }

    async fn complete_first_factor(
        &self,
        caller: Caller<'_>,
        user: &UserRow,
        subject: SessionSubject,
        email: &Email,
    ) -> Result<LoginOutcome, Error> {
        let tenant = subject.tenant();
        let mut transaction = self.transaction_for(tenant).await?;
        if user.two_factor_enabled() {
            // Failures are forgiven only once both factors passed: a password alone must not
            // reset the count of wrong codes.
            let (challenge, digest) = new_token("ffc_");
            let expires_at = Utc::now() + CHALLENGE_TTL;
            store::insert_challenge(
                &mut transaction,
                tenant,
                user.user_id(),
                &digest,
                &caller.context.client_ip,
                &caller.context.user_agent,
                expires_at,
            )
            .await?;
            self.log_attempt(
                &mut transaction,
                caller,
                tenant,
                email,
                Some(user.user_id()),
                true,
                "password ok, second factor required",
            )
            .await?;
            transaction.commit().await?;
            return Ok(LoginOutcome::TwoFactor {
                challenge,
                expires_at,
            });
        }
        store::record_login_success(&mut transaction, user.user_id()).await?;
        let tokens = self
            .start_session(
                &mut transaction,
                user.user_id(),
                subject,
                &caller.context.client_ip,
                &caller.context.user_agent,
            )
            .await?;
        self.log_attempt(
            &mut transaction,
            caller,
            tenant,
            email,
            Some(user.user_id()),
            true,
            "logged in",
        )
        .await?;
        transaction.commit().await?;
        Ok(LoginOutcome::Tokens(tokens))
    }

    /// Completes a two-step login with a TOTP code or a recovery code.
    pub async fn verify_totp(
        &self,
        caller: Caller<'_>,
        challenge: &SecretString,
        code: &str,
    ) -> Result<SessionTokens, Error> {
        const REFUSED: Error = Error::Unauthenticated("invalid or expired challenge or code");
        self.refuse_throttled_address(caller).await?;
        let mut transaction = self.db.platform_tx().await?;
        let Some(found) =
            store::find_challenge(&mut transaction, &token_digest(challenge.expose_secret()))
                .await?
        else {
            return Err(REFUSED);
        };
        let tenant = found.tenant_id.map(TenantId::from);
        let user_id = UserId::from(found.user_id);
        let user = store::get_user(&mut transaction, user_id, true)
            .await?
            .ok_or(REFUSED)?;
        let email = Email::parse(&user.email).map_err(|_| REFUSED)?;
        if found.used_at.is_some()
            || found.expires_at <= Utc::now()
            || (caller.context.tenant_id.is_some() && caller.context.tenant_id != tenant)
        {
            transaction.commit().await?;
            self.record_failure(
                caller,
                tenant,
                &email,
                Some(&user),
                LoginFailureReason::InvalidChallenge,
            )
            .await?;
            return Err(REFUSED);
        }
        if let Some(until) = user.locked_until.filter(|until| *until > Utc::now()) {
            transaction.commit().await?;
            self.record_failure(
                caller,
                tenant,
                &email,
                Some(&user),
                LoginFailureReason::AccountLocked,
            )
            .await?;
            return Err(Error::AccountLocked(until));
        }
        if !self
            .accept_second_factor(&mut transaction, &user, code)
            .await?
        {
            transaction.commit().await?;
            let locked_until = self
                .record_failure(
                    caller,
                    tenant,
                    &email,
                    Some(&user),
                    LoginFailureReason::WrongCode,
                )
                .await?;
            return Err(match locked_until {
                Some(until) => Error::AccountLocked(until),
                None => REFUSED,
            });
        }
        store::consume_challenge(&mut transaction, found.id).await?;
        transaction.commit().await?;

        let Some(subject) = self.subject_for(&user, tenant).await? else {
            return Err(REFUSED);
        };
        let mut transaction = self.transaction_for(tenant).await?;
        store::record_login_success(&mut transaction, user_id).await?;
        let tokens = self
            .start_session(
                &mut transaction,
                user_id,
                subject,
                &caller.context.client_ip,
                &caller.context.user_agent,
            )
            .await?;
        self.log_attempt(
            &mut transaction,
            caller,
            tenant,
            &email,
            Some(user_id),
            true,
            "logged in with a second factor",
        )
        .await?;
        transaction.commit().await?;
        Ok(tokens)
    }

    /// Whether `code` is a valid, unused TOTP code or recovery code of `user`; a valid one is
    /// used up.
    pub(crate) async fn accept_second_factor(
        &self,
        connection: &mut PgConnection,
        user: &UserRow,
        code: &str,
    ) -> Result<bool, Error> {
        let code = code.trim();
        if totp::is_totp_code(code) {
            let Some(sealed) = &user.totp_secret else {
                return Ok(false);
            };
            let secret = self.sealer.open(&totp_context(user.id), sealed)?;
            let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
            let Some(step) = totp::matching_step(&secret, code, now) else {
                return Ok(false);
            };
            // A code is accepted once: a step at or before the last accepted one is a replay.
            Ok(store::consume_totp_step(
                connection,
                user.user_id(),
                i64::try_from(step).unwrap_or(i64::MAX),
            )
            .await?)
        } else {
            let digest = totp::recovery_code_digest(user.id, code);
            Ok(store::consume_recovery_code(connection, user.user_id(), &digest).await?)
        }
    }

    /// Counts a failure against the address and (for wrong passwords and codes) the account,
    /// locking it when it reaches the threshold; logs the attempt and emits
    /// `auth.login.failed`. Returns until when the account is locked, if it is.
    async fn record_failure(
        &self,
        caller: Caller<'_>,
        tenant: Option<TenantId>,
        email: &Email,
        user: Option<&UserRow>,
        reason: LoginFailureReason,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        self.count_address_failure(caller).await;
        let counts_against_account = matches!(
            reason,
            LoginFailureReason::WrongPassword | LoginFailureReason::WrongCode
        );
        let mut transaction = self.transaction_for(tenant).await?;
        let mut failed_attempts = 0;
        let mut locked_until = user
            .and_then(|user| user.locked_until)
            .filter(|until| *until > Utc::now());
        if let Some(user) = user
            && counts_against_account
        {
            let current = store::get_user(&mut transaction, user.user_id(), true)
                .await?
                .ok_or_else(|| anyhow::anyhow!("user {} vanished", user.id))?;
            failed_attempts = current.failed_logins + 1;
            let security = &self.settings.security;
            let lock = if failed_attempts
                >= i32::try_from(security.lockout_threshold).unwrap_or(i32::MAX)
            {
                // Each lock lasts twice the previous one, up to the maximum.
                let doubling =
                    2_u32.saturating_pow(u32::try_from(current.lock_count).unwrap_or(0).min(20));
                let duration = security
                    .lockout_base
                    .saturating_mul(doubling)
                    .min(security.lockout_max);
                Some(Utc::now() + duration)
            } else {
                None
            };
            store::record_login_failure(
                &mut transaction,
                user.user_id(),
                if lock.is_some() { 0 } else { failed_attempts },
                lock,
            )
            .await?;
            locked_until = lock.or(locked_until);
        }
        self.log_attempt(
            &mut transaction,
            caller,
            tenant,
            email,
            user.map(UserRow::user_id),
            false,
            reason.as_str_name(),
        )
        .await?;
        let event = events::LoginFailed {
            email: email.to_string(),
            user_id: user.map(|user| user.id.to_string()).unwrap_or_default(),
            reason: reason as i32,
            ip_address: caller.context.client_ip.clone(),
            user_agent: caller.context.user_agent.clone(),
            failed_attempts,
            locked_until: locked_until.map(crate::grpc::convert::timestamp),
        };
        self.outbox.enqueue(&mut transaction, tenant, event).await?;
        transaction.commit().await?;
        self.outbox.notify();
        metrics::counter!("auth_login_failures_total", "reason" => reason.as_str_name())
            .increment(1);
        tracing::info!(reason = reason.as_str_name(), ip = %caller.context.client_ip, "login failed");
        Ok(locked_until)
    }

    #[allow(clippy::too_many_arguments)]
    async fn log_attempt(
        &self,
        connection: &mut PgConnection,
        caller: Caller<'_>,
        tenant: Option<TenantId>,
        email: &Email,
        user: Option<UserId>,
        succeeded: bool,
        reason: &str,
    ) -> Result<(), Error> {
        store::insert_login_attempt(
            connection,
            &LoginAttempt {
                tenant_id: tenant,
                user_id: user,
                email: email.as_str(),
                ip_address: &caller.context.client_ip,
                user_agent: &caller.context.user_agent,
                succeeded,
                reason,
            },
        )
        .await?;
        Ok(())
    }

    fn address_key(&self, caller: Caller<'_>) -> String {
        self.redis
            .key(&format!("auth:login-failures:{}", caller.context.client_ip))
    }

    /// Refuses an address that failed too often lately. Redis being down lifts the limit
    /// (account lockout still holds).
    async fn refuse_throttled_address(&self, caller: Caller<'_>) -> Result<(), Error> {
        let mut connection = self.redis.connection();
        let failures: redis::RedisResult<Option<u32>> =
            connection.get(self.address_key(caller)).await;
        match failures {
            Ok(Some(count)) if count >= self.settings.security.ip_failure_limit => {
                Err(Error::TooManyAttempts)
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "login throttling unavailable");
                Ok(())
            }
        }
    }

    async fn count_address_failure(&self, caller: Caller<'_>) {
        let key = self.address_key(caller);
        let window = self.settings.security.ip_failure_window.as_secs().max(1);
        let mut connection = self.redis.connection();
        let counted: redis::RedisResult<()> = redis::pipe()
            .incr(&key, 1)
            .ignore()
            .expire(&key, i64::try_from(window).unwrap_or(i64::MAX))
            .arg("NX")
            .ignore()
            .query_async(&mut connection)
            .await;
        if let Err(error) = counted {
            tracing::warn!(%error, "cannot count a failed login against its address");
        }
    }

    /// A transaction scoped to `tenant`, or platform-wide for platform sessions.
    pub(crate) async fn transaction_for(
        &self,
        tenant: Option<TenantId>,
    ) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        match tenant {
            Some(tenant) => self.db.tenant_tx(tenant).await,
            None => self.db.platform_tx().await,
        }
    }
}

/// The sealing context of a user's TOTP secret.
pub(crate) fn totp_context(user: uuid::Uuid) -> String {
    format!("totp:{user}")
}
