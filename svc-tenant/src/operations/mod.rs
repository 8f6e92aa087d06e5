//! Tenant operations: who may do what, the transaction each runs in, its audit row, its event
//! and its cache invalidation. Handlers in `grpc` only translate to and from the wire.
//!
//! - [`tenants`]: create, read, list and update.
//! - [`lifecycle`]: suspend, reactivate, delete.
//! - [`resolve`]: id, slug or host to tenant, through the cache.

mod lifecycle;
mod resolve;
mod tenants;

use platform::audit::{AuditEntry, AuditLog};
use platform::context::{Principal, RequestContext, TenantId};
use platform::db::Db;
use platform::events::Event;
use platform::outbox::Outbox;
use sqlx::{PgConnection, Postgres, Transaction};

pub use resolve::ResolveKey;
pub use tenants::{NewTenant, TenantChanges, TenantPage};

use crate::app::SCHEMA;
use crate::cache::TenantCache;
use crate::domain::{DomainName, RateLimits, Tenant, TenantStatus};
use crate::error::Error;
use crate::events::{self, Changed};
use crate::store;

/// The tenant operations, over the service's database, cache and outbox.
#[derive(Debug, Clone)]
pub struct Tenants {
    db: Db,
    cache: TenantCache,
    outbox: Outbox,
    audit: AuditLog,
}

impl Tenants {
    /// Operations over these dependencies.
    pub fn new(db: Db, cache: TenantCache, outbox: Outbox) -> Self {
        Self {
            db,
            cache,
            outbox,
            audit: AuditLog::new(SCHEMA.name),
        }
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

    /// Writes a changed tenant with its audit row and event, commits, then drops its cache
    /// entries. The event is chosen from the new status.
    async fn save(
        &self,
        mut transaction: Transaction<'static, Postgres>,
        context: &RequestContext,
        change: Change<'_>,
    ) -> Result<Tenant, Error> {
        let Change {
            previous,
            mut tenant,
            action,
            details,
            changed_fields,
        } = change;
        let (version, updated_at) = store::update_tenant(&mut transaction, &tenant).await?;
        tenant.version = version;
        tenant.updated_at = updated_at;
        self.audit(&mut transaction, context, &tenant, action, details)
            .await?;
        let tenant_id = Some(tenant.id);
        match events::changed(previous, &tenant, changed_fields) {
            Changed::Suspended(event) => self.enqueue(&mut transaction, tenant_id, event).await?,
            Changed::Deleted(event) => self.enqueue(&mut transaction, tenant_id, event).await?,
            Changed::Updated(event) => self.enqueue(&mut transaction, tenant_id, event).await?,
        }
        transaction.commit().await?;
        self.outbox.notify();
        self.cache.invalidate(&tenant, &previous.domains).await;
        tracing::info!(tenant_id = %tenant.id, action, "tenant changed");
        Ok(tenant)
    }

    async fn enqueue<T: Event>(
        &self,
        transaction: &mut PgConnection,
        tenant: Option<TenantId>,
        event: T,
    ) -> Result<(), Error> {
        self.outbox.enqueue(transaction, tenant, event).await?;
        Ok(())
    }

    async fn audit(
        &self,
        transaction: &mut PgConnection,
        context: &RequestContext,
        tenant: &Tenant,
        action: &'static str,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        let target = platform::wire::resource_name("tenants", tenant.id);
        let entry = AuditEntry::by(context, Some(tenant.id), action, target, details);
        self.audit.record(transaction, entry).await?;
        Ok(())
    }
}

/// A tenant changed from `previous`, about to be saved.
struct Change<'a> {
    previous: &'a Tenant,
    tenant: Tenant,
    /// The audit action: `update`, `suspend`, …
    action: &'static str,
    /// What the audit row records of the change.
    details: serde_json::Value,
    /// The fields `tenant.updated` names.
    changed_fields: &'a [&'a str],
}

/// The suite's tenant rule: to a caller bound to one tenant, another tenant is NOT_FOUND,
/// exactly as one that never existed.
fn hide_other_tenants(context: &RequestContext, id: TenantId) -> Result<(), Error> {
    if !context.principal()?.is_platform_operator() && context.acting_tenant()? != id {
        return Err(Error::TenantNotFound(id.to_string()));
    }
    Ok(())
}

/// The tenant `id`, locked for update; deleted tenants are not found.
async fn load_for_change(connection: &mut PgConnection, id: TenantId) -> Result<Tenant, Error> {
    store::get_tenant(connection, id, true)
        .await?
        .filter(|tenant| tenant.status != TenantStatus::Deleted)
        .ok_or_else(|| Error::TenantNotFound(id.to_string()))
}

/// Gives `domain` to `tenant`, unless another tenant has it.
async fn give_domain(
    connection: &mut PgConnection,
    tenant: TenantId,
    domain: &DomainName,
) -> Result<(), Error> {
    if store::insert_domain(connection, tenant, domain).await? {
        Ok(())
    } else {
        Err(Error::DomainTaken(domain.clone()))
    }
}

fn domain_strings(domains: &[DomainName]) -> Vec<String> {
    domains.iter().map(ToString::to_string).collect()
}

fn limits_json(limits: RateLimits) -> serde_json::Value {
    serde_json::json!({"requests_per_minute": limits.requests_per_minute, "burst": limits.burst})
}
