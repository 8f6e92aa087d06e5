//! Building svc-notify: what `main` (through `Config::run`), the suite launcher and the tests
//! all start.

use std::sync::Arc;
use std::time::Duration;

use platform::crypto::Sealer;
use platform::db::Schema;
use platform::jobs::Workers;
use platform::live::Live;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::NOTIFY;
use proto::formflow::notify::v1::notify_service_server::NotifyServiceServer;

use crate::clock::Clock;
use crate::config::Config;
use crate::directory::Directory;
use crate::grpc::NotifyApi;
use crate::live::Inboxes;
use crate::mailer::Mailer;
use crate::operations::Notify;
use crate::reactions::{REACTION_SUBSCRIPTION, Reactions};
use crate::webhooks::Webhooks;
use crate::worker::{Channels, Worker, WorkerSettings};

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = NOTIFY.name;
/// The `notify` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(NOTIFY, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    build_with_clock(config, listeners, Clock::system()).await
}

/// [`build`] deciding quiet hours and due dates by `clock` (tests shift it).
pub async fn build_with_clock(
    config: Config,
    listeners: Listeners,
    clock: Clock,
) -> anyhow::Result<Runtime> {
    let options = &config.options;
    options.check_lease()?;
    let mailer = options
        .smtp_url()?
        .map(|url| Mailer::new(&url, &options.email_from, options.send_timeout))
        .transpose()?;
    let sealer = options
        .encryption_keys()?
        .map(|keys| Sealer::from_config("NOTIFY_ENCRYPTION_KEYS", &keys).map(Arc::new))
        .transpose()?;
    let webhooks = sealer
        .clone()
        .map(|sealer| {
            Webhooks::new(
                sealer,
                options.webhook_allowed_networks.clone(),
                options.webhook_timeout,
            )
        })
        .transpose()?;
    let directory = match (options.service_client.credentials(), &config.auth.auth_url) {
        (Some(credentials), Some(auth_url)) => Some(Directory::new(auth_url, &credentials)?),
        (Some(_), None) => anyhow::bail!("AUTH_CLIENT_ID is set without AUTH_URL"),
        (None, _) => None,
    };
    let (mut runtime, connections) = config.start(&SCHEMA, listeners).await?;
    let inboxes = Inboxes::new(Live::new(connections.redis.clone()));
    let worker = Worker::new(
        connections.db.clone(),
        connections.outbox,
        &config.infra.amqp,
        Channels {
            mailer,
            directory,
            webhooks,
            sealer,
        },
        inboxes.clone(),
        WorkerSettings {
            workers: Workers {
                concurrency: options.worker_concurrency,
                lease: options.lease,
                overdue_after: options.overdue_after,
            },
            max_attempts: options.max_attempts,
            retry_base: options.retry_base,
            retry_max: options.retry_max,
            clock,
        },
    );
    let notify = Notify::new(connections.db, worker.clone(), inboxes, clock);
    let reactions = Reactions::new(notify.clone(), options.app_url.clone());
    let sweeper = worker.clone();
    let cleaner = notify.clone();
    let retention = notify.clone();
    let retention_days = options.retention_days;
    runtime
        .serve_api(NotifyServiceServer::new(NotifyApi::new(notify)))
        .spawn("delivery worker", move |stopped| worker.work(stopped))
        .consume(&config.infra.amqp, REACTION_SUBSCRIPTION, reactions)
        .every(
            "sending overdue deliveries' jobs",
            options.overdue_after / 4,
            move || {
                let worker = sweeper.clone();
                async move { worker.send_overdue().await }
            },
        )
        .every(
            "deleting notifications past their retention",
            options.retention_interval,
            move || {
                let notify = retention.clone();
                async move {
                    let deleted = notify.forget_expired_notifications(retention_days).await?;
                    if deleted > 0 {
                        tracing::info!(deleted, "deleted notifications past their retention");
                    }
                    Ok(())
                }
            },
        )
        .every(
            "forgetting expired idempotency keys",
            Duration::from_secs(3600),
            move || {
                let notify = cleaner.clone();
                async move { notify.forget_expired_keys().await }
            },
        );
    Ok(runtime)
}
