//! Login: password, then a second factor when enabled; lockout after repeated failures, a
//! per-address limit, and a record of every attempt.

use chrono::{DateTime, Utc};
use platform::context::{RequestContext, TenantId, UserId};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;

use super::Identity;
use super::sessions::{SessionSubject, SessionTokens};
use crate::crypto::{new_token, token_digest};
use crate::domain::{Email, FailureOutcome, LockoutState, LoginFailure, User};
use crate::error::Error;
use crate::events::{self, FailedLogin};
use crate::store::{self, LoginAttempt};
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

/// How a login attempt ended, as the login log records it.
#[derive(Debug, Clone, Copy)]
enum Attempt {
    /// A step succeeded, as described.
    Succeeded(&'static str),
    /// It failed.
    Failed(LoginFailure),
}

/// How long a two-factor challenge lives.
const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);

/// The account a login is for, as far as the routed scope knows it.
#[derive(Debug)]
enum Candidate {
    /// No account has the email.
    Unknown,
    /// An account has it, but may not log in here: not a member of the routed tenant, or,
    /// without one, not a platform administrator.
    NotAMember(UserId),
    /// An account that may log in here, as `subject`, with its lockout here.
    Member {
        user: Box<User>,
        subject: SessionSubject,
        lockout: LockoutState,
    },
}

impl Identity {
    /// Logs in to the routed tenant, or, without one, as a platform administrator.
    ///
    /// Only an account that may log in there has its password checked and its failures
    /// counted (per tenant, so no tenant can lock an account out of another). Any other email,
    /// known or not, is checked against a dummy hash and answered alike: neither the answer
    /// nor the work behind it tells which emails exist elsewhere.
    #[tracing::instrument(skip_all, fields(tenant_id = ?context.tenant_id))]
    pub async fn login(
        &self,
        context: &RequestContext,
        email: &Email,
        password: &SecretString,
    ) -> Result<LoginOutcome, Error> {
        let tenant = context.tenant_id;
        self.refuse_throttled_address(context).await?;
        let candidate = self.find_candidate(tenant, email).await?;

        if let Candidate::Member { user, lockout, .. } = &candidate
            && let Some(until) = lockout.locked_at(Utc::now())
        {
            let failure = LoginFailure::AccountLocked;
            self.record_failure(context, tenant, email, Some(user.id), failure, Some(until))
                .await?;
            return Err(Error::AccountLocked(until));
        }
        // Anyone but a member is checked against a dummy hash: the answer takes as long.
        let password_hash = match &candidate {
            Candidate::Member { user, .. } => Some(user.password_hash.as_str()),
            Candidate::Unknown | Candidate::NotAMember(_) => None,
        };
        let password_matches = self.passwords.verify(password, password_hash).await?;
        let (user, subject) = match candidate {
            Candidate::Member { user, subject, .. } => (user, subject),
            Candidate::Unknown => {
                let failure = LoginFailure::UnknownEmail;
                self.record_failure(context, tenant, email, None, failure, None)
                    .await?;
                return Err(Error::InvalidCredentials);
            }
            Candidate::NotAMember(user) => {
                let failure = LoginFailure::NotAMember;
                self.record_failure(context, tenant, email, Some(user), failure, None)
                    .await?;
                return Err(Error::InvalidCredentials);
            }
        };
        if !password_matches {
            let failure = LoginFailure::WrongPassword;
            let locked_until = self
                .record_failure(context, tenant, email, Some(user.id), failure, None)
                .await?;
            return Err(locked_until.map_or(Error::InvalidCredentials, Error::AccountLocked));
        }
        self.complete_first_factor(context, &user, subject).await
    }

    /// The account with `email`, as a login to `tenant` (or, without one, to platform
    /// administration) sees it: one query whether the email is unknown, a member's or not.
    async fn find_candidate(
        &self,
        tenant: Option<TenantId>,
        email: &Email,
    ) -> Result<Candidate, Error> {
        let candidate = match tenant {
            Some(tenant) => {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                let found =
                    store::find_user_for_tenant_login(&mut transaction, tenant, email).await?;
                transaction.commit().await?;
                match found {
                    None => Candidate::Unknown,
                    Some((user, None)) => Candidate::NotAMember(user.id),
                    Some((user, Some(standing))) => Candidate::Member {
                        user: Box::new(user),
                        subject: SessionSubject::Member {
                            tenant,
                            role: standing.role,
                        },
                        lockout: standing.lockout,
                    },
                }
            }
            None => {
                let mut transaction = self.db.platform_tx().await?;
                let found = store::find_user_by_email(&mut transaction, email).await?;
                transaction.commit().await?;
                match found {
                    None => Candidate::Unknown,
                    Some(user) if !user.platform_admin => Candidate::NotAMember(user.id),
                    Some(user) => Candidate::Member {
                        lockout: user.platform_lockout,
                        user: Box::new(user),
                        subject: SessionSubject::PlatformAdmin,
                    },
                }
            }
        };
        Ok(candidate)
    }

    /// The session subject `user` logs in as: a member of `tenant`, or, without a tenant, a
    /// platform administrator. `None` when they are neither.
    async fn subject_for(
        &self,
        user: &User,
        tenant: Option<TenantId>,
    ) -> Result<Option<SessionSubject>, Error> {
        match tenant {
            Some(tenant) => {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                let member = store::get_member(&mut transaction, tenant, user.id, false).await?;
                transaction.commit().await?;
                Ok(member.map(|member| SessionSubject::Member {
                    tenant,
                    role: member.role,
                }))
            }
            None if user.platform_admin => Ok(Some(SessionSubject::PlatformAdmin)),
            None => Ok(None),
        }
    }

    async fn complete_first_factor(
        &self,
        context: &RequestContext,
        user: &User,
        subject: SessionSubject,
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
                user.id,
                &digest,
                &context.client_ip,
                &context.user_agent,
                expires_at,
            )
            .await?;
            let attempt = Attempt::Succeeded("password ok, second factor required");
            self.log_attempt(
                &mut transaction,
                context,
                tenant,
                &user.email,
                Some(user.id),
                attempt,
            )
            .await?;
            transaction.commit().await?;
            return Ok(LoginOutcome::TwoFactor {
                challenge,
                expires_at,
            });
        }
        store::record_login_success(&mut transaction, tenant, user.id).await?;
        let tokens = self
            .start_session(&mut transaction, context, user.id, subject)
            .await?;
        let attempt = Attempt::Succeeded("logged in");
        self.log_attempt(
            &mut transaction,
            context,
            tenant,
            &user.email,
            Some(user.id),
            attempt,
        )
        .await?;
        transaction.commit().await?;
        Ok(LoginOutcome::Tokens(tokens))
    }

    /// Completes a two-step login with a TOTP code or a recovery code.
    #[tracing::instrument(skip_all, fields(tenant_id = ?context.tenant_id))]
    pub async fn verify_totp(
        &self,
        context: &RequestContext,
        challenge: &SecretString,
        code: &str,
    ) -> Result<SessionTokens, Error> {
        self.refuse_throttled_address(context).await?;
        let mut transaction = self.db.platform_tx().await?;
        let Some(found) =
            store::find_challenge(&mut transaction, &token_digest(challenge.expose_secret()))
                .await?
        else {
            return Err(Error::InvalidSecondFactor);
        };
        let tenant = found.tenant_id;
        let user = store::get_user(&mut transaction, found.user_id, true)
            .await?
            .ok_or(Error::InvalidSecondFactor)?;
        let now = Utc::now();
        let challenge_applies =
            found.is_open_at(now) && (context.tenant_id.is_none() || context.tenant_id == tenant);
        // The lockout of the scope the challenge is for; none when the membership ended since.
        let lockout = if challenge_applies {
            store::lock_lockout(&mut transaction, tenant, user.id).await?
        } else {
            None
        };
        let Some(lockout) = lockout else {
            transaction.commit().await?;
            let failure = LoginFailure::InvalidChallenge;
            self.record_failure(context, tenant, &user.email, Some(user.id), failure, None)
                .await?;
            return Err(Error::InvalidSecondFactor);
        };
        if let Some(until) = lockout.locked_at(now) {
            transaction.commit().await?;
            let failure = LoginFailure::AccountLocked;
            self.record_failure(
                context,
                tenant,
                &user.email,
                Some(user.id),
                failure,
                Some(until),
            )
            .await?;
            return Err(Error::AccountLocked(until));
        }
        if !self
            .accept_second_factor(&mut transaction, &user, code)
            .await?
        {
            transaction.commit().await?;
            let failure = LoginFailure::WrongCode;
            let locked_until = self
                .record_failure(context, tenant, &user.email, Some(user.id), failure, None)
                .await?;
            return Err(locked_until.map_or(Error::InvalidSecondFactor, Error::AccountLocked));
        }
        store::consume_challenge(&mut transaction, found.id).await?;
        transaction.commit().await?;

        let Some(subject) = self.subject_for(&user, tenant).await? else {
            return Err(Error::InvalidSecondFactor);
        };
        let mut transaction = self.transaction_for(tenant).await?;
        store::record_login_success(&mut transaction, tenant, user.id).await?;
        let tokens = self
            .start_session(&mut transaction, context, user.id, subject)
            .await?;
        let attempt = Attempt::Succeeded("logged in with a second factor");
        self.log_attempt(
            &mut transaction,
            context,
            tenant,
            &user.email,
            Some(user.id),
            attempt,
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
        user: &User,
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
                user.id,
                i64::try_from(step).unwrap_or(i64::MAX),
            )
            .await?)
        } else {
            let digest = totp::recovery_code_digest(user.id, code);
            Ok(store::consume_recovery_code(connection, user.id, &digest).await?)
        }
    }

    /// Counts a failure against the address and (for wrong passwords and codes) against
    /// `user` in `tenant`, locking them out there when the lockout policy says so; logs the
    /// attempt and emits `auth.login.failed`. `locked_until` is a lock found in force already.
    /// Returns until when the account is locked there, if it is.
    async fn record_failure(
        &self,
        context: &RequestContext,
        tenant: Option<TenantId>,
        email: &Email,
        user: Option<UserId>,
        failure: LoginFailure,
        locked_until: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        self.count_address_failure(context).await;
        let mut transaction = self.transaction_for(tenant).await?;
        let mut failed_attempts = 0;
        let mut locked_until = locked_until;
        if let Some(user) = user
            && failure.counts_against_account()
            && let Some(current) = store::lock_lockout(&mut transaction, tenant, user).await?
        {
            let outcome = self
                .settings
                .lockout_policy()
                .after_failure(current.failed_logins, current.lock_count);
            failed_attempts = outcome.failed_attempts();
            let (count, lock) = match outcome {
                FailureOutcome::Counted { failed_attempts } => (failed_attempts, None),
                // A lock starts the count over.
                FailureOutcome::Locked { duration, .. } => (0, Some(Utc::now() + duration)),
            };
            store::record_login_failure(&mut transaction, tenant, user, count, lock).await?;
            locked_until = lock.or(locked_until);
        }
        let attempt = Attempt::Failed(failure);
        self.log_attempt(&mut transaction, context, tenant, email, user, attempt)
            .await?;
        let failed = FailedLogin {
            email,
            user,
            failure,
            failed_attempts,
            locked_until,
        };
        self.enqueue(
            &mut transaction,
            tenant,
            events::login_failed(context, failed),
        )
        .await?;
        transaction.commit().await?;
        self.outbox.notify();
        let reason = events::login_failure_reason(failure).as_str_name();
        crate::metrics::login_failed(reason);
        tracing::info!(reason, ip = %context.client_ip, "login failed");
        Ok(locked_until)
    }

    /// Writes the login log entry of an attempt.
    async fn log_attempt(
        &self,
        connection: &mut PgConnection,
        context: &RequestContext,
        tenant: Option<TenantId>,
        email: &Email,
        user: Option<UserId>,
        attempt: Attempt,
    ) -> Result<(), Error> {
        let (succeeded, reason) = match attempt {
            Attempt::Succeeded(description) => (true, description),
            Attempt::Failed(failure) => {
                (false, events::login_failure_reason(failure).as_str_name())
            }
        };
        store::insert_login_attempt(
            connection,
            &LoginAttempt {
                tenant_id: tenant,
                user_id: user,
                email: email.as_str(),
                ip_address: &context.client_ip,
                user_agent: &context.user_agent,
                succeeded,
                reason,
            },
        )
        .await?;
        Ok(())
    }

    fn address_key(&self, context: &RequestContext) -> String {
        self.redis
            .key(&format!("auth:login-failures:{}", context.client_ip))
    }

    /// Refuses an address that failed too often lately. Redis being down lifts the limit
    /// (account lockout still holds).
    pub(crate) async fn refuse_throttled_address(
        &self,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let mut connection = self.redis.connection();
        let failures: redis::RedisResult<Option<u32>> =
            connection.get(self.address_key(context)).await;
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

    pub(crate) async fn count_address_failure(&self, context: &RequestContext) {
        let key = self.address_key(context);
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
}

/// The sealing context of a user's TOTP secret.
pub(crate) fn totp_context(user: UserId) -> String {
    format!("totp:{user}")
}
