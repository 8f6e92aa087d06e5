//! Configuration blocks shared by every service, for `#[command(flatten)]` into a service's
//! `Config`. Every option has a flag and an environment variable; every secret can instead be
//! read from a file named by `<VAR>_FILE`, as Kubernetes and Docker mount secrets.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Arg, ArgAction, ArgMatches, Command};
use secrecy::SecretString;

use crate::suite::SuiteMember;
use crate::telemetry::TelemetryConfig;

/// Reads a secret: the value itself when given, else the trimmed content of `file`, else
/// `default`. The error names the variable, never the value.
pub fn resolve_secret(
    value: Option<&SecretString>,
    file: Option<&PathBuf>,
    variable: &str,
    default: Option<&str>,
) -> anyhow::Result<SecretString> {
    if let Some(value) = value {
        return Ok(value.clone());
    }
    if let Some(file) = file {
        let content = std::fs::read_to_string(file)
            .with_context(|| format!("reading {variable}_FILE ({})", file.display()))?;
        return Ok(SecretString::from(content.trim().to_owned()));
    }
    default
        .map(SecretString::from)
        .with_context(|| format!("{variable} or {variable}_FILE must be set"))
}

/// The configuration of a suite service with state: where it listens ([`ServeConfig`]), its
/// own options `O`, the infrastructure, token verification and telemetry. Its `--help` is the
/// service's (`svc-forms --help`): name and description come from the suite's table.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig<S: SuiteMember, O: clap::Args> {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<crate::health::HealthCommand>,
    #[command(flatten)]
    pub serve: ServeConfig<S>,
    #[command(flatten)]
    pub options: O,
    #[command(flatten)]
    pub infra: InfraConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl<S: SuiteMember, O: clap::Args> clap::CommandFactory for ServiceConfig<S, O> {
    fn command() -> Command {
        named_after::<S>(<Self as clap::Args>::augment_args(Command::new(
            S::SERVICE.name,
        )))
    }

    fn command_for_update() -> Command {
        named_after::<S>(<Self as clap::Args>::augment_args_for_update(Command::new(
            S::SERVICE.name,
        )))
    }
}

impl<S: SuiteMember, O: clap::Args> clap::Parser for ServiceConfig<S, O> {}

/// `command` titled after the service (after the derive, which would title it with this
/// struct's documentation).
fn named_after<S: SuiteMember>(command: Command) -> Command {
    let service = S::SERVICE;
    command
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_negates_reqs(true)
        .about(format!("{}: {}.", service.name, service.about))
        .long_about(None)
}

/// A service without options of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NoOptions {}

/// Where a suite service listens, and whether it only migrates its schema. Flags and
/// variables are named after the service: `--grpc-addr` / `TENANT_GRPC_ADDR` (default: the
/// service's port on every interface), `--metrics-addr` / `TENANT_METRICS_ADDR`, and
/// `--migrate-only` / `TENANT_MIGRATE_ONLY`.
pub struct ServeConfig<S> {
    /// Address the gRPC server listens on.
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener; none when unset.
    pub metrics_addr: Option<SocketAddr>,
    /// Run the database migrations, then exit (for the deployment's migration job).
    pub migrate_only: bool,
    service: PhantomData<fn() -> S>,
}

impl<S> Clone for ServeConfig<S> {
    fn clone(&self) -> Self {
        Self {
            grpc_addr: self.grpc_addr,
            metrics_addr: self.metrics_addr,
            migrate_only: self.migrate_only,
            service: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for ServeConfig<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServeConfig")
            .field("grpc_addr", &self.grpc_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("migrate_only", &self.migrate_only)
            .finish()
    }
}

impl<S: SuiteMember> ServeConfig<S> {
    /// Binds the ports.
    pub async fn listeners(&self) -> anyhow::Result<crate::server::Listeners> {
        crate::server::Listeners::bind(self.grpc_addr, self.metrics_addr).await
    }
}

const GRPC_ADDR: &str = "grpc_addr";
const METRICS_ADDR: &str = "metrics_addr";
const MIGRATE_ONLY: &str = "migrate_only";

impl<S: SuiteMember> clap::FromArgMatches for ServeConfig<S> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            grpc_addr: *matches
                .get_one::<SocketAddr>(GRPC_ADDR)
                .expect("the gRPC address has a default"),
            metrics_addr: matches.get_one::<SocketAddr>(METRICS_ADDR).copied(),
            migrate_only: matches.get_flag(MIGRATE_ONLY),
            service: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<S: SuiteMember> clap::Args for ServeConfig<S> {
    fn augment_args(command: Command) -> Command {
        let service = S::SERVICE;
        // clap keeps names as `&'static str`; a few bytes per parse.
        let name = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
        let variable = |suffix: &str| name(format!("{}_{suffix}", service.env_prefix));
        command
            .arg(
                Arg::new(GRPC_ADDR)
                    .long("grpc-addr")
                    .value_name("GRPC_ADDR")
                    .env(variable("GRPC_ADDR"))
                    .value_parser(clap::value_parser!(SocketAddr))
                    .default_value(name(service.default_grpc_addr().to_string()))
                    .help("Address the gRPC server listens on"),
            )
            .arg(
                Arg::new(METRICS_ADDR)
                    .long("metrics-addr")
                    .value_name("METRICS_ADDR")
                    .env(variable("METRICS_ADDR"))
                    .value_parser(clap::value_parser!(SocketAddr))
                    .help("Address of the Prometheus `/metrics` listener; none when unset"),
            )
            .arg(
                Arg::new(MIGRATE_ONLY)
                    .long("migrate-only")
                    .env(variable("MIGRATE_ONLY"))
                    .action(ArgAction::SetTrue)
                    .help(
                        "Run the database migrations, then exit (for the deployment's migration job)",
                    ),
            )
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// The infrastructure a service with state connects to: Postgres, Redis and RabbitMQ.
#[derive(Debug, Clone, clap::Args)]
pub struct InfraConfig {
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub redis: RedisConfig,
    #[command(flatten)]
    pub amqp: AmqpConfig,
}

/// Postgres connection settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DbConfig {
    /// Postgres URL. Used to create the service's schema and run its migrations, so this role
    /// must own the schema. [default: postgres://postgres@127.0.0.1:5432/formflow]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// File holding the Postgres URL, read when DATABASE_URL is unset.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Maximum number of pooled connections.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// Role that queries run as (`SET ROLE` on each pooled connection) so that row-level
    /// security applies: it must neither own the tables nor bypass RLS. When migrating, it is
    /// created (NOLOGIN) if missing and granted the schema's tables and nothing else. Unset:
    /// `formflow_<schema>`, one per service, so no service's role reaches another's schema.
    /// Empty means queries run as the URL's role, which must then be such a role itself.
    #[arg(long, env = "DB_APP_ROLE")]
    pub db_app_role: Option<String>,
    /// Run the embedded migrations at startup. Turn off where a migration job runs them
    /// (`--migrate-only`) before the service starts.
    #[arg(long, env = "DB_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub db_migrate: bool,
}

impl DbConfig {
    /// The Postgres URL from DATABASE_URL, DATABASE_URL_FILE or the local default.
    pub fn url(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.database_url.as_ref(),
            self.database_url_file.as_ref(),
            "DATABASE_URL",
            Some("postgres://postgres@127.0.0.1:5432/formflow"),
        )
    }

    /// The role queries in `schema` run as (`DB_APP_ROLE`, by default `formflow_<schema>`),
    /// or `None` when they run as the URL's role.
    pub fn app_role(&self, schema: &str) -> Option<String> {
        match self.db_app_role.as_deref().map(str::trim) {
            None => Some(format!("formflow_{schema}")),
            Some("") => None,
            Some(role) => Some(role.to_owned()),
        }
    }

    /// Settings for `url`, with the defaults of every other option.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            database_url: Some(SecretString::from(url.into())),
            database_url_file: None,
            db_max_connections: 10,
            db_app_role: None,
            db_migrate: true,
        }
    }
}

/// Redis connection settings.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisConfig {
    /// Redis URL (`redis://[:password@]host:port/db`). [default: redis://127.0.0.1:6379]
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretString>,
    /// File holding the Redis URL, read when REDIS_URL is unset.
    #[arg(long, env = "REDIS_URL_FILE")]
    pub redis_url_file: Option<PathBuf>,
    /// Prefix of every key the suite writes, so several deployments can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "formflow:")]
    pub redis_key_prefix: String,
    /// PEM file of the certificate authorities a `rediss://` server's certificate is checked
    /// against instead of the system's roots (a private CA); unset: the system's roots.
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
}

impl RedisConfig {
    /// The Redis URL from REDIS_URL, REDIS_URL_FILE or the local default.
    pub fn url(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.redis_url.as_ref(),
            self.redis_url_file.as_ref(),
            "REDIS_URL",
            Some("redis://127.0.0.1:6379"),
        )
    }

    /// Settings for `url` and `key_prefix`.
    pub fn for_url(url: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        Self {
            redis_url: Some(SecretString::from(url.into())),
            redis_url_file: None,
            redis_key_prefix: key_prefix.into(),
            redis_ca_file: None,
        }
    }
}

/// RabbitMQ connection and topology settings.
#[derive(Debug, Clone, clap::Args)]
pub struct AmqpConfig {
    /// AMQP URL. [default: amqp://guest:guest@127.0.0.1:5672/%2f]
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<SecretString>,
    /// File holding the AMQP URL, read when AMQP_URL is unset.
    #[arg(long, env = "AMQP_URL_FILE")]
    pub amqp_url_file: Option<PathBuf>,
    /// Prefix of exchange and queue names (`<prefix>.events`, `<prefix>.dlx`, ...).
    #[arg(long, env = "AMQP_PREFIX", default_value = "formflow")]
    pub amqp_prefix: String,
    /// Delay before the first retry of a failed message; each later retry doubles it.
    #[arg(long, env = "AMQP_RETRY_BASE", default_value = "10s", value_parser = parse_duration)]
    pub amqp_retry_base: Duration,
    /// Deliveries of a message (the first one included) before it goes to its dead-letter queue.
    #[arg(long, env = "AMQP_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub amqp_max_attempts: u32,
    /// PEM file of certificate authorities an `amqps://` broker's certificate is checked
    /// against besides the public roots (a private CA).
    #[arg(long, env = "AMQP_CA_FILE")]
    pub amqp_ca_file: Option<PathBuf>,
}

impl AmqpConfig {
    /// The AMQP URL from AMQP_URL, AMQP_URL_FILE or the local default.
    pub fn url(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.amqp_url.as_ref(),
            self.amqp_url_file.as_ref(),
            "AMQP_URL",
            Some("amqp://guest:guest@127.0.0.1:5672/%2f"),
        )
    }

    /// Settings for `url` and `prefix`, with the default retry policy.
    pub fn for_url(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            amqp_url: Some(SecretString::from(url.into())),
            amqp_url_file: None,
            amqp_prefix: prefix.into(),
            amqp_retry_base: Duration::from_secs(10),
            amqp_max_attempts: 3,
            amqp_ca_file: None,
        }
    }
}

/// How services verify bearer tokens.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthConfig {
    /// gRPC URL of svc-auth, whose key set (`GetJwks`) tokens are verified against. The keys are
    /// fetched at start, when a token names a key not seen yet, and every few minutes.
    #[arg(long, env = "AUTH_URL")]
    pub auth_url: Option<String>,
    /// A JSON Web Key Set file whose keys are trusted as well (development keys, tests, break-
    /// glass access). Leave unset in production unless you mean it.
    #[arg(long, env = "AUTH_JWKS_FILE")]
    pub auth_jwks_file: Option<PathBuf>,
    /// Expected `iss` claim of tokens.
    #[arg(long, env = "AUTH_ISSUER", default_value = "formflow")]
    pub auth_issuer: String,
    /// Expected `aud` claim of tokens.
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "formflow")]
    pub auth_audience: String,
}

/// The client id and secret a service authenticates to svc-auth with, to obtain service tokens.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceCredentialsConfig {
    /// Client id of this service, as svc-auth knows it (`AUTH_SERVICE_CLIENTS` there).
    #[arg(long, env = "AUTH_CLIENT_ID")]
    pub auth_client_id: String,
    /// Client secret of this service.
    #[arg(long, env = "AUTH_CLIENT_SECRET", hide_env_values = true)]
    pub auth_client_secret: Option<SecretString>,
    /// File holding the client secret, read when AUTH_CLIENT_SECRET is unset.
    #[arg(long, env = "AUTH_CLIENT_SECRET_FILE")]
    pub auth_client_secret_file: Option<PathBuf>,
}

impl ServiceCredentialsConfig {
    /// The client secret from AUTH_CLIENT_SECRET or AUTH_CLIENT_SECRET_FILE.
    pub fn client_secret(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.auth_client_secret.as_ref(),
            self.auth_client_secret_file.as_ref(),
            "AUTH_CLIENT_SECRET",
            None,
        )
    }
}

/// The client id and secret a service may authenticate to svc-auth with, to call other suite
/// services with service tokens for the tenants it acts for; unset, it makes no such call.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceClientConfig {
    /// Client id this service obtains service tokens from svc-auth with (svc-auth's
    /// AUTH_SERVICE_CLIENTS lists it); what the service calls with them, its `--help` says.
    #[arg(long, env = "AUTH_CLIENT_ID")]
    pub auth_client_id: Option<String>,
    /// Client secret of AUTH_CLIENT_ID.
    #[arg(long, env = "AUTH_CLIENT_SECRET", hide_env_values = true)]
    pub auth_client_secret: Option<SecretString>,
    /// File holding AUTH_CLIENT_SECRET.
    #[arg(long, env = "AUTH_CLIENT_SECRET_FILE")]
    pub auth_client_secret_file: Option<PathBuf>,
}

impl ServiceClientConfig {
    /// The credentials, when AUTH_CLIENT_ID is set.
    pub fn credentials(&self) -> Option<ServiceCredentialsConfig> {
        Some(ServiceCredentialsConfig {
            auth_client_id: self.auth_client_id.clone()?,
            auth_client_secret: self.auth_client_secret.clone(),
            auth_client_secret_file: self.auth_client_secret_file.clone(),
        })
    }

    /// The credentials of client `id` with `secret` (the suite's launcher and tests).
    pub fn of(id: &str, secret: &str) -> Self {
        ServiceClientConfig {
            auth_client_id: Some(id.to_owned()),
            auth_client_secret: Some(SecretString::from(secret.to_owned())),
            auth_client_secret_file: None,
        }
    }
}

/// Parses durations written as `250ms`, `10s`, `5m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split_at = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split_at);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 250ms, 10s, 5m, 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(amount)),
        "s" | "" => Ok(Duration::from_secs(amount)),
        "m" => Ok(Duration::from_secs(amount * 60)),
        "h" => Ok(Duration::from_secs(amount * 3600)),
        _ => Err(format!("invalid duration unit {unit:?}: use ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn secrets_come_from_value_then_file_then_default() {
        let directory = std::env::temp_dir().join(format!("ff-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        let file = directory.join("url");
        std::fs::write(&file, "postgres://from-file\n").unwrap();

        let value = SecretString::from("postgres://from-value");
        let from_value = resolve_secret(Some(&value), Some(&file), "X", Some("d")).unwrap();
        assert_eq!(from_value.expose_secret(), "postgres://from-value");
        let from_file = resolve_secret(None, Some(&file), "X", Some("d")).unwrap();
        assert_eq!(from_file.expose_secret(), "postgres://from-file");
        let from_default = resolve_secret(None, None, "X", Some("d")).unwrap();
        assert_eq!(from_default.expose_secret(), "d");
        let missing = resolve_secret(None, None, "X", None).unwrap_err();
        assert_eq!(missing.to_string(), "X or X_FILE must be set");
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn service_configs_are_named_after_their_service() {
        use clap::{CommandFactory, Parser};
        type Config = ServiceConfig<crate::suite::Tenant, NoOptions>;
        Config::command().debug_assert();
        let defaults = Config::try_parse_from(["svc-tenant"]).unwrap();
        assert_eq!(
            defaults.serve.grpc_addr,
            crate::suite::TENANT.default_grpc_addr()
        );
        assert!(!defaults.serve.migrate_only);
        let set = Config::try_parse_from([
            "svc-tenant",
            "--grpc-addr",
            "127.0.0.1:7000",
            "--metrics-addr",
            "127.0.0.1:7001",
            "--migrate-only",
        ])
        .unwrap();
        assert_eq!(set.serve.grpc_addr.port(), 7000);
        assert_eq!(set.serve.metrics_addr.map(|addr| addr.port()), Some(7001));
        assert!(set.serve.migrate_only);
        let help = Config::command().render_long_help().to_string();
        assert!(help.starts_with("svc-tenant: tenants"), "{help}");
        for variable in [
            "TENANT_GRPC_ADDR",
            "TENANT_METRICS_ADDR",
            "TENANT_MIGRATE_ONLY",
        ] {
            assert!(help.contains(variable), "{variable} in {help}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = DbConfig::for_url("postgres://user:hunter2@db/formflow");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
