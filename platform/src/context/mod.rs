//! Who is calling and for which tenant: ids, roles, principals and the per-request context that
//! the gRPC layer puts into every request's extensions.
//!
//! - [`Principal`], [`Role`], [`Permission`]: who a verified token names and what it may do.
//! - [`RequestContext`]: what a handler knows of its call, and the checks operations make
//!   ([`RequestContext::authorize`]), which refuse with an [`AccessError`].
//! - [`ContextLayer`]: verifies each call's token and stores its context.

mod layer;
mod principal;

use tonic::Status;

pub use layer::{ContextLayer, ContextService, request_context};
pub use principal::{Permission, Principal, Role};

use crate::error::AccessError;
use crate::idempotency::IdempotencyKey;

/// Metadata key of the request id (also the `X-Request-ID` HTTP header).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Metadata key of the tenant resolved by the gateway.
pub const TENANT_ID_HEADER: &str = "x-tenant-id";
/// Metadata key of the end client's IP address, as the gateway saw it; trusted only beside a
/// valid [`GATEWAY_TOKEN_HEADER`].
pub const CLIENT_IP_HEADER: &str = "x-client-ip";
/// Metadata key of the end client's `User-Agent`, forwarded by the gateway; trusted only
/// beside a valid [`GATEWAY_TOKEN_HEADER`].
pub const CLIENT_USER_AGENT_HEADER: &str = "x-client-user-agent";
/// Metadata key of the gateway's own service token, sent beside the caller's credentials: it
/// proves that the call comes through the gateway, whose client address and user agent the
/// service may then record instead of its peer's.
pub const GATEWAY_TOKEN_HEADER: &str = "x-gateway-token";

crate::id!(
    /// Id of a tenant.
    TenantId,
    "tenant id"
);
crate::id!(
    /// Id of a user.
    UserId,
    "user id"
);
crate::id!(
    /// Id of an API key.
    ApiKeyId,
    "API key id"
);
crate::id!(
    /// Id of a user's session (the `sid` of their access tokens).
    SessionId,
    "session id"
);

/// What a service knows about the request it is serving. Operations take it as their caller.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Request id from `x-request-id`, or generated.
    pub request_id: String,
    /// The verified caller; `None` for anonymous calls.
    pub principal: Option<Principal>,
    /// The session of the caller's access token (`sid`), for users.
    pub session_id: Option<SessionId>,
    /// Tenant the gateway resolved for this request (`x-tenant-id`), when it did.
    pub tenant_id: Option<TenantId>,
    /// The end client's address: `x-client-ip` when the gateway forwarded the call (it carries
    /// a valid `x-gateway-token`), else the peer's address.
    pub client_ip: String,
    /// The end client's user agent: `x-client-user-agent` when the gateway forwarded the call,
    /// else the caller's `user-agent`; at most 500 characters.
    pub user_agent: String,
    /// The call's `Idempotency-Key` (`idempotency-key` metadata), when it sent one.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl RequestContext {
    /// The context the interceptor stored in `request`.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&RequestContext, Status> {
        request.extensions().get::<RequestContext>().ok_or_else(|| {
            tracing::error!("request served without ContextLayer");
            Status::internal("internal error")
        })
    }

    /// The context of a service acting on its own (a consumer, a timer), with no call behind
    /// it: the request id names what it works on.
    pub fn internal(principal: Principal, request_id: impl Into<String>) -> RequestContext {
        RequestContext {
            request_id: request_id.into(),
            principal: Some(principal),
            session_id: None,
            tenant_id: None,
            client_ip: String::new(),
            user_agent: String::new(),
            idempotency_key: None,
        }
    }

    /// The caller, or UNAUTHENTICATED for anonymous calls.
    pub fn principal(&self) -> Result<&Principal, AccessError> {
        self.principal.as_ref().ok_or(AccessError::Unauthenticated)
    }

    /// The calling user, the tenant of their token and their role there; refused for every
    /// other kind of caller.
    pub fn user(&self) -> Result<(UserId, TenantId, Role), AccessError> {
        match self.principal()? {
            Principal::User {
                user_id,
                tenant_id,
                role,
            } => Ok((*user_id, *tenant_id, *role)),
            Principal::PlatformAdmin { .. }
            | Principal::Service { .. }
            | Principal::ApiKey { .. } => Err(AccessError::UsersOnly),
        }
    }

    /// The tenant the gateway routed the call to, which calls made without a token need.
    pub fn routed_tenant(&self) -> Result<TenantId, AccessError> {
        self.tenant_id.ok_or(AccessError::NoTenant)
    }

    /// The tenant the caller acts in: its token's tenant, or, for platform operators and
    /// services not bound to a tenant, the tenant the call was routed to (`x-tenant-id`).
    pub fn acting_tenant(&self) -> Result<TenantId, AccessError> {
        match self.principal()? {
            Principal::User { tenant_id, .. } | Principal::ApiKey { tenant_id, .. } => {
                Ok(*tenant_id)
            }
            Principal::Service {
                tenant_id: Some(tenant_id),
                ..
            } => Ok(*tenant_id),
            Principal::PlatformAdmin { .. }
            | Principal::Service {
                tenant_id: None, ..
            } => self.routed_tenant(),
        }
    }

    /// The tenant the caller acts in, when it has `permission` there.
    pub fn authorize(&self, permission: Permission) -> Result<TenantId, AccessError> {
        let tenant = self.acting_tenant()?;
        self.authorize_on(tenant, permission)?;
        Ok(tenant)
    }

    /// Whether the caller has `permission` on `tenant`, a tenant the request names. Checked
    /// before anything is read, so a foreign tenant is refused whether it exists or not.
    pub fn authorize_on(
        &self,
        tenant: TenantId,
        permission: Permission,
    ) -> Result<(), AccessError> {
        if self.principal()?.allows(tenant, permission) {
            Ok(())
        } else {
            Err(AccessError::MissingPermission(permission))
        }
    }

    /// Refuses every caller but platform administrators and suite services acting for the
    /// platform.
    pub fn require_platform_operator(&self) -> Result<&Principal, AccessError> {
        let principal = self.principal()?;
        if principal.is_platform_operator() {
            Ok(principal)
        } else {
            Err(AccessError::PlatformOnly)
        }
    }

    /// The caller as the resources it makes record it (a creator, a submitter): `users/…`,
    /// `apiKeys/…`, `services/…`; empty when anonymous.
    pub fn principal_name(&self) -> String {
        self.principal
            .as_ref()
            .map(Principal::resource_name)
            .unwrap_or_default()
    }

    /// Who the audit trail says did what this request does.
    pub fn actor(&self) -> String {
        self.principal
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), Principal::audit_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(principal: Option<Principal>, routed: Option<TenantId>) -> RequestContext {
        RequestContext {
            request_id: "r1".to_owned(),
            principal,
            session_id: None,
            tenant_id: routed,
            client_ip: String::new(),
            user_agent: String::new(),
            idempotency_key: None,
        }
    }

    #[test]
    fn users_act_in_the_tenant_of_their_token_with_their_role() {
        let tenant = TenantId::generate();
        let member = context(
            Some(Principal::User {
                user_id: UserId::generate(),
                tenant_id: tenant,
                role: Role::Member,
            }),
            None,
        );
        assert_eq!(member.authorize(Permission::FormsWrite), Ok(tenant));
        assert_eq!(
            member.authorize(Permission::MembersManage),
            Err(AccessError::MissingPermission(Permission::MembersManage))
        );
        assert_eq!(
            member.authorize_on(TenantId::generate(), Permission::FormsRead),
            Err(AccessError::MissingPermission(Permission::FormsRead))
        );
        assert_eq!(
            member.require_platform_operator().err(),
            Some(AccessError::PlatformOnly)
        );
        assert!(member.user().is_ok());
    }

    #[test]
    fn platform_operators_act_in_the_routed_tenant_and_anonymous_callers_in_none() {
        let routed = TenantId::generate();
        let admin = context(
            Some(Principal::PlatformAdmin {
                user_id: UserId::generate(),
            }),
            Some(routed),
        );
        assert_eq!(admin.authorize(Permission::OwnersManage), Ok(routed));
        assert_eq!(admin.user().err(), Some(AccessError::UsersOnly));
        let unrouted = context(
            Some(Principal::PlatformAdmin {
                user_id: UserId::generate(),
            }),
            None,
        );
        assert_eq!(unrouted.acting_tenant(), Err(AccessError::NoTenant));
        let anonymous = context(None, Some(routed));
        assert_eq!(
            anonymous.authorize(Permission::FormsRead),
            Err(AccessError::Unauthenticated)
        );
        assert_eq!(anonymous.routed_tenant(), Ok(routed));
        assert_eq!(anonymous.actor(), "anonymous");
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(&id.to_string()), Ok(id));
        assert_eq!(
            TenantId::parse("acme").unwrap_err().to_string(),
            "tenant id must be a UUID"
        );
    }
}
