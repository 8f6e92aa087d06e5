//! Who is calling and for which tenant: ids, roles, principals and the per-request context that
//! the gRPC layer puts into every request's extensions.

use std::fmt;
use std::str::FromStr;

use tonic::Status;
use uuid::Uuid;

use crate::auth::{AuthError, JwtVerifier};

/// Metadata key of the request id (also the `X-Request-ID` HTTP header).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Metadata key of the tenant resolved by the gateway.
pub const TENANT_ID_HEADER: &str = "x-tenant-id";

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the canonical hyphenated UUID form.
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(text)
                    .map(Self)
                    .map_err(|_| InvalidId { what: $what })
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}

/// Error of parsing an id that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be a UUID")]
pub struct InvalidId {
    what: &'static str,
}

uuid_id!(
    /// Id of a tenant.
    TenantId,
    "tenant id"
);
uuid_id!(
    /// Id of a user.
    UserId,
    "user id"
);

/// A user's role in a tenant. Each role includes the permissions of the ones below it:
/// owner ⊃ admin ⊃ member ⊃ viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads what the tenant has.
    Viewer,
    /// Works with forms, submissions and workflows.
    Member,
    /// Manages members, settings and integrations.
    Admin,
    /// Everything, including billing and deleting the tenant's data.
    Owner,
}

impl Role {
    /// The name used in tokens and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Parses the name used in tokens and APIs.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Whether this role has at least the permissions of `required`.
    pub fn includes(self, required: Role) -> bool {
        self >= required
    }
}

/// Who makes a request, as proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person signed in to one tenant.
    User {
        /// The user.
        user_id: UserId,
        /// The tenant the token was issued for.
        tenant_id: TenantId,
        /// The user's role in that tenant.
        role: Role,
    },
    /// A platform administrator (created by the setup CLI, never by sign-up), for cross-tenant
    /// operations.
    PlatformAdmin {
        /// The administrator.
        user_id: UserId,
    },
    /// A suite service acting on its own behalf, for one tenant or for the platform.
    Service {
        /// The service's client id, e.g. `svc-auth`.
        name: String,
        /// The tenant it acts for, when it acts for one.
        tenant_id: Option<TenantId>,
    },
}

impl Principal {
    /// Whether the principal may perform cross-tenant operations.
    pub fn is_platform_operator(&self) -> bool {
        match self {
            Principal::User { .. } => false,
            Principal::PlatformAdmin { .. } => true,
            Principal::Service { tenant_id, .. } => tenant_id.is_none(),
        }
    }

    /// Whether the principal may act on `tenant` with at least `required` role. Platform
    /// operators may act on any tenant; a service token bound to a tenant acts with full rights
    /// on that tenant only.
    pub fn can_act_on(&self, tenant: TenantId, required: Role) -> bool {
        if self.is_platform_operator() {
            return true;
        }
        match self {
            Principal::User {
                tenant_id, role, ..
            } => *tenant_id == tenant && role.includes(required),
            Principal::PlatformAdmin { .. } => true,
            Principal::Service { tenant_id, .. } => *tenant_id == Some(tenant),
        }
    }

    /// A short description for audit rows and logs (`user:<id>`, `service:<name>`).
    pub fn audit_name(&self) -> String {
        match self {
            Principal::User { user_id, .. } => format!("user:{user_id}"),
            Principal::PlatformAdmin { user_id } => format!("platform-admin:{user_id}"),
            Principal::Service { name, .. } => format!("service:{name}"),
        }
    }
}

/// What a service knows about the request it is serving.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Request id from `x-request-id`, or generated.
    pub request_id: String,
    /// The verified caller; `None` for anonymous calls.
    pub principal: Option<Principal>,
    /// Tenant the gateway resolved for this request (`x-tenant-id`), when it did.
    pub tenant_id: Option<TenantId>,
}

impl RequestContext {
    /// The context the interceptor stored in `request`.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&RequestContext, Status> {
        request.extensions().get::<RequestContext>().ok_or_else(|| {
            tracing::error!("request served without ContextInterceptor");
            Status::internal("internal error")
        })
    }

    /// The caller, or UNAUTHENTICATED for anonymous calls.
    pub fn principal(&self) -> Result<&Principal, Status> {
        self.principal
            .as_ref()
            .ok_or_else(crate::error::unauthenticated)
    }
}

/// Verifies the bearer token of every call (when there is one) and stores the resulting
/// [`RequestContext`] in the request's extensions. A bad token fails the call with
/// UNAUTHENTICATED; no token leaves the principal empty, for the handler to refuse unless the
/// RPC is public. `x-tenant-id` is the gateway's routing decision: for a user or a tenant-bound
/// service it must match the token's tenant.
#[derive(Debug, Clone)]
pub struct ContextInterceptor {
    verifier: JwtVerifier,
}

impl ContextInterceptor {
    /// An interceptor verifying tokens with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self { verifier }
    }

    fn context(&self, metadata: &tonic::metadata::MetadataMap) -> Result<RequestContext, Status> {
        let request_id = metadata
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let principal = match metadata.get("authorization") {
            None => None,
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .ok_or_else(|| {
                        Status::unauthenticated("authorization must be a Bearer token")
                    })?;
                let claims = self.verifier.verify(token.trim()).map_err(auth_status)?;
                Some(claims.principal().map_err(auth_status)?)
            }
        };
        let tenant_id = metadata
            .get(TENANT_ID_HEADER)
            .map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|value| TenantId::parse(value).ok())
                    .ok_or_else(|| Status::invalid_argument("x-tenant-id must be a tenant id"))
            })
            .transpose()?;
        let token_tenant = match &principal {
            Some(Principal::User { tenant_id, .. }) => Some(*tenant_id),
            Some(Principal::Service { tenant_id, .. }) => *tenant_id,
            Some(Principal::PlatformAdmin { .. }) | None => None,
        };
        if let (Some(routed), Some(token_tenant)) = (tenant_id, token_tenant)
            && routed != token_tenant
        {
            return Err(Status::permission_denied(
                "the token belongs to another tenant than the request",
            ));
        }
        Ok(RequestContext {
            request_id,
            principal,
            tenant_id,
        })
    }
}

fn auth_status(error: AuthError) -> Status {
    Status::unauthenticated(error.to_string())
}

impl tonic::service::Interceptor for ContextInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let context = self.context(request.metadata())?;
        request.extensions_mut().insert(context);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tenant_id: TenantId, role: Role) -> Principal {
        Principal::User {
            user_id: UserId::generate(),
            tenant_id,
            role,
        }
    }

    #[test]
    fn roles_include_the_roles_below_them() {
        assert!(Role::Owner.includes(Role::Admin));
        assert!(Role::Admin.includes(Role::Member));
        assert!(Role::Member.includes(Role::Viewer));
        assert!(!Role::Viewer.includes(Role::Member));
        assert!(!Role::Admin.includes(Role::Owner));
        for role in [Role::Viewer, Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn users_act_only_on_their_own_tenant() {
        let home = TenantId::generate();
        let other = TenantId::generate();
        let admin = user(home, Role::Admin);
        assert!(admin.can_act_on(home, Role::Admin));
        assert!(!admin.can_act_on(home, Role::Owner));
        assert!(!admin.can_act_on(other, Role::Viewer));
        assert!(!admin.is_platform_operator());
    }

    #[test]
    fn platform_admins_and_unbound_services_act_on_every_tenant() {
        let platform_admin = Principal::PlatformAdmin {
            user_id: UserId::generate(),
        };
        let service = Principal::Service {
            name: "svc-auth".into(),
            tenant_id: None,
        };
        let any_tenant = TenantId::generate();
        assert!(platform_admin.can_act_on(any_tenant, Role::Owner));
        assert!(service.can_act_on(any_tenant, Role::Owner));
    }

    #[test]
    fn tenant_bound_services_act_on_that_tenant_only() {
        let tenant = TenantId::generate();
        let service = Principal::Service {
            name: "svc-workflow".into(),
            tenant_id: Some(tenant),
        };
        assert!(service.can_act_on(tenant, Role::Owner));
        assert!(!service.can_act_on(TenantId::generate(), Role::Viewer));
        assert!(!service.is_platform_operator());
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
