//! Which tenant a request is for, in the documented order: the `X-Tenant-ID` header (id or
//! slug), the `/t/{slug}/` path prefix, the host (a subdomain of the base domain, or a custom
//! domain), the token's `tid`, then the configured default. Explicit indications (header,
//! prefix, tenant subdomain) must agree. Resolutions are cached in process (seconds) and in
//! Redis (a minute), and both caches drop a tenant when a `tenant.*` event says it changed.

use std::sync::Arc;
use std::time::Duration;

use platform::auth::ServiceTokens;
use platform::client::Balanced;
use platform::context::TenantId;
use platform::redis::Redis;
use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use proto::formflow::tenant::v1::{ResolveTenantRequest, ResolvedTenant};
use redis::AsyncCommands;

use crate::error::ApiError;

/// How a request names its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantRef {
    /// By id.
    Id(TenantId),
    /// By slug.
    Slug(String),
    /// By request host.
    Host(String),
}

impl TenantRef {
    fn cache_key(&self) -> String {
        match self {
            TenantRef::Id(id) => format!("id:{id}"),
            TenantRef::Slug(slug) => format!("slug:{slug}"),
            TenantRef::Host(host) => format!("host:{host}"),
        }
    }

    /// Parses an `X-Tenant-ID` value: a UUID is an id, anything else a slug.
    pub fn from_header(value: &str) -> TenantRef {
        match TenantId::parse(value) {
            Ok(id) => TenantRef::Id(id),
            Err(_) => TenantRef::Slug(value.to_ascii_lowercase()),
        }
    }
}

/// Resolves tenants through svc-tenant, with two cache levels.
#[derive(Clone)]
pub struct TenantResolver {
    client: TenantServiceClient<Balanced>,
    tokens: Arc<ServiceTokens>,
    local: moka::sync::Cache<String, Option<Arc<ResolvedTenant>>>,
    redis: Redis,
    redis_ttl: Duration,
    base_domain: Option<String>,
}

impl std::fmt::Debug for TenantResolver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TenantResolver")
            .field("base_domain", &self.base_domain)
            .finish_non_exhaustive()
    }
}

impl TenantResolver {
    /// A resolver calling svc-tenant on `channel` with service tokens from `tokens`.
    pub fn new(
        channel: Balanced,
        tokens: Arc<ServiceTokens>,
        redis: Redis,
        local_ttl: Duration,
        redis_ttl: Duration,
        base_domain: Option<String>,
    ) -> Self {
        Self {
            client: TenantServiceClient::new(channel),
            tokens,
            local: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(local_ttl)
                .build(),
            redis,
            redis_ttl,
            base_domain: base_domain.map(|base| base.to_ascii_lowercase()),
        }
    }

    /// Whether `host` is a subdomain of the base domain, which then must name a tenant.
    pub fn is_tenant_subdomain(&self, host: &str) -> bool {
        self.base_domain.as_deref().is_some_and(|base| {
            host.strip_suffix(base)
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        })
    }

    /// The tenant `reference` names, or `None` when there is none (deleted or unknown).
    pub async fn resolve(
        &self,
        reference: &TenantRef,
    ) -> Result<Option<Arc<ResolvedTenant>>, ApiError> {
        let key = reference.cache_key();
        if let Some(cached) = self.local.get(&key) {
            crate::metrics::tenant_cache("process", "hit");
            return Ok(cached);
        }
        crate::metrics::tenant_cache("process", "miss");
        let redis_key = self.redis.key(&format!("gateway:tenant:{key}"));
        let mut connection = self.redis.connection();
        let cached: redis::RedisResult<Option<String>> = connection.get(&redis_key).await;
        if let Ok(Some(json)) = &cached
            && let Ok(resolved) = serde_json::from_str::<ResolvedTenant>(json)
        {
            crate::metrics::tenant_cache("redis", "hit");
            let resolved = Some(Arc::new(resolved));
            self.local.insert(key, resolved.clone());
            return Ok(resolved);
        }
        crate::metrics::tenant_cache("redis", "miss");

        let request = ResolveTenantRequest {
            key: Some(match reference {
                TenantRef::Id(id) => Key::Id(id.to_string()),
                TenantRef::Slug(slug) => Key::Slug(slug.clone()),
                TenantRef::Host(host) => Key::Host(host.clone()),
            }),
        };
        let request = self
            .tokens
            .authorize(request, None, None)
            .await
            .map_err(|error| {
                tracing::error!(
                    error = format!("{error:#}"),
                    "no service token to resolve tenants"
                );
                ApiError::new(tonic::Code::Unavailable, "tenant resolution is unavailable")
            })?;
        let resolved = match self.client.clone().resolve_tenant(request).await {
            Ok(response) => Some(Arc::new(response.into_inner())),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                None
            }
            Err(status) => return Err(ApiError::from_status(&status)),
        };
        if let Some(resolved) = &resolved
            && let Ok(json) = serde_json::to_string(resolved.as_ref())
        {
            let stored: redis::RedisResult<()> = connection
                .set_ex(&redis_key, json, self.redis_ttl.as_secs().max(1))
                .await;
            if let Err(error) = stored {
                tracing::warn!(%error, "cannot cache a tenant in Redis");
            }
        }
        self.local.insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Forgets what a `tenant.*` event says changed: every process entry, and the Redis
    /// entries of the tenant's id, slug, domains and previous domains.
    pub async fn forget(&self, event_data: &serde_json::Value) {
        self.local.invalidate_all();
        let tenant = &event_data["tenant"];
        let mut references = Vec::new();
        if let Some(id) = tenant["id"]
            .as_str()
            .and_then(|id| TenantId::parse(id).ok())
        {
            references.push(TenantRef::Id(id));
        }
        if let Some(slug) = tenant["slug"].as_str() {
            references.push(TenantRef::Slug(slug.to_owned()));
            if let Some(base) = &self.base_domain {
                references.push(TenantRef::Host(format!("{slug}.{base}")));
            }
        }
        let current = tenant["domains"].as_array().into_iter().flatten();
        let previous = event_data["previous_domains"]
            .as_array()
            .into_iter()
            .flatten();
        for domain in current.chain(previous).filter_map(|value| value.as_str()) {
            references.push(TenantRef::Host(domain.to_owned()));
        }
        let keys: Vec<String> = references
            .iter()
            .map(|reference| {
                self.redis
                    .key(&format!("gateway:tenant:{}", reference.cache_key()))
            })
            .collect();
        let mut connection = self.redis.connection();
        let deleted: redis::RedisResult<()> = connection.del(keys).await;
        if let Err(error) = deleted {
            tracing::warn!(%error, "cannot drop changed tenants from Redis; they expire within a minute");
        }
    }
}

/// Host of a request without port, lower-cased.
pub fn request_host(headers: &http::HeaderMap) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        &host[..bracketed.find(']').map_or(host.len(), |end| end + 2)]
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
            _ => host,
        }
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Splits a `/t/{id or slug}/…` prefix off a path.
pub fn strip_tenant_prefix(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/t/")?;
    let (slug, remainder) = rest.split_once('/')?;
    if slug.is_empty() {
        return None;
    }
    Some((slug.to_ascii_lowercase(), format!("/{remainder}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_prefixes_are_split_off() {
        assert_eq!(
            strip_tenant_prefix("/t/Acme/api/v1/forms"),
            Some(("acme".to_owned(), "/api/v1/forms".to_owned()))
        );
        assert_eq!(strip_tenant_prefix("/t//api"), None);
        assert_eq!(strip_tenant_prefix("/t/acme"), None);
        assert_eq!(strip_tenant_prefix("/api/v1/forms"), None);
    }

    #[test]
    fn hosts_lose_their_port() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, "Acme.Forms.Test:8443".parse().unwrap());
        assert_eq!(request_host(&headers).as_deref(), Some("acme.forms.test"));
        headers.insert(http::header::HOST, "[::1]:8080".parse().unwrap());
        assert_eq!(request_host(&headers).as_deref(), Some("[::1]"));
    }

    #[test]
    fn header_values_are_ids_or_slugs() {
        let id = TenantId::generate();
        assert_eq!(TenantRef::from_header(&id.to_string()), TenantRef::Id(id));
        assert_eq!(
            TenantRef::from_header("Acme"),
            TenantRef::Slug("acme".to_owned())
        );
    }
}
