//! svc-tenant's metrics; every name in one place (`docs/deploy.md` lists the alerts on them).

/// `tenant_resolve_cache_total{result}`: resolutions served from Redis (`hit`), from Postgres
/// (`miss`), or from Postgres because Redis failed (`error`).
pub(crate) fn resolve_cache(result: &'static str) {
    metrics::counter!("tenant_resolve_cache_total", "result" => result).increment(1);
}
