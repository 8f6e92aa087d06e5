//! Building and running svc-auth: what `main` and the tests both start.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use platform::audit::AuditLog;
use platform::auth::{JwtVerifier, RevokedSessions};
use platform::context::UserId;
use platform::db::{Db, Schema};
use platform::runtime::{Connections, Runtime};
use platform::server::Listeners;
use platform::suite::AUTH;
use proto::formflow::auth::v1::auth_service_server::AuthServiceServer;
use secrecy::SecretString;

use crate::admin::ensure_platform_admin;
use crate::config::{Command, Config};
use platform::crypto::Sealer;

use crate::crypto::Passwords;
use crate::domain::{Email, PasswordPolicy, PersonName};
use crate::grpc::AuthApi;
use crate::keys::KeyRing;
use crate::operations::{Identity, Settings, reset_queue};
use crate::service_clients::ServiceClients;
use crate::tenants::TenantClient;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = AUTH.name;
/// The `auth` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(AUTH, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, loads (or creates) the signing
/// keys, and readies the API on `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let sealer = Arc::new(Sealer::from_config(
        "AUTH_ENCRYPTION_KEYS",
        &config.secrets.encryption_keys()?,
    )?);
    let clients = Arc::new(ServiceClients::parse(&config.secrets.service_clients()?)?);
    let passwords = Passwords::new(&config.security)?;
    let mut connections = Connections::open(&config.infra, SERVICE_NAME, &SCHEMA).await?;
    connections.outbox = connections.outbox.with_sealer(sealer.clone());
    let relay = connections.relay();
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
        connections.db.pool().clone(),
        sealer.clone(),
        verifier,
        Settings::key_retention(&config.tokens),
    )
    .await?;
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
    let (reset_requests, reset_worker) = reset_queue(config.password_reset_queue);
    let identity = Identity {
        db: connections.db,
        keys: keys.clone(),
        passwords,
        sealer,
        clients,
        tenants,
        outbox: connections.outbox,
        audit: AuditLog::new(SCHEMA.name),
        revocations: RevokedSessions::new(
            connections.redis.clone(),
            config.tokens.access_token_ttl,
        ),
        redis: connections.redis,
        settings,
        reset_requests,
    };
    let reset_identity = identity.clone();

    let mut runtime = Runtime::new(SERVICE_NAME, listeners, keys.verifier());
    runtime
        .refuse_revoked_sessions(identity.revocations.clone())
        .serve_api(AuthServiceServer::new(AuthApi::new(identity)))
        .relay_outbox(relay)
        .spawn("password reset requests", move |stopped| {
            reset_worker.run(reset_identity, stopped.cancelled_owned())
        })
        .every(
            "reloading the signing keys",
            KeyRing::RELOAD_PERIOD,
            move || {
                let keys = keys.clone();
                async move { keys.reload().await }
            },
        );
    Ok(runtime)
}

/// Runs svc-auth until `shutdown` completes; with `--migrate-only`, migrates and returns; with
/// a command, runs it and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.serve.migrate_only {
        return Db::migrate_only(&config.infra.db, &SCHEMA).await;
    }
    match &config.command {
        Some(Command::Health) => platform::health::check_grpc(config.serve.grpc_addr).await,
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
        None => {
            let listeners = config.serve.listeners().await?;
            build(config, listeners)
                .await?
                .run_until_stopped(shutdown)
                .await
        }
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
    let db = Db::connect(&config.infra.db, &SCHEMA).await?;
    ensure_platform_admin(&db, &passwords, &email, &display_name, password).await
}
