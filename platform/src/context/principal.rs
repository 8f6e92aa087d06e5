//! Who a verified token names, and what roles and permissions allow.

use super::{ApiKeyId, TenantId, UserId};

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
    /// Submit forms that do not take public submissions.
    SubmissionsCreate,
    /// Delete submissions for good (the right to erasure).
    SubmissionsDelete,
    /// Read workflows and executions.
    WorkflowsRead,
    /// Create and edit workflows.
    WorkflowsWrite,
    /// Run, retry and cancel executions.
    WorkflowsRun,
    /// Manage workflow credentials.
    CredentialsManage,
    /// Read AI label sets, their examples and stored classifications.
    AiRead,
    /// Use the AI models (embed, classify) and manage label sets.
    AiUse,
    /// Read notifications, templates, deliveries and endpoints.
    NotificationsRead,
    /// Send notifications.
    NotificationsSend,
    /// Manage notification templates, channels and endpoints.
    NotificationsManage,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 20] = [
        Permission::TenantRead,
        Permission::TenantManage,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::OwnersManage,
        Permission::ApiKeysManage,
        Permission::FormsRead,
        Permission::FormsWrite,
        Permission::SubmissionsRead,
        Permission::SubmissionsCreate,
        Permission::SubmissionsDelete,
        Permission::WorkflowsRead,
        Permission::WorkflowsWrite,
        Permission::WorkflowsRun,
        Permission::CredentialsManage,
        Permission::AiRead,
        Permission::AiUse,
        Permission::NotificationsRead,
        Permission::NotificationsSend,
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
            Permission::SubmissionsCreate => "submissions:create",
            Permission::SubmissionsDelete => "submissions:delete",
            Permission::WorkflowsRead => "workflows:read",
            Permission::WorkflowsWrite => "workflows:write",
            Permission::WorkflowsRun => "workflows:run",
            Permission::CredentialsManage => "credentials:manage",
            Permission::AiRead => "ai:read",
            Permission::AiUse => "ai:use",
            Permission::NotificationsRead => "notifications:read",
            Permission::NotificationsSend => "notifications:send",
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
            | Permission::AiRead
            | Permission::NotificationsRead => Role::Viewer,
            Permission::FormsWrite
            | Permission::SubmissionsCreate
            | Permission::WorkflowsWrite
            | Permission::WorkflowsRun
            | Permission::AiUse
            | Permission::NotificationsSend => Role::Member,
            Permission::TenantManage
            | Permission::MembersManage
            | Permission::ApiKeysManage
            | Permission::CredentialsManage
            | Permission::SubmissionsDelete
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
        key_id: ApiKeyId,
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

    /// The caller as resources record who made them: `users/{id}`, `apiKeys/{id}`,
    /// `services/{name}`.
    pub fn resource_name(&self) -> String {
        match self {
            Principal::User { user_id, .. } | Principal::PlatformAdmin { user_id } => {
                format!("users/{user_id}")
            }
            Principal::ApiKey { key_id, .. } => format!("apiKeys/{key_id}"),
            Principal::Service { name, .. } => format!("services/{name}"),
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
            key_id: ApiKeyId::generate(),
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
}
