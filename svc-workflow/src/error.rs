//! Errors of workflow operations, and how each reaches a gRPC client: every outcome of its
//! own has a stable reason; the rest is the platform's [`CommonError`].

use platform::error::{CommonError, status_with_reason};
use tonic::{Code, Status};

/// What can go wrong in a workflow operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service's operations can fail with.
    #[error(transparent)]
    Common(#[from] CommonError),
    /// No such workflow in the tenant.
    #[error("workflow {0} not found")]
    WorkflowNotFound(String),
    /// No such version of the workflow.
    #[error("version {0} not found")]
    VersionNotFound(String),
    /// No such credential in the tenant.
    #[error("credential {0} not found")]
    CredentialNotFound(String),
    /// Another credential of the tenant has the display name.
    #[error("another credential is already named {0}")]
    CredentialNameTaken(String),
    /// An active workflow cannot be deleted.
    #[error("the workflow is active: deactivate it first")]
    WorkflowActive,
    /// A credential the active version of a workflow uses cannot be deleted.
    #[error(
        "the credential is used by the active version of {0}: deactivate them or change their definitions first"
    )]
    CredentialInUse(String),
    /// No such execution in the tenant.
    #[error("execution {0} not found")]
    ExecutionNotFound(String),
    /// The execution has ended: it cannot be cancelled.
    #[error("the execution has ended ({0})")]
    ExecutionEnded(&'static str),
    /// Only failed and cancelled executions are retried.
    #[error("the execution is {0}: only a failed or cancelled execution can be retried")]
    ExecutionNotRetryable(&'static str),
    /// No such webhook: no workflow, not active, or no such `trigger.webhook` node in its
    /// active version.
    #[error("webhook {0} not found")]
    WebhookNotFound(String),
    /// A webhook request that is not signed as it must be.
    #[error(transparent)]
    WebhookRefused(crate::domain::webhook::Refusal),
    /// No such dead letter in the tenant.
    #[error("dead letter {0} not found")]
    DeadLetterNotFound(String),
    /// A dead letter is replayed once.
    #[error("the dead letter was replayed already")]
    DeadLetterReplayed,
    /// Only a failed execution resumes from a dead letter.
    #[error("the execution is {0}: only a failed execution resumes from its dead letter")]
    ExecutionNotFailed(&'static str),
    /// The version to activate names a credential that no longer fits.
    #[error("node {node} of version {version}: {reason}")]
    CredentialUnusable {
        /// The version.
        version: i32,
        /// Id of the node.
        node: String,
        /// What is wrong with its credential.
        reason: String,
    },
}

platform::common_error_conversions!(Error);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Common(common) => common.into(),
            Error::WorkflowNotFound(_) => {
                status_with_reason(Code::NotFound, "WORKFLOW_NOT_FOUND", message)
            }
            Error::VersionNotFound(_) => {
                status_with_reason(Code::NotFound, "VERSION_NOT_FOUND", message)
            }
            Error::CredentialNotFound(_) => {
                status_with_reason(Code::NotFound, "CREDENTIAL_NOT_FOUND", message)
            }
            Error::CredentialNameTaken(_) => {
                status_with_reason(Code::AlreadyExists, "CREDENTIAL_NAME_TAKEN", message)
            }
            Error::WorkflowActive => {
                status_with_reason(Code::FailedPrecondition, "WORKFLOW_ACTIVE", message)
            }
            Error::CredentialInUse(_) => {
                status_with_reason(Code::FailedPrecondition, "CREDENTIAL_IN_USE", message)
            }
            Error::ExecutionNotFound(_) => {
                status_with_reason(Code::NotFound, "EXECUTION_NOT_FOUND", message)
            }
            Error::ExecutionEnded(_) => {
                status_with_reason(Code::FailedPrecondition, "EXECUTION_ENDED", message)
            }
            Error::ExecutionNotRetryable(_) => {
                status_with_reason(Code::FailedPrecondition, "EXECUTION_NOT_RETRYABLE", message)
            }
            Error::WebhookNotFound(_) => {
                status_with_reason(Code::NotFound, "WEBHOOK_NOT_FOUND", message)
            }
            Error::WebhookRefused(refusal) => {
                let reason = match refusal {
                    crate::domain::webhook::Refusal::Header(_) => "WEBHOOK_HEADERS_INVALID",
                    crate::domain::webhook::Refusal::Timestamp(_) => {
                        "WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE"
                    }
                    crate::domain::webhook::Refusal::Signature => "WEBHOOK_SIGNATURE_INVALID",
                };
                status_with_reason(Code::Unauthenticated, reason, message)
            }
            Error::DeadLetterNotFound(_) => {
                status_with_reason(Code::NotFound, "DEAD_LETTER_NOT_FOUND", message)
            }
            Error::DeadLetterReplayed => {
                status_with_reason(Code::FailedPrecondition, "DEAD_LETTER_REPLAYED", message)
            }
            Error::ExecutionNotFailed(_) => {
                status_with_reason(Code::FailedPrecondition, "EXECUTION_NOT_FAILED", message)
            }
            Error::CredentialUnusable { .. } => {
                status_with_reason(Code::FailedPrecondition, "CREDENTIAL_UNUSABLE", message)
            }
        }
    }
}
