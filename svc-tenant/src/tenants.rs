//! Tenant operations: who may do what, the transaction each runs in, its audit row, its event
//! and its cache invalidation. Handlers in `grpc` only translate to and from the wire.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, Principal, TenantId};
use platform::db::Db;
use platform::events::Event;
use platform::outbox::Outbox;
use proto::formflow::events::v1 as events;
use proto::formflow::tenant::v1::ResolvedTenant;
use serde_json::json;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::cache::{CacheKey, TenantCache};
use crate::domain::{
    DisplayName, DomainName, Host, Plan, RateLimits, Settings, Slug, SuspensionReason, Tenant,
    TenantStatus,
};
use crate::error::Error;
use crate::grpc::convert;
use crate::store::{self, AuditEntry, WriteError};

/// Who asks, and the request id their audit rows carry.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The verified principal.
    pub principal: &'a Principal,
    /// The request id.
    pub request_id: &'a str,
}

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

/// What to resolve.
#[derive(Debug, Clone)]
pub enum ResolveKey {
    /// By id.
    Id(TenantId),
    /// By slug.
    Slug(Slug),
    /// By request host; `None` when the host names no tenant.
    Host(Option<Host>),
}

/// A page of tenants and where the next starts.
#[derive(Debug)]
pub struct TenantPage {
    /// The tenants.
    pub tenants: Vec<Tenant>,
    /// The last id of this page when more follow.
    pub next_after: Option<TenantId>,
}

/// The tenant operations, over the service's database, cache and outbox.
#[derive(Debug, Clone)]
pub struct Tenants {
    db: Db,
    cache: TenantCache,
    outbox: Outbox,
}

impl Tenants {
    /// Operations over these dependencies.
    pub fn new(db: Db, cache: TenantCache, outbox: Outbox) -> Self {
        Self { db, cache, outbox }
    }

    /// A transaction that sees `tenant` only, or every tenant for platform operators.
    async fn transaction_for(
        &self,
        principal: &Principal,
        tenant: TenantId,
    ) -> sqlx::Result<Transaction<'static, Postgres>> {
        if principal.is_platform_operator() {
            self.db.platform_tx().await
        } else {
            self.db.tenant_tx(tenant).await
        }
    }

    /// Creates a tenant (platform operators only).
    #[tracing::instrument(skip_all, fields(slug = %new.slug))]
    pub async fn create(&self, caller: Caller<'_>, new: NewTenant) -> Result<Tenant, Error> {
        require_platform_operator(caller.principal)?;
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
        store::insert_tenant(&mut transaction, &tenant)
            .await
            .map_err(|error| match error {
                WriteError::Conflict => Error::SlugTaken(tenant.slug.clone()),
                WriteError::Other(error) => error.into(),
            })?;
        for domain in &tenant.domains {
            store::insert_domain(&mut transaction, tenant.id, domain)
                .await
                .map_err(|error| domain_error(error, domain))?;
        }
        audit(
            &mut transaction,
            caller,
            &tenant,
            "create",
            json!({
                "slug": tenant.slug.as_str(),
                "display_name": tenant.display_name.as_str(),
                "domains": domain_strings(&tenant.domains),
                "plan": tenant.plan.as_str(),
                "rate_limits": limits_json(tenant.rate_limits),
            }),
        )
        .await?;
        self.enqueue(
            &mut transaction,
            tenant.id,
            events::TenantCreated {
                tenant: Some(convert::tenant_to_proto(&tenant)),
            },
        )
        .await?;
        transaction.commit().await?;
        self.outbox.notify();
        // A resolution cached while the slug or a domain was free must not outlive the create.
        self.cache.invalidate(&tenant, &[]).await;
        tracing::info!(tenant_id = %tenant.id, "tenant created");
        Ok(tenant)
    }

    /// Reads a tenant: its own members, or platform operators (who also see deleted ones).
    pub async fn get(&self, caller: Caller<'_>, id: TenantId) -> Result<Tenant, Error> {
        require_access(caller.principal, id, Permission::TenantRead)?;
        let mut transaction = self.transaction_for(caller.principal, id).await?;
        let tenant = store::get_tenant(&mut transaction, id, false)
            .await?
            .filter(|tenant| {
                tenant.status != TenantStatus::Deleted || caller.principal.is_platform_operator()
            })
            .ok_or_else(|| Error::TenantNotFound(id.to_string()))?;
        transaction.commit().await?;
        Ok(tenant)
    }

    /// Lists tenants in creation order (platform operators only).
    pub async fn list(
        &self,
        caller: Caller<'_>,
        after: Option<TenantId>,
        status: Option<TenantStatus>,
        page_size: usize,
    ) -> Result<TenantPage, Error> {
        require_platform_operator(caller.principal)?;
        let mut transaction = self.db.platform_tx().await?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut tenants = store::list_tenants(&mut transaction, after, status, limit).await?;
        transaction.commit().await?;
        let next_after = if tenants.len() > page_size {
            tenants.truncate(page_size);
            tenants.last().map(|tenant| tenant.id)
        } else {
            None
        };
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
        caller: Caller<'_>,
        id: TenantId,
        changes: TenantChanges,
    ) -> Result<Tenant, Error> {
        require_access(caller.principal, id, Permission::TenantManage)?;
        let platform_operator = caller.principal.is_platform_operator();
        if !platform_operator && (changes.plan.is_some() || changes.rate_limits.is_some()) {
            return Err(Error::PermissionDenied(
                "only platform administrators change a tenant's plan or rate limits",
            ));
        }
        let mut transaction = self.transaction_for(caller.principal, id).await?;
        let previous = load_for_change(&mut transaction, id).await?;
        if previous.status == TenantStatus::Suspended && !platform_operator {
            return Err(Error::WrongStatus("tenant is suspended"));
        }
        if let Some(expected) = changes.expected_version
            && expected != previous.version
        {
            return Err(Error::EtagMismatch);
        }

        let mut tenant = previous.clone();
        let mut changed_fields = Vec::new();
        let mut audit_changes = serde_json::Map::new();
        if let Some(display_name) = changes.display_name
            && display_name != tenant.display_name
        {
            audit_changes.insert("display_name".into(), json!(display_name.as_str()));
            tenant.display_name = display_name;
            changed_fields.push("display_name");
        }
        if let Some(settings) = changes.settings
            && settings != tenant.settings
        {
            audit_changes.insert("settings".into(), json!("changed"));
            tenant.settings = settings;
            changed_fields.push("settings");
        }
        if let Some(plan) = changes.plan
            && plan != tenant.plan
        {
            audit_changes.insert("plan".into(), json!(plan.as_str()));
            tenant.plan = plan;
            changed_fields.push("plan");
        }
        if let Some(rate_limits) = changes.rate_limits
            && rate_limits != tenant.rate_limits
        {
            audit_changes.insert("rate_limits".into(), limits_json(rate_limits));
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
                    store::insert_domain(&mut transaction, id, added)
                        .await
                        .map_err(|error| domain_error(error, added))?;
                }
                audit_changes.insert("domains".into(), json!(domain_strings(&domains)));
                tenant.domains = domains;
                changed_fields.push("domains");
            }
        }
        if changed_fields.is_empty() {
            transaction.commit().await?;
            return Ok(previous);
        }

        self.save(
            transaction,
            caller,
            &mut tenant,
            &previous,
            "update",
            serde_json::Value::Object(audit_changes),
            &changed_fields,
        )
        .await?;
        Ok(tenant)
    }

    /// Suspends an active tenant (platform operators only).
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn suspend(
        &self,
        caller: Caller<'_>,
        id: TenantId,
        reason: SuspensionReason,
    ) -> Result<Tenant, Error> {
        require_platform_operator(caller.principal)?;
        let mut transaction = self.db.platform_tx().await?;
        let previous = load_for_change(&mut transaction, id).await?;
        if previous.status != TenantStatus::Active {
            return Err(Error::WrongStatus("only an active tenant can be suspended"));
        }
        let mut tenant = previous.clone();
        tenant.status = TenantStatus::Suspended;
        tenant.suspension_reason = Some(reason.as_str().to_owned());
        self.save(
            transaction,
            caller,
            &mut tenant,
            &previous,
            "suspend",
            json!({"status": "suspended", "reason": reason.as_str()}),
            &["status"],
        )
        .await?;
        Ok(tenant)
    }

    /// Reactivates a suspended tenant (platform operators only).
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn reactivate(&self, caller: Caller<'_>, id: TenantId) -> Result<Tenant, Error> {
        require_platform_operator(caller.principal)?;
        let mut transaction = self.db.platform_tx().await?;
        let previous = load_for_change(&mut transaction, id).await?;
        if previous.status != TenantStatus::Suspended {
            return Err(Error::WrongStatus(
                "only a suspended tenant can be reactivated",
            ));
        }
        let mut tenant = previous.clone();
        tenant.status = TenantStatus::Active;
        tenant.suspension_reason = None;
        self.save(
            transaction,
            caller,
            &mut tenant,
            &previous,
            "reactivate",
            json!({"status": "active"}),
            &["status"],
        )
        .await?;
        Ok(tenant)
    }

    /// Marks a tenant deleted (platform operators only).
    #[tracing::instrument(skip_all, fields(tenant_id = %id))]
    pub async fn delete(&self, caller: Caller<'_>, id: TenantId) -> Result<Tenant, Error> {
        require_platform_operator(caller.principal)?;
        let mut transaction = self.db.platform_tx().await?;
        let previous = load_for_change(&mut transaction, id).await?;
        let mut tenant = previous.clone();
        tenant.status = TenantStatus::Deleted;
        self.save(
            transaction,
            caller,
            &mut tenant,
            &previous,
            "delete",
            json!({"status": "deleted"}),
            &["status"],
        )
        .await?;
        Ok(tenant)
    }

    /// Writes a changed tenant with its audit row and event, commits, then drops its cache
    /// entries. The event is chosen from the new status.
    #[allow(clippy::too_many_arguments)]
    async fn save(
        &self,
        mut transaction: Transaction<'static, Postgres>,
        caller: Caller<'_>,
        tenant: &mut Tenant,
        previous: &Tenant,
        action: &'static str,
        audit_changes: serde_json::Value,
        changed_fields: &[&str],
    ) -> Result<(), Error> {
        let (version, updated_at) = store::update_tenant(&mut transaction, tenant).await?;
        tenant.version = version;
        tenant.updated_at = updated_at;
        audit(&mut transaction, caller, tenant, action, audit_changes).await?;
        let wire = convert::tenant_to_proto(tenant);
        match (previous.status, tenant.status) {
            (TenantStatus::Active, TenantStatus::Suspended) => {
                let reason = tenant.suspension_reason.clone().unwrap_or_default();
                let event = events::TenantSuspended {
                    tenant: Some(wire),
                    reason,
                };
                self.enqueue(&mut transaction, tenant.id, event).await?;
            }
            (_, TenantStatus::Deleted) => {
                let event = events::TenantDeleted { tenant: Some(wire) };
                self.enqueue(&mut transaction, tenant.id, event).await?;
            }
            _ => {
                let event = events::TenantUpdated {
                    tenant: Some(wire),
                    changed_fields: changed_fields
                        .iter()
                        .map(|field| (*field).to_owned())
                        .collect(),
                    previous_domains: domain_strings(&previous.domains),
                };
                self.enqueue(&mut transaction, tenant.id, event).await?;
            }
        }
        transaction.commit().await?;
        self.outbox.notify();
        self.cache.invalidate(tenant, &previous.domains).await;
        tracing::info!(tenant_id = %tenant.id, action, "tenant changed");
        Ok(())
    }

    async fn enqueue<T: Event>(
        &self,
        connection: &mut PgConnection,
        tenant: TenantId,
        event: T,
    ) -> Result<(), Error> {
        self.outbox.enqueue(connection, Some(tenant), event).await?;
        Ok(())
    }

    /// Resolves an id, slug or host to a tenant that is not deleted (platform operators and
    /// suite services only), through the cache.
    pub async fn resolve(
        &self,
        caller: Caller<'_>,
        key: ResolveKey,
    ) -> Result<ResolvedTenant, Error> {
        require_platform_operator(caller.principal)?;
        let (cache_key, description) = match &key {
            ResolveKey::Id(id) => (CacheKey::Id(*id), id.to_string()),
            ResolveKey::Slug(slug) => (CacheKey::Slug(slug), slug.to_string()),
            ResolveKey::Host(Some(Host::Subdomain(slug))) => {
                (CacheKey::Slug(slug), slug.to_string())
            }
            ResolveKey::Host(Some(Host::Custom(domain))) => {
                (CacheKey::Domain(domain), domain.to_string())
            }
            ResolveKey::Host(None) => return Err(Error::TenantNotFound("for this host".into())),
        };
        if let Some(resolved) = self.cache.get(&cache_key).await {
            return Ok(resolved);
        }
        let mut transaction = self.db.platform_tx().await?;
        let id = match &cache_key {
            CacheKey::Id(id) => Some(*id),
            CacheKey::Slug(slug) => store::find_by_slug(&mut transaction, slug).await?,
            CacheKey::Domain(domain) => store::find_by_domain(&mut transaction, domain).await?,
        };
        let tenant = match id {
            Some(id) => store::get_tenant(&mut transaction, id, false).await?,
            None => None,
        };
        transaction.commit().await?;
        let tenant = tenant
            .filter(|tenant| tenant.status != TenantStatus::Deleted)
            .ok_or(Error::TenantNotFound(description))?;
        let resolved = convert::resolved_to_proto(&tenant);
        self.cache.put(&cache_key, &resolved).await;
        Ok(resolved)
    }
}

async fn load_for_change(connection: &mut PgConnection, id: TenantId) -> Result<Tenant, Error> {
    store::get_tenant(connection, id, true)
        .await?
        .filter(|tenant| tenant.status != TenantStatus::Deleted)
        .ok_or_else(|| Error::TenantNotFound(id.to_string()))
}

async fn audit(
    connection: &mut PgConnection,
    caller: Caller<'_>,
    tenant: &Tenant,
    action: &'static str,
    changes: serde_json::Value,
) -> Result<(), Error> {
    store::insert_audit(
        connection,
        AuditEntry {
            tenant_id: tenant.id,
            actor: caller.principal.audit_name(),
            action,
            changes,
            request_id: caller.request_id,
        },
    )
    .await?;
    Ok(())
}

fn require_platform_operator(principal: &Principal) -> Result<(), Error> {
    if principal.is_platform_operator() {
        Ok(())
    } else {
        Err(Error::PermissionDenied(
            "only platform administrators and suite services may do this",
        ))
    }
}

/// Checked before anything is read, so a foreign tenant is refused whether it exists or not.
fn require_access(
    principal: &Principal,
    tenant: TenantId,
    permission: Permission,
) -> Result<(), Error> {
    if principal.allows(tenant, permission) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(
            "the caller may not do this on this tenant",
        ))
    }
}

fn domain_error(error: WriteError, domain: &DomainName) -> Error {
    match error {
        WriteError::Conflict => Error::DomainTaken(domain.clone()),
        WriteError::Other(error) => error.into(),
    }
}

fn domain_strings(domains: &[DomainName]) -> Vec<String> {
    domains.iter().map(ToString::to_string).collect()
}

fn limits_json(limits: RateLimits) -> serde_json::Value {
    json!({"requests_per_minute": limits.requests_per_minute, "burst": limits.burst})
}
