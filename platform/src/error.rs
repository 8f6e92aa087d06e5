//! The error core every service shares, and `tonic::Status` values that carry
//! machine-readable details: field violations (`google.rpc.BadRequest`) for invalid input and
//! a stable reason (`google.rpc.ErrorInfo`, e.g. `SLUG_TAKEN`) that the gateway shows as the
//! error's `code`.
//!
//! A service's `Error` names its own outcomes, each with its reason, and wraps
//! [`CommonError`] for the rest; [`common_error_conversions!`](crate::common_error_conversions)
//! gives it the `From` impls that let `?` work on every error the core covers:
//!
//! ```ignore
//! #[derive(Debug, thiserror::Error)]
//! pub enum Error {
//!     #[error("slug {0} is already taken")]
//!     SlugTaken(Slug),
//!     #[error(transparent)]
//!     Common(#[from] CommonError),
//! }
//! platform::common_error_conversions!(Error);
//! ```

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::context::Permission;
use crate::idempotency::IdempotencyError;

/// Error domain of every `ErrorInfo` the suite emits.
pub const ERROR_DOMAIN: &str = "formflow.dev";

/// Collects what is wrong with a request, one entry per bad field, so a client learns every
/// problem at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations {
    violations: Vec<(String, String)>,
}

impl FieldViolations {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` (a dotted path in the request, e.g. `tenant.slug`) is invalid.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push((field.into(), description.into()));
    }

    /// Runs `check` on a field and records its error, if any. Returns the parsed value.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        check: Result<T, E>,
    ) -> Option<T> {
        match check {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// The recorded `(field, description)` pairs.
    pub fn violations(&self) -> &[(String, String)] {
        &self.violations
    }

    /// The fields recorded, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.violations
            .iter()
            .map(|(field, _)| field.as_str())
            .collect()
    }

    /// `Ok(())` when nothing was recorded, else `Err(self)`.
    pub fn into_result(self) -> Result<(), FieldViolations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// A violations collection with one entry.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::new();
        violations.add(field, description);
        violations
    }
}

impl std::fmt::Display for FieldViolations {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let described: Vec<String> = self
            .violations
            .iter()
            .map(|(field, description)| format!("{field}: {description}"))
            .collect();
        write!(formatter, "invalid request: {}", described.join("; "))
    }
}

impl std::error::Error for FieldViolations {}

/// Most bytes of violations a status carries in its details (its message carries fewer): a
/// status travels in HTTP/2 headers, which peers refuse past 16 KiB, so a request with
/// thousands of problems gets the first ones and the count of the rest.
const VIOLATIONS_BUDGET: usize = 6 * 1024;
/// Most bytes of violations in a status's message.
const MESSAGE_BUDGET: usize = 1024;
/// Longest field path or description kept, in characters (both may echo what was sent).
const VIOLATION_PART_CHARS: usize = 200;

/// `text` cut to `VIOLATION_PART_CHARS` characters, marked with `…` when cut.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(VIOLATION_PART_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The violations that fit in `budget` bytes, each bounded, and how many did not fit.
fn within(violations: &[(String, String)], budget: usize) -> (Vec<(String, String)>, usize) {
    let mut used = 0;
    let mut kept = Vec::new();
    for (field, description) in violations {
        let (field, description) = (bounded(field), bounded(description));
        used += field.len() + description.len() + 4;
        if used > budget && !kept.is_empty() {
            break;
        }
        kept.push((field, description));
    }
    let left_out = violations.len() - kept.len();
    (kept, left_out)
}

impl From<FieldViolations> for Status {
    fn from(violations: FieldViolations) -> Self {
        let (detailed, left_out) = within(&violations.violations, VIOLATIONS_BUDGET);
        let mut field_violations: Vec<FieldViolation> = detailed
            .iter()
            .map(|(field, description)| FieldViolation::new(field, description))
            .collect();
        if left_out > 0 {
            field_violations.push(FieldViolation::new(
                "",
                format!("{left_out} more problems are not listed: fix these and send again"),
            ));
        }
        let (summarised, unsummarised) = within(&violations.violations, MESSAGE_BUDGET);
        let mut message = FieldViolations {
            violations: summarised,
        }
        .to_string();
        if unsummarised > 0 {
            message.push_str(&format!("; and {unsummarised} more (see the details)"));
        }
        let details = ErrorDetails::with_bad_request(field_violations);
        Status::with_error_details(Code::InvalidArgument, message, details)
    }
}

/// A status whose `ErrorInfo.reason` (SCREAMING_SNAKE_CASE) tells clients and the gateway what
/// happened beyond the code.
pub fn status_with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    status_with_info(code, reason, message, [])
}

/// A status with a reason and `ErrorInfo.metadata` (what a client needs to act on it, e.g.
/// `locked_until`).
pub fn status_with_info<const N: usize>(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: [(&str, &str); N],
) -> Status {
    let metadata: std::collections::HashMap<String, String> = metadata
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// What every service's operations can fail with besides their own outcomes.
#[derive(Debug, thiserror::Error)]
pub enum CommonError {
    /// The request is malformed: one violation per bad field.
    #[error(transparent)]
    InvalidArgument(#[from] FieldViolations),
    /// The platform's checks refused the caller.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// An update named a version (etag) that is no longer current.
    #[error("the {0} changed since it was read (etag mismatch); read it again")]
    EtagMismatch(&'static str),
    /// The call's `Idempotency-Key` cannot be used for it.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Anything else: a bug or an infrastructure failure. Logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CommonError {
    fn from(error: sqlx::Error) -> Self {
        CommonError::Unexpected(error.into())
    }
}

impl From<CommonError> for Status {
    fn from(error: CommonError) -> Self {
        match error {
            CommonError::InvalidArgument(violations) => violations.into(),
            CommonError::Access(refusal) => refusal.into(),
            CommonError::EtagMismatch(_) => {
                status_with_reason(Code::Aborted, "ETAG_MISMATCH", error.to_string())
            }
            CommonError::Idempotency(IdempotencyError::InFlight) => {
                status_with_reason(Code::Aborted, "IDEMPOTENCY_KEY_IN_USE", error.to_string())
            }
            CommonError::Idempotency(IdempotencyError::Reused) => status_with_reason(
                Code::InvalidArgument,
                "IDEMPOTENCY_KEY_REUSED",
                error.to_string(),
            ),
            CommonError::Idempotency(IdempotencyError::Unexpected(cause)) => internal(cause),
            CommonError::Unexpected(cause) => internal(cause),
        }
    }
}

/// Implements `From` for a service's `Error` (which has a `Common(CommonError)` variant) from
/// every error [`CommonError`] covers: field violations, access refusals, idempotency key
/// refusals, `sqlx` and `anyhow` errors.
#[macro_export]
macro_rules! common_error_conversions {
    ($error:ident) => {
        impl From<$crate::error::FieldViolations> for $error {
            fn from(violations: $crate::error::FieldViolations) -> Self {
                $error::Common(violations.into())
            }
        }
        impl From<$crate::error::AccessError> for $error {
            fn from(refusal: $crate::error::AccessError) -> Self {
                $error::Common(refusal.into())
            }
        }
        impl From<$crate::__private::sqlx::Error> for $error {
            fn from(error: $crate::__private::sqlx::Error) -> Self {
                $error::Common(error.into())
            }
        }
        impl From<$crate::idempotency::IdempotencyError> for $error {
            fn from(error: $crate::idempotency::IdempotencyError) -> Self {
                $error::Common(error.into())
            }
        }
        impl From<$crate::__private::anyhow::Error> for $error {
            fn from(error: $crate::__private::anyhow::Error) -> Self {
                $error::Common(error.into())
            }
        }
    };
}

/// Why the platform's checks ([`RequestContext`](crate::context::RequestContext)) refuse a
/// caller. Services wrap it in their errors ([`CommonError::Access`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No credentials, or credentials that did not verify.
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// The call names no tenant for a caller that acts on any.
    #[error("no tenant: call through the gateway or send x-tenant-id")]
    NoTenant,
    /// The caller lacks a permission on the tenant.
    #[error("this needs the {} permission", .0.as_str())]
    MissingPermission(Permission),
    /// Only platform administrators and suite services may do this.
    #[error("only platform administrators and suite services may do this")]
    PlatformOnly,
    /// Only a user signed in to a tenant may do this.
    #[error("only users signed in to a tenant can do this")]
    UsersOnly,
}

impl From<AccessError> for Status {
    fn from(refusal: AccessError) -> Self {
        let message = refusal.to_string();
        match refusal {
            AccessError::Unauthenticated => Status::unauthenticated(message),
            AccessError::NoTenant => {
                status_with_reason(Code::FailedPrecondition, "NO_TENANT", message)
            }
            AccessError::MissingPermission(permission) => status_with_info(
                Code::PermissionDenied,
                "PERMISSION_DENIED",
                message,
                [("permission", permission.as_str())],
            ),
            AccessError::PlatformOnly => {
                status_with_reason(Code::PermissionDenied, "PLATFORM_ONLY", message)
            }
            AccessError::UsersOnly => {
                status_with_reason(Code::FailedPrecondition, "USERS_ONLY", message)
            }
        }
    }
}

/// Logs an unexpected error with its whole cause chain and returns a status that reveals none
/// of it.
pub fn internal(error: anyhow::Error) -> Status {
    tracing::error!(error = ?error, "unexpected error");
    Status::internal("internal error")
}

/// The SCREAMING_SNAKE_CASE name of a gRPC code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_invalid_argument_with_bad_request_details() {
        let mut violations = FieldViolations::new();
        violations.add("tenant.slug", "must be 3 to 63 characters");
        violations.add("tenant.display_name", "must not be empty");
        let status = Status::from(violations);
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad_request = status
            .get_details_bad_request()
            .expect("bad request details");
        let fields: Vec<&str> = bad_request
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["tenant.slug", "tenant.display_name"]);
        assert!(
            status
                .message()
                .contains("tenant.slug: must be 3 to 63 characters")
        );
    }

    #[test]
    fn thousands_of_long_violations_fit_in_a_status_and_say_how_many_were_left_out() {
        let mut violations = FieldViolations::new();
        let echoed = "é".repeat(3_000);
        for index in 0..1_000 {
            violations.add(
                format!("items[{index}].{echoed}"),
                format!("{echoed} is not allowed"),
            );
        }
        let status = Status::from(violations);
        assert!(
            status.message().len() < 2 * MESSAGE_BUDGET,
            "{}",
            status.message().len()
        );
        assert!(
            status.message().ends_with("(see the details)"),
            "{}",
            status.message()
        );
        assert!(
            status.details().len() < 2 * VIOLATIONS_BUDGET,
            "{}",
            status.details().len()
        );
        let listed = status.get_details_bad_request().unwrap().field_violations;
        assert!(listed.len() > 1 && listed.len() < 1_000, "{}", listed.len());
        assert!(listed[0].field.starts_with("items[0].é") && listed[0].field.ends_with('…'));
        let last = listed.last().unwrap();
        assert_eq!(last.field, "");
        assert_eq!(
            last.description,
            format!(
                "{} more problems are not listed: fix these and send again",
                1_000 - (listed.len() - 1)
            )
        );
    }

    #[test]
    fn check_keeps_values_and_records_errors() {
        let mut violations = FieldViolations::new();
        let good: Option<u8> = violations.check("a", "7".parse::<u8>());
        let bad: Option<u8> = violations.check("b", "x".parse::<u8>());
        assert_eq!(good, Some(7));
        assert_eq!(bad, None);
        assert_eq!(violations.violations().len(), 1);
        assert_eq!(violations.violations()[0].0, "b");
        assert!(violations.into_result().is_err());
        assert!(FieldViolations::new().into_result().is_ok());
    }

    #[test]
    fn reasons_travel_in_error_info() {
        let status = status_with_reason(Code::FailedPrecondition, "TENANT_SUSPENDED", "suspended");
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "TENANT_SUSPENDED");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn internal_errors_reveal_nothing() {
        let status = internal(anyhow::anyhow!("password=hunter2 rejected by db"));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
