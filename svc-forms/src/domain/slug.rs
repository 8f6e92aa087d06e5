//! The short name of a form in links (`/f/{slug}`) and resource names (`forms/{slug}`),
//! unique within its tenant.

use std::fmt;

/// A form's slug: 3 to 63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit,
/// without `--`. A UUID is never a slug, so `forms/{x}` names one form either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FormSlug(String);

impl FormSlug {
    /// Parses a slug.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let allowed = text.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
        });
        let edges = |character: Option<char>| character.is_some_and(|c| c != '-');
        let valid = (3..=63).contains(&text.len())
            && allowed
            && edges(text.chars().next())
            && edges(text.chars().last())
            && !text.contains("--")
            && uuid::Uuid::try_parse(text).is_err();
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(
                "must be 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
            )
        }
    }

    /// A slug made from a title (`"Report a problem!"` → `report-a-problem`), `form` when
    /// the title has too few letters or digits.
    pub fn from_title(title: &str) -> Self {
        let mut slug = String::new();
        for character in title.chars().flat_map(char::to_lowercase) {
            if character.is_ascii_alphanumeric() {
                slug.push(character);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
            if slug.len() >= 50 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        Self::parse(slug).unwrap_or_else(|_| Self("form".to_owned()))
    }

    /// This slug with a numeric suffix (`report-2`), for when it is taken.
    pub fn with_suffix(&self, number: u32) -> Self {
        Self(format!("{}-{number}", self.0))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FormSlug {
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
        let limits = proto::published_limits("formflow.forms.v1.Form", "slug");
        assert!(FormSlug::parse(&"a".repeat(limits.max_length as usize)).is_ok());
        assert!(FormSlug::parse(&"a".repeat(limits.max_length as usize + 1)).is_err());
        platform::testing::assert_pattern_agrees(&limits.pattern, |sample| {
            FormSlug::parse(sample).is_ok()
        });
        let pattern = regex::Regex::new(&limits.pattern).unwrap();
        assert!(pattern.is_match(""), "a form without a slug asked for");
    }

    #[test]
    fn slugs_are_dns_like_and_never_uuids() {
        assert!(FormSlug::parse("report-a-problem").is_ok());
        for bad in ["ab", "-ab", "ab-", "a--b", "Abc", "a b", &"a".repeat(64)] {
            assert!(FormSlug::parse(bad).is_err(), "{bad:?}");
        }
        assert!(FormSlug::parse(&uuid::Uuid::now_v7().to_string()).is_err());
    }

    #[test]
    fn titles_become_slugs() {
        assert_eq!(
            FormSlug::from_title("Report a problem!").as_str(),
            "report-a-problem"
        );
        assert_eq!(
            FormSlug::from_title("  Été 2026 — inscriptions ").as_str(),
            "t-2026-inscriptions"
        );
        assert_eq!(FormSlug::from_title("?!").as_str(), "form");
        assert_eq!(FormSlug::from_title("a").as_str(), "form");
        assert_eq!(
            FormSlug::from_title("report").with_suffix(2).as_str(),
            "report-2"
        );
    }

    proptest! {
        #[test]
        fn any_title_gives_a_valid_slug(title in "\\PC{0,300}") {
            let slug = FormSlug::from_title(&title);
            prop_assert!(FormSlug::parse(slug.as_str()).is_ok());
            prop_assert!(FormSlug::parse(slug.with_suffix(99).as_str()).is_ok());
        }
    }
}
