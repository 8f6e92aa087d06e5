//! svc-forms' metrics; every name in one place.

/// `forms_submissions_total`: submissions stored (replays of an idempotency key excluded).
pub(crate) fn submission_received() {
    metrics::counter!("forms_submissions_total").increment(1);
}
