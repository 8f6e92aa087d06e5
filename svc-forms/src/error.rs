//! Errors of form operations, and how each reaches a gRPC client: every outcome of its own
//! has a stable reason; the rest is the platform's [`CommonError`].

use platform::error::{CommonError, status_with_reason};
use tonic::{Code, Status};

use crate::domain::{FormSlug, SubmissionRefusal};

/// What can go wrong in a form operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service's operations can fail with.
    #[error(transparent)]
    Common(#[from] CommonError),
    /// No such form in the tenant (or one the caller may not see).
    #[error("form {0} not found")]
    FormNotFound(String),
    /// No such published version.
    #[error("version {0} not found")]
    VersionNotFound(String),
    /// No such submission.
    #[error("submission {0} not found")]
    SubmissionNotFound(String),
    /// Another form of the tenant has the slug.
    #[error("slug {0} is already taken by another form")]
    SlugTaken(FormSlug),
    /// Archived forms cannot change.
    #[error("the form is archived: unarchive it first")]
    FormArchived,
    /// Only archived forms can be unarchived.
    #[error("the form is not archived")]
    FormNotArchived,
    /// A draft without a field that takes an answer cannot be published.
    #[error("the draft has no field that takes an answer")]
    NothingToPublish,
    /// The form takes no submission now.
    #[error("{}", .0.message())]
    SubmissionRefused(SubmissionRefusal),
    /// The honeypot field was filled.
    #[error("the submission looks automated")]
    SpamSuspected,
    /// The start token is unknown, of another form, or expired.
    #[error("the start token is unknown or expired: fetch the published form again")]
    StartTokenInvalid,
    /// The start token's submission was already accepted.
    #[error("the start token was already used for a submission: fetch the published form again")]
    StartTokenUsed,
    /// The form was submitted sooner after its view than a person could fill it.
    #[error("the form was submitted too soon after it was shown")]
    SubmittedTooFast,
}

platform::common_error_conversions!(Error);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        let precondition = |reason| status_with_reason(Code::FailedPrecondition, reason, &message);
        match error {
            Error::Common(common) => common.into(),
            Error::FormNotFound(_) => status_with_reason(Code::NotFound, "FORM_NOT_FOUND", message),
            Error::VersionNotFound(_) => {
                status_with_reason(Code::NotFound, "VERSION_NOT_FOUND", message)
            }
            Error::SubmissionNotFound(_) => {
                status_with_reason(Code::NotFound, "SUBMISSION_NOT_FOUND", message)
            }
            Error::SlugTaken(_) => status_with_reason(Code::AlreadyExists, "SLUG_TAKEN", message),
            Error::FormArchived => precondition("FORM_ARCHIVED"),
            Error::FormNotArchived => precondition("FORM_NOT_ARCHIVED"),
            Error::NothingToPublish => precondition("FORM_EMPTY"),
            Error::SubmissionRefused(refusal) => precondition(refusal.reason()),
            Error::SpamSuspected => precondition("SPAM_SUSPECTED"),
            Error::StartTokenInvalid => precondition("START_TOKEN_INVALID"),
            Error::StartTokenUsed => precondition("START_TOKEN_USED"),
            Error::SubmittedTooFast => precondition("SUBMITTED_TOO_FAST"),
        }
    }
}
