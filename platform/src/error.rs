//! Building `tonic::Status` values that carry machine-readable details: field violations
//! (`google.rpc.BadRequest`) for invalid input and a reason (`google.rpc.ErrorInfo`) for
//! errors the gateway maps to its own codes (`TENANT_SUSPENDED`, ...).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

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

impl From<FieldViolations> for Status {
    fn from(violations: FieldViolations) -> Self {
        let details = ErrorDetails::with_bad_request(
            violations
                .violations
                .iter()
                .map(|(field, description)| FieldViolation::new(field, description))
                .collect::<Vec<_>>(),
        );
        Status::with_error_details(Code::InvalidArgument, violations.to_string(), details)
    }
}

/// A status whose `ErrorInfo.reason` (SCREAMING_SNAKE_CASE) tells clients and the gateway what
/// happened beyond the code.
pub fn status_with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    Status::with_error_details(code, message, details)
}

/// Logs an unexpected error with its whole cause chain and returns a status that reveals none
/// of it.
pub fn internal(error: anyhow::Error) -> Status {
    tracing::error!(error = ?error, "unexpected error");
    Status::internal("internal error")
}

/// The message every handler answers when the caller has no credentials.
pub fn unauthenticated() -> Status {
    Status::unauthenticated("missing or invalid credentials")
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
