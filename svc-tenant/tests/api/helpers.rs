//! A real svc-tenant on an ephemeral port, over its own database, Redis prefix and RabbitMQ
//! prefix, with typed clients for each kind of caller.

use std::net::SocketAddr;

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestInfra, TestKeys, TestServer};
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use proto::formflow::tenant::v1::{CreateTenantRequest, Tenant};
use svc_tenant::Config;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) use platform::testing::{error_reason as reason, violated_fields};

/// Base domain the test service resolves subdomains against.
pub(crate) const BASE_DOMAIN: &str = "forms.test";

pub(crate) type Client = TenantServiceClient<InterceptedService<Channel, CallMetadata>>;

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    pub(crate) addr: SocketAddr,
    server: TestServer,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(TestInfra::new().await, |_| {}).await
    }

    /// Starts the service over `infra`, after `configure` adjusted its config (the defaults
    /// `svc-tenant --help` documents, with the test's infrastructure and keys).
    pub(crate) async fn spawn_with(
        infra: TestInfra,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let keys = TestKeys::new();
        let mut config = Config::try_parse_from(["svc-tenant"]).expect("the defaults parse");
        config.options.base_domain = Some(BASE_DOMAIN.to_owned());
        config.infra = infra.config();
        config.auth = keys.auth_config();
        configure(&mut config);
        let server = TestServer::start(|listeners| svc_tenant::build(config, listeners)).await;
        TestApp {
            infra,
            keys,
            addr: server.addr(),
            server,
        }
    }

    fn client_with(&self, token: Option<String>, routed_tenant: Option<TenantId>) -> Client {
        TenantServiceClient::with_interceptor(
            self.server.channel(),
            CallMetadata::new(token.as_deref(), routed_tenant),
        )
    }

    pub(crate) fn anonymous(&self) -> Client {
        self.client_with(None, None)
    }

    pub(crate) fn with_token(&self, token: String) -> Client {
        self.client_with(Some(token), None)
    }

    pub(crate) fn platform_admin(&self) -> Client {
        self.with_token(self.keys.platform_admin_token())
    }

    /// What the gateway does: a suite service acting for the platform.
    pub(crate) fn platform_service(&self) -> Client {
        self.with_token(self.keys.service_token("gateway", None))
    }

    pub(crate) fn user(&self, tenant: TenantId, role: Role) -> Client {
        self.with_token(self.keys.user_token(tenant, role))
    }

    /// A user's client whose calls carry `routed` as the gateway-resolved tenant.
    pub(crate) fn user_routed_to(&self, tenant: TenantId, role: Role, routed: TenantId) -> Client {
        self.client_with(Some(self.keys.user_token(tenant, role)), Some(routed))
    }

    pub(crate) async fn create_tenant(&self, slug: &str) -> Tenant {
        self.create_tenant_with(Tenant {
            slug: slug.to_owned(),
            display_name: format!("{slug} Inc."),
            ..Tenant::default()
        })
        .await
    }

    pub(crate) async fn create_tenant_with(&self, tenant: Tenant) -> Tenant {
        self.platform_admin()
            .create_tenant(CreateTenantRequest {
                tenant: Some(tenant),
            })
            .await
            .expect("creating a tenant")
            .into_inner()
    }

    /// Stops the service gracefully and waits until it has.
    pub(crate) async fn stop(self) {
        self.server.stop().await;
    }
}

pub(crate) fn id_of(tenant: &Tenant) -> TenantId {
    TenantId::parse(&tenant.id).unwrap()
}
