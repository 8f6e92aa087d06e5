//! Wire -> domain for API keys: creation, listing, names and verification.

use chrono::Utc;
use platform::context::{ApiKeyId, Permission, Role, TenantId};
use platform::error::FieldViolations;
use platform::paging::page_size;
use platform::wire as wire_helpers;
use proto::formflow::auth::v1 as wire;
use secrecy::SecretString;

use super::api_key_filter;
use super::membership::role_from_proto;
use super::requests::{id_position, optional_tenant, token};
use crate::domain::{ApiKeyName, ApiKeyState, MAX_SCOPES};
use crate::operations::NewApiKeyRequest;

/// Validates a request that names an API key, `apiKeys/{id}`.
pub fn api_key_name_only(name: &str) -> Result<ApiKeyId, FieldViolations> {
    let mut violations = FieldViolations::new();
    wire_helpers::parse_resource_name(&mut violations, "name", name, "apiKeys").ok_or(violations)
}

/// Validates CreateApiKey. An unspecified role is MEMBER; whether the caller may grant it is
/// the operation's to check.
pub fn new_api_key(
    request: &wire::CreateApiKeyRequest,
) -> Result<NewApiKeyRequest, FieldViolations> {
    let Some(key) = &request.api_key else {
        return Err(FieldViolations::single("api_key", "is required"));
    };
    let mut violations = FieldViolations::new();
    let display_name =
        violations.check("api_key.display_name", ApiKeyName::parse(&key.display_name));
    let role =
        wire_helpers::enum_filter(&mut violations, "api_key.role", key.role, role_from_proto)
            .unwrap_or(Role::Member);
    let scopes = scopes(&mut violations, "api_key.scopes", &key.scopes);
    let expires_at = key
        .expire_time
        .as_ref()
        .and_then(wire_helpers::from_timestamp);
    if key.expire_time.is_some() && expires_at.is_none_or(|expires_at| expires_at <= Utc::now()) {
        violations.add("api_key.expire_time", "must be in the future");
    }
    match display_name {
        Some(display_name) if violations.is_empty() => Ok(NewApiKeyRequest {
            display_name,
            role,
            scopes,
            expires_at,
        }),
        _ => Err(violations),
    }
}

/// Validates ListApiKeys into (page size, before, state).
pub fn api_key_listing(
    request: &wire::ListApiKeysRequest,
) -> Result<(usize, Option<ApiKeyId>, Option<ApiKeyState>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let page_size = page_size(&mut violations, request.page_size);
    let state = wire_helpers::enum_filter(
        &mut violations,
        "state",
        request.state,
        api_key_state_from_proto,
    );
    let before = id_position(&mut violations, &request.page_token, api_key_filter(state));
    violations.into_result()?;
    Ok((page_size, before, state))
}

/// Validates VerifyApiKey into the secret and the tenant the key must belong to, if any.
pub fn verify_api_key(
    request: &wire::VerifyApiKeyRequest,
) -> Result<(SecretString, Option<TenantId>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let secret = token(&mut violations, "secret", &request.secret);
    let tenant = optional_tenant(&mut violations, "tenant_id", &request.tenant_id);
    violations.into_result()?;
    Ok((secret, tenant))
}

fn api_key_state_from_proto(state: wire::ApiKeyState) -> Option<ApiKeyState> {
    match state {
        wire::ApiKeyState::Unspecified => None,
        wire::ApiKeyState::Active => Some(ApiKeyState::Active),
        wire::ApiKeyState::Revoked => Some(ApiKeyState::Revoked),
        wire::ApiKeyState::Expired => Some(ApiKeyState::Expired),
    }
}

/// Checks requested scopes: known permission names, at most fifty, no duplicates.
fn scopes(violations: &mut FieldViolations, field: &str, scopes: &[String]) -> Vec<Permission> {
    if scopes.len() > MAX_SCOPES {
        violations.add(field, format!("at most {MAX_SCOPES} scopes"));
        return Vec::new();
    }
    let mut parsed = Vec::new();
    for (index, scope) in scopes.iter().enumerate() {
        match Permission::parse(scope) {
            Some(permission) if !parsed.contains(&permission) => parsed.push(permission),
            Some(_) => violations.add(format!("{field}[{index}]"), "is listed twice"),
            None => violations.add(format!("{field}[{index}]"), "is not a known permission"),
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_of_an_api_key_is_reported() {
        let request = wire::CreateApiKeyRequest {
            api_key: Some(wire::ApiKey {
                display_name: " ".into(),
                role: 17,
                scopes: vec!["forms:read".into(), "forms:read".into(), "root".into()],
                expire_time: Some(pbjson_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        };
        let violations = new_api_key(&request).unwrap_err();
        assert_eq!(
            violations.fields(),
            [
                "api_key.display_name",
                "api_key.role",
                "api_key.scopes[1]",
                "api_key.scopes[2]",
                "api_key.expire_time"
            ]
        );
    }

    #[test]
    fn unspecified_key_roles_are_member() {
        let request = wire::CreateApiKeyRequest {
            api_key: Some(wire::ApiKey {
                display_name: "ci".into(),
                ..Default::default()
            }),
        };
        assert_eq!(new_api_key(&request).unwrap().role, Role::Member);
    }
}
