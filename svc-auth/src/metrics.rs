//! svc-auth's metrics; every name in one place (`docs/deploy.md` lists the alerts on them).

/// `auth_login_failures_total{reason}`: failed logins, by the reason recorded in
/// `auth.login.failed` (never by account).
pub(crate) fn login_failed(reason: &'static str) {
    metrics::counter!("auth_login_failures_total", "reason" => reason).increment(1);
}

/// `auth_service_tokens_total{result}`: service tokens `issued`, or `refused` for wrong client
/// credentials.
pub(crate) fn service_token(result: &'static str) {
    metrics::counter!("auth_service_tokens_total", "result" => result).increment(1);
}

/// `auth_password_reset_requests_total{result}`: password reset requests `queued` for the
/// worker, `dropped` because its queue was full (answered alike all the same), or `failed`
/// while worked on.
pub(crate) fn password_reset_request(result: &'static str) {
    metrics::counter!("auth_password_reset_requests_total", "result" => result).increment(1);
}
