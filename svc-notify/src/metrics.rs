//! svc-notify's metrics; every name in one place.

use crate::domain::Channel;

/// `notify_notifications_total`: notifications accepted (duplicates of a transaction id left
/// out).
pub(crate) fn notification_accepted() {
    metrics::counter!("notify_notifications_total").increment(1);
}

/// `notify_delivery_attempts_total{channel, outcome}`: attempts that ended, by channel and
/// outcome (`delivered`, `retrying`, `failed`).
pub(crate) fn attempt_ended(channel: Channel, outcome: &'static str, seconds: f64) {
    metrics::counter!("notify_delivery_attempts_total", "channel" => channel.as_str(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("notify_delivery_attempt_seconds", "channel" => channel.as_str())
        .record(seconds);
}

/// `notify_deliveries_suppressed_total{channel, reason}`: deliveries not sent, by reason.
pub(crate) fn suppressed(channel: Channel, reason: &'static str) {
    metrics::counter!("notify_deliveries_suppressed_total", "channel" => channel.as_str(), "reason" => reason)
        .increment(1);
}
