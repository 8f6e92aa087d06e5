//! Starts every service and the gateway in this process, each on its own port, and stops them
//! together: on Ctrl-C or SIGTERM, or as soon as one of them fails.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use platform::config::{AmqpConfig, AuthConfig, DbConfig, RedisConfig};
use platform::telemetry::TelemetryConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::demo;
use crate::dev_keys::DevKeys;

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
    let auth = AuthConfig {
        auth_jwks_file: Some(keys.jwks_path()),
        auth_issuer: "formflow".to_owned(),
        auth_audience: "formflow".to_owned(),
    };
    let grpc_addr = |index: u16| SocketAddr::new(args.host, args.grpc_base_port + index);
    let shutdown = platform::shutdown::token(platform::shutdown::signal());

    // svc-tenant first: its migrations must finish before anything depends on it.
    let tenant = svc_tenant::App::build(svc_tenant::Config {
        grpc_addr: grpc_addr(0),
        metrics_addr: None,
        base_domain: Some(args.base_domain.clone()),
        cache_ttl: Duration::from_secs(300),
        migrate_only: false,
        db: args.db.clone(),
        redis: args.redis.clone(),
        amqp: args.amqp.clone(),
        auth: auth.clone(),
        telemetry: args.telemetry.clone(),
    })
    .await
    .context("starting svc-tenant")?;
    let tenant_addr = tenant.grpc_addr();

    let mut tasks = JoinSet::new();
    tasks.spawn(named(
        "svc-tenant",
        tenant.run_until_stopped(stopped(&shutdown)),
    ));
    tasks.spawn(named(
        "svc-auth",
        svc_auth::run(
            svc_auth::Config {
                grpc_addr: grpc_addr(1),
                metrics_addr: None,
                telemetry: args.telemetry.clone(),
            },
            stopped(&shutdown),
        ),
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
    tasks.spawn(named(
        "svc-ai",
        svc_ai::run(
            svc_ai::Config {
                grpc_addr: grpc_addr(4),
                metrics_addr: None,
                telemetry: args.telemetry.clone(),
            },
            stopped(&shutdown),
        ),
    ));
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
    let url = |index: u16| format!("http://{}", grpc_addr(index));
    let gateway = gateway::App::build(gateway::Config {
        http_addr: SocketAddr::new(args.host, args.gateway_port),
        metrics_addr: None,
        upstreams: gateway::config::Upstreams {
            tenant_url: url(0),
            auth_url: url(1),
            forms_url: url(2),
            workflow_url: url(3),
            ai_url: url(4),
            notify_url: url(5),
        },
        telemetry: args.telemetry.clone(),
    })
    .await
    .context("starting the gateway")?;
    let gateway_addr = gateway.http_addr();
    tasks.spawn(named(
        "gateway",
        gateway.run_until_stopped(stopped(&shutdown)),
    ));

    if args.demo {
        let demo = demo::ensure_demo_tenant(tenant_addr, &keys)
            .await
            .context("creating the demo tenant")?;
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
    let mut lines = vec![
        String::new(),
        "FormFlow is running. Ctrl-C stops it.".to_owned(),
        String::new(),
        format!("  gateway       http://{gateway_addr}   (/healthz, /readyz, /metrics)"),
    ];
    for (index, name) in SERVICES.iter().enumerate() {
        let port = args.grpc_base_port + index as u16;
        lines.push(format!(
            "  {name:<13} {}:{port}   (gRPC, reflection, health)",
            args.host
        ));
    }
    let tenant_port = args.grpc_base_port;
    let host = args.host;
    lines.extend([
        String::new(),
        format!(
            "Demo tenant   {} ({}), id {}, host {}.{}",
            demo.slug, demo.display_name, demo.tenant_id, demo.slug, args.base_domain
        ),
        format!("Demo user     {} (owner of the demo tenant)", demo.user_id),
        String::new(),
        "Log in: password login comes with svc-auth; until then, mint a token with the dev key:".to_owned(),
        format!(
            "  TOKEN=$(target/debug/formflow token --tenant {} --role owner)",
            demo.tenant_id
        ),
        format!(
            "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"name\":\"tenants/{}\"}}' {host}:{tenant_port} formflow.tenant.v1.TenantService/GetTenant",
            demo.tenant_id
        ),
        "  target/debug/formflow token --platform-admin    # cross-tenant operations".to_owned(),
        String::new(),
    ]);
    println!("{}", lines.join("\n"));
}
