//! The process-wide Prometheus recorder, which the `/metrics` listeners render, and the
//! platform's own metrics; each crate declares its metrics in its own `metrics.rs` like these.
//! Tenant ids are never labels.

use std::time::Duration;

use crate::amqp::Disposition;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds) for every `*_seconds` histogram.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .expect("non-empty buckets")
            .install_recorder()
            .expect("the Prometheus recorder is the only global recorder")
    })
}

/// Installs the recorder (so that metrics recorded from now on are kept).
pub fn install() {
    handle();
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// `grpc_server_handled_total{grpc_service, grpc_method, grpc_code}` and
/// `grpc_server_handling_seconds{grpc_service, grpc_method}`: every call a service answered.
pub(crate) fn rpc_handled(service: &'static str, method: &str, code: &str, elapsed: Duration) {
    metrics::counter!(
        "grpc_server_handled_total",
        "grpc_service" => service,
        "grpc_method" => method.to_owned(),
        "grpc_code" => code.to_owned(),
    )
    .increment(1);
    metrics::histogram!(
        "grpc_server_handling_seconds",
        "grpc_service" => service,
        "grpc_method" => method.to_owned(),
    )
    .record(elapsed.as_secs_f64());
}

/// `outbox_published_events_total{table}`: events the relay published.
pub(crate) fn outbox_published(table: &str, events: usize) {
    metrics::counter!("outbox_published_events_total", "table" => table.to_owned())
        .increment(events as u64);
}

/// `outbox_backlog_events{table}`: events waiting to be published.
pub(crate) fn outbox_backlog(table: &str, events: i64) {
    metrics::gauge!("outbox_backlog_events", "table" => table.to_owned()).set(events as f64);
}

/// `consumer_events_total{queue, disposition}`: events (and jobs) consumed, by what became of them
/// (`acked`, `retrying`, `dead_lettered`).
pub fn event_consumed(queue: &str, disposition: Disposition) {
    let disposition = match disposition {
        Disposition::Acked => "acked",
        Disposition::Retrying(_) => "retrying",
        Disposition::DeadLettered => "dead_lettered",
    };
    metrics::counter!("consumer_events_total", "queue" => queue.to_owned(), "disposition" => disposition)
        .increment(1);
}
