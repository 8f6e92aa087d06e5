//! Errors of ai operations, and how each reaches a gRPC client: every outcome of its own has a
//! stable reason; the rest is the platform's [`CommonError`].

use platform::error::{CommonError, internal, status_with_reason};
use tonic::{Code, Status};

use crate::domain::MAX_EXAMPLES;
use crate::pool::InferenceError;

/// What can go wrong in an ai operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service's operations can fail with.
    #[error(transparent)]
    Common(#[from] CommonError),
    /// The model asked for is not installed.
    #[error("no model {0} is installed")]
    ModelNotFound(String),
    /// No installed model serves what was asked.
    #[error("no installed model serves {0}")]
    NoModel(&'static str),
    /// The model could not run the request.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// No such label set in the tenant.
    #[error("label set {0} not found")]
    LabelSetNotFound(String),
    /// Another label set of the tenant has the display name.
    #[error("another label set already has the display name {0:?}")]
    LabelSetNameTaken(String),
    /// Another label set of the tenant stands for the ticket field.
    #[error("another label set of the tenant is already its ticket {0} label set")]
    TicketFieldTaken(&'static str),
    /// No such example in the label set.
    #[error("example {0} not found")]
    ExampleNotFound(String),
    /// The label set holds as many examples as it may.
    #[error("the label set already holds {MAX_EXAMPLES} examples: delete some first")]
    TooManyExamples,
    /// No such batch job in the tenant.
    #[error("batch job {0} not found")]
    BatchJobNotFound(String),
    /// No such classification in the tenant.
    #[error("classification {0} not found")]
    ClassificationNotFound(String),
    /// No such submission analysis in the tenant.
    #[error("submission analysis {0} not found")]
    SubmissionAnalysisNotFound(String),
    /// A search compares embeddings of one model only.
    #[error("{0} was embedded by {1}, not the model asked for: name no model to use its own")]
    AnalysisOfAnotherModel(String, String),
    /// Only a classification against a label set can be corrected (its label set learns).
    #[error(
        "{0} was made with inline labels: only classifications against a label set can be corrected"
    )]
    NotCorrectable(String),
}

platform::common_error_conversions!(Error);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Common(common) => common.into(),
            Error::ModelNotFound(_) => {
                status_with_reason(Code::NotFound, "MODEL_NOT_FOUND", message)
            }
            Error::NoModel(_) => {
                status_with_reason(Code::FailedPrecondition, "NO_MODEL_INSTALLED", message)
            }
            Error::Inference(InferenceError::Busy) => status_with_reason(
                Code::ResourceExhausted,
                "MODEL_BUSY",
                "the model's queue is full: retry later",
            ),
            Error::Inference(InferenceError::Expired) => status_with_reason(
                Code::Unavailable,
                "MODEL_BUSY",
                "the request waited too long for the model: retry later",
            ),
            Error::Inference(InferenceError::Stopped) => {
                Status::unavailable("the service is stopping")
            }
            Error::Inference(InferenceError::Failed(cause)) => internal(cause),
            Error::LabelSetNotFound(_) => {
                status_with_reason(Code::NotFound, "LABEL_SET_NOT_FOUND", message)
            }
            Error::LabelSetNameTaken(_) => {
                status_with_reason(Code::AlreadyExists, "LABEL_SET_NAME_TAKEN", message)
            }
            Error::TicketFieldTaken(_) => {
                status_with_reason(Code::AlreadyExists, "TICKET_FIELD_TAKEN", message)
            }
            Error::ExampleNotFound(_) => {
                status_with_reason(Code::NotFound, "EXAMPLE_NOT_FOUND", message)
            }
            Error::TooManyExamples => {
                status_with_reason(Code::FailedPrecondition, "EXAMPLE_LIMIT_REACHED", message)
            }
            Error::BatchJobNotFound(_) => {
                status_with_reason(Code::NotFound, "BATCH_JOB_NOT_FOUND", message)
            }
            Error::ClassificationNotFound(_) => {
                status_with_reason(Code::NotFound, "CLASSIFICATION_NOT_FOUND", message)
            }
            Error::SubmissionAnalysisNotFound(_) => {
                status_with_reason(Code::NotFound, "SUBMISSION_ANALYSIS_NOT_FOUND", message)
            }
            Error::AnalysisOfAnotherModel(..) => status_with_reason(
                Code::FailedPrecondition,
                "EMBEDDED_BY_ANOTHER_MODEL",
                message,
            ),
            Error::NotCorrectable(_) => status_with_reason(
                Code::FailedPrecondition,
                "CLASSIFICATION_WITHOUT_LABEL_SET",
                message,
            ),
        }
    }
}
