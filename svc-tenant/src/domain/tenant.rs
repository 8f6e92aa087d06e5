use chrono::{DateTime, Utc};
use platform::context::TenantId;

use super::{DomainName, Slug};

/// Most custom domains one tenant may have.
pub const MAX_DOMAINS: usize = 20;
/// Largest settings document, in bytes of compact JSON.
const MAX_SETTINGS_BYTES: usize = 16 * 1024;

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Handle.
    pub slug: Slug,
    /// Human-readable name.
    pub display_name: DisplayName,
    /// Custom domains, sorted.
    pub domains: Vec<DomainName>,
    /// Lifecycle state.
    pub status: TenantStatus,
    /// Plan.
    pub plan: Plan,
    /// Free-form settings.
    pub settings: Settings,
    /// Configured limits (zero fields take the plan's defaults).
    pub rate_limits: RateLimits,
    /// Why it is suspended.
    pub suspension_reason: Option<String>,
    /// Incremented on every change; the etag.
    pub version: i64,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

impl Tenant {
    /// The limits the gateway enforces: configured values, else the plan's.
    pub fn effective_rate_limits(&self) -> RateLimits {
        let defaults = self.plan.default_rate_limits();
        RateLimits {
            requests_per_minute: if self.rate_limits.requests_per_minute == 0 {
                defaults.requests_per_minute
            } else {
                self.rate_limits.requests_per_minute
            },
            burst: if self.rate_limits.burst == 0 {
                defaults.burst
            } else {
                self.rate_limits.burst
            },
        }
    }

    /// The opaque version clients send back to refuse lost updates.
    pub fn etag(&self) -> String {
        self.version.to_string()
    }
}

/// A tenant's human-readable name: 1 to 100 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Why a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    /// Empty once trimmed.
    #[error("must not be empty")]
    Empty,
    /// Over 100 characters.
    #[error("must be at most 100 characters long")]
    TooLong,
    /// Holds a control character.
    #[error("must not contain control characters")]
    ControlCharacters,
}

impl DisplayName {
    /// Validates and trims `text`.
    pub fn parse(text: &str) -> Result<DisplayName, DisplayNameError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DisplayNameError::Empty);
        }
        if trimmed.chars().count() > 100 {
            return Err(DisplayNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacters);
        }
        Ok(DisplayName(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's settings: a JSON object of at most 16 KiB.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings(serde_json::Map<String, serde_json::Value>);

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at most 16 KiB of JSON")]
pub struct SettingsTooLarge;

impl Settings {
    /// Validates the size of `object`.
    pub fn parse(
        object: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Settings, SettingsTooLarge> {
        let size = serde_json::to_vec(&object).map_or(usize::MAX, |json| json.len());
        if size > MAX_SETTINGS_BYTES {
            return Err(SettingsTooLarge);
        }
        Ok(Settings(object))
    }

    /// The settings object.
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }
}

/// Why a tenant was suspended: 1 to 500 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspensionReason(String);

/// Why a suspension reason was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 500 characters long")]
pub struct SuspensionReasonError;

impl SuspensionReason {
    /// Validates and trims `text`.
    pub fn parse(text: &str) -> Result<SuspensionReason, SuspensionReasonError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 500 {
            return Err(SuspensionReasonError);
        }
        Ok(SuspensionReason(trimmed.to_owned()))
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lifecycle state of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    /// Serving.
    Active,
    /// Refused until reactivated.
    Suspended,
    /// Gone for good.
    Deleted,
}

impl TenantStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<TenantStatus> {
        match text {
            "active" => Some(TenantStatus::Active),
            "suspended" => Some(TenantStatus::Suspended),
            "deleted" => Some(TenantStatus::Deleted),
            _ => None,
        }
    }
}

/// Commercial plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Small limits.
    Free,
    /// Team limits.
    Team,
    /// Large limits.
    Enterprise,
}

impl Plan {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Team => "team",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Plan> {
        match text {
            "free" => Some(Plan::Free),
            "team" => Some(Plan::Team),
            "enterprise" => Some(Plan::Enterprise),
            _ => None,
        }
    }

    /// Limits of the plan when the tenant sets none.
    pub fn default_rate_limits(self) -> RateLimits {
        match self {
            Plan::Free => RateLimits {
                requests_per_minute: 600,
                burst: 60,
            },
            Plan::Team => RateLimits {
                requests_per_minute: 6_000,
                burst: 300,
            },
            Plan::Enterprise => RateLimits {
                requests_per_minute: 60_000,
                burst: 2_000,
            },
        }
    }
}

/// Request rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    /// Sustained requests per minute; 0 takes the plan's.
    pub requests_per_minute: u32,
    /// Burst above the sustained rate; 0 takes the plan's.
    pub burst: u32,
}

/// Why rate limits were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at most 1000000")]
pub struct RateLimitTooHigh;

impl RateLimits {
    /// Largest value of either field.
    pub const MAX: u32 = 1_000_000;

    /// Validates both values.
    pub fn parse(requests_per_minute: u32, burst: u32) -> Result<RateLimits, RateLimitTooHigh> {
        if requests_per_minute > Self::MAX || burst > Self::MAX {
            return Err(RateLimitTooHigh);
        }
        Ok(RateLimits {
            requests_per_minute,
            burst,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let name = proto::published_limits("formflow.tenant.v1.Tenant", "display_name");
        assert!(DisplayName::parse(&"n".repeat(name.max_length as usize)).is_ok());
        assert!(DisplayName::parse(&"n".repeat(name.max_length as usize + 1)).is_err());
        assert!(DisplayName::parse(&"n".repeat(name.min_length as usize)).is_ok());
        assert_eq!(name.min_length, 1);
        let domains = proto::published_limits("formflow.tenant.v1.Tenant", "domains");
        assert_eq!(domains.max_items as usize, MAX_DOMAINS);
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Acme Corp ").unwrap().as_str(),
            "Acme Corp"
        );
        assert_eq!(DisplayName::parse("   "), Err(DisplayNameError::Empty));
        assert_eq!(
            DisplayName::parse(&"é".repeat(100))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            100
        );
        assert_eq!(
            DisplayName::parse(&"é".repeat(101)),
            Err(DisplayNameError::TooLong)
        );
        assert_eq!(
            DisplayName::parse("Acme\u{0}"),
            Err(DisplayNameError::ControlCharacters)
        );
    }

    #[test]
    fn settings_are_bounded_by_size() {
        let mut small = serde_json::Map::new();
        small.insert("theme".into(), "dark".into());
        assert!(Settings::parse(small).is_ok());
        let mut large = serde_json::Map::new();
        large.insert("blob".into(), "x".repeat(17 * 1024).into());
        assert_eq!(Settings::parse(large), Err(SettingsTooLarge));
    }

    #[test]
    fn plans_fill_in_unset_limits() {
        let tenant = Tenant {
            id: TenantId::generate(),
            slug: Slug::parse("acme").unwrap(),
            display_name: DisplayName::parse("Acme").unwrap(),
            domains: Vec::new(),
            status: TenantStatus::Active,
            plan: Plan::Team,
            settings: Settings::default(),
            rate_limits: RateLimits {
                requests_per_minute: 100,
                burst: 0,
            },
            suspension_reason: None,
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(
            tenant.effective_rate_limits(),
            RateLimits {
                requests_per_minute: 100,
                burst: 300
            }
        );
    }

    #[test]
    fn names_round_trip() {
        for status in [
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Deleted,
        ] {
            assert_eq!(TenantStatus::parse(status.as_str()), Some(status));
        }
        for plan in [Plan::Free, Plan::Team, Plan::Enterprise] {
            assert_eq!(Plan::parse(plan.as_str()), Some(plan));
        }
        assert_eq!(
            RateLimits::parse(RateLimits::MAX + 1, 0),
            Err(RateLimitTooHigh)
        );
    }
}
