//! Errors of notify operations, and how each reaches a gRPC client: every outcome of its own
//! has a stable reason; the rest is the platform's [`CommonError`].

use platform::error::{CommonError, status_with_reason};
use tonic::{Code, Status};

/// What can go wrong in a notify operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service's operations can fail with.
    #[error(transparent)]
    Common(#[from] CommonError),
    /// No such template in the tenant.
    #[error("template {0} not found")]
    TemplateNotFound(String),
    /// Another template of the tenant has the key.
    #[error("another template already has the key {0}")]
    TemplateKeyTaken(String),
    /// No such notification in the tenant.
    #[error("notification {0} not found")]
    NotificationNotFound(String),
    /// No such delivery in the tenant.
    #[error("delivery {0} not found")]
    DeliveryNotFound(String),
    /// No such message in the caller's inbox.
    #[error("inbox message {0} not found")]
    InboxMessageNotFound(String),
    /// Only a failed delivery is retried by hand.
    #[error("the delivery is {0}: only a failed delivery can be retried")]
    DeliveryNotFailed(&'static str),
    /// No such webhook endpoint in the tenant.
    #[error("webhook endpoint {0} not found")]
    WebhookEndpointNotFound(String),
    /// A send needs a channel this deployment has not configured (`user email`: reading
    /// users' addresses from svc-auth, AUTH_CLIENT_ID).
    #[error("the {0} channel is not configured in this deployment")]
    ChannelOff(&'static str),
    /// Content holding a secret needs keys to seal it, which this deployment has not
    /// configured.
    #[error(
        "notifications holding a secret need NOTIFY_ENCRYPTION_KEYS, which this deployment has not configured"
    )]
    SealingOff,
}

platform::common_error_conversions!(Error);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::TemplateNotFound(_) => {
                status_with_reason(Code::NotFound, "TEMPLATE_NOT_FOUND", message)
            }
            Error::TemplateKeyTaken(_) => {
                status_with_reason(Code::AlreadyExists, "TEMPLATE_KEY_TAKEN", message)
            }
            Error::NotificationNotFound(_) => {
                status_with_reason(Code::NotFound, "NOTIFICATION_NOT_FOUND", message)
            }
            Error::DeliveryNotFound(_) => {
                status_with_reason(Code::NotFound, "DELIVERY_NOT_FOUND", message)
            }
            Error::InboxMessageNotFound(_) => {
                status_with_reason(Code::NotFound, "INBOX_MESSAGE_NOT_FOUND", message)
            }
            Error::WebhookEndpointNotFound(_) => {
                status_with_reason(Code::NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND", message)
            }
            Error::DeliveryNotFailed(_) => {
                status_with_reason(Code::FailedPrecondition, "DELIVERY_NOT_FAILED", message)
            }
            Error::ChannelOff(_) => {
                status_with_reason(Code::FailedPrecondition, "CHANNEL_NOT_CONFIGURED", message)
            }
            Error::SealingOff => status_with_reason(
                Code::FailedPrecondition,
                "ENCRYPTION_NOT_CONFIGURED",
                message,
            ),
            Error::Common(common) => common.into(),
        }
    }
}
