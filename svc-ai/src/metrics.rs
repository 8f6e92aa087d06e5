//! svc-ai's metrics; every name in one place (`docs/deploy.md` lists the alerts on them).

/// `ai_requests_refused_total{model, reason}`: requests refused because the model's queue was
/// full (`queue_full`) or they waited past the queue timeout (`expired`).
pub(crate) fn request_refused(model: &str, reason: &'static str) {
    metrics::counter!("ai_requests_refused_total", "model" => model.to_owned(), "reason" => reason)
        .increment(1);
}

/// `ai_queue_depth{model}`: requests waiting for the model.
pub(crate) fn queue_depth(model: &str, depth: usize) {
    metrics::gauge!("ai_queue_depth", "model" => model.to_owned()).set(depth as f64);
}

/// `ai_inference_batch_size`: texts run through a model at once.
pub(crate) fn batch_size(texts: usize) {
    metrics::histogram!("ai_inference_batch_size").record(texts as f64);
}

/// `ai_inference_seconds{model}`: time of one model run.
pub(crate) fn inference_seconds(model: &str, seconds: f64) {
    metrics::histogram!("ai_inference_seconds", "model" => model.to_owned()).record(seconds);
}
