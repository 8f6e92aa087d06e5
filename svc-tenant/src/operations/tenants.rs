//! Creating, reading, listing and updating tenants.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::paging::{fetch_limit, split_page};
use serde_json::json;

use super::{
    Change, Tenants, domain_strings, give_domain, hide_other_tenants, limits_json, load_for_change,
};
use crate::domain::{
    DisplayName, DomainName, Plan, RateLimits, Settings, Slug, Tenant, TenantStatus,
};
use crate::error::Error;
use crate::{events, store};

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Handle.
    pub slug: Slug,
    /// Name.
    pub display_name: DisplayName,
    /// Custom domains, without duplicates.
    pub domains: Vec<DomainName>,
    /// Plan.
    pub plan: Plan,
    /// Settings.
    pub settings: Settings,
    /// Configured limits.
    pub rate_limits: RateLimits,
}

/// A validated update: the fields named in the update mask.
#[derive(Debug, Clone, Default)]
pub struct TenantChanges {
    /// New name.
    pub display_name: Option<DisplayName>,
    /// New set of custom domains.
    pub domains: Option<Vec<DomainName>>,
    /// New settings.
    pub settings: Option<Settings>,
    /// New plan (platform operators only).
    pub plan: Option<Plan>,
    /// New limits (platform operators only).
    pub rate_limits: Option<RateLimits>,
    /// Version the client read, if it sent one.
    pub expected_version: Option<i64>,
}

/// A page of tenants and where the next starts.
#[derive(Debug)]
pub struct TenantPage {
    /// The tenants.
    pub tenants: Vec<Tenant>,
    /// The last id of this page when more follow.
    pub next_after: Option<TenantId>,
}

impl Tenants {
    /// Creates a tenant (platform operators only).
    #[tracing::instrument(skip_all, fields(slug = %new.slug))]
    pub async fn create(&self, context: &RequestContext, new: NewTenant) -> Result<Tenant, Error> {
        context.require_platform_operator()?;
        // Postgres keeps microseconds: the tenant returned must equal the tenant read back.
        let now = Utc::now().trunc_subsecs(6);
        let tenant = Tenant {
            id: TenantId::generate(),
            slug: new.slug,
            display_name: new.display_name,
            domains: new.domains,
            status: TenantStatus::Active,
            plan: new.plan,
            settings: new.settings,
            rate_limits: new.rate_limits,
            suspension_reason: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut transaction = self.db.platform_tx().await?;
        if !store::insert_tenant(&mut transaction, &tenant).await? {
            return Err(Error::SlugTaken(tenant.slug));
        }
        for domain in &tenant.domains {
            give_domain(&mut transaction, tenant.id, domain).await?;
        }
        let details = json!({
            "slug": tenant.slug.as_str(),
            "display_name": tenant.display_name.as_str(),
            "domains": domain_strings(&tenant.domains),
            "plan": tenant.plan.as_str(),
            "rate_limits": limits_json(tenant.rate_limits),
        });
        self.audit(&mut transaction, context, &tenant, "create", details)
            .await?;
        self.enqueue(&mut transaction, Some(tenant.id), events::created(&tenant))
            .await?;
        transaction.commit().await?;
        self.outbox.notify();
        // A resolution cached while the slug or a domain was free must not outlive the create.
        self.cache.invalidate(&tenant, &[]).await;
        tracing::info!(tenant_id = %tenant.id, "tenant created");
        Ok(tenant)
    }

    /// Reads a tenant: its own members, or platform operators (who also see deleted ones).
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn get(&self, context: &RequestContext, id: TenantId) -> Result<Tenant, Error> {
        hide_other_tenants(context, id)?;
        context.authorize_on(id, Permission::TenantRead)?;
        let principal = context.principal()?;
        let mut transaction = self.transaction_for(principal, id).await?;
        let tenant = store::get_tenant(&mut transaction, id, false)
            .await?
            .filter(|tenant| {
                tenant.status != TenantStatus::Deleted || principal.is_platform_operator()
            })
            .ok_or_else(|| Error::TenantNotFound(id.to_string()))?;
        transaction.commit().await?;
        Ok(tenant)
    }

    /// Lists tenants in creation order (platform operators only).
    #[tracing::instrument(skip_all)]
    pub async fn list(
        &self,
        context: &RequestContext,
        after: Option<TenantId>,
        status: Option<TenantStatus>,
        page_size: usize,
    ) -> Result<TenantPage, Error> {
        context.require_platform_operator()?;
        let mut transaction = self.db.platform_tx().await?;
        let limit = fetch_limit(page_size);
        let tenants = store::list_tenants(&mut transaction, after, status, limit).await?;
        transaction.commit().await?;
        let (tenants, next_after) = split_page(tenants, page_size, |tenant| tenant.id);
        Ok(TenantPage {
            tenants,
            next_after,
        })
    }

    /// Applies `changes`: a tenant's admins may change its name, domains and settings;
    /// plan and limits, and any change to a suspended tenant, need a platform operator.
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn update(
        &self,
        context: &RequestContext,
        id: TenantId,
        changes: TenantChanges,
    ) -> Result<Tenant, Error> {
        hide_other_tenants(context, id)?;
        context.authorize_on(id, Permission::TenantManage)?;
        let principal = context.principal()?;
        let platform_operator = principal.is_platform_operator();
        if !platform_operator && (changes.plan.is_some() || changes.rate_limits.is_some()) {
            return Err(Error::PlanChangeDenied);
        }
        let mut transaction = self.transaction_for(principal, id).await?;
        let previous = load_for_change(&mut transaction, id).await?;
        if previous.status == TenantStatus::Suspended && !platform_operator {
            return Err(Error::WrongStatus("tenant is suspended"));
        }
        if changes
            .expected_version
            .is_some_and(|expected| expected != previous.version)
        {
            return Err(platform::error::CommonError::EtagMismatch("tenant").into());
        }

        let mut tenant = previous.clone();
        let mut changed_fields = Vec::new();
        let mut details = serde_json::Map::new();
        if let Some(display_name) = changes.display_name
            && display_name != tenant.display_name
        {
            details.insert("display_name".into(), json!(display_name.as_str()));
            tenant.display_name = display_name;
            changed_fields.push("display_name");
        }
        if let Some(settings) = changes.settings
            && settings != tenant.settings
        {
            details.insert("settings".into(), json!("changed"));
            tenant.settings = settings;
            changed_fields.push("settings");
        }
        if let Some(plan) = changes.plan
            && plan != tenant.plan
        {
            details.insert("plan".into(), json!(plan.as_str()));
            tenant.plan = plan;
            changed_fields.push("plan");
        }
        if let Some(rate_limits) = changes.rate_limits
            && rate_limits != tenant.rate_limits
        {
            details.insert("rate_limits".into(), limits_json(rate_limits));
            tenant.rate_limits = rate_limits;
            changed_fields.push("rate_limits");
        }
        if let Some(mut domains) = changes.domains {
            domains.sort();
            if domains != tenant.domains {
                for removed in previous
                    .domains
                    .iter()
                    .filter(|domain| !domains.contains(domain))
                {
                    store::delete_domain(&mut transaction, id, removed).await?;
                }
                for added in domains
                    .iter()
                    .filter(|domain| !previous.domains.contains(domain))
                {
                    give_domain(&mut transaction, id, added).await?;
                }
                details.insert("domains".into(), json!(domain_strings(&domains)));
                tenant.domains = domains;
                changed_fields.push("domains");
            }
        }
        if changed_fields.is_empty() {
            transaction.commit().await?;
            return Ok(previous);
        }
        let change = Change {
            previous: &previous,
            tenant,
            action: "update",
            details: serde_json::Value::Object(details),
            changed_fields: &changed_fields,
        };
        self.save(transaction, context, change).await
    }
}
