//! Domain events: the envelope every event travels in and the registry of event types.
//!
//! The envelope is the proto3 JSON of `formflow.events.v1.EventEnvelope`; its `data` is the
//! proto3 JSON of the event's message. The AMQP routing key is `{type}.v1`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use proto::formflow::events::v1 as events;

use crate::context::TenantId;

/// Version suffix of every routing key; bumped when an event's payload breaks compatibility.
pub const ROUTING_KEY_VERSION: &str = "v1";

/// An event payload: a message from `formflow.events.v1` with its type name.
pub trait Event: Serialize {
    /// Event type, e.g. `tenant.created`.
    const TYPE: &'static str;

    /// Routing key on the events exchange.
    fn routing_key() -> String {
        format!("{}.{ROUTING_KEY_VERSION}", Self::TYPE)
    }
}

macro_rules! event_types {
    ($($message:ty => $event_type:literal,)*) => {
        $(impl Event for $message {
            const TYPE: &'static str = $event_type;
        })*

        /// Every event type of the suite.
        pub const EVENT_TYPES: &[&str] = &[$($event_type),*];
    };
}

event_types! {
    events::TenantCreated => "tenant.created",
    events::TenantUpdated => "tenant.updated",
    events::TenantSuspended => "tenant.suspended",
    events::TenantDeleted => "tenant.deleted",
    events::UserRegistered => "auth.user.registered",
    events::LoginFailed => "auth.login.failed",
    events::InvitationCreated => "auth.invitation.created",
    events::PasswordResetRequested => "auth.password_reset.requested",
    events::FormPublished => "forms.form.published",
    events::SubmissionCreated => "forms.submission.created",
    events::SubmissionDeleted => "forms.submission.deleted",
    events::ExecutionStarted => "workflow.execution.started",
    events::ExecutionSucceeded => "workflow.execution.succeeded",
    events::ExecutionFailed => "workflow.execution.failed",
    events::ExecutionCancelled => "workflow.execution.cancelled",
    events::DeliveryFailed => "notify.delivery.failed",
    events::ClassificationCompleted => "ai.classification.completed",
    events::BatchJobCompleted => "ai.batch_job.completed",
}

/// The envelope of an event on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Unique id (UUIDv7); also the AMQP message id.
    pub event_id: Uuid,
    /// Tenant the event belongs to; absent for platform events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// When the change committed.
    pub occurred_at: DateTime<Utc>,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event message.
    pub data: T,
}

impl<T: Event> Envelope<T> {
    /// A new envelope for `data`, with a fresh id and the current time.
    pub fn new(tenant_id: Option<TenantId>, data: T) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            tenant_id,
            occurred_at: Utc::now(),
            event_type: T::TYPE.to_owned(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_are_versioned_types() {
        assert_eq!(events::TenantCreated::routing_key(), "tenant.created.v1");
        assert!(EVENT_TYPES.contains(&"tenant.suspended"));
    }

    #[test]
    fn envelopes_use_the_documented_json_shape() {
        let tenant_id = TenantId::generate();
        let envelope = Envelope::new(
            Some(tenant_id),
            events::TenantSuspended {
                tenant: None,
                reason: "unpaid".into(),
            },
        );
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "tenant.suspended");
        assert_eq!(json["tenant_id"], tenant_id.to_string());
        assert_eq!(json["data"]["reason"], "unpaid");
        assert!(json["occurred_at"].as_str().unwrap().ends_with('Z'));
        let back: Envelope<events::TenantSuspended> = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }
}
