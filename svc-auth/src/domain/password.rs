//! The password policy: what a new password must be, and what a typed one may be.

use secrecy::{ExposeSecret, SecretString};

/// Longest password accepted (argon2 accepts more; nobody types more).
const MAX_PASSWORD_LENGTH: usize = 128;

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than the minimum.
    #[error("must be at least {0} characters long")]
    TooShort(usize),
    /// Longer than 128 characters.
    #[error("must be at most 128 characters long")]
    TooLong,
    /// Too easy to guess: a common or breached password, a keyboard pattern, or built from the
    /// user's own email or name.
    #[error("is too easy to guess{0}")]
    TooWeak(String),
}

/// What a new password must be: long enough, not too long, and not guessable (zxcvbn score 3
/// or more; its dictionaries hold the most common and breached passwords).
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// Shortest length, in characters.
    pub min_length: usize,
}

impl PasswordPolicy {
    /// Checks `password`, penalising passwords built from `user_inputs` (email, names).
    pub fn check(
        &self,
        password: &SecretString,
        user_inputs: &[&str],
    ) -> Result<(), PasswordError> {
        let password = password.expose_secret();
        let length = password.chars().count();
        if length < self.min_length {
            return Err(PasswordError::TooShort(self.min_length));
        }
        if length > MAX_PASSWORD_LENGTH {
            return Err(PasswordError::TooLong);
        }
        let estimate = zxcvbn::zxcvbn(password, user_inputs);
        if estimate.score() < zxcvbn::Score::Three {
            let warning = estimate
                .feedback()
                .and_then(|feedback| feedback.warning())
                .map(|warning| format!(": {warning}"))
                .unwrap_or_default();
            return Err(PasswordError::TooWeak(warning));
        }
        Ok(())
    }
}

/// Why a password someone typed to prove who they are was refused before checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnteredPasswordError {
    /// Empty.
    #[error("is required")]
    Missing,
    /// Longer than any password svc-auth accepts.
    #[error("must be at most 128 characters long")]
    TooLong,
}

/// Checks a password someone types to prove who they are: present and not absurdly long.
pub fn check_entered_password(password: &SecretString) -> Result<(), EnteredPasswordError> {
    let length = password.expose_secret().chars().count();
    if length == 0 {
        Err(EnteredPasswordError::Missing)
    } else if length > MAX_PASSWORD_LENGTH {
        Err(EnteredPasswordError::TooLong)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        for (message, field) in [
            ("SignUpRequest", "password"),
            ("ChangePasswordRequest", "new_password"),
            ("ResetPasswordRequest", "new_password"),
        ] {
            let limits = proto::published_limits(&format!("formflow.auth.v1.{message}"), field);
            assert_eq!(limits.max_length as usize, MAX_PASSWORD_LENGTH, "{message}");
        }
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn weak_short_and_personal_passwords_are_refused() {
        let policy = PasswordPolicy { min_length: 12 };
        let check = |password: &str, inputs: &[&str]| policy.check(&secret(password), inputs);
        assert_eq!(check("short", &[]), Err(PasswordError::TooShort(12)));
        assert_eq!(check(&"x".repeat(129), &[]), Err(PasswordError::TooLong));
        assert!(matches!(
            check("password1234", &[]),
            Err(PasswordError::TooWeak(_))
        ));
        assert!(matches!(
            check("qwertyuiop123", &[]),
            Err(PasswordError::TooWeak(_))
        ));
        assert!(matches!(
            check(
                "adalovelace1815",
                &["ada.lovelace@example.com", "adalovelace1815"]
            ),
            Err(PasswordError::TooWeak(_))
        ));
        assert_eq!(check("violet-Kettle-drums-9-orbit", &[]), Ok(()));
    }

    #[test]
    fn typed_passwords_must_be_present_and_not_absurdly_long() {
        assert_eq!(
            check_entered_password(&secret("")),
            Err(EnteredPasswordError::Missing)
        );
        assert_eq!(
            check_entered_password(&secret(&"x".repeat(129))),
            Err(EnteredPasswordError::TooLong)
        );
        assert_eq!(check_entered_password(&secret("x")), Ok(()));
    }

    proptest! {
        #[test]
        fn checking_never_panics(text in "\\PC{0,300}") {
            let _ = PasswordPolicy { min_length: 12 }.check(&secret(&text), &[]);
            let _ = check_entered_password(&secret(&text));
        }
    }
}
