//! Starts every service and the gateway in this process, each on its own port, and stops them
//! together: on Ctrl-C or SIGTERM, or as soon as one of them fails.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use platform::config::{AmqpConfig, AuthConfig, DbConfig, RedisConfig};
use platform::telemetry::TelemetryConfig;
use secrecy::SecretString;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::demo;
use crate::dev_keys::{DevKeys, random_password, state_secret};

/// Arguments of `formflow up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Address every service and the gateway listen on.
    #[arg(long, env = "FORMFLOW_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port of the gateway (HTTP).
    #[arg(long, env = "FORMFLOW_GATEWAY_PORT", default_value_t = 8080)]
    pub gateway_port: u16,
    /// gRPC port of svc-tenant; svc-auth, svc-forms, svc-workflow, svc-ai and svc-notify take
    /// the next five.
    #[arg(long, env = "FORMFLOW_GRPC_BASE_PORT", default_value_t = 50051)]
    pub grpc_base_port: u16,
    /// Directory for the development signing key and other local state.
    #[arg(long, env = "FORMFLOW_STATE_DIR", default_value = ".formflow")]
    pub state_dir: PathBuf,
    /// Base domain whose subdomains name tenants (`demo.localhost`).
    #[arg(long, env = "TENANT_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,
    /// Create the demo tenant (if missing) and print how to use it.
    #[arg(long, env = "FORMFLOW_DEMO")]
    pub demo: bool,
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub redis: RedisConfig,
    #[command(flatten)]
    pub amqp: AmqpConfig,
    /// svc-ai's models (`scripts/setup.sh` installs them and sets these).
    #[command(flatten)]
    pub ai: svc_ai::ModelsConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// Ports of the services, in the order of `grpc_base_port` + 0..5.
const SERVICES: [&str; 6] = [
    "svc-tenant",
    "svc-auth",
    "svc-forms",
    "svc-workflow",
    "svc-ai",
    "svc-notify",
];

/// Runs the suite until a signal or the first failure.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let _telemetry = platform::telemetry::init("formflow", &args.telemetry)?;
    let keys = DevKeys::load_or_create(&args.state_dir)?;
    let grpc_addr = |index: u16| SocketAddr::new(args.host, args.grpc_base_port + index);
    let url = |index: u16| format!("http://{}", grpc_addr(index));
    let shutdown = platform::shutdown::token(platform::shutdown::signal());
    let mut tasks = JoinSet::new();

    // svc-auth first: every other service fetches its signing keys at start.
    let auth_config = auth_config(&args, &keys, grpc_addr(1), url(0))?;
    let auth = svc_auth::App::build(auth_config.clone())
        .await
        .context("starting svc-auth")?;
    let auth_addr = auth.grpc_addr();
    tasks.spawn(named(
        "svc-auth",
        auth.run_until_stopped(stopped(&shutdown)),
    ));
    // Services trust svc-auth's keys, and the dev key that `formflow token` signs with.
    let verification = AuthConfig {
        auth_url: Some(url(1)),
        auth_jwks_file: Some(keys.jwks_path()),
        auth_issuer: "formflow".to_owned(),
        auth_audience: "formflow".to_owned(),
    };

    let tenant = svc_tenant::App::build(svc_tenant::Config {
        grpc_addr: grpc_addr(0),
        metrics_addr: None,
        base_domain: Some(args.base_domain.clone()),
        cache_ttl: Duration::from_secs(300),
        migrate_only: false,
        db: args.db.clone(),
        redis: args.redis.clone(),
        amqp: args.amqp.clone(),
        auth: verification.clone(),
        telemetry: args.telemetry.clone(),
    })
    .await
    .context("starting svc-tenant")?;
    let tenant_addr = tenant.grpc_addr();
    tasks.spawn(named(
        "svc-tenant",
        tenant.run_until_stopped(stopped(&shutdown)),
    ));
    tasks.spawn(named(
        "svc-forms",
        svc_forms::run(
            svc_forms::Config {
                grpc_addr: grpc_addr(2),
                metrics_addr: None,
                telemetry: args.telemetry.clone(),
            },
            stopped(&shutdown),
        ),
    ));
    tasks.spawn(named(
        "svc-workflow",
        svc_workflow::run(
            svc_workflow::Config {
                grpc_addr: grpc_addr(3),
                metrics_addr: None,
                telemetry: args.telemetry.clone(),
            },
            stopped(&shutdown),
        ),
    ));
    let ai = svc_ai::App::build(svc_ai::Config {
        grpc_addr: grpc_addr(4),
        metrics_addr: None,
        models: args.ai.clone(),
        auth: verification.clone(),
        telemetry: args.telemetry.clone(),
    })
    .await
    .context("starting svc-ai")?;
    tasks.spawn(named("svc-ai", ai.run_until_stopped(stopped(&shutdown))));
    tasks.spawn(named(
        "svc-notify",
        svc_notify::run(
            svc_notify::Config {
                grpc_addr: grpc_addr(5),
                metrics_addr: None,
                telemetry: args.telemetry.clone(),
            },
            stopped(&shutdown),
        ),
    ));
    let gateway = gateway::App::build(gateway_config(&args, verification, url)?)
        .await
        .context("starting the gateway")?;
    let gateway_addr = gateway.http_addr();
    tasks.spawn(named(
        "gateway",
        gateway.run_until_stopped(stopped(&shutdown)),
    ));

    if args.demo {
        let demo = demo::ensure_demo(&auth_config, auth_addr, tenant_addr, &args.state_dir)
            .await
            .context("creating the demo")?;
        print_banner(&args, gateway_addr, &demo);
    }
    tracing::info!(%gateway_addr, "FormFlow suite running");

    // The first service to stop (a failure, or the signal) stops all the others.
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        shutdown.cancel();
        if let Err(error) = joined
            .context("a service task panicked")
            .and_then(|result| result)
        {
            tracing::error!(error = format!("{error:#}"), "stopping the suite");
            if outcome.is_ok() {
                outcome = Err(error);
            }
        }
    }
    outcome
}

/// The gateway's configuration: the suite's upstreams, the services' token verification, the
/// service client the launcher registered with svc-auth, defaults otherwise.
fn gateway_config(
    args: &UpArgs,
    verification: AuthConfig,
    url: impl Fn(u16) -> String,
) -> anyhow::Result<gateway::Config> {
    use clap::Parser;
    // Everything not set here keeps the default `gateway --help` documents.
    let mut config = gateway::Config::try_parse_from(["gateway", "--auth-client-id", "gateway"])?;
    config.http_addr = SocketAddr::new(args.host, args.gateway_port);
    config.upstreams.tenant_url = url(0);
    config.upstreams.forms_url = url(2);
    config.upstreams.workflow_url = url(3);
    config.upstreams.ai_url = url(4);
    config.upstreams.notify_url = url(5);
    config.edge.base_domain = Some(args.base_domain.clone());
    config.redis = args.redis.clone();
    config.amqp = args.amqp.clone();
    config.auth = verification;
    let clients = state_secret(&args.state_dir, "service-clients", || {
        format!("gateway:{}", random_password())
    })?;
    let secret = clients
        .split(',')
        .find_map(|client| client.strip_prefix("gateway:"))
        .context("the service-clients file has no gateway client")?;
    config.credentials.auth_client_secret = Some(SecretString::from(secret.to_owned()));
    config.telemetry = args.telemetry.clone();
    Ok(config)
}

/// svc-auth's configuration: shared blocks from the arguments, development secrets (created
/// on first start) from the state directory.
fn auth_config(
    args: &UpArgs,
    keys: &DevKeys,
    grpc_addr: SocketAddr,
    tenant_url: String,
) -> anyhow::Result<svc_auth::Config> {
    let encryption_keys = state_secret(&args.state_dir, "auth-encryption-keys", || {
        svc_auth::crypto::Sealer::generate_key_entry("dev")
    })?;
    let service_clients = state_secret(&args.state_dir, "service-clients", || {
        format!("gateway:{}", random_password())
    })?;
    Ok(svc_auth::Config {
        command: None,
        grpc_addr,
        metrics_addr: None,
        tenant_url,
        migrate_only: false,
        extra_jwks_file: Some(keys.jwks_path()),
        tokens: svc_auth::config::TokenConfig {
            issuer: "formflow".to_owned(),
            audience: "formflow".to_owned(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            service_token_ttl: Duration::from_secs(5 * 60),
        },
        security: svc_auth::config::SecurityConfig {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            password_min_length: 12,
            lockout_threshold: 5,
            lockout_base: Duration::from_secs(60),
            lockout_max: Duration::from_secs(3600),
            ip_failure_limit: 30,
            ip_failure_window: Duration::from_secs(900),
        },
        secrets: svc_auth::config::SecretsConfig {
            encryption_keys: Some(SecretString::from(encryption_keys)),
            encryption_keys_file: None,
            service_clients: Some(SecretString::from(service_clients)),
            service_clients_file: None,
        },
        db: args.db.clone(),
        redis: args.redis.clone(),
        amqp: args.amqp.clone(),
        telemetry: args.telemetry.clone(),
    })
}

fn stopped(token: &CancellationToken) -> impl Future<Output = ()> + Send + 'static {
    token.clone().cancelled_owned()
}

async fn named(
    name: &'static str,
    service: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    service.await.with_context(|| format!("{name} failed"))
}

fn print_banner(args: &UpArgs, gateway_addr: SocketAddr, demo: &demo::Demo) {
    let host = args.host;
    let tenant_port = args.grpc_base_port;
    let mut lines = vec![
        String::new(),
        "FormFlow is running. Ctrl-C stops it.".to_owned(),
        String::new(),
        format!("  gateway       http://{gateway_addr}   (/healthz, /readyz, /metrics)"),
    ];
    for (index, name) in SERVICES.iter().enumerate() {
        let port = args.grpc_base_port + index as u16;
        lines.push(format!(
            "  {name:<13} {host}:{port}   (gRPC, reflection, health)"
        ));
    }
    lines.extend([
        String::new(),
        format!(
            "Demo tenant   {} ({}), id {}, host {}.{}",
            demo.slug, demo.display_name, demo.tenant_id, demo.slug, args.base_domain
        ),
        format!("  owner       {}  password {}", demo::OWNER_EMAIL, demo.owner_password),
        format!("Platform admin {}  password {}", demo::ADMIN_EMAIL, demo.admin_password),
        format!("  (passwords are kept in {})", args.state_dir.display()),
        String::new(),
        "Log in over REST through the gateway, then call the API with the token:".to_owned(),
        format!(
            "  curl -s -H 'x-tenant-id: {}' -d '{{\"email\":\"{}\",\"password\":\"{}\"}}' http://{gateway_addr}/api/v1/auth:login",
            demo.slug,
            demo::OWNER_EMAIL,
            demo.owner_password
        ),
        format!("  curl -s -H \"authorization: Bearer $ACCESS_TOKEN\" http://{gateway_addr}/api/v1/users/me"),
        format!("  curl -s http://{gateway_addr}/openapi.json    # every route, OpenAPI 3"),
        format!(
            "  grpcurl -plaintext -H \"authorization: Bearer $ACCESS_TOKEN\" -d '{{\"name\":\"tenants/{}\"}}' {host}:{tenant_port} formflow.tenant.v1.TenantService/GetTenant",
            demo.tenant_id
        ),
        "  cargo run -q --bin formflow -- token --platform-admin    # a dev-key token for scripts".to_owned(),
        String::new(),
    ]);
    println!("{}", lines.join("\n"));
}
