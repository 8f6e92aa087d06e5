//! Identity rules with no IO: emails, names, the password policy, roles on the wire.

use std::fmt;

use platform::context::Role;
use proto::formflow::auth::v1 as wire;
use secrecy::{ExposeSecret, SecretString};

/// Longest password accepted (argon2 accepts more; nobody types more).
const MAX_PASSWORD_LENGTH: usize = 128;

/// A login email: trimmed, lower-cased, `local@domain` with a dotted domain, at most 254
/// characters, no spaces, control characters or `:` (it names the TOTP account).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why an email was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an email address such as ada@example.com (at most 254 characters)")]
pub struct InvalidEmail;

impl Email {
    /// Normalises and validates `text`.
    pub fn parse(text: &str) -> Result<Email, InvalidEmail> {
        let email = text.trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err(InvalidEmail);
        };
        let well_formed = email.len() <= 254
            && (1..=64).contains(&local.len())
            && !domain.contains('@')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
            && email.chars().all(|character| {
                !character.is_whitespace() && !character.is_control() && character != ':'
            });
        if well_formed {
            Ok(Email(email))
        } else {
            Err(InvalidEmail)
        }
    }

    /// The normalised email.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A person's name as other members see it: 1 to 100 characters once trimmed, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 100 characters, without control characters")]
pub struct InvalidName;

impl PersonName {
    /// Trims and validates `text`.
    pub fn parse(text: &str) -> Result<PersonName, InvalidName> {
        let trimmed = text.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 100
            || trimmed.chars().any(char::is_control)
        {
            return Err(InvalidName);
        }
        Ok(PersonName(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

/// Checks a password someone types to prove who they are: present and not absurdly long.
pub fn check_entered_password(password: &SecretString) -> Result<(), &'static str> {
    let length = password.expose_secret().chars().count();
    if length == 0 {
        Err("is required")
    } else if length > MAX_PASSWORD_LENGTH {
        Err("must be at most 128 characters long")
    } else {
        Ok(())
    }
}

/// The wire form of a role.
pub fn role_to_proto(role: Role) -> wire::Role {
    match role {
        Role::Owner => wire::Role::Owner,
        Role::Admin => wire::Role::Admin,
        Role::Member => wire::Role::Member,
        Role::Viewer => wire::Role::Viewer,
    }
}

/// A role from the wire; `None` for UNSPECIFIED and unknown values.
pub fn role_from_proto(value: i32) -> Option<Role> {
    match wire::Role::try_from(value).ok()? {
        wire::Role::Owner => Some(Role::Owner),
        wire::Role::Admin => Some(Role::Admin),
        wire::Role::Member => Some(Role::Member),
        wire::Role::Viewer => Some(Role::Viewer),
        wire::Role::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.COM ")
                .unwrap()
                .as_str(),
            "ada.lovelace@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            "ada:x@example.com",
            "ada@.com",
            "ada@-x.com",
        ] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(InvalidEmail));
    }

    #[test]
    fn weak_short_and_personal_passwords_are_refused() {
        let policy = PasswordPolicy { min_length: 12 };
        let check = |password: &str, inputs: &[&str]| {
            policy.check(&SecretString::from(password.to_owned()), inputs)
        };
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
    fn roles_round_trip_through_the_wire() {
        for role in [Role::Owner, Role::Admin, Role::Member, Role::Viewer] {
            assert_eq!(role_from_proto(role_to_proto(role) as i32), Some(role));
        }
        assert_eq!(role_from_proto(0), None);
        assert_eq!(role_from_proto(42), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            let _ = Email::parse(&text);
            let _ = PersonName::parse(&text);
            let _ = PasswordPolicy { min_length: 12 }.check(&SecretString::from(text), &[]);
        }
    }
}
