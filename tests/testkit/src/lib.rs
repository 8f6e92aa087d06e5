//! svc-auth and svc-tenant started in this process over one test's database, Redis prefix and
//! RabbitMQ prefix, as svc-auth's tests, the gateway's tests and the benchmarks need them,
//! optionally svc-forms or svc-workflow beside them ([`Services::start_with_forms`],
//! [`Services::start_with_workflow`]), the configuration of a gateway in front of them, and
//! what the benchmarks share ([`bench`], [`cpu`]). Every configuration starts from the defaults each binary's
//! `--help` documents.

pub mod bench;
pub mod cpu;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use platform::config::AuthConfig;
use platform::server::Listeners;
use platform::testing::{TestInfra, TestKeys, TestServer};
use proto::formflow::auth::v1 as wire;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use proto::formflow::tenant::v1 as tenant_wire;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use secrecy::SecretString;
use svc_auth::config::SecurityConfig;

/// The gateway's client id and secret at svc-auth.
pub const GATEWAY_CLIENT: (&str, &str) = ("gateway", "gateway-secret-0123456789");
/// svc-notify's client id and secret at svc-auth (it reads users' email addresses).
pub const NOTIFY_CLIENT: (&str, &str) = ("svc-notify", "notify-secret-0123456789");
/// svc-workflow's client id and secret at the test svc-auth (it calls svc-ai).
pub const WORKFLOW_CLIENT: (&str, &str) = ("svc-workflow", "workflow-secret-0123456789");

/// argon2id cheap enough for tests, and low lockout thresholds.
pub fn test_security() -> SecurityConfig {
    SecurityConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        lockout_threshold: 3,
        lockout_base: Duration::from_secs(2),
        ip_failure_limit: 50,
        ..owasp_security()
    }
}

/// argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1) and the lockout policy, as
/// deployed by default; for benchmarks.
pub fn owasp_security() -> SecurityConfig {
    svc_auth::Config::try_parse_from(["svc-auth"])
        .expect("svc-auth's defaults parse")
        .security
}

/// How the services are configured.
#[derive(Debug, Clone)]
pub struct Options {
    /// svc-auth's password and lockout settings.
    pub security: SecurityConfig,
    /// svc-tenant's base domain.
    pub base_domain: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            security: test_security(),
            base_domain: Some("forms.test".to_owned()),
        }
    }
}

/// svc-auth and svc-tenant, and svc-forms or svc-workflow when asked for, running until
/// dropped. Each trusts
/// `keys` besides svc-auth's own signing keys, so tests can mint any token.
#[derive(Debug)]
pub struct Services {
    /// svc-auth's gRPC address.
    pub auth_addr: SocketAddr,
    /// svc-tenant's gRPC address.
    pub tenant_addr: SocketAddr,
    /// svc-forms's gRPC address, when it was started.
    pub forms_addr: Option<SocketAddr>,
    /// svc-workflow's gRPC address, when it was started.
    pub workflow_addr: Option<SocketAddr>,
    _servers: Vec<TestServer>,
}

impl Services {
    /// Starts both over `infra`. svc-tenant's port is bound first, so svc-auth knows where
    /// to find it before either starts.
    pub async fn start(infra: &TestInfra, keys: &TestKeys, options: Options) -> Services {
        let tenant_listeners = Listeners::loopback().await.expect("binding a port");
        let tenant_addr = tenant_listeners.grpc_addr();

        let mut auth_config =
            svc_auth::Config::try_parse_from(["svc-auth"]).expect("svc-auth's defaults parse");
        auth_config.tenant_url = format!("http://{tenant_addr}");
        auth_config.extra_jwks_file = keys.auth_config().auth_jwks_file;
        auth_config.security = options.security;
        auth_config.secrets.encryption_keys = Some(SecretString::from(
            platform::crypto::Sealer::generate_key_entry("test"),
        ));
        auth_config.secrets.service_clients = Some(SecretString::from(
            [GATEWAY_CLIENT, NOTIFY_CLIENT, WORKFLOW_CLIENT]
                .map(|(id, secret)| format!("{id}:{secret}"))
                .join(","),
        ));
        auth_config.infra = infra.config();
        let auth = TestServer::start(|listeners| svc_auth::build(auth_config, listeners)).await;

        let mut tenant_config = svc_tenant::Config::try_parse_from(["svc-tenant"])
            .expect("svc-tenant's defaults parse");
        tenant_config.options.base_domain = options.base_domain;
        tenant_config.infra = infra.config();
        tenant_config.auth = verification(keys, auth.addr());
        let tenant = TestServer::run(
            svc_tenant::build(tenant_config, tenant_listeners)
                .await
                .expect("svc-tenant starts"),
        )
        .await;
        Services {
            auth_addr: auth.addr(),
            tenant_addr,
            forms_addr: None,
            workflow_addr: None,
            _servers: vec![auth, tenant],
        }
    }

    /// Starts svc-auth and svc-tenant as [`Services::start`] does, and svc-forms beside them
    /// over the same `infra` (its own `forms` schema), trusting svc-auth's keys and `keys`;
    /// [`Services::gateway_config`] then routes the forms API to it.
    pub async fn start_with_forms(
        infra: &TestInfra,
        keys: &TestKeys,
        options: Options,
    ) -> Services {
        let mut services = Self::start(infra, keys, options).await;
        let mut forms_config =
            svc_forms::Config::try_parse_from(["svc-forms"]).expect("svc-forms's defaults parse");
        forms_config.infra = infra.config();
        forms_config.auth = verification(keys, services.auth_addr);
        let forms = TestServer::start(|listeners| svc_forms::build(forms_config, listeners)).await;
        services.forms_addr = Some(forms.addr());
        services._servers.push(forms);
        services
    }

    /// Starts svc-auth and svc-tenant as [`Services::start`] does, and svc-workflow beside
    /// them over the same `infra` (its own `workflow` schema, a fresh credentials key),
    /// trusting svc-auth's keys and `keys`, configured further by `configure`;
    /// [`Services::gateway_config`] then routes the workflow API to it.
    pub async fn start_with_workflow(
        infra: &TestInfra,
        keys: &TestKeys,
        options: Options,
        configure: impl FnOnce(&mut svc_workflow::Config),
    ) -> Services {
        let mut services = Self::start(infra, keys, options).await;
        let mut config = svc_workflow::Config::try_parse_from(["svc-workflow"])
            .expect("svc-workflow's defaults parse");
        config.infra = infra.config();
        config.auth = verification(keys, services.auth_addr);
        config.options.encryption_keys = Some(SecretString::from(
            platform::crypto::Sealer::generate_key_entry("bench"),
        ));
        configure(&mut config);
        let workflow = TestServer::start(|listeners| svc_workflow::build(config, listeners)).await;
        services.workflow_addr = Some(workflow.addr());
        services._servers.push(workflow);
        services
    }

    /// Signs up tenant `slug` owned by `email` with `password`, as anyone can, straight at
    /// svc-auth.
    pub async fn sign_up(
        &self,
        slug: &str,
        email: &str,
        password: &str,
    ) -> anyhow::Result<wire::SignUpResponse> {
        let mut client = AuthServiceClient::connect(format!("http://{}", self.auth_addr)).await?;
        let request = wire::SignUpRequest {
            tenant_slug: slug.into(),
            tenant_display_name: format!("{slug} Inc."),
            email: email.into(),
            password: password.into(),
            display_name: "Ada Lovelace".into(),
        };
        Ok(client.sign_up(request).await?.into_inner())
    }

    /// Raises tenant `tenant_id`'s rate limits out of a benchmark's way (its plan's would
    /// refuse most of a run), as a platform administrator signed by `keys`.
    pub async fn lift_rate_limits(&self, keys: &TestKeys, tenant_id: &str) -> anyhow::Result<()> {
        let mut request = tonic::Request::new(tenant_wire::UpdateTenantRequest {
            tenant: Some(tenant_wire::Tenant {
                name: format!("tenants/{tenant_id}"),
                rate_limits: Some(tenant_wire::RateLimits {
                    requests_per_minute: 1_000_000,
                    burst: 1_000_000,
                }),
                ..tenant_wire::Tenant::default()
            }),
            update_mask: Some(proto::pbjson_types::FieldMask {
                paths: vec!["rate_limits".into()],
            }),
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", keys.platform_admin_token()).parse()?,
        );
        TenantServiceClient::connect(format!("http://{}", self.tenant_addr))
            .await?
            .update_tenant(request)
            .await?;
        Ok(())
    }

    /// A gateway configuration in front of these services: svc-tenant and svc-auth as
    /// upstreams (and svc-forms when it runs), the other suite services pointing nowhere (their
    /// routes answer 503), the gateway's client at svc-auth, `infra`'s Redis and RabbitMQ,
    /// defaults otherwise.
    pub fn gateway_config(&self, infra: &TestInfra, keys: &TestKeys) -> gateway::Config {
        let mut config =
            gateway::Config::try_parse_from(["gateway", "--auth-client-id", GATEWAY_CLIENT.0])
                .expect("the gateway's defaults parse");
        config.http_addr = "127.0.0.1:0".parse().expect("an address");
        config.upstreams.tenant_url = format!("http://{}", self.tenant_addr);
        // Port 1: refused at once, and no test can be listening there.
        let nowhere = "http://127.0.0.1:1".to_owned();
        config.upstreams.forms_url = match self.forms_addr {
            Some(forms_addr) => format!("http://{forms_addr}"),
            None => nowhere.clone(),
        };
        config.upstreams.workflow_url = match self.workflow_addr {
            Some(workflow_addr) => format!("http://{workflow_addr}"),
            None => nowhere.clone(),
        };
        config.upstreams.ai_url = nowhere.clone();
        config.upstreams.notify_url = nowhere;
        config.redis = infra.redis.clone();
        config.amqp = infra.amqp.clone();
        config.auth = verification(keys, self.auth_addr);
        config.credentials.auth_client_secret = Some(SecretString::from(GATEWAY_CLIENT.1));
        config
    }
}

/// Token verification trusting svc-auth's keys and `keys`.
fn verification(keys: &TestKeys, auth_addr: SocketAddr) -> AuthConfig {
    AuthConfig {
        auth_url: Some(format!("http://{auth_addr}")),
        ..keys.auth_config()
    }
}
