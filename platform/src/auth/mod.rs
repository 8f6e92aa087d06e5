//! Bearer tokens: the claims FormFlow puts in its JWTs, their local verification against
//! svc-auth's JSON Web Key Set, Ed25519 signing (svc-auth, the dev launcher and tests), and the
//! service tokens suite services obtain from svc-auth to call each other.
//!
//! - [`JwtVerifier`]: verifies with keys fetched from svc-auth (refreshed when a token names an
//!   unknown key, and periodically) and/or pinned from a JWKS file.
//! - [`JwtSigner`]: signs with one Ed25519 key.
//! - [`ServiceTokens`]: short-lived service tokens from svc-auth, cached until shortly before
//!   they expire.
//! - [`RevokedSessions`]: the sessions revoked before their tokens expire, in Redis.
//!
//! Only `EdDSA` is accepted: the algorithm is pinned, so `none`, HMAC and RSA tokens are refused
//! whatever their header says, and a token must name (`kid`) a known key.

mod revocations;
mod service_tokens;
mod signer;
mod verifier;

use serde::{Deserialize, Serialize};

pub use revocations::RevokedSessions;
pub use service_tokens::ServiceTokens;
pub use signer::JwtSigner;
pub use verifier::JwtVerifier;

use crate::context::{ApiKeyId, Permission, Principal, Role, TenantId, UserId};

/// Claims of FormFlow access and service tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: a user id, or the client id of a service.
    pub sub: String,
    /// Tenant the token is scoped to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Role of the user in `tid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Session id (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Platform role of the user (`admin`); absent for ordinary users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prole: Option<String>,
    /// Kind of principal: `user` (default), `service` or `api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Permissions an API key is limited to, space-separated; absent allows its role's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Unique token id.
    pub jti: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

impl Claims {
    /// The principal these claims describe, or why they describe none.
    pub fn principal(&self) -> Result<Principal, AuthError> {
        let tenant_id = self
            .tid
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|_| AuthError::Claims("tid is not a tenant id"))?;
        if self.typ.as_deref() == Some("service") {
            return Ok(Principal::Service {
                name: self.sub.clone(),
                tenant_id,
            });
        }
        let role = self.role.as_deref().and_then(Role::parse);
        if self.typ.as_deref() == Some("api_key") {
            let key_id =
                ApiKeyId::parse(&self.sub).map_err(|_| AuthError::Claims("sub is not a key id"))?;
            let scopes = match &self.scope {
                Some(scope) => scope
                    .split_whitespace()
                    .map(|name| Permission::parse(name).ok_or(AuthError::Claims("unknown scope")))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            return Ok(Principal::ApiKey {
                key_id,
                tenant_id: tenant_id.ok_or(AuthError::Claims("API key token without tid"))?,
                role: role.ok_or(AuthError::Claims("API key token without a valid role"))?,
                scopes,
            });
        }
        let user_id =
            UserId::parse(&self.sub).map_err(|_| AuthError::Claims("sub is not a user id"))?;
        if self.prole.as_deref() == Some("admin") {
            return Ok(Principal::PlatformAdmin { user_id });
        }
        let tenant_id = tenant_id.ok_or(AuthError::Claims("user token without tid"))?;
        let role = role.ok_or(AuthError::Claims("user token without a valid role"))?;
        Ok(Principal::User {
            user_id,
            tenant_id,
            role,
        })
    }
}

/// Why a token was refused. The messages are safe to return to callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a JWT, bad signature, wrong algorithm, issuer or audience.
    #[error("invalid token")]
    Invalid,
    /// The token names a key the verifier does not know.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token is not valid yet: its `nbf` or its `iat` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// The token verifies but its claims don't describe a principal.
    #[error("invalid token claims: {0}")]
    Claims(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_for(subject: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "formflow".into(),
            aud: "formflow".into(),
            sub: subject.into(),
            tid: Some(TenantId::generate().to_string()),
            role: Some("admin".into()),
            sid: None,
            prole: None,
            typ: None,
            scope: None,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + 60,
        }
    }

    #[test]
    fn claims_describe_services_and_platform_admins() {
        let mut service = claims_for("svc-auth");
        service.typ = Some("service".into());
        service.tid = None;
        assert_eq!(
            service.principal().unwrap(),
            Principal::Service {
                name: "svc-auth".into(),
                tenant_id: None
            }
        );
        let mut admin = claims_for(&UserId::generate().to_string());
        admin.prole = Some("admin".into());
        admin.tid = None;
        assert!(admin.principal().unwrap().is_platform_operator());
        let mut no_role = claims_for(&UserId::generate().to_string());
        no_role.role = None;
        assert!(no_role.principal().is_err());
    }
}
