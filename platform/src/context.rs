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
/// Metadata key of the end client's IP address, as the gateway saw it.
pub const CLIENT_IP_HEADER: &str = "x-client-ip";
/// Metadata key of the end client's `User-Agent`, forwarded by the gateway.
pub const CLIENT_USER_AGENT_HEADER: &str = "x-client-user-agent";

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

/// What a role, or an API key's scopes, allow. Services check the permission an RPC needs;
/// names are `resource:action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read the tenant's name, domains and settings.
    TenantRead,
    /// Change the tenant's name, domains and settings.
    TenantManage,
    /// List members and invitations.
    MembersRead,
    /// Invite, change and remove members (not owners).
    MembersManage,
    /// Grant, change or remove the owner role.
    OwnersManage,
    /// Create and revoke API keys.
    ApiKeysManage,
    /// Read forms.
    FormsRead,
    /// Create, edit, publish and archive forms.
    FormsWrite,
    /// Read and export submissions.
    SubmissionsRead,
    /// Read workflows and executions.
    WorkflowsRead,
    /// Create and edit workflows.
    WorkflowsWrite,
    /// Run, retry and cancel executions.
    WorkflowsRun,
    /// Manage workflow credentials.
    CredentialsManage,
    /// Use the AI models.
    AiUse,
    /// Read notification templates, deliveries and endpoints.
    NotificationsRead,
    /// Manage notification templates, channels and endpoints.
    NotificationsManage,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 16] = [
        Permission::TenantRead,
        Permission::TenantManage,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::OwnersManage,
        Permission::ApiKeysManage,
        Permission::FormsRead,
        Permission::FormsWrite,
        Permission::SubmissionsRead,
        Permission::WorkflowsRead,
        Permission::WorkflowsWrite,
        Permission::WorkflowsRun,
        Permission::CredentialsManage,
        Permission::AiUse,
        Permission::NotificationsRead,
        Permission::NotificationsManage,
    ];

    /// The name used in APIs and API key scopes.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::TenantRead => "tenant:read",
            Permission::TenantManage => "tenant:manage",
            Permission::MembersRead => "members:read",
            Permission::MembersManage => "members:manage",
            Permission::OwnersManage => "owners:manage",
            Permission::ApiKeysManage => "api_keys:manage",
            Permission::FormsRead => "forms:read",
            Permission::FormsWrite => "forms:write",
            Permission::SubmissionsRead => "submissions:read",
            Permission::WorkflowsRead => "workflows:read",
            Permission::WorkflowsWrite => "workflows:write",
            Permission::WorkflowsRun => "workflows:run",
            Permission::CredentialsManage => "credentials:manage",
            Permission::AiUse => "ai:use",
            Permission::NotificationsRead => "notifications:read",
            Permission::NotificationsManage => "notifications:manage",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<Permission> {
        Self::ALL
            .into_iter()
            .find(|permission| permission.as_str() == text)
    }

    /// The least role that has this permission.
    pub fn least_role(self) -> Role {
        match self {
            Permission::TenantRead
            | Permission::MembersRead
            | Permission::FormsRead
            | Permission::SubmissionsRead
            | Permission::WorkflowsRead
            | Permission::NotificationsRead => Role::Viewer,
            Permission::FormsWrite
            | Permission::WorkflowsWrite
            | Permission::WorkflowsRun
            | Permission::AiUse => Role::Member,
            Permission::TenantManage
            | Permission::MembersManage
            | Permission::ApiKeysManage
            | Permission::CredentialsManage
            | Permission::NotificationsManage => Role::Admin,
            Permission::OwnersManage => Role::Owner,
        }
    }
}

impl Role {
    /// The permissions of this role (and of every role below it).
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|permission| self.includes(permission.least_role()))
            .collect()
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
    /// A machine client's API key, acting in its tenant with its role, narrowed by its scopes.
    ApiKey {
        /// The key.
        key_id: Uuid,
        /// Its tenant.
        tenant_id: TenantId,
        /// The role it acts with (never owner).
        role: Role,
        /// The permissions it is limited to; empty means all its role has.
        scopes: Vec<Permission>,
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
            Principal::User { .. } | Principal::ApiKey { .. } => false,
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
            Principal::ApiKey {
                tenant_id, role, ..
            } => *tenant_id == tenant && role.includes(required),
            Principal::PlatformAdmin { .. } => true,
            Principal::Service { tenant_id, .. } => *tenant_id == Some(tenant),
        }
    }

    /// Whether the principal has `permission` on `tenant`: its role's permissions, narrowed
    /// by an API key's scopes. Platform operators have every permission everywhere.
    pub fn allows(&self, tenant: TenantId, permission: Permission) -> bool {
        match self {
            Principal::ApiKey { scopes, .. }
                if !scopes.is_empty() && !scopes.contains(&permission) =>
            {
                false
            }
            _ => self.can_act_on(tenant, permission.least_role()),
        }
    }

    /// A short description for audit rows and logs (`user:<id>`, `service:<name>`).
    pub fn audit_name(&self) -> String {
        match self {
            Principal::User { user_id, .. } => format!("user:{user_id}"),
            Principal::PlatformAdmin { user_id } => format!("platform-admin:{user_id}"),
            Principal::ApiKey { key_id, .. } => format!("api-key:{key_id}"),
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
    /// The session of the caller's access token (`sid`), for users.
    pub session_id: Option<Uuid>,
    /// Tenant the gateway resolved for this request (`x-tenant-id`), when it did.
    pub tenant_id: Option<TenantId>,
    /// The end client's address: `x-client-ip` from the gateway, else the peer's address.
    pub client_ip: String,
    /// The end client's user agent: `x-client-user-agent` from the gateway, else the caller's
    /// `user-agent`; at most 500 characters.
    pub user_agent: String,
}

impl RequestContext {
    /// The context the interceptor stored in `request`.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&RequestContext, Status> {
        request.extensions().get::<RequestContext>().ok_or_else(|| {
            tracing::error!("request served without ContextLayer");
            Status::internal("internal error")
        })
    }

    /// The caller, or UNAUTHENTICATED for anonymous calls.
    pub fn principal(&self) -> Result<&Principal, Status> {
        self.principal
            .as_ref()
            .ok_or_else(crate::error::unauthenticated)
    }

    /// The tenant the caller acts in: its token's tenant, or, for platform operators and
    /// services not bound to a tenant, the tenant the call was routed to (`x-tenant-id`);
    /// FAILED_PRECONDITION when there is none.
    pub fn acting_tenant(&self) -> Result<TenantId, Status> {
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
            } => self.tenant_id.ok_or_else(|| {
                Status::failed_precondition(
                    "no tenant: call through the gateway or send x-tenant-id",
                )
            }),
        }
    }

    /// The tenant the caller acts in, when it has `permission` there; PERMISSION_DENIED
    /// otherwise.
    pub fn authorize(&self, permission: Permission) -> Result<TenantId, Status> {
        let tenant = self.acting_tenant()?;
        if self.principal()?.allows(tenant, permission) {
            Ok(tenant)
        } else {
            Err(Status::permission_denied(format!(
                "this needs the {} permission",
                permission.as_str()
            )))
        }
    }
}

/// A tower layer that verifies the bearer token of every call (when there is one) and stores
/// the resulting [`RequestContext`] in the request's extensions, where handlers find it with
/// [`RequestContext::of`]. A bad token fails the call with UNAUTHENTICATED before the handler
/// runs; no token leaves the principal empty, for the handler to refuse unless the RPC is
/// public. `x-tenant-id` is the gateway's routing decision: for a user or a tenant-bound service
/// it must match the token's tenant.
///
/// Wrap each API service with it (`ContextLayer::new(verifier).layer(server)`); health and
/// reflection stay unauthenticated.
#[derive(Debug, Clone)]
pub struct ContextLayer {
    verifier: JwtVerifier,
}

impl ContextLayer {
    /// A layer verifying tokens with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self { verifier }
    }
}

impl<S> tower::Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ContextService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`ContextLayer`] wraps around an API service.
#[derive(Debug, Clone)]
pub struct ContextService<S> {
    inner: S,
    verifier: JwtVerifier,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for ContextService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for ContextService<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let peer = request
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr())
                .map(|addr| addr.ip().to_string());
            match request_context(&verifier, request.headers(), peer).await {
                Ok(context) => {
                    request.extensions_mut().insert(context);
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// Builds the context of a call from its headers (gRPC metadata) and its peer's address.
pub async fn request_context(
    verifier: &JwtVerifier,
    headers: &http::HeaderMap,
    peer: Option<String>,
) -> Result<RequestContext, Status> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
    };
    let client_ip = header(CLIENT_IP_HEADER)
        .map(str::to_owned)
        .or(peer)
        .unwrap_or_default();
    let user_agent: String = header(CLIENT_USER_AGENT_HEADER)
        .or_else(|| header("user-agent"))
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (principal, session_id) = match headers.get(http::header::AUTHORIZATION) {
        None => (None, None),
        Some(value) => {
            let token = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be a Bearer token"))?;
            let claims = verifier.verify(token.trim()).await.map_err(auth_status)?;
            let session_id = claims
                .sid
                .as_deref()
                .and_then(|sid| Uuid::try_parse(sid).ok());
            (Some(claims.principal().map_err(auth_status)?), session_id)
        }
    };
    let tenant_id = headers
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
        Some(Principal::User { tenant_id, .. } | Principal::ApiKey { tenant_id, .. }) => {
            Some(*tenant_id)
        }
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
        session_id,
        tenant_id,
        client_ip,
        user_agent,
    })
}

fn auth_status(error: AuthError) -> Status {
    Status::unauthenticated(error.to_string())
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
    fn each_role_has_the_permissions_of_the_roles_below_it() {
        let viewer = Role::Viewer.permissions();
        let member = Role::Member.permissions();
        let admin = Role::Admin.permissions();
        let owner = Role::Owner.permissions();
        assert!(viewer.iter().all(|permission| member.contains(permission)));
        assert!(member.iter().all(|permission| admin.contains(permission)));
        assert!(admin.iter().all(|permission| owner.contains(permission)));
        assert_eq!(owner, Permission::ALL);
        assert!(!admin.contains(&Permission::OwnersManage));
        assert!(!viewer.contains(&Permission::FormsWrite));
        for permission in Permission::ALL {
            assert_eq!(Permission::parse(permission.as_str()), Some(permission));
        }
        assert_eq!(Permission::parse("forms:delete-everything"), None);
    }

    #[test]
    fn api_keys_are_limited_by_their_role_and_scopes() {
        let tenant = TenantId::generate();
        let key = |role, scopes: Vec<Permission>| Principal::ApiKey {
            key_id: Uuid::now_v7(),
            tenant_id: tenant,
            role,
            scopes,
        };
        let unscoped = key(Role::Member, Vec::new());
        assert!(unscoped.allows(tenant, Permission::FormsWrite));
        assert!(!unscoped.allows(tenant, Permission::MembersManage));
        assert!(!unscoped.allows(TenantId::generate(), Permission::FormsRead));
        let scoped = key(Role::Admin, vec![Permission::FormsRead]);
        assert!(scoped.allows(tenant, Permission::FormsRead));
        assert!(!scoped.allows(tenant, Permission::FormsWrite));
        assert!(!scoped.is_platform_operator());
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
