//! Resolved tenants cached in Redis, by id, slug and custom domain. Every change to a tenant
//! drops all its keys (after the change commits), so a reader sees the new state at once.
//! Redis errors count as misses: resolution falls back to Postgres.

use std::time::Duration;

use platform::redis::Redis;
use proto::formflow::tenant::v1::ResolvedTenant;
use redis::AsyncCommands;

use crate::domain::{DomainName, Slug, Tenant};
use crate::events::{plan_to_proto, status_to_proto};

/// What ResolveTenant answers for a tenant, and the cache keeps.
pub fn resolved_to_proto(tenant: &Tenant) -> ResolvedTenant {
    let limits = tenant.effective_rate_limits();
    ResolvedTenant {
        name: platform::wire::resource_name("tenants", tenant.id),
        id: tenant.id.to_string(),
        slug: tenant.slug.to_string(),
        display_name: tenant.display_name.as_str().to_owned(),
        status: status_to_proto(tenant.status) as i32,
        plan: plan_to_proto(tenant.plan) as i32,
        rate_limits: Some(proto::formflow::tenant::v1::RateLimits {
            requests_per_minute: limits.requests_per_minute,
            burst: limits.burst,
        }),
    }
}

/// What a cached resolution is keyed by.
#[derive(Debug, Clone)]
pub enum CacheKey<'a> {
    /// Tenant id.
    Id(platform::context::TenantId),
    /// Tenant slug.
    Slug(&'a Slug),
    /// Custom domain.
    Domain(&'a DomainName),
}

/// The tenant resolution cache.
#[derive(Debug, Clone)]
pub struct TenantCache {
    redis: Redis,
    ttl: Duration,
}

impl TenantCache {
    /// A cache keeping entries for `ttl`.
    pub fn new(redis: Redis, ttl: Duration) -> Self {
        Self { redis, ttl }
    }

    fn key(&self, key: &CacheKey<'_>) -> String {
        match key {
            CacheKey::Id(id) => self.redis.key(&format!("tenant:v1:id:{id}")),
            CacheKey::Slug(slug) => self.redis.key(&format!("tenant:v1:slug:{slug}")),
            CacheKey::Domain(domain) => self.redis.key(&format!("tenant:v1:domain:{domain}")),
        }
    }

    /// The cached resolution for `key`.
    pub async fn get(&self, key: &CacheKey<'_>) -> Option<ResolvedTenant> {
        let mut connection = self.redis.connection();
        let cached: redis::RedisResult<Option<String>> = connection.get(self.key(key)).await;
        match cached {
            Ok(Some(json)) => match serde_json::from_str(&json) {
                Ok(resolved) => {
                    crate::metrics::resolve_cache("hit");
                    Some(resolved)
                }
                Err(error) => {
                    tracing::warn!(%error, "dropping an unreadable cache entry");
                    None
                }
            },
            Ok(None) => {
                crate::metrics::resolve_cache("miss");
                None
            }
            Err(error) => {
                crate::metrics::resolve_cache("error");
                tracing::warn!(%error, "tenant cache unavailable, reading Postgres");
                None
            }
        }
    }

    /// Caches `resolved` under `key`.
    pub async fn put(&self, key: &CacheKey<'_>, resolved: &ResolvedTenant) {
        let Ok(json) = serde_json::to_string(resolved) else {
            return;
        };
        let mut connection = self.redis.connection();
        let stored: redis::RedisResult<()> = connection
            .set_ex(self.key(key), json, self.ttl.as_secs().max(1))
            .await;
        if let Err(error) = stored {
            tracing::warn!(%error, "cannot write the tenant cache");
        }
    }

    /// Drops every key of `tenant`, including those of domains it had before the change.
    pub async fn invalidate(&self, tenant: &Tenant, previous_domains: &[DomainName]) {
        let mut keys = vec![
            self.key(&CacheKey::Id(tenant.id)),
            self.key(&CacheKey::Slug(&tenant.slug)),
        ];
        for domain in tenant.domains.iter().chain(previous_domains) {
            keys.push(self.key(&CacheKey::Domain(domain)));
        }
        let mut connection = self.redis.connection();
        let deleted: redis::RedisResult<()> = connection.del(keys).await;
        if let Err(error) = deleted {
            // Entries expire after the TTL anyway; say so loudly, as readers may be stale.
            tracing::error!(%error, tenant_id = %tenant.id, "cannot invalidate the tenant cache");
        }
    }
}
