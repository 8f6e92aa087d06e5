//! Wire -> domain for accounts and sessions: sign-up, login, tokens, passwords, second
//! factors and service tokens; and the field checks every request parser shares. Each parser
//! collects one violation per bad field, so a client learns every problem at once.

use platform::context::TenantId;
use platform::error::FieldViolations;
use platform::paging::decode_page_position;
use proto::formflow::auth::v1 as wire;
use secrecy::SecretString;

use crate::domain::{Email, PersonName, check_entered_password};
use crate::operations::SignUp;

/// Longest token this service issues, with room to spare.
const MAX_TOKEN_LENGTH: usize = 200;
/// Longest second-factor code: a TOTP code or a recovery code, typed loosely.
const MAX_CODE_LENGTH: usize = 40;

/// Validates SignUp. The tenant's slug and name are svc-tenant's to validate.
pub fn sign_up(request: &wire::SignUpRequest) -> Result<SignUp, FieldViolations> {
    let mut violations = FieldViolations::new();
    let email = email(&mut violations, "email", &request.email);
    let display_name = violations.check("display_name", PersonName::parse(&request.display_name));
    let password = entered_password(&mut violations, "password", &request.password);
    if request.tenant_slug.is_empty() {
        violations.add("tenant_slug", "is required");
    }
    if request.tenant_display_name.trim().is_empty() {
        violations.add("tenant_display_name", "is required");
    }
    match (email, display_name) {
        (Some(email), Some(display_name)) if violations.is_empty() => Ok(SignUp {
            tenant_slug: request.tenant_slug.clone(),
            tenant_display_name: request.tenant_display_name.clone(),
            email,
            password,
            display_name,
        }),
        _ => Err(violations),
    }
}

/// Validates Login into the email and password.
pub fn login(request: &wire::LoginRequest) -> Result<(Email, SecretString), FieldViolations> {
    let mut violations = FieldViolations::new();
    let email = email(&mut violations, "email", &request.email);
    let password = entered_password(&mut violations, "password", &request.password);
    match email {
        Some(email) if violations.is_empty() => Ok((email, password)),
        _ => Err(violations),
    }
}

/// Validates VerifyTotp into the challenge and the code.
pub fn verify_totp(
    request: &wire::VerifyTotpRequest,
) -> Result<(SecretString, String), FieldViolations> {
    let mut violations = FieldViolations::new();
    let challenge = token(&mut violations, "challenge", &request.challenge);
    second_factor_code(&mut violations, "code", &request.code);
    violations.into_result()?;
    Ok((challenge, request.code.clone()))
}

/// Validates Refresh into the refresh token.
pub fn refresh(request: &wire::RefreshRequest) -> Result<SecretString, FieldViolations> {
    let mut violations = FieldViolations::new();
    let refresh_token = token(&mut violations, "refresh_token", &request.refresh_token);
    violations.into_result()?;
    Ok(refresh_token)
}

/// Validates ChangePassword into the current and the new password.
pub fn change_password(
    request: &wire::ChangePasswordRequest,
) -> Result<(SecretString, SecretString), FieldViolations> {
    let mut violations = FieldViolations::new();
    let current = entered_password(
        &mut violations,
        "current_password",
        &request.current_password,
    );
    let new = entered_password(&mut violations, "new_password", &request.new_password);
    violations.into_result()?;
    Ok((current, new))
}

/// Validates RequestPasswordReset into the email.
pub fn request_password_reset(
    request: &wire::RequestPasswordResetRequest,
) -> Result<Email, FieldViolations> {
    let mut violations = FieldViolations::new();
    email(&mut violations, "email", &request.email).ok_or(violations)
}

/// Validates ResetPassword into the reset token and the new password.
pub fn reset_password(
    request: &wire::ResetPasswordRequest,
) -> Result<(SecretString, SecretString), FieldViolations> {
    let mut violations = FieldViolations::new();
    let reset_token = token(&mut violations, "token", &request.token);
    let new = entered_password(&mut violations, "new_password", &request.new_password);
    violations.into_result()?;
    Ok((reset_token, new))
}

/// Validates EnrolTotp into the password.
pub fn enrol_totp(request: &wire::EnrolTotpRequest) -> Result<SecretString, FieldViolations> {
    let mut violations = FieldViolations::new();
    let password = entered_password(&mut violations, "password", &request.password);
    violations.into_result()?;
    Ok(password)
}

/// Validates a request that carries a required code (ConfirmTotp, RegenerateRecoveryCodes).
pub fn required_code(code: &str) -> Result<String, FieldViolations> {
    if code.trim().is_empty() {
        return Err(FieldViolations::single("code", "is required"));
    }
    Ok(code.to_owned())
}

/// Validates DisableTotp into the password and the code.
pub fn disable_totp(
    request: &wire::DisableTotpRequest,
) -> Result<(SecretString, String), FieldViolations> {
    let mut violations = FieldViolations::new();
    let password = entered_password(&mut violations, "password", &request.password);
    second_factor_code(&mut violations, "code", &request.code);
    violations.into_result()?;
    Ok((password, request.code.clone()))
}

/// A validated IssueServiceToken.
#[derive(Debug)]
pub struct ServiceTokenRequest {
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: SecretString,
    /// The tenant the token is for; the platform without one.
    pub tenant: Option<TenantId>,
}

/// Validates IssueServiceToken.
pub fn service_token(
    request: wire::IssueServiceTokenRequest,
) -> Result<ServiceTokenRequest, FieldViolations> {
    let mut violations = FieldViolations::new();
    if request.client_id.is_empty() || request.client_id.len() > 64 {
        violations.add("client_id", "must be 1 to 64 characters");
    }
    if request.client_secret.is_empty() || request.client_secret.len() > 256 {
        violations.add("client_secret", "must be 1 to 256 characters");
    }
    let tenant = optional_tenant(&mut violations, "tenant_id", &request.tenant_id);
    violations.into_result()?;
    Ok(ServiceTokenRequest {
        client_id: request.client_id,
        client_secret: SecretString::from(request.client_secret),
        tenant,
    })
}

/// Checks an email field.
pub(super) fn email(violations: &mut FieldViolations, field: &str, text: &str) -> Option<Email> {
    violations.check(field, Email::parse(text))
}

/// Checks a password someone types to prove who they are.
pub(super) fn entered_password(
    violations: &mut FieldViolations,
    field: &str,
    text: &str,
) -> SecretString {
    let password = SecretString::from(text.to_owned());
    violations.check(field, check_entered_password(&password));
    password
}

/// Checks a required secret token field (refresh token, challenge, invitation or reset token,
/// API key secret).
pub(super) fn token(violations: &mut FieldViolations, field: &str, text: &str) -> SecretString {
    if text.is_empty() || text.len() > MAX_TOKEN_LENGTH {
        violations.add(field, "must be the token this service issued");
    }
    SecretString::from(text.to_owned())
}

/// Checks a TOTP code or recovery code field.
fn second_factor_code(violations: &mut FieldViolations, field: &str, code: &str) {
    if code.trim().is_empty() || code.len() > MAX_CODE_LENGTH {
        violations.add(field, "must be a 6-digit code or a recovery code");
    }
}

/// An optional tenant id field: empty means none.
pub(super) fn optional_tenant(
    violations: &mut FieldViolations,
    field: &str,
    text: &str,
) -> Option<TenantId> {
    if text.is_empty() {
        None
    } else {
        violations.check(field, TenantId::parse(text))
    }
}

/// The id a page token of a listing ordered by id carries.
pub(super) fn id_position<T: std::str::FromStr>(
    violations: &mut FieldViolations,
    token: &str,
    filter: &str,
) -> Option<T> {
    decode_page_position(violations, token, filter, |position| position.parse().ok())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_bad_field_of_a_sign_up_is_reported() {
        let request = wire::SignUpRequest {
            tenant_slug: String::new(),
            tenant_display_name: " ".into(),
            email: "@".into(),
            password: String::new(),
            display_name: "\u{7}".into(),
        };
        let violations = sign_up(&request).unwrap_err();
        let fields = violations.fields();
        assert_eq!(
            fields,
            [
                "email",
                "display_name",
                "password",
                "tenant_slug",
                "tenant_display_name"
            ]
        );
    }

    #[test]
    fn optional_tenants_may_be_left_out_but_not_garbled() {
        let request = |tenant_id: &str| wire::IssueServiceTokenRequest {
            client_id: "gateway".into(),
            client_secret: "0123456789abcdef".into(),
            tenant_id: tenant_id.into(),
        };
        assert_eq!(service_token(request("")).unwrap().tenant, None);
        let tenant = TenantId::generate();
        assert_eq!(
            service_token(request(&tenant.to_string())).unwrap().tenant,
            Some(tenant)
        );
        assert!(service_token(request("acme")).is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            let _ = sign_up(&wire::SignUpRequest {
                tenant_slug: text.clone(),
                tenant_display_name: text.clone(),
                email: text.clone(),
                password: text.clone(),
                display_name: text.clone(),
            });
            let _ = verify_totp(&wire::VerifyTotpRequest {
                challenge: text.clone(),
                code: text.clone(),
            });
            let _ = required_code(&text);
        }
    }
}
