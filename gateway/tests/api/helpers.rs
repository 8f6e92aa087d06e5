//! A real svc-auth, svc-tenant and echo service on ephemeral ports, over one test's database,
//! Redis prefix and RabbitMQ prefix, and as many gateways in front of them as a test starts;
//! plus a small HTTP client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform::context::{Role, TenantId};
use platform::testing::{TestInfra, TestKeys};
use serde_json::{Value, json};
use testkit::{Options, Services};
use tokio::sync::oneshot;

/// A password svc-auth's policy accepts.
pub(crate) const PASSWORD: &str = "violet-Kettle-drums-9-orbit";
/// Base domain of tenant subdomains in the tests.
pub(crate) const BASE_DOMAIN: &str = "forms.test";

/// The services, and the gateways a test started.
pub(crate) struct TestSuite {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    /// The first gateway.
    pub(crate) gateway: Gateway,
    services: Services,
    pub(crate) echo_addr: SocketAddr,
    descriptor_file: PathBuf,
}

/// One running gateway and a client for it. It stops when the last clone is dropped, or on
/// [`Gateway::stop`].
#[derive(Clone)]
pub(crate) struct Gateway {
    pub(crate) addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

fn init_test_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,gateway=info".to_owned()),
        )
        .with_test_writer()
        .try_init();
}

impl TestSuite {
    /// The services and one gateway with the test defaults.
    pub(crate) async fn spawn() -> TestSuite {
        Self::spawn_with(|_| {}).await
    }

    /// The services and one gateway whose configuration `configure` adjusts.
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut gateway::Config)) -> TestSuite {
        init_test_logs();
        let infra = TestInfra::new().await;
        let keys = TestKeys::new();
        let services = Services::start(&infra, &keys, Options::default()).await;
        let echo_addr = echo_service::spawn().await;
        let descriptor_file =
            std::env::temp_dir().join(format!("ff-echo-{}.binpb", uuid::Uuid::new_v4()));
        std::fs::write(&descriptor_file, echo_service::DESCRIPTOR_SET).unwrap();

        let mut suite = TestSuite {
            infra,
            keys,
            services,
            gateway: Gateway {
                addr: "127.0.0.1:1".parse().unwrap(),
                client: Client::builder(TokioExecutor::new()).build_http(),
                stop: Arc::default(),
            },
            echo_addr,
            descriptor_file,
        };
        suite.gateway = suite.start_gateway(configure).await;
        suite
    }

    /// The configuration the tests' gateways start from: the echo service's descriptor set
    /// from its file and its package routed to it, as another team's API would be.
    pub(crate) fn gateway_config(&self) -> gateway::Config {
        let mut config = self.services.gateway_config(&self.infra, &self.keys);
        config.upstreams.descriptor_sets = vec![self.descriptor_file.clone()];
        config.upstreams.package_routes = vec![format!(
            "{}=http://{}",
            echo_service::PACKAGE,
            self.echo_addr
        )];
        config.edge.base_domain = Some(BASE_DOMAIN.into());
        // Only events can explain a fresh answer within a test.
        config.edge.tenant_cache_ttl = Duration::from_secs(300);
        config
    }

    /// Starts another gateway in front of the same services.
    pub(crate) async fn start_gateway(
        &self,
        configure: impl FnOnce(&mut gateway::Config),
    ) -> Gateway {
        let mut config = self.gateway_config();
        configure(&mut config);
        let app = gateway::App::build(config)
            .await
            .expect("the gateway starts");
        let addr = app.http_addr();
        let stop = spawn_until_stopped(|stopped| app.run_until_stopped(stopped));
        let gateway = Gateway {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
            stop: Arc::new(Mutex::new(Some(stop))),
        };
        // Ready once the tenant events queue is bound, or cached tenants could go stale.
        tokio::time::sleep(Duration::from_millis(200)).await;
        gateway
    }

    /// Creates a tenant through the gateway, as a platform administrator.
    pub(crate) async fn create_tenant(&self, slug: &str) -> Tenant {
        self.create_tenant_with(json!({"slug": slug, "display_name": format!("{slug} Inc.")}))
            .await
    }

    /// Creates a tenant with the given fields.
    pub(crate) async fn create_tenant_with(&self, tenant: Value) -> Tenant {
        let reply = self
            .gateway
            .post("/api/v1/tenants")
            .bearer(&self.keys.platform_admin_token())
            .json(&tenant)
            .send()
            .await;
        assert_eq!(reply.status, 200, "creating a tenant: {}", reply.text());
        let body = reply.json();
        Tenant {
            id: TenantId::parse(body["id"].as_str().unwrap()).unwrap(),
            slug: body["slug"].as_str().unwrap().to_owned(),
        }
    }

    /// Suspends a tenant through the gateway, as a platform administrator.
    pub(crate) async fn suspend(&self, tenant: &Tenant) {
        let reply = self
            .gateway
            .post(&format!("/api/v1/tenants/{}:suspend", tenant.id))
            .bearer(&self.keys.platform_admin_token())
            .json(&json!({"reason": "unpaid invoices"}))
            .send()
            .await;
        assert_eq!(reply.status, 200, "suspending: {}", reply.text());
    }

    /// A member's token for `tenant`, signed by the test key.
    pub(crate) fn token(&self, tenant: &Tenant) -> String {
        self.keys.user_token(tenant.id, Role::Member)
    }
}

impl Drop for TestSuite {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.descriptor_file);
    }
}

fn spawn_until_stopped<F, Fut>(run: F) -> oneshot::Sender<()>
where
    F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let service = run(Box::pin(async {
        let _ = stopped.await;
    }));
    tokio::spawn(service);
    stop
}

/// A tenant the test created.
#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) slug: String,
}

impl Tenant {
    /// The tenant's subdomain.
    pub(crate) fn host(&self) -> String {
        format!("{}.{BASE_DOMAIN}", self.slug)
    }
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The error's `code`, asserting the shared error shape.
    pub(crate) fn error_code(&self) -> String {
        let body = self.json();
        let error = &body["error"];
        assert!(error["message"].is_string(), "no error message: {body}");
        assert!(error["details"].is_array(), "no error details: {body}");
        assert!(error["request_id"].is_string(), "no request id: {body}");
        error["code"].as_str().expect("an error code").to_owned()
    }

    /// The error's `reason`, asserting the shared error shape, a canonical code beside it and
    /// the same reason in an ErrorInfo detail.
    pub(crate) fn error_reason(&self) -> String {
        let code = self.error_code();
        let body = self.json();
        let reason = body["error"]["reason"]
            .as_str()
            .expect("a reason")
            .to_owned();
        assert_ne!(code, reason, "the code is the gRPC code's name: {body}");
        let info = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(
            info.map(|info| info["reason"].clone()),
            Some(serde_json::Value::from(reason.as_str())),
            "{body}"
        );
        reason
    }
}

/// A request being built.
pub(crate) struct RequestBuilder {
    gateway: Gateway,
    request: http::request::Builder,
    body: Bytes,
}

impl Gateway {
    /// Starts a graceful shutdown: in-flight requests finish, new connections are refused.
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        RequestBuilder {
            gateway: self.clone(),
            request: http::Request::builder()
                .method(method)
                .uri(format!("http://{}{path}", self.addr)),
            body: Bytes::new(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }
}

impl RequestBuilder {
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub(crate) fn tenant(self, tenant: &Tenant) -> Self {
        self.header("x-tenant-id", &tenant.id.to_string())
    }

    pub(crate) fn json(mut self, body: &Value) -> Self {
        self.request = self.request.header("content-type", "application/json");
        self.body = Bytes::from(body.to_string());
        self
    }

    pub(crate) fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.request = self.request.header("content-type", content_type);
        self.body = body.into();
        self
    }

    /// A body without a content type.
    pub(crate) fn untyped_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub(crate) async fn send(self) -> Reply {
        let request = self.request.body(Full::new(self.body)).unwrap();
        let response = tokio::time::timeout(
            Duration::from_secs(30),
            self.gateway.client.request(request),
        )
        .await
        .expect("the gateway answers within 30 s")
        .expect("the gateway answers");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("reading the body").to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    /// Sends and returns the response with its body unread (streams).
    pub(crate) async fn send_streaming(self) -> http::Response<hyper::body::Incoming> {
        let request = self.request.body(Full::new(self.body)).unwrap();
        self.gateway
            .client
            .request(request)
            .await
            .expect("the gateway answers")
    }
}
