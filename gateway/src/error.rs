//! The one JSON error shape of the suite:
//! `{"error":{"code":"NOT_FOUND","message":"…","details":[…],"request_id":"…"}}`, with the
//! HTTP status of the canonical gRPC code mapping. `code` is always the gRPC code's name; the
//! `ErrorInfo.reason` a service gave (`TENANT_NOT_FOUND`, `ACCOUNT_LOCKED`, …) stays in
//! `details` and is mirrored as `reason`. Details are `google.rpc` messages rendered as any
//! response is, with JSON field names (`fieldViolations`). Nothing of an internal error reaches the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic_types::{
    BadRequest, ErrorInfo, Help, LocalizedMessage, PreconditionFailure, QuotaFailure, RequestInfo,
    ResourceInfo, RetryInfo, StatusExt,
};

/// An HTTP status more precise than a gRPC code's, and its headers.
pub type SpecialStatus = (StatusCode, http::HeaderMap);

/// An error answered to an HTTP client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// gRPC canonical code; sets the HTTP status.
    pub code: tonic::Code,
    /// Specific reason (SCREAMING_SNAKE_CASE), shown as `reason` when present.
    pub reason: Option<String>,
    /// Safe, human-readable message.
    pub message: String,
    /// `google.rpc` details as JSON (field violations, error info).
    pub details: Vec<Value>,
    /// Request id of the call.
    pub request_id: String,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u32>,
    /// An HTTP status that says more than the code's (405 for a wrong method, 413 for a body
    /// too large), with the headers that go with it (`Allow`, `RateLimit-*`).
    pub http_status: Option<Box<SpecialStatus>>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: None,
            message: message.into(),
            details: Vec::new(),
            request_id: String::new(),
            retry_after: None,
            http_status: None,
        }
    }

    /// Sets the reason, in `details` as the services give theirs and mirrored as `reason`.
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        let metadata = std::collections::HashMap::new();
        let detail = error_info(reason, platform::error::ERROR_DOMAIN, &metadata);
        self.details.push(detail);
        self
    }

    /// One bad field, as `google.rpc.BadRequest`.
    pub fn bad_field(field: &str, description: &str) -> Self {
        let mut error = Self::new(
            tonic::Code::InvalidArgument,
            format!("invalid request: {field}: {description}"),
        );
        error.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}],
        }));
        error
    }

    /// The error a service answered, as it answered it: its code, its message (except for
    /// UNKNOWN, INTERNAL and DATA_LOSS, whose detail is never passed on) and its `google.rpc`
    /// details, each with its `@type` (all but DebugInfo, which is for the service's own
    /// logs). A RetryInfo delay becomes `Retry-After`.
    pub fn from_status(status: &tonic::Status) -> Self {
        let code = status.code();
        let message = match code {
            // Services already hide internal detail; upstreams of other teams may not.
            tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::DataLoss => {
                "internal error".to_owned()
            }
            _ => status.message().to_owned(),
        };
        let mut error = Self::new(code, message);
        let details = status.get_error_details();
        if let Some(bad_request) = details.bad_request() {
            let violations: Vec<Value> = bad_request
                .field_violations
                .iter()
                .map(|violation| json!({"field": violation.field, "description": violation.description}))
                .collect();
            error.details.push(json!({
                "@type": BadRequest::TYPE_URL,
                "fieldViolations": violations,
            }));
        }
        if let Some(info) = details.error_info() {
            error.reason = Some(info.reason.clone());
            // The Idempotency-Key draft's answer to a key reused for another request.
            if info.reason == "IDEMPOTENCY_KEY_REUSED" {
                error.http_status = Some(Box::new((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    http::HeaderMap::new(),
                )));
            }
            let detail = error_info(&info.reason, &info.domain, &info.metadata);
            error.details.push(detail);
        }
        if let Some(retry) = details.retry_info() {
            let delay = retry.retry_delay.unwrap_or_default();
            error.details.push(json!({
                "@type": RetryInfo::TYPE_URL,
                "retryDelay": format!("{}s", delay.as_secs_f64()),
            }));
            if matches!(
                code,
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable
            ) {
                let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
                error.retry_after = Some(u32::try_from(seconds.max(1)).unwrap_or(u32::MAX));
            }
        }
        if let Some(quota) = details.quota_failure() {
            let violations: Vec<Value> = quota
                .violations
                .iter()
                .map(|violation| json!({"subject": violation.subject, "description": violation.description}))
                .collect();
            error.details.push(json!({
                "@type": QuotaFailure::TYPE_URL,
                "violations": violations,
            }));
        }
        if let Some(precondition) = details.precondition_failure() {
            let violations: Vec<Value> = precondition
                .violations
                .iter()
                .map(|violation| {
                    json!({
                        "type": violation.r#type,
                        "subject": violation.subject,
                        "description": violation.description,
                    })
                })
                .collect();
            error.details.push(json!({
                "@type": PreconditionFailure::TYPE_URL,
                "violations": violations,
            }));
        }
        if let Some(info) = details.request_info() {
            error.details.push(json!({
                "@type": RequestInfo::TYPE_URL,
                "requestId": info.request_id,
                "servingData": info.serving_data,
            }));
        }
        if let Some(info) = details.resource_info() {
            error.details.push(json!({
                "@type": ResourceInfo::TYPE_URL,
                "resourceType": info.resource_type,
                "resourceName": info.resource_name,
                "owner": info.owner,
                "description": info.description,
            }));
        }
        if let Some(help) = details.help() {
            let links: Vec<Value> = help
                .links
                .iter()
                .map(|link| json!({"description": link.description, "url": link.url}))
                .collect();
            error
                .details
                .push(json!({"@type": Help::TYPE_URL, "links": links}));
        }
        if let Some(localized) = details.localized_message() {
            error.details.push(json!({
                "@type": LocalizedMessage::TYPE_URL,
                "locale": localized.locale,
                "message": localized.message,
            }));
        }
        if code == tonic::Code::Unavailable && error.retry_after.is_none() {
            error.retry_after = Some(1);
        }
        error
    }

    /// Sets the request id.
    pub fn for_request(mut self, request_id: &str) -> Self {
        self.request_id = request_id.to_owned();
        self
    }
}

/// A `google.rpc.ErrorInfo` detail as JSON.
fn error_info(
    reason: &str,
    domain: &str,
    metadata: &std::collections::HashMap<String, String>,
) -> Value {
    json!({
        "@type": ErrorInfo::TYPE_URL,
        "reason": reason,
        "domain": domain,
        "metadata": metadata,
    })
}

/// HTTP status of a gRPC code (google/rpc/code.proto).
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).expect("a valid status code"),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub use platform::error::code_name;

impl ApiError {
    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "code": code_name(self.code),
            "message": self.message,
            "details": self.details,
            "request_id": self.request_id,
        });
        if let Some(reason) = &self.reason {
            error["reason"] = Value::from(reason.as_str());
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(self.body());
        let mut response = match self.http_status {
            Some(special) => {
                let (status, headers) = *special;
                (status, headers, body).into_response()
            }
            None => (http_status(self.code), body).into_response(),
        };
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_canonical_http_statuses() {
        use tonic::Code;
        let expected = [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Cancelled, 499),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Unknown, 500),
            (Code::Internal, 500),
            (Code::DataLoss, 500),
        ];
        for (code, status) in expected {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let status = tonic::Status::internal("connection to postgres://user:hunter2@db failed");
        let body = ApiError::from_status(&status).for_request("r1").body();
        assert_eq!(body["error"]["message"], "internal error");
        assert_eq!(body["error"]["code"], "INTERNAL");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[test]
    fn a_reused_idempotency_key_answers_422() {
        let status = platform::error::status_with_reason(
            tonic::Code::InvalidArgument,
            "IDEMPOTENCY_KEY_REUSED",
            "this idempotency key was used for a different request",
        );
        let response = ApiError::from_status(&status).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn reasons_and_field_violations_are_carried() {
        let status = platform::error::status_with_reason(
            tonic::Code::NotFound,
            "TENANT_NOT_FOUND",
            "tenant x not found",
        );
        let body = ApiError::from_status(&status).body();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        assert_eq!(body["error"]["reason"], "TENANT_NOT_FOUND");
        let violations: tonic::Status =
            platform::error::FieldViolations::single("tenant.slug", "is reserved").into();
        let body = ApiError::from_status(&violations).body();
        assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
        assert!(body["error"].get("reason").is_none());
        assert_eq!(
            body["error"]["details"][0]["fieldViolations"][0]["field"],
            "tenant.slug"
        );
    }
}
