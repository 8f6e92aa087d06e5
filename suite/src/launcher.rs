//! Starts every service and the gateway in this process, each on its own port, and stops them
//! together: on Ctrl-C or SIGTERM, or as soon as one of them fails.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use platform::config::{AuthConfig, InfraConfig, ServiceClientConfig, ServiceConfig};
use platform::server::Listeners;
use platform::suite::{
    AI, AUTH, FORMS, NOTIFY, SERVICES, SuiteMember, SuiteService, TENANT, WORKFLOW,
};
use platform::telemetry::TelemetryConfig;
use secrecy::SecretString;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::demo;
use crate::dev_keys::{DevKeys, client_secret, service_clients, state_secret};

/// Arguments of `formflow up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Address every service and the gateway listen on.
    #[arg(long, env = "FORMFLOW_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port of the gateway (HTTP); 0 picks a free one.
    #[arg(long, env = "FORMFLOW_GATEWAY_PORT", default_value_t = 8080)]
    pub gateway_port: u16,
    /// gRPC port of svc-tenant; svc-auth, svc-forms, svc-workflow, svc-ai and svc-notify take
    /// the next five. 0 picks a free port for each; the banner says which.
    #[arg(long, env = "FORMFLOW_GRPC_BASE_PORT", default_value_t = TENANT.default_port)]
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
    pub infra: InfraConfig,
    /// svc-ai's models (`scripts/setup.sh` installs them and sets these).
    #[command(flatten)]
    pub ai: svc_ai::ModelsConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// Every service's port, bound before anything starts: each service learns where the others
/// are before they serve, and port 0 works.
struct Ports {
    listeners: Vec<Option<Listeners>>,
    addrs: Vec<SocketAddr>,
}

impl Ports {
    async fn bind(args: &UpArgs) -> anyhow::Result<Ports> {
        let mut listeners = Vec::new();
        for (index, service) in SERVICES.iter().enumerate() {
            let port = match args.grpc_base_port {
                0 => 0,
                base => base + index as u16,
            };
            let bound = Listeners::bind(SocketAddr::new(args.host, port), None)
                .await
                .with_context(|| format!("binding the port of {}", service.name))?;
            listeners.push(Some(bound));
        }
        let addrs = listeners
            .iter()
            .flatten()
            .map(Listeners::grpc_addr)
            .collect();
        Ok(Ports { listeners, addrs })
    }

    fn index(service: SuiteService) -> usize {
        SERVICES
            .iter()
            .position(|known| *known == service)
            .expect("a service of the table")
    }

    fn take(&mut self, service: SuiteService) -> Listeners {
        self.listeners[Self::index(service)]
            .take()
            .expect("each service starts once")
    }

    fn addr(&self, service: SuiteService) -> SocketAddr {
        self.addrs[Self::index(service)]
    }

    fn url(&self, service: SuiteService) -> String {
        format!("http://{}", self.addr(service))
    }
}

/// The suite's clients of svc-auth: they obtain service tokens (the gateway to resolve tenants
/// and verify API keys, svc-notify to read users' email addresses, svc-workflow to classify
/// with svc-ai and send through svc-notify).
pub(crate) const CLIENTS: &[&str] = &["gateway", NOTIFY.name, WORKFLOW.name];

/// A service's configuration: the defaults its `--help` documents, parsed the same way.
fn defaults<C: Parser>(service: SuiteService) -> anyhow::Result<C> {
    C::try_parse_from([service.name]).with_context(|| format!("the defaults of {}", service.name))
}

/// The configuration of a service with state: its defaults, with the suite's infrastructure,
/// token verification and telemetry.
fn with_suite<S: SuiteMember, O: clap::Args>(
    args: &UpArgs,
    verification: &AuthConfig,
) -> anyhow::Result<ServiceConfig<S, O>> {
    let mut config: ServiceConfig<S, O> = defaults(S::SERVICE)?;
    config.infra = args.infra.clone();
    config.auth = verification.clone();
    config.telemetry = args.telemetry.clone();
    Ok(config)
}

/// Runs the suite until a signal or the first failure.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let _telemetry = platform::telemetry::init("formflow", &args.telemetry)?;
    let keys = DevKeys::load_or_create(&args.state_dir)?;
    let mut ports = Ports::bind(&args).await?;
    let shutdown = platform::shutdown::token(platform::shutdown::signal());
    let mut tasks = JoinSet::new();

    // svc-auth first: every other service fetches its signing keys at start.
    let clients = service_clients(&args.state_dir, CLIENTS)?;
    let auth_config = auth_config(&args, &keys, ports.url(TENANT), &clients)?;
    let auth = svc_auth::build(auth_config.clone(), ports.take(AUTH))
        .await
        .context("starting svc-auth")?;
    tasks.spawn(named(AUTH, auth.run_until_stopped(stopped(&shutdown))));
    // Services trust svc-auth's keys, and the dev key that `formflow token` signs with.
    let verification = AuthConfig {
        auth_url: Some(ports.url(AUTH)),
        auth_jwks_file: Some(keys.jwks_path()),
        ..defaults::<svc_tenant::Config>(TENANT)?.auth
    };

    let mut tenant_config: svc_tenant::Config = with_suite(&args, &verification)?;
    tenant_config.options.base_domain = Some(args.base_domain.clone());
    let tenant = svc_tenant::build(tenant_config, ports.take(TENANT))
        .await
        .context("starting svc-tenant")?;
    tasks.spawn(named(TENANT, tenant.run_until_stopped(stopped(&shutdown))));
    let forms = svc_forms::build(with_suite(&args, &verification)?, ports.take(FORMS))
        .await
        .context("starting svc-forms")?;
    tasks.spawn(named(FORMS, forms.run_until_stopped(stopped(&shutdown))));
    let mut workflow_config: svc_workflow::Config = with_suite(&args, &verification)?;
    workflow_config.options.encryption_keys = Some(SecretString::from(state_secret(
        &args.state_dir,
        "workflow-encryption-keys",
        || platform::crypto::Sealer::generate_key_entry("dev"),
    )?));
    // Its `action.ai_classify`, `action.notify` and `action.email` nodes call svc-ai and
    // svc-notify with its service token.
    workflow_config.options.ai_url = Some(ports.url(AI));
    workflow_config.options.notify_url = Some(ports.url(NOTIFY));
    let secret = client_secret(&clients, WORKFLOW.name).context("no svc-workflow client")?;
    workflow_config.options.service_client = ServiceClientConfig::of(WORKFLOW.name, secret);
    let workflow = svc_workflow::build(workflow_config, ports.take(WORKFLOW))
        .await
        .context("starting svc-workflow")?;
    tasks.spawn(named(
        WORKFLOW,
        workflow.run_until_stopped(stopped(&shutdown)),
    ));
    let mut ai_config: svc_ai::Config = with_suite(&args, &verification)?;
    ai_config.options.models = args.ai.clone();
    let ai = svc_ai::build(ai_config, ports.take(AI))
        .await
        .context("starting svc-ai")?;
    tasks.spawn(named(AI, ai.run_until_stopped(stopped(&shutdown))));
    let mut notify_config: svc_notify::Config = with_suite(&args, &verification)?;
    notify_config.options.encryption_keys = Some(SecretString::from(state_secret(
        &args.state_dir,
        "notify-encryption-keys",
        || platform::crypto::Sealer::generate_key_entry("dev"),
    )?));
    // It reads users' email addresses from svc-auth as a service client.
    let secret = client_secret(&clients, NOTIFY.name).context("no svc-notify client")?;
    notify_config.options.service_client = ServiceClientConfig::of(NOTIFY.name, secret);
    let notify = svc_notify::build(notify_config, ports.take(NOTIFY))
        .await
        .context("starting svc-notify")?;
    tasks.spawn(named(NOTIFY, notify.run_until_stopped(stopped(&shutdown))));

    let gateway = gateway::App::build(gateway_config(&args, verification, &ports, &clients)?)
        .await
        .context("starting the gateway")?;
    let gateway_addr = gateway.http_addr();
    let gateway_stopped = stopped(&shutdown);
    tasks.spawn(async move {
        gateway
            .run_until_stopped(gateway_stopped)
            .await
            .context("the gateway failed")
    });

    if args.demo {
        let demo = demo::ensure_demo(
            &auth_config,
            ports.addr(AUTH),
            ports.addr(TENANT),
            &args.state_dir,
        )
        .await
        .context("creating the demo")?;
        print_banner(&args, gateway_addr, &ports.addrs, &demo);
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

/// The gateway's configuration: the suite's upstreams, the services' token verification, its
/// secret among the service `clients` registered with svc-auth, defaults otherwise.
fn gateway_config(
    args: &UpArgs,
    verification: AuthConfig,
    ports: &Ports,
    clients: &str,
) -> anyhow::Result<gateway::Config> {
    // Everything not set here keeps the default `gateway --help` documents.
    let mut config = gateway::Config::try_parse_from(["gateway", "--auth-client-id", "gateway"])?;
    config.http_addr = SocketAddr::new(args.host, args.gateway_port);
    config.upstreams.tenant_url = ports.url(TENANT);
    config.upstreams.forms_url = ports.url(FORMS);
    config.upstreams.workflow_url = ports.url(WORKFLOW);
    config.upstreams.ai_url = ports.url(AI);
    config.upstreams.notify_url = ports.url(NOTIFY);
    config.edge.base_domain = Some(args.base_domain.clone());
    config.redis = args.infra.redis.clone();
    config.amqp = args.infra.amqp.clone();
    config.auth = verification;
    let secret = client_secret(clients, "gateway").context("no gateway client")?;
    config.credentials.auth_client_secret = Some(SecretString::from(secret.to_owned()));
    config.telemetry = args.telemetry.clone();
    Ok(config)
}

/// svc-auth's configuration: its defaults, the shared blocks from the arguments, development
/// secrets (created on first start) from the state directory, the suite's `service_clients`.
fn auth_config(
    args: &UpArgs,
    keys: &DevKeys,
    tenant_url: String,
    service_clients: &str,
) -> anyhow::Result<svc_auth::Config> {
    let encryption_keys = state_secret(&args.state_dir, "auth-encryption-keys", || {
        platform::crypto::Sealer::generate_key_entry("dev")
    })?;
    let mut config: svc_auth::Config = defaults(AUTH)?;
    config.tenant_url = tenant_url;
    config.extra_jwks_file = Some(keys.jwks_path());
    config.secrets.encryption_keys = Some(SecretString::from(encryption_keys));
    config.secrets.service_clients = Some(SecretString::from(service_clients.to_owned()));
    config.infra = args.infra.clone();
    config.telemetry = args.telemetry.clone();
    Ok(config)
}

fn stopped(token: &CancellationToken) -> impl Future<Output = ()> + Send + 'static {
    token.clone().cancelled_owned()
}

async fn named(
    service: SuiteService,
    running: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    running
        .await
        .with_context(|| format!("{} failed", service.name))
}

fn print_banner(
    args: &UpArgs,
    gateway_addr: SocketAddr,
    service_addrs: &[SocketAddr],
    demo: &demo::Demo,
) {
    let tenant_addr = service_addrs[0];
    let mut lines = vec![
        String::new(),
        "FormFlow is running. Ctrl-C stops it.".to_owned(),
        String::new(),
        format!("  gateway       http://{gateway_addr}   (/healthz, /readyz, /metrics)"),
    ];
    for (service, addr) in SERVICES.iter().zip(service_addrs) {
        lines.push(format!(
            "  {:<13} {addr}   (gRPC, reflection, health)",
            service.name
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
            "  curl -s -H 'x-tenant-id: {}' -H 'content-type: application/json' -d '{{\"email\":\"{}\",\"password\":\"{}\"}}' http://{gateway_addr}/api/v1/auth:login",
            demo.slug,
            demo::OWNER_EMAIL,
            demo.owner_password
        ),
        format!("  curl -s -H \"authorization: Bearer $ACCESS_TOKEN\" http://{gateway_addr}/api/v1/users/me"),
        format!("  curl -s http://{gateway_addr}/openapi.json    # every route, OpenAPI 3"),
        format!(
            "  grpcurl -plaintext -H \"authorization: Bearer $ACCESS_TOKEN\" -d '{{\"name\":\"tenants/{}\"}}' {tenant_addr} formflow.tenant.v1.TenantService/GetTenant",
            demo.tenant_id
        ),
        "  cargo run -q --bin formflow -- token --platform-admin    # a dev-key token for scripts".to_owned(),
        String::new(),
    ]);
    println!("{}", lines.join("\n"));
}
