//! The identity operations: who may do what, the transaction each runs in, its audit row and
//! its event. Handlers in `grpc` only translate to and from the wire.

mod account;
mod api_keys;
mod invitations;
mod login;
mod members;
mod passwords;
mod service;
mod sessions;
mod signup;
mod two_factor;

use std::sync::Arc;
use std::time::Duration;

use platform::auth::RevokedSessions;
use platform::context::{Permission, Principal, RequestContext, TenantId, UserId};
use platform::db::Db;
use platform::outbox::Outbox;
use platform::redis::Redis;

use crate::config::{SecurityConfig, TokenConfig};
use crate::crypto::{Passwords, Sealer};
use crate::domain::PasswordPolicy;
use crate::error::Error;
use crate::keys::KeyRing;
use crate::service_clients::ServiceClients;
use crate::tenants::TenantClient;

pub use account::Me;
pub use api_keys::{NewApiKeyRequest, VerifiedApiKey, api_key_state, parse_scopes};
pub use invitations::{AcceptedInvitation, NewInvitationRequest, check_ttl, invitation_state};
pub use login::LoginOutcome;
pub use service::{IssuedToken, SELF_CLIENT_ID};
pub use sessions::SessionTokens;
pub use signup::{SignUp, SignedUp};
pub use two_factor::Enrolment;

/// Who asks: the verified principal (if any) and the call's context.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The request context (request id, routed tenant, client address).
    pub context: &'a RequestContext,
}

impl<'a> Caller<'a> {
    /// The verified principal, or UNAUTHENTICATED.
    pub fn principal(&self) -> Result<&'a Principal, Error> {
        self.context
            .principal
            .as_ref()
            .ok_or(Error::Unauthenticated("missing or invalid credentials"))
    }

    /// The calling user and the tenant of their token, or why there is none.
    pub fn user(&self) -> Result<(UserId, TenantId, platform::context::Role), Error> {
        match self.principal()? {
            Principal::User {
                user_id,
                tenant_id,
                role,
            } => Ok((*user_id, *tenant_id, *role)),
            Principal::PlatformAdmin { .. }
            | Principal::Service { .. }
            | Principal::ApiKey { .. } => Err(Error::FailedPrecondition(
                "only users signed in to a tenant can do this",
            )),
        }
    }

    /// The session named by the caller's access token.
    pub fn session_id(&self) -> Option<uuid::Uuid> {
        self.context.session_id.map(|session| session.as_uuid())
    }

    /// The tenant the caller acts in ([`RequestContext::acting_tenant`]).
    pub fn tenant(&self) -> Result<TenantId, Error> {
        self.context
            .acting_tenant()
            .map_err(|refusal| Error::Status(refusal.into()))
    }

    /// The caller's tenant, if the caller has `permission` there
    /// ([`RequestContext::authorize`]).
    pub fn authorize(&self, permission: Permission) -> Result<TenantId, Error> {
        self.context
            .authorize(permission)
            .map_err(|refusal| Error::Status(refusal.into()))
    }

    /// The tenant the gateway resolved, required by calls made without a user token.
    pub fn routed_tenant(&self) -> Result<TenantId, Error> {
        self.context.tenant_id.ok_or(Error::FailedPrecondition(
            "no tenant: call through the gateway or send x-tenant-id",
        ))
    }
}

/// Token lifetimes, password and lockout settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Issued tokens.
    pub tokens: TokenConfig,
    /// Password hashing and brute-force protection.
    pub security: SecurityConfig,
}

impl Settings {
    /// The password policy.
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.security.password_min_length as usize,
        }
    }

    /// How long retired signing keys stay published: the longest token lifetime plus leeway.
    pub fn key_retention(tokens: &TokenConfig) -> Duration {
        tokens.access_token_ttl.max(tokens.service_token_ttl) + Duration::from_secs(120)
    }
}

/// svc-auth's operations over its dependencies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Identity {
    pub(crate) db: Db,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) passwords: Passwords,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) clients: Arc<ServiceClients>,
    pub(crate) tenants: TenantClient,
    pub(crate) outbox: Outbox,
    pub(crate) redis: Redis,
    pub(crate) revocations: RevokedSessions,
    pub(crate) settings: Arc<Settings>,
}
