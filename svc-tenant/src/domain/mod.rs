//! Tenant rules with no IO: validated newtypes, plans and their limits, statuses, hosts.

mod domain_name;
mod slug;
mod tenant;

pub use domain_name::{DomainName, Host};
pub use slug::Slug;
pub use tenant::{
    DisplayName, MAX_DOMAINS, Plan, RateLimits, Settings, SuspensionReason, Tenant, TenantStatus,
};
