//! Accounts: login emails, people's names, users (global: one account may belong to several
//! tenants) and their memberships, with the rules that read their state.

use std::fmt;

use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};

use super::LockoutState;

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
        parse_name(text).map(PersonName)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` trimmed, when it is 1 to 100 characters without control characters: the rule of
/// every human-readable name svc-auth keeps (people, API keys).
pub(super) fn parse_name(text: &str) -> Result<String, InvalidName> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(InvalidName);
    }
    Ok(trimmed.to_owned())
}

/// A TOTP secret awaiting the first code that confirms it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTotp {
    /// The secret, sealed.
    pub sealed_secret: Vec<u8>,
    /// When it is dropped unless confirmed.
    pub until: DateTime<Utc>,
}

/// A user. Users are global (not tenant-owned); what a tenant sees of them goes through its
/// memberships.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login email, unique.
    pub email: Email,
    /// Name.
    pub display_name: PersonName,
    /// argon2id hash of the password (PHC string).
    pub password_hash: String,
    /// Whether the user is a platform administrator.
    pub platform_admin: bool,
    /// The sealed TOTP secret, when two-factor authentication is on.
    pub totp_secret: Option<Vec<u8>>,
    /// An enrolment awaiting its first code.
    pub totp_pending: Option<PendingTotp>,
    /// The last TOTP time step accepted: a code is accepted once.
    pub totp_last_step: i64,
    /// Lockout of logins without a tenant (platform administration); logins to a tenant count
    /// on the membership ([`MemberStanding`](super::MemberStanding)).
    pub platform_lockout: LockoutState,
    /// Last full login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// Whether login asks for a second factor.
    pub fn two_factor_enabled(&self) -> bool {
        self.totp_secret.is_some()
    }
}

/// A membership, with what members see of its user.
#[derive(Debug, Clone)]
pub struct Member {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// The user's email.
    pub email: Email,
    /// The user's name.
    pub display_name: PersonName,
    /// The role in the tenant.
    pub role: Role,
    /// Incremented on every change; the etag.
    pub version: i64,
    /// Joined at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let sign_up = proto::published_limits("formflow.auth.v1.SignUpRequest", "display_name");
        let accept =
            proto::published_limits("formflow.auth.v1.AcceptInvitationRequest", "display_name");
        assert_eq!(accept.max_length, sign_up.max_length);
        let max = sign_up.max_length as usize;
        assert!(PersonName::parse(&"é".repeat(max)).is_ok());
        assert!(PersonName::parse(&"é".repeat(max + 1)).is_err());
        assert!(PersonName::parse(&"é".repeat(sign_up.min_length as usize)).is_ok());
        assert!(PersonName::parse("").is_err());
    }

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
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert_eq!(PersonName::parse(" "), Err(InvalidName));
        assert_eq!(PersonName::parse("A\u{7}da"), Err(InvalidName));
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(PersonName::parse(&"é".repeat(101)), Err(InvalidName));
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_parsed_values_parse_again(text in "\\PC{0,300}") {
            if let Ok(email) = Email::parse(&text) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email));
            }
            if let Ok(name) = PersonName::parse(&text) {
                prop_assert_eq!(PersonName::parse(name.as_str()), Ok(name));
            }
        }
    }
}
