//! svc-workflow's metrics; every name in one place.

use chrono::{DateTime, Utc};

use crate::domain::execution::ExecutionState;

/// `workflow_executions_total{state}` and `workflow_execution_seconds{state}`: executions that
/// ended, and how long they ran from their start.
pub(crate) fn execution_ended(state: ExecutionState, started_at: DateTime<Utc>) {
    metrics::counter!("workflow_executions_total", "state" => state.as_str()).increment(1);
    let seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1_000.0;
    metrics::histogram!("workflow_execution_seconds", "state" => state.as_str()).record(seconds);
}

/// `workflow_node_runs_total{node_type, state}` and `workflow_node_seconds{node_type}`: node
/// runs of actions that ended, and how long they took.
pub(crate) fn action_ended(node_type: &str, state: &'static str, seconds: f64) {
    metrics::counter!("workflow_node_runs_total", "node_type" => node_type.to_owned(), "state" => state)
        .increment(1);
    metrics::histogram!("workflow_node_seconds", "node_type" => node_type.to_owned())
        .record(seconds);
}

/// `workflow_node_retries_total{node_type}`: attempts of actions scheduled after a failure.
pub(crate) fn retry_scheduled(node_type: &str) {
    metrics::counter!("workflow_node_retries_total", "node_type" => node_type.to_owned())
        .increment(1);
}

/// `workflow_queue_messages{queue}`: messages waiting in the engine's work queue and in its
/// dead-letter queue (those RabbitMQ set aside), as last measured.
pub(crate) fn queue_messages(queue: &str, messages: u32) {
    metrics::gauge!("workflow_queue_messages", "queue" => queue.to_owned()).set(messages);
}

/// `workflow_dead_letters_pending`: dead letters of every tenant waiting for a replay, as last
/// measured.
pub(crate) fn dead_letters_pending(count: i64) {
    metrics::gauge!("workflow_dead_letters_pending").set(count as f64);
}
