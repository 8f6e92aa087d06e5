//! Brute-force protection: why a login failed, which failures count against an account, when
//! they lock it and for how long. An account counts failures per scope, its membership of a
//! tenant or (for logins without a tenant) platform administration, so failures sent to one
//! tenant never lock it out of another.

use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::context::Role;

/// Why a login attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginFailure {
    /// No user has the email.
    UnknownEmail,
    /// The password was wrong.
    WrongPassword,
    /// The user exists but is not a member of the tenant (or, without a tenant, not a platform
    /// administrator). Recorded as such, but answered, and worked on, as an unknown email.
    NotAMember,
    /// The account was locked; the password was not checked.
    AccountLocked,
    /// The TOTP or recovery code was wrong, or already used.
    WrongCode,
    /// The two-factor challenge was unknown, used, expired or for another tenant.
    InvalidChallenge,
}

impl LoginFailure {
    /// Whether the failure counts against the account: a wrong secret does; an unknown email,
    /// a missing membership, a locked account or a stale challenge proves nothing.
    pub fn counts_against_account(self) -> bool {
        match self {
            LoginFailure::WrongPassword | LoginFailure::WrongCode => true,
            LoginFailure::UnknownEmail
            | LoginFailure::NotAMember
            | LoginFailure::AccountLocked
            | LoginFailure::InvalidChallenge => false,
        }
    }
}

/// An account's lockout counters in one scope: a membership, or platform administration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockoutState {
    /// Consecutive failed logins since the last success or lock.
    pub failed_logins: u32,
    /// Locks since the last full login; each lasts longer than the one before.
    pub lock_count: u32,
    /// Until when the account is (or was last) locked.
    pub locked_until: Option<DateTime<Utc>>,
}

impl LockoutState {
    /// Until when the account is locked in this scope, if it is at `now`.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }
}

/// What a login to a tenant needs of a member: the role to log in as, and the lockout of the
/// membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStanding {
    /// The member's role in the tenant.
    pub role: Role,
    /// The membership's lockout counters.
    pub lockout: LockoutState,
}

/// Account lockout: `threshold` consecutive failures lock the account; the first lock lasts
/// `base`, each further one twice the one before, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock.
    pub threshold: u32,
    /// How long the first lock lasts.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
}

/// What a failure that counts against an account does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted: the account has `failed_attempts` consecutive failures, this one included.
    Counted {
        /// Consecutive failures, this one included.
        failed_attempts: u32,
    },
    /// Locked for `duration`; the count starts over.
    Locked {
        /// Consecutive failures, this one included.
        failed_attempts: u32,
        /// How long the lock lasts.
        duration: Duration,
    },
}

impl FailureOutcome {
    /// Consecutive failures, this one included.
    pub fn failed_attempts(self) -> u32 {
        match self {
            FailureOutcome::Counted { failed_attempts }
            | FailureOutcome::Locked {
                failed_attempts, ..
            } => failed_attempts,
        }
    }
}

impl LockoutPolicy {
    /// What one more failure does to an account with `failed_logins` consecutive failures and
    /// `lock_count` locks since its last full login (in the scope the failure counts in).
    pub fn after_failure(&self, failed_logins: u32, lock_count: u32) -> FailureOutcome {
        let failed_attempts = failed_logins.saturating_add(1);
        if failed_attempts >= self.threshold {
            FailureOutcome::Locked {
                failed_attempts,
                duration: self.lock_duration(lock_count),
            }
        } else {
            FailureOutcome::Counted { failed_attempts }
        }
    }

    /// How long the lock lasts that follows `previous_locks` locks: `base`, doubled for each
    /// previous lock, at most `max`.
    pub fn lock_duration(&self, previous_locks: u32) -> Duration {
        // 2^20 times any sensible base is past any sensible maximum.
        let doubling = 2_u32.saturating_pow(previous_locks.min(20));
        self.base.saturating_mul(doubling).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            threshold: 5,
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn the_failure_that_reaches_the_threshold_locks() {
        let policy = policy();
        assert_eq!(
            policy.after_failure(0, 0),
            FailureOutcome::Counted { failed_attempts: 1 }
        );
        assert_eq!(
            policy.after_failure(3, 0),
            FailureOutcome::Counted { failed_attempts: 4 }
        );
        assert_eq!(
            policy.after_failure(4, 0),
            FailureOutcome::Locked {
                failed_attempts: 5,
                duration: Duration::from_secs(60)
            }
        );
        assert_eq!(policy.after_failure(4, 2).failed_attempts(), 5);
    }

    #[test]
    fn each_lock_lasts_twice_the_one_before_up_to_the_maximum() {
        let policy = policy();
        let minutes: Vec<u64> = (0..8)
            .map(|locks| policy.lock_duration(locks).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(policy.lock_duration(u32::MAX), policy.max);
    }

    #[test]
    fn only_wrong_secrets_count_against_the_account() {
        let counted: Vec<LoginFailure> = [
            LoginFailure::UnknownEmail,
            LoginFailure::WrongPassword,
            LoginFailure::NotAMember,
            LoginFailure::AccountLocked,
            LoginFailure::WrongCode,
            LoginFailure::InvalidChallenge,
        ]
        .into_iter()
        .filter(|failure| failure.counts_against_account())
        .collect();
        assert_eq!(
            counted,
            [LoginFailure::WrongPassword, LoginFailure::WrongCode]
        );
    }

    proptest! {
        #[test]
        fn locks_grow_and_never_exceed_the_maximum(
            base_ms in 1_u64..100_000,
            max_ms in 1_u64..10_000_000,
            locks in 0_u32..100,
        ) {
            let policy = LockoutPolicy {
                threshold: 5,
                base: Duration::from_millis(base_ms),
                max: Duration::from_millis(max_ms),
            };
            let this_lock = policy.lock_duration(locks);
            prop_assert!(this_lock <= policy.max);
            prop_assert!(policy.lock_duration(locks + 1) >= this_lock);
            prop_assert_eq!(policy.lock_duration(0), policy.base.min(policy.max));
        }

        #[test]
        fn an_account_locks_exactly_when_its_failures_reach_the_threshold(
            threshold in 1_u32..50,
            failed_logins in 0_u32..100,
        ) {
            let policy = LockoutPolicy { threshold, ..policy() };
            let locked = matches!(
                policy.after_failure(failed_logins, 0),
                FailureOutcome::Locked { .. }
            );
            prop_assert_eq!(locked, failed_logins + 1 >= threshold);
        }
    }
}
