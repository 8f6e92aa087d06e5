//! Resolving an id, slug or request host to a tenant, through the cache.

use platform::context::{RequestContext, TenantId};
use proto::formflow::tenant::v1::ResolvedTenant;

use super::Tenants;
use crate::cache::{CacheKey, resolved_to_proto};
use crate::domain::{Host, Slug, TenantStatus};
use crate::error::Error;
use crate::store;

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

impl Tenants {
    /// Resolves an id, slug or host to a tenant that is not deleted (platform operators and
    /// suite services only).
    #[tracing::instrument(skip_all)]
    pub async fn resolve(
        &self,
        context: &RequestContext,
        key: ResolveKey,
    ) -> Result<ResolvedTenant, Error> {
        context.require_platform_operator()?;
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
        let resolved = resolved_to_proto(&tenant);
        self.cache.put(&cache_key, &resolved).await;
        Ok(resolved)
    }
}
