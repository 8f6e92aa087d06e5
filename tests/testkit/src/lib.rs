//! svc-auth and svc-tenant started in this process over one test's database, Redis prefix and
//! RabbitMQ prefix, as svc-auth's tests, the gateway's tests and both benchmarks need them,
//! and the configuration of a gateway in front of them.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::AuthConfig;
use platform::testing::{TestInfra, TestKeys};
use secrecy::SecretString;
use svc_auth::config::{SecretsConfig, SecurityConfig, TokenConfig};
use tokio::sync::oneshot;

/// The gateway's client id and secret at svc-auth.
pub const GATEWAY_CLIENT: (&str, &str) = ("gateway", "gateway-secret-0123456789");

/// argon2id cheap enough for tests, and low lockout thresholds.
pub fn test_security() -> SecurityConfig {
    SecurityConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        password_min_length: 12,
        lockout_threshold: 3,
        lockout_base: Duration::from_secs(2),
        lockout_max: Duration::from_secs(3600),
        ip_failure_limit: 50,
        ip_failure_window: Duration::from_secs(900),
    }
}

/// argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1), as deployed; for benchmarks.
pub fn owasp_security() -> SecurityConfig {
    SecurityConfig {
        argon2_memory_kib: 19_456,
        argon2_iterations: 2,
        ..test_security()
    }
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

/// svc-auth and svc-tenant, running until dropped. Both trust `keys` besides svc-auth's own
/// signing keys, so tests can mint any token.
#[derive(Debug)]
pub struct Services {
    /// svc-auth's gRPC address.
    pub auth_addr: SocketAddr,
    /// svc-tenant's gRPC address.
    pub tenant_addr: SocketAddr,
    stops: Vec<oneshot::Sender<()>>,
}

impl Services {
    /// Starts both over `infra`.
    ///
    /// svc-auth must know svc-tenant's address before svc-tenant binds it, so the port is
    /// chosen free and may be taken by a parallel test in between (rarely: it is
    /// chosen outside the ephemeral range): then both start again on other ports.
    pub async fn start(infra: &TestInfra, keys: &TestKeys, options: Options) -> Services {
        const ATTEMPTS: u32 = 5;
        // One key for every attempt: a failed attempt may have sealed svc-auth's signing key
        // with it already.
        let encryption_keys = svc_auth::crypto::Sealer::generate_key_entry("test");
        for attempt in 1..=ATTEMPTS {
            match Self::try_start(infra, keys, options.clone(), &encryption_keys).await {
                Ok(services) => return services,
                Err(error) if attempt < ATTEMPTS && port_taken(&error) => continue,
                Err(error) => panic!("svc-tenant starts: {error:?}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    async fn try_start(
        infra: &TestInfra,
        keys: &TestKeys,
        options: Options,
        encryption_keys: &str,
    ) -> anyhow::Result<Services> {
        let tenant_addr = SocketAddr::from((
            [127, 0, 0, 1],
            platform::testing::free_ports_outside_the_ephemeral_range(1),
        ));
        let auth = svc_auth::App::build(svc_auth::Config {
            command: None,
            grpc_addr: "127.0.0.1:0".parse().expect("an address"),
            metrics_addr: None,
            tenant_url: format!("http://{tenant_addr}"),
            migrate_only: false,
            extra_jwks_file: keys.auth_config().auth_jwks_file,
            tokens: TokenConfig {
                issuer: "formflow".into(),
                audience: "formflow".into(),
                access_token_ttl: Duration::from_secs(900),
                refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
                service_token_ttl: Duration::from_secs(300),
            },
            security: options.security,
            secrets: SecretsConfig {
                encryption_keys: Some(SecretString::from(encryption_keys.to_owned())),
                encryption_keys_file: None,
                service_clients: Some(SecretString::from(format!(
                    "{}:{}",
                    GATEWAY_CLIENT.0, GATEWAY_CLIENT.1
                ))),
                service_clients_file: None,
            },
            db: infra.db.clone(),
            redis: infra.redis.clone(),
            amqp: infra.amqp.clone(),
            telemetry: Default::default(),
        })
        .await
        .expect("svc-auth starts");
        let auth_addr = auth.grpc_addr();
        let (auth_stop, auth_stopped) = oneshot::channel::<()>();
        tokio::spawn(auth.run_until_stopped(async {
            let _ = auth_stopped.await;
        }));

        let tenant = svc_tenant::App::build(svc_tenant::Config {
            grpc_addr: tenant_addr,
            metrics_addr: None,
            base_domain: options.base_domain,
            cache_ttl: Duration::from_secs(300),
            migrate_only: false,
            db: infra.db.clone(),
            redis: infra.redis.clone(),
            amqp: infra.amqp.clone(),
            auth: verification(keys, auth_addr),
            telemetry: Default::default(),
        })
        .await?;
        let (tenant_stop, tenant_stopped) = oneshot::channel::<()>();
        tokio::spawn(tenant.run_until_stopped(async {
            let _ = tenant_stopped.await;
        }));
        Ok(Services {
            auth_addr,
            tenant_addr,
            stops: vec![auth_stop, tenant_stop],
        })
    }

    /// A gateway configuration in front of these services: svc-tenant and svc-auth as
    /// upstreams, the other suite services pointing nowhere (their routes answer 503), the
    /// gateway's client at svc-auth, `infra`'s Redis and RabbitMQ, defaults otherwise.
    pub fn gateway_config(&self, infra: &TestInfra, keys: &TestKeys) -> gateway::Config {
        use clap::Parser;
        let mut config =
            gateway::Config::try_parse_from(["gateway", "--auth-client-id", GATEWAY_CLIENT.0])
                .expect("the gateway's defaults parse");
        config.http_addr = "127.0.0.1:0".parse().expect("an address");
        config.upstreams.tenant_url = format!("http://{}", self.tenant_addr);
        // Port 1: refused at once, and no test can be listening there.
        let nowhere = "http://127.0.0.1:1".to_owned();
        config.upstreams.forms_url = nowhere.clone();
        config.upstreams.workflow_url = nowhere.clone();
        config.upstreams.ai_url = nowhere.clone();
        config.upstreams.notify_url = nowhere;
        config.redis = infra.redis.clone();
        config.amqp = infra.amqp.clone();
        config.auth = verification(keys, self.auth_addr);
        config.credentials.auth_client_secret = Some(SecretString::from(GATEWAY_CLIENT.1));
        config
    }
}

/// Whether `error` says an address was in use.
fn port_taken(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// Token verification trusting svc-auth's keys and `keys`.
fn verification(keys: &TestKeys, auth_addr: SocketAddr) -> AuthConfig {
    AuthConfig {
        auth_url: Some(format!("http://{auth_addr}")),
        ..keys.auth_config()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}
