use std::fmt;

/// Handles that would shadow the suite's own hosts or paths, or invite impersonation.
const RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "cdn",
    "console",
    "dashboard",
    "default",
    "docs",
    "formflow",
    "gateway",
    "grpc",
    "health",
    "help",
    "internal",
    "login",
    "mail",
    "metrics",
    "oauth",
    "platform",
    "root",
    "signup",
    "smtp",
    "static",
    "status",
    "support",
    "system",
    "tenant",
    "tenants",
    "www",
];

/// A tenant's DNS-safe handle: 3 to 63 lowercase ASCII letters, digits and inner hyphens, not
/// reserved, usable as a subdomain (`{slug}.forms.example.com`) and in paths (`/t/{slug}/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

/// Why a slug was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// Too short or too long.
    #[error("must be 3 to 63 characters long")]
    Length,
    /// A character outside `a-z`, `0-9` and `-`.
    #[error("may contain only lowercase letters a-z, digits and hyphens")]
    Characters,
    /// Starts or ends with a hyphen, or holds `--` (reserved by IDNA for `xn--` labels).
    #[error("must start and end with a letter or digit and must not contain \"--\"")]
    Hyphens,
    /// One of the reserved words.
    #[error("is reserved")]
    Reserved,
}

impl Slug {
    /// Validates `text` as it is: no trimming or lower-casing, so what is stored is what was
    /// sent.
    pub fn parse(text: &str) -> Result<Slug, SlugError> {
        if !(3..=63).contains(&text.len()) {
            return Err(SlugError::Length);
        }
        if !text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        {
            return Err(SlugError::Characters);
        }
        if text.starts_with('-') || text.ends_with('-') || text.contains("--") {
            return Err(SlugError::Hyphens);
        }
        if RESERVED.contains(&text) {
            return Err(SlugError::Reserved);
        }
        Ok(Slug(text.to_owned()))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits = proto::published_limits("formflow.tenant.v1.Tenant", "slug");
        let (min, max) = (limits.min_length as usize, limits.max_length as usize);
        assert!(Slug::parse(&"a".repeat(min)).is_ok());
        assert!(Slug::parse(&"a".repeat(min - 1)).is_err());
        assert!(Slug::parse(&"a".repeat(max)).is_ok());
        assert!(Slug::parse(&"a".repeat(max + 1)).is_err());
        platform::testing::assert_pattern_agrees(&limits.pattern, |sample| {
            Slug::parse(sample).is_ok()
        });
    }

    #[test]
    fn plain_handles_are_accepted() {
        for good in ["acme", "a1b", "acme-corp", "x9-y8-z7", &"a".repeat(63)] {
            assert_eq!(Slug::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn malformed_handles_are_refused_with_a_reason() {
        assert_eq!(Slug::parse("ab"), Err(SlugError::Length));
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::Length));
        assert_eq!(Slug::parse("Acme"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("acme corp"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("acmé"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("acme.corp"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("-acme"), Err(SlugError::Hyphens));
        assert_eq!(Slug::parse("acme-"), Err(SlugError::Hyphens));
        assert_eq!(Slug::parse("xn--acme"), Err(SlugError::Hyphens));
        assert_eq!(Slug::parse("www"), Err(SlugError::Reserved));
        assert_eq!(Slug::parse("admin"), Err(SlugError::Reserved));
    }

    proptest! {
        #[test]
        fn accepted_slugs_are_dns_labels(text in "\\PC{0,80}") {
            if let Ok(slug) = Slug::parse(&text) {
                let slug = slug.as_str();
                prop_assert!((3..=63).contains(&slug.len()));
                prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!slug.starts_with('-') && !slug.ends_with('-'));
            }
        }
    }
}
