//! The `tenant.*` events: built from domain tenants, enqueued in the outbox by the operations.
//! An event carries the whole tenant, so consumers never call back.

use proto::formflow::events::v1 as events;
use proto::formflow::tenant::v1 as wire;

use crate::domain::{Plan, Settings, Tenant, TenantStatus};

/// The wire form of a tenant, in events and in responses alike.
pub fn tenant_to_proto(tenant: &Tenant) -> wire::Tenant {
    wire::Tenant {
        name: platform::wire::resource_name("tenants", tenant.id),
        id: tenant.id.to_string(),
        slug: tenant.slug.to_string(),
        display_name: tenant.display_name.as_str().to_owned(),
        domains: tenant.domains.iter().map(ToString::to_string).collect(),
        status: status_to_proto(tenant.status) as i32,
        plan: plan_to_proto(tenant.plan) as i32,
        settings: Some(settings_to_proto(&tenant.settings)),
        rate_limits: Some(wire::RateLimits {
            requests_per_minute: tenant.rate_limits.requests_per_minute,
            burst: tenant.rate_limits.burst,
        }),
        suspension_reason: tenant.suspension_reason.clone().unwrap_or_default(),
        create_time: Some(platform::wire::timestamp(tenant.created_at)),
        update_time: Some(platform::wire::timestamp(tenant.updated_at)),
        etag: platform::wire::etag(tenant.version),
    }
}

/// The wire form of a status.
pub fn status_to_proto(status: TenantStatus) -> wire::TenantStatus {
    match status {
        TenantStatus::Active => wire::TenantStatus::Active,
        TenantStatus::Suspended => wire::TenantStatus::Suspended,
        TenantStatus::Deleted => wire::TenantStatus::Deleted,
    }
}

/// The wire form of a plan.
pub fn plan_to_proto(plan: Plan) -> wire::Plan {
    match plan {
        Plan::Free => wire::Plan::Free,
        Plan::Team => wire::Plan::Team,
        Plan::Enterprise => wire::Plan::Enterprise,
    }
}

fn settings_to_proto(settings: &Settings) -> pbjson_types::Struct {
    serde_json::from_value(serde_json::Value::Object(settings.as_map().clone()))
        .expect("a JSON object is a Struct")
}

/// `tenant.created`.
pub fn created(tenant: &Tenant) -> events::TenantCreated {
    events::TenantCreated {
        tenant: Some(tenant_to_proto(tenant)),
    }
}

/// The event a change from `previous` to `tenant` announces, chosen by the new status.
#[derive(Debug)]
pub enum Changed {
    /// `tenant.suspended`.
    Suspended(events::TenantSuspended),
    /// `tenant.deleted`.
    Deleted(events::TenantDeleted),
    /// `tenant.updated`.
    Updated(events::TenantUpdated),
}

/// The event announcing that `previous` became `tenant` by changing `changed_fields`.
pub fn changed(previous: &Tenant, tenant: &Tenant, changed_fields: &[&str]) -> Changed {
    let wire = tenant_to_proto(tenant);
    match (previous.status, tenant.status) {
        (TenantStatus::Active, TenantStatus::Suspended) => {
            Changed::Suspended(events::TenantSuspended {
                tenant: Some(wire),
                reason: tenant.suspension_reason.clone().unwrap_or_default(),
            })
        }
        (_, TenantStatus::Deleted) => {
            Changed::Deleted(events::TenantDeleted { tenant: Some(wire) })
        }
        _ => Changed::Updated(events::TenantUpdated {
            tenant: Some(wire),
            changed_fields: changed_fields
                .iter()
                .map(|field| (*field).to_owned())
                .collect(),
            previous_domains: previous.domains.iter().map(ToString::to_string).collect(),
        }),
    }
}
