//! A real svc-tenant on an ephemeral port, over its own database, Redis prefix and RabbitMQ
//! prefix, with typed clients for each kind of caller.

use std::net::SocketAddr;
use std::time::Duration;

use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestInfra, TestKeys};
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use proto::formflow::tenant::v1::{CreateTenantRequest, Tenant};
use svc_tenant::{App, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Base domain the test service resolves subdomains against.
pub(crate) const BASE_DOMAIN: &str = "forms.test";

pub(crate) type Client = TenantServiceClient<InterceptedService<Channel, CallMetadata>>;

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    pub(crate) addr: SocketAddr,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(TestInfra::new().await, |_| {}).await
    }

    /// Starts the service over `infra`, after `configure` adjusted its config.
    pub(crate) async fn spawn_with(
        infra: TestInfra,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        init_test_logs();
        let keys = TestKeys::new();
        let mut config = Config {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            metrics_addr: None,
            base_domain: Some(BASE_DOMAIN.to_owned()),
            cache_ttl: Duration::from_secs(300),
            migrate_only: false,
            db: infra.db.clone(),
            redis: infra.redis.clone(),
            amqp: infra.amqp.clone(),
            auth: keys.auth_config(),
            telemetry: Default::default(),
        };
        configure(&mut config);
        let app = App::build(config).await.expect("svc-tenant starts");
        let addr = app.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connecting to svc-tenant");
        TestApp {
            infra,
            keys,
            addr,
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn client_with(&self, token: Option<String>, routed_tenant: Option<TenantId>) -> Client {
        TenantServiceClient::with_interceptor(
            self.channel.clone(),
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
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the service task").expect("a clean stop");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) fn id_of(tenant: &Tenant) -> TenantId {
    TenantId::parse(&tenant.id).unwrap()
}

/// The field names of the violations in an INVALID_ARGUMENT status.
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// The `ErrorInfo.reason` of a status.
pub(crate) fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn init_test_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
