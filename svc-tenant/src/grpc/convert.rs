//! Wire -> domain: every request is validated here into domain types, collecting one field
//! violation per bad field. Responses carry the tenant's wire form, built in `events`.

use platform::context::TenantId;
use platform::error::FieldViolations;
use platform::paging::{decode_page_position, encode_page_token, page_size};
use platform::wire as wire_helpers;
use proto::formflow::tenant::v1 as wire;
use proto::formflow::tenant::v1::resolve_tenant_request::Key;

use crate::domain::{
    DisplayName, DomainName, Host, MAX_DOMAINS, Plan, RateLimits, Settings, Slug, SuspensionReason,
    TenantStatus,
};
use crate::operations::{NewTenant, ResolveKey, TenantChanges};

pub use crate::events::tenant_to_proto;

/// Parses a resource name `tenants/{id}`.
fn parse_name(violations: &mut FieldViolations, field: &str, name: &str) -> Option<TenantId> {
    wire_helpers::parse_resource_name(violations, field, name, "tenants")
}

/// Validates CreateTenant. Output-only fields of the tenant are ignored, as AIP-203 says.
pub fn new_tenant(
    request: wire::CreateTenantRequest,
    base_domain: Option<&str>,
) -> Result<NewTenant, FieldViolations> {
    let mut violations = FieldViolations::new();
    let Some(tenant) = request.tenant else {
        return Err(FieldViolations::single("tenant", "is required"));
    };
    let slug = violations.check("tenant.slug", Slug::parse(&tenant.slug));
    let display_name = violations.check(
        "tenant.display_name",
        DisplayName::parse(&tenant.display_name),
    );
    let domains = parse_domains(
        &mut violations,
        "tenant.domains",
        &tenant.domains,
        base_domain,
    );
    let plan = if tenant.plan == wire::Plan::Unspecified as i32 {
        Some(Plan::Free)
    } else {
        wire_helpers::enum_field(&mut violations, "tenant.plan", tenant.plan, plan_from_proto)
    };
    let settings = parse_settings(&mut violations, "tenant.settings", tenant.settings);
    let rate_limits = parse_limits(&mut violations, "tenant.rate_limits", tenant.rate_limits);
    // Every check that records a violation also yields `None`.
    match (slug, display_name, domains, plan, settings, rate_limits) {
        (
            Some(slug),
            Some(display_name),
            Some(domains),
            Some(plan),
            Some(settings),
            Some(rate_limits),
        ) => Ok(NewTenant {
            slug,
            display_name,
            domains,
            plan,
            settings,
            rate_limits,
        }),
        _ => Err(violations),
    }
}

/// Validates UpdateTenant: the tenant's name and the fields its mask names.
pub fn tenant_changes(
    request: wire::UpdateTenantRequest,
    base_domain: Option<&str>,
) -> Result<(TenantId, TenantChanges), FieldViolations> {
    let mut violations = FieldViolations::new();
    let Some(tenant) = request.tenant else {
        return Err(FieldViolations::single("tenant", "is required"));
    };
    let id = parse_name(&mut violations, "tenant.name", &tenant.name);
    let paths = wire_helpers::mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "must name the fields to change: display_name, domains, settings, plan, rate_limits",
        );
    }
    let mut changes = TenantChanges {
        expected_version: wire_helpers::expected_version(
            &mut violations,
            "tenant.etag",
            &tenant.etag,
        ),
        ..TenantChanges::default()
    };
    let mut settings = tenant.settings;
    let mut rate_limits = tenant.rate_limits;
    for path in &paths {
        match path.as_str() {
            "display_name" => {
                changes.display_name =
                    violations.check("tenant.display_name", DisplayName::parse(&tenant.display_name));
            }
            "domains" => {
                changes.domains =
                    parse_domains(&mut violations, "tenant.domains", &tenant.domains, base_domain);
            }
            "settings" => {
                changes.settings = parse_settings(&mut violations, "tenant.settings", settings.take());
            }
            "plan" => {
                changes.plan = wire_helpers::enum_field(&mut violations, "tenant.plan", tenant.plan, plan_from_proto);
            }
            "rate_limits" => {
                changes.rate_limits =
                    parse_limits(&mut violations, "tenant.rate_limits", rate_limits.take());
            }
            "slug" => violations.add("update_mask", "slug is immutable"),
            _ => violations.add(
                "update_mask",
                format!("{path:?} is not an updatable field (display_name, domains, settings, plan, rate_limits)"),
            ),
        }
    }
    match id {
        Some(id) if violations.is_empty() => Ok((id, changes)),
        _ => Err(violations),
    }
}

/// Validates ListTenants into (after, status, page size).
pub fn list_request(
    request: &wire::ListTenantsRequest,
) -> Result<(Option<TenantId>, Option<TenantStatus>, usize), FieldViolations> {
    let mut violations = FieldViolations::new();
    let page_size = page_size(&mut violations, request.page_size);
    let status =
        wire_helpers::enum_filter(
            &mut violations,
            "status",
            request.status,
            |status| match status {
                wire::TenantStatus::Unspecified => None,
                wire::TenantStatus::Active => Some(TenantStatus::Active),
                wire::TenantStatus::Suspended => Some(TenantStatus::Suspended),
                wire::TenantStatus::Deleted => Some(TenantStatus::Deleted),
            },
        );
    let after = decode_page_position(
        &mut violations,
        &request.page_token,
        &status_filter(request.status),
        |position| TenantId::parse(position).ok(),
    );
    violations.into_result()?;
    Ok((after, status, page_size))
}

/// The token of the page after `after`, bound to the status filter it was issued for.
pub fn next_page_token(status: i32, after: TenantId) -> String {
    encode_page_token(&status_filter(status), &after.to_string())
}

fn status_filter(status: i32) -> String {
    format!("status={status}")
}

/// Validates SuspendTenant.
pub fn suspend_request(
    request: &wire::SuspendTenantRequest,
) -> Result<(TenantId, SuspensionReason), FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = parse_name(&mut violations, "name", &request.name);
    let reason = violations.check("reason", SuspensionReason::parse(&request.reason));
    match (id, reason) {
        (Some(id), Some(reason)) => Ok((id, reason)),
        _ => Err(violations),
    }
}

/// Validates a request that only names a tenant.
pub fn name_only(name: &str) -> Result<TenantId, FieldViolations> {
    let mut violations = FieldViolations::new();
    parse_name(&mut violations, "name", name).ok_or(violations)
}

/// Validates ResolveTenant.
pub fn resolve_key(
    request: wire::ResolveTenantRequest,
    base_domain: Option<&str>,
) -> Result<ResolveKey, FieldViolations> {
    match request.key {
        Some(Key::Id(id)) => TenantId::parse(&id)
            .map(ResolveKey::Id)
            .map_err(|error| FieldViolations::single("id", error.to_string())),
        Some(Key::Slug(slug)) => Slug::parse(&slug)
            .map(ResolveKey::Slug)
            .map_err(|error| FieldViolations::single("slug", error.to_string())),
        Some(Key::Host(host)) if !host.trim().is_empty() && host.len() <= 260 => {
            Ok(ResolveKey::Host(Host::parse(&host, base_domain)))
        }
        Some(Key::Host(_)) => Err(FieldViolations::single("host", "must be a host name")),
        None => Err(FieldViolations::single(
            "key",
            "one of id, slug or host is required",
        )),
    }
}

fn parse_domains(
    violations: &mut FieldViolations,
    field: &str,
    domains: &[String],
    base_domain: Option<&str>,
) -> Option<Vec<DomainName>> {
    if domains.len() > MAX_DOMAINS {
        violations.add(field, format!("at most {MAX_DOMAINS} domains"));
        return None;
    }
    let mut parsed: Vec<DomainName> = Vec::with_capacity(domains.len());
    let mut valid = true;
    for (index, text) in domains.iter().enumerate() {
        match DomainName::parse(text, base_domain) {
            Ok(domain) if parsed.contains(&domain) => {
                violations.add(format!("{field}[{index}]"), "is listed twice");
                valid = false;
            }
            Ok(domain) => parsed.push(domain),
            Err(error) => {
                violations.add(format!("{field}[{index}]"), error.to_string());
                valid = false;
            }
        }
    }
    parsed.sort();
    valid.then_some(parsed)
}

fn parse_settings(
    violations: &mut FieldViolations,
    field: &str,
    settings: Option<pbjson_types::Struct>,
) -> Option<Settings> {
    let Some(settings) = settings else {
        return Some(Settings::default());
    };
    match serde_json::to_value(&settings) {
        Ok(serde_json::Value::Object(object)) => violations.check(field, Settings::parse(object)),
        _ => {
            violations.add(field, "must be a JSON object");
            None
        }
    }
}

fn parse_limits(
    violations: &mut FieldViolations,
    field: &str,
    limits: Option<wire::RateLimits>,
) -> Option<RateLimits> {
    let limits = limits.unwrap_or_default();
    violations.check(
        field,
        RateLimits::parse(limits.requests_per_minute, limits.burst),
    )
}

/// A plan a request may name (not UNSPECIFIED).
fn plan_from_proto(plan: wire::Plan) -> Option<Plan> {
    match plan {
        wire::Plan::Unspecified => None,
        wire::Plan::Free => Some(Plan::Free),
        wire::Plan::Team => Some(Plan::Team),
        wire::Plan::Enterprise => Some(Plan::Enterprise),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn page_tokens_round_trip_within_their_status_filter() {
        let after = TenantId::generate();
        let request = |page_token: &str, status| wire::ListTenantsRequest {
            page_size: 10,
            page_token: page_token.to_owned(),
            status,
        };
        let token = next_page_token(1, after);
        assert_eq!(list_request(&request(&token, 1)).unwrap().0, Some(after));
        for (page_token, status) in [
            (token.as_str(), 2),
            ("garbage", 1),
            (&encode_page_token("status=1", "not-an-id"), 1),
        ] {
            let violations = list_request(&request(page_token, status)).unwrap_err();
            assert_eq!(violations.violations()[0].0, "page_token", "{page_token}");
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        let request = |page_size| wire::ListTenantsRequest {
            page_size,
            ..Default::default()
        };
        assert_eq!(
            list_request(&request(0)).unwrap().2,
            platform::paging::DEFAULT_PAGE_SIZE
        );
        assert_eq!(list_request(&request(100)).unwrap().2, 100);
        assert!(list_request(&request(101)).is_err());
        assert!(list_request(&request(-1)).is_err());
    }

    #[test]
    fn every_bad_field_of_a_create_is_reported() {
        let request = wire::CreateTenantRequest {
            tenant: Some(wire::Tenant {
                slug: "A!".into(),
                display_name: " ".into(),
                domains: vec![
                    "not a domain".into(),
                    "ok.example.org".into(),
                    "ok.example.org".into(),
                ],
                plan: 42,
                ..Default::default()
            }),
        };
        let violations = new_tenant(request, Some("forms.example.com")).unwrap_err();
        let fields = violations.fields();
        assert_eq!(
            fields,
            [
                "tenant.slug",
                "tenant.display_name",
                "tenant.domains[0]",
                "tenant.domains[2]",
                "tenant.plan"
            ]
        );
    }

    #[test]
    fn update_masks_accept_both_cases_and_refuse_unknown_paths() {
        let request = |paths: &[&str]| wire::UpdateTenantRequest {
            tenant: Some(wire::Tenant {
                name: format!("tenants/{}", TenantId::generate()),
                display_name: "New name".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            }),
        };
        let (_, changes) = tenant_changes(request(&["displayName"]), None).unwrap();
        assert_eq!(changes.display_name.unwrap().as_str(), "New name");
        assert!(tenant_changes(request(&["slug"]), None).is_err());
        assert!(tenant_changes(request(&["status"]), None).is_err());
        assert!(tenant_changes(request(&[]), None).is_err());
    }

    proptest! {
        #[test]
        fn resolve_keys_never_panic(host in "\\PC{0,300}", slug in "\\PC{0,80}", id in "\\PC{0,40}") {
            for key in [Key::Host(host), Key::Slug(slug), Key::Id(id)] {
                let _ = resolve_key(wire::ResolveTenantRequest { key: Some(key) }, Some("forms.example.com"));
            }
        }
    }
}
