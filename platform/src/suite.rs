//! The suite's services in one table: their names, the packages of their APIs and their
//! default ports. The launcher, the gateway's upstreams, the tests and each service's own
//! defaults read it, so adding a service is one row here.

use std::net::SocketAddr;

/// A service of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteService {
    /// Its name in logs, metrics, connection names and service tokens: `svc-tenant`.
    pub name: &'static str,
    /// The protobuf package of its API: `formflow.tenant.v1`.
    pub package: &'static str,
    /// The port it listens on by default, and the offset of its port in the one-process suite.
    pub default_port: u16,
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
    package: "formflow.tenant.v1",
    default_port: 50051,
};
/// svc-auth: identities, sessions, tokens and keys.
pub const AUTH: SuiteService = SuiteService {
    name: "svc-auth",
    package: "formflow.auth.v1",
    default_port: 50052,
};
/// svc-forms: forms, versions and submissions.
pub const FORMS: SuiteService = SuiteService {
    name: "svc-forms",
    package: "formflow.forms.v1",
    default_port: 50053,
};
/// svc-workflow: workflows and their executions.
pub const WORKFLOW: SuiteService = SuiteService {
    name: "svc-workflow",
    package: "formflow.workflow.v1",
    default_port: 50054,
};
/// svc-ai: local models.
pub const AI: SuiteService = SuiteService {
    name: "svc-ai",
    package: "formflow.ai.v1",
    default_port: 50055,
};
/// svc-notify: notifications on every channel.
pub const NOTIFY: SuiteService = SuiteService {
    name: "svc-notify",
    package: "formflow.notify.v1",
    default_port: 50056,
};

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
        }
    }
}
