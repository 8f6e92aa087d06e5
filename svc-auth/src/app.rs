//! Building and running svc-auth: what `main` and the tests both start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use platform::amqp::Publisher;
use platform::auth::{JwtVerifier, RevokedSessions};
use platform::context::ContextLayer;
use platform::context::UserId;
use platform::db::Db;
use platform::outbox::{Outbox, OutboxRelay};
use platform::redis::Redis;
use platform::server::GrpcServer;
use proto::formflow::auth::v1::auth_service_server::AuthServiceServer;
use secrecy::SecretString;
use tower::Layer;

use crate::admin::ensure_platform_admin;
use crate::config::{Command, Config};
use crate::crypto::{Passwords, Sealer};
use crate::domain::{Email, PasswordPolicy, PersonName};
use crate::grpc::AuthApi;
use crate::identity::{Identity, Settings};
use crate::keys::KeyRing;
use crate::service_clients::ServiceClients;
use crate::tenants::TenantClient;

/// The Postgres schema svc-auth owns.
pub const SCHEMA: &str = "auth";
/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = "svc-auth";

/// The embedded migrations of the `auth` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built svc-auth: connected, migrated, keys loaded and ports bound; not serving yet.
#[derive(Debug)]
pub struct App {
    server: GrpcServer,
    relay: OutboxRelay,
    keys: Arc<KeyRing>,
}

impl App {
    /// Connects to Postgres (running migrations), Redis and RabbitMQ, loads (or creates) the
    /// signing keys, and binds the ports.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        platform::metrics::install();
        let sealer = Arc::new(Sealer::from_config(&config.secrets.encryption_keys()?)?);
        let clients = Arc::new(ServiceClients::parse(&config.secrets.service_clients()?)?);
        let passwords = Passwords::new(&config.security)?;
        let db = Db::connect(&config.db, SCHEMA, &MIGRATOR).await?;
        let redis = Redis::connect(&config.redis)?;
        let extra_trusted = match &config.extra_jwks_file {
            Some(path) => serde_json::from_str(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading AUTH_JWKS_FILE ({})", path.display()))?,
            )
            .context("parsing AUTH_JWKS_FILE")?,
            None => jsonwebtoken::jwk::JwkSet { keys: Vec::new() },
        };
        let verifier = JwtVerifier::new(
            &extra_trusted,
            &config.tokens.issuer,
            &config.tokens.audience,
        )?;
        let keys = KeyRing::load(
            db.pool().clone(),
            sealer.clone(),
            verifier,
            Settings::key_retention(&config.tokens),
        )
        .await?;
        let outbox = Outbox::new(SCHEMA);
        let relay = outbox.relay(
            db.pool().clone(),
            Publisher::new(&config.amqp, SERVICE_NAME),
        );
        let settings = Arc::new(Settings {
            tokens: config.tokens.clone(),
            security: config.security.clone(),
        });

        // svc-auth calls svc-tenant as itself, with service tokens it signs.
        let minting_keys = keys.clone();
        let minting_settings = settings.clone();
        let tenants = TenantClient::new(
            &config.tenant_url,
            Arc::new(move || Identity::mint_self_token(&minting_keys, &minting_settings)),
        )?;
        let identity = Identity {
            db,
            keys: keys.clone(),
            passwords,
            sealer,
            clients,
            tenants,
            outbox,
            revocations: RevokedSessions::new(redis.clone(), config.tokens.access_token_ttl),
            redis,
            settings,
        };

        let mut server =
            GrpcServer::bind(SERVICE_NAME, config.grpc_addr, config.metrics_addr).await?;
        server.add_service(
            ContextLayer::new(keys.verifier())
                .layer(AuthServiceServer::new(AuthApi::new(identity))),
        );
        Ok(App {
            server,
            relay,
            keys,
        })
    }

    /// Where the gRPC server listens (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight calls and stops the relay.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = platform::shutdown::token(shutdown);
        self.keys.spawn_reload(token.clone());
        let relay = tokio::spawn(self.relay.run(token.clone()));
        let served = self.server.serve(token.clone()).await;
        token.cancel();
        relay.await?;
        served
    }
}

/// Runs svc-auth until `shutdown` completes; with `--migrate-only`, migrates and returns; with
/// a command, runs it and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.migrate_only {
        return Db::migrate_only(&config.db, SCHEMA, &MIGRATOR).await;
    }
    match &config.command {
        Some(Command::CreatePlatformAdmin {
            email,
            display_name,
        }) => {
            let password = match std::env::var("FORMFLOW_ADMIN_PASSWORD") {
                Ok(password) => password,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let (user_id, created) =
                create_platform_admin(&config, email, display_name, &SecretString::from(password))
                    .await?;
            println!(
                "{} platform administrator {email} (users/{user_id})",
                if created { "created" } else { "promoted" }
            );
            Ok(())
        }
        None => App::build(config).await?.run_until_stopped(shutdown).await,
    }
}

/// Creates (or promotes) a platform administrator in the database of `config`.
pub async fn create_platform_admin(
    config: &Config,
    email: &str,
    display_name: &str,
    password: &SecretString,
) -> anyhow::Result<(UserId, bool)> {
    let email = Email::parse(email).context("--email")?;
    let display_name = PersonName::parse(display_name).context("--display-name")?;
    let passwords = Passwords::new(&config.security)?;
    let policy = PasswordPolicy {
        min_length: config.security.password_min_length as usize,
    };
    policy
        .check(password, &[email.as_str()])
        .map_err(|error| anyhow::anyhow!("the password {error}"))?;
    let db = Db::connect(&config.db, SCHEMA, &MIGRATOR).await?;
    ensure_platform_admin(&db, &passwords, &email, &display_name, password).await
}
