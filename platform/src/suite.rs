//! The suite's services in one table: their names, the packages of their APIs and their
//! default ports. The launcher, the gateway's upstreams, the tests and each service's own
//! defaults read it, so adding a service is one row here.

use std::net::SocketAddr;

/// A service of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteService {
    /// Its name in logs, metrics, connection names and service tokens, and its binary's:
    /// `svc-tenant`.
    pub name: &'static str,
    /// What it does, as its `--help` says.
    pub about: &'static str,
    /// The protobuf package of its API: `formflow.tenant.v1`.
    pub package: &'static str,
    /// The port it listens on by default, and the offset of its port in the one-process suite.
    pub default_port: u16,
    /// The prefix of its own environment variables: `TENANT` in `TENANT_GRPC_ADDR`.
    pub env_prefix: &'static str,
    /// The Postgres schema it owns.
    pub schema: &'static str,
}

/// A type standing for one service of the table, for what is generic over services
/// ([`ServeConfig`](crate::config::ServeConfig)).
pub trait SuiteMember: Send + Sync + 'static {
    /// The service.
    const SERVICE: SuiteService;
}

impl SuiteService {
    /// The address it listens on by default: every interface, its default port.
    pub fn default_grpc_addr(&self) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], self.default_port))
    }

    /// Its URL on this machine at its default port, as development defaults name it.
    pub fn local_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.default_port)
    }
}

/// svc-tenant: tenants, domains, settings and resolution.
pub const TENANT: SuiteService = SuiteService {
    name: "svc-tenant",
    about: "tenants, their domains, settings and limits, and tenant resolution",
    package: "formflow.tenant.v1",
    default_port: 50051,
    env_prefix: "TENANT",
    schema: "tenant",
};
/// [`TENANT`] as a type.
#[derive(Debug, Clone, Copy)]
pub struct Tenant;
impl SuiteMember for Tenant {
    const SERVICE: SuiteService = TENANT;
}
/// svc-auth: identities, sessions, tokens and keys.
pub const AUTH: SuiteService = SuiteService {
    name: "svc-auth",
    about: "users, memberships, sessions, tokens, two-factor authentication, invitations, API keys and the keys that sign tokens",
    package: "formflow.auth.v1",
    default_port: 50052,
    env_prefix: "AUTH",
    schema: "auth",
};
/// [`AUTH`] as a type.
#[derive(Debug, Clone, Copy)]
pub struct Auth;
impl SuiteMember for Auth {
    const SERVICE: SuiteService = AUTH;
}
/// svc-forms: forms, versions and submissions.
pub const FORMS: SuiteService = SuiteService {
    name: "svc-forms",
    about: "forms, their versions, submissions and per-form analytics",
    package: "formflow.forms.v1",
    default_port: 50053,
    env_prefix: "FORMS",
    schema: "forms",
};
/// [`FORMS`] as a type.
#[derive(Debug, Clone, Copy)]
pub struct Forms;
impl SuiteMember for Forms {
    const SERVICE: SuiteService = FORMS;
}
/// svc-workflow: workflows and their executions.
pub const WORKFLOW: SuiteService = SuiteService {
    name: "svc-workflow",
    about: "workflows, triggers, executions, schedules and credentials",
    package: "formflow.workflow.v1",
    default_port: 50054,
    env_prefix: "WORKFLOW",
    schema: "workflow",
};
/// [`WORKFLOW`] as a type.
#[derive(Debug, Clone, Copy)]
pub struct Workflow;
impl SuiteMember for Workflow {
    const SERVICE: SuiteService = WORKFLOW;
}
/// svc-ai: local models.
pub const AI: SuiteService = SuiteService {
    name: "svc-ai",
    about: "local ONNX text models (embeddings, classification) on a fixed CPU pool",
    package: "formflow.ai.v1",
    default_port: 50055,
    env_prefix: "AI",
    schema: "ai",
};
/// [`AI`] as a type.
#[derive(Debug, Clone, Copy)]
pub struct Ai;
impl SuiteMember for Ai {
    const SERVICE: SuiteService = AI;
}
/// svc-notify: notifications on every channel.
pub const NOTIFY: SuiteService = SuiteService {
    name: "svc-notify",
    about: "notifications: templates, channels, preferences, deliveries and the in-app inbox",
    package: "formflow.notify.v1",
    default_port: 50056,
    env_prefix: "NOTIFY",
    schema: "notify",
};
/// [`NOTIFY`] as a type.
#[derive(Debug, Clone, Copy)]
pub struct Notify;
impl SuiteMember for Notify {
    const SERVICE: SuiteService = NOTIFY;
}

/// Every service, in port order.
pub const SERVICES: [SuiteService; 6] = [TENANT, AUTH, FORMS, WORKFLOW, AI, NOTIFY];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_packages_and_ports_are_unique_and_ports_follow_each_other() {
        for (index, service) in SERVICES.iter().enumerate() {
            assert_eq!(
                service.default_port,
                SERVICES[0].default_port + index as u16
            );
            assert!(service.name.starts_with("svc-"));
            let short = service.name.trim_start_matches("svc-");
            assert_eq!(service.package, format!("formflow.{short}.v1"));
            assert_eq!(service.env_prefix, short.to_ascii_uppercase());
            assert_eq!(service.schema, short);
        }
    }
}
