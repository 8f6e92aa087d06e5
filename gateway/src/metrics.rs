//! The gateway's metrics; every name in one place (`docs/deploy.md` lists the alerts on them).
//! Routes are labelled by their template, never by a raw path or a tenant.

use std::time::Duration;

/// `gateway_request_duration_seconds{route}` and `gateway_requests_total{route, status}`.
pub(crate) fn request(route: &str, status: &str, elapsed: Duration) {
    metrics::histogram!("gateway_request_duration_seconds", "route" => route.to_owned())
        .record(elapsed.as_secs_f64());
    metrics::counter!("gateway_requests_total", "route" => route.to_owned(), "status" => status.to_owned())
        .increment(1);
}

/// `gateway_rate_limited_total`: requests refused with 429.
pub(crate) fn rate_limited() {
    metrics::counter!("gateway_rate_limited_total").increment(1);
}

/// `gateway_rate_limit_fallback_total`: limits counted in process because Redis failed.
pub(crate) fn rate_limit_fallback() {
    metrics::counter!("gateway_rate_limit_fallback_total").increment(1);
}

/// `gateway_tenant_cache_total{level, result}`: tenant resolutions found (`hit`) or not
/// (`miss`) in the process (`process`) or Redis (`redis`) cache.
pub(crate) fn tenant_cache(level: &'static str, result: &'static str) {
    metrics::counter!("gateway_tenant_cache_total", "level" => level, "result" => result)
        .increment(1);
}
