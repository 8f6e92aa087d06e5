//! A real svc-auth and svc-tenant on ephemeral ports, over one test's database, Redis prefix
//! and RabbitMQ prefix, with clients for each kind of caller.

use std::net::SocketAddr;

use platform::context::TenantId;
use platform::testing::{CallMetadata, TestInfra, TestKeys};
use proto::formflow::auth::v1 as wire;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use testkit::Services;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) use platform::testing::violated_fields;
pub(crate) use testkit::GATEWAY_CLIENT;

/// A password the policy accepts.
pub(crate) const PASSWORD: &str = "violet-Kettle-drums-9-orbit";

pub(crate) type Auth = AuthServiceClient<InterceptedService<Channel, CallMetadata>>;
pub(crate) type Tenants = TenantServiceClient<InterceptedService<Channel, CallMetadata>>;

/// How a test wants the services configured.
pub(crate) use testkit::Options;

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    auth_channel: Channel,
    tenant_channel: Channel,
    _services: Services,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub(crate) async fn spawn_with(options: Options) -> TestApp {
        let infra = TestInfra::new().await;
        let keys = TestKeys::new();
        let services = Services::start(&infra, &keys, options).await;
        TestApp {
            infra,
            keys,
            auth_channel: connect(services.auth_addr).await,
            tenant_channel: connect(services.tenant_addr).await,
            _services: services,
        }
    }

    /// svc-auth as an anonymous caller routed to `tenant` (what the gateway sends for public RPCs).
    pub(crate) fn auth_public(&self, tenant: Option<TenantId>) -> Auth {
        self.auth_from(tenant, "203.0.113.7")
    }

    /// svc-auth from a given client address, through the gateway.
    pub(crate) fn auth_from(&self, tenant: Option<TenantId>, client_ip: &str) -> Auth {
        AuthServiceClient::with_interceptor(
            self.auth_channel.clone(),
            self.via_gateway(CallMetadata::new(None, tenant).from_client_ip(client_ip)),
        )
    }

    /// svc-auth with a bearer token, through the gateway.
    pub(crate) fn auth_with(&self, token: &str) -> Auth {
        AuthServiceClient::with_interceptor(
            self.auth_channel.clone(),
            self.via_gateway(CallMetadata::new(Some(token), None).from_client_ip("203.0.113.7")),
        )
    }

    /// svc-auth called straight at its port, not through the gateway, with `metadata` as is.
    pub(crate) fn auth_direct(&self, metadata: CallMetadata) -> Auth {
        AuthServiceClient::with_interceptor(self.auth_channel.clone(), metadata)
    }

    /// `metadata` with the gateway's token, as the gateway sends it.
    fn via_gateway(&self, metadata: CallMetadata) -> CallMetadata {
        metadata.via_gateway(&self.keys.service_token(GATEWAY_CLIENT.0, None))
    }

    /// svc-tenant with a bearer token.
    pub(crate) fn tenants_with(&self, token: &str) -> Tenants {
        TenantServiceClient::with_interceptor(
            self.tenant_channel.clone(),
            CallMetadata::new(Some(token), None),
        )
    }

    /// Signs up a tenant `slug` owned by `email`.
    pub(crate) async fn sign_up(&self, slug: &str, email: &str) -> wire::SignUpResponse {
        self.auth_public(None)
            .sign_up(wire::SignUpRequest {
                tenant_slug: slug.into(),
                tenant_display_name: format!("{slug} Inc."),
                email: email.into(),
                password: PASSWORD.into(),
                display_name: "Ada Lovelace".into(),
            })
            .await
            .expect("signing up")
            .into_inner()
    }

    /// Logs in to `tenant`.
    pub(crate) async fn login(
        &self,
        tenant: TenantId,
        email: &str,
        password: &str,
    ) -> Result<wire::LoginResponse, Status> {
        self.auth_public(Some(tenant))
            .login(wire::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

async fn connect(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connecting")
}

pub(crate) fn tenant_of(response: &wire::SignUpResponse) -> TenantId {
    TenantId::parse(&response.tenant.as_ref().unwrap().id).unwrap()
}

pub(crate) fn access_token(response: &wire::LoginResponse) -> String {
    response
        .tokens
        .as_ref()
        .expect("tokens")
        .access_token
        .clone()
}
