//! The runtime every service runs in: its gRPC API behind the context layer, with health,
//! reflection, gRPC-web and `/metrics` ([`GrpcServer`]); the periodic refresh of the token
//! keys; its background tasks (outbox relay, consumers, timers) alongside; and a shutdown that
//! drains in-flight calls before it stops the background tasks.
//!
//! A service's `app.rs` builds its operations, then hands them to a [`Runtime`]:
//!
//! ```ignore
//! let mut runtime = Runtime::new(SERVICE_NAME, listeners);
//! runtime
//!     .serve_api(&verifier, TenantServiceServer::new(api))
//!     .relay_outbox(relay);
//! runtime.run_until_stopped(shutdown).await
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Layer;

use sqlx::migrate::Migrator;

use crate::amqp::Publisher;
use crate::auth::JwtVerifier;
use crate::config::{AmqpConfig, InfraConfig};
use crate::consumer::{self, EventHandler, Subscription};
use crate::context::ContextLayer;
use crate::db::Db;
use crate::outbox::{Outbox, OutboxRelay};
use crate::redis::Redis;
use crate::server::{GrpcServer, Listeners};

/// A task that runs beside the server until the token it is given is cancelled.
type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A built service: its listeners bound, its API added, not serving yet.
pub struct Runtime {
    server: GrpcServer,
    tasks: Vec<(&'static str, BackgroundTask)>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Runtime")
            .field("server", &self.server)
            .field(
                "tasks",
                &self.tasks.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Runtime {
    /// A runtime serving on `listeners`; installs the metrics recorder.
    pub fn new(service_name: &'static str, listeners: Listeners) -> Self {
        crate::metrics::install();
        Self {
            server: GrpcServer::new(service_name, listeners),
            tasks: Vec::new(),
        }
    }

    /// Serves `api` behind the [`ContextLayer`], which verifies each call's token with
    /// `verifier`; keeps the verifier's keys fresh while the service runs.
    pub fn serve_api<S>(&mut self, verifier: &JwtVerifier, api: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.server
            .add_service(ContextLayer::new(verifier.clone()).layer(api));
        let verifier = verifier.clone();
        self.spawn("token key refresh", move |stopped| {
            verifier.keep_fresh(stopped)
        })
    }

    /// Runs `task` beside the server. Its token is cancelled once the server has drained, so
    /// work that in-flight calls leave behind (events to publish) is still done.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F) -> &mut Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .push((name, Box::new(move |stopped| Box::pin(task(stopped)))));
        self
    }

    /// Runs `tick` every `period` while the service runs; a failure is logged and the next
    /// period tries again.
    pub fn every<F, Fut>(&mut self, what: &'static str, period: Duration, tick: F) -> &mut Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn(what, move |stopped| repeat(what, period, tick, stopped))
    }

    /// Consumes `subscription` with `handler` while the service runs ([`consumer::run`]).
    pub fn consume<H: EventHandler>(
        &mut self,
        amqp: &AmqpConfig,
        subscription: Subscription,
        handler: H,
    ) -> &mut Self {
        let amqp = amqp.clone();
        let name = self.server.service_name();
        self.spawn("event consumer", move |stopped| {
            consumer::run(amqp, name, subscription, handler, stopped)
        })
    }

    /// Publishes the service's outbox while it runs.
    pub fn relay_outbox(&mut self, relay: OutboxRelay) -> &mut Self {
        self.spawn("outbox relay", move |stopped| relay.run(stopped))
    }

    /// Where the gRPC server listens (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes; then reports NOT_SERVING, drains in-flight calls,
    /// stops the background tasks and waits for them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = crate::shutdown::token(shutdown);
        let stopped = CancellationToken::new();
        let tasks: Vec<_> = self
            .tasks
            .into_iter()
            .map(|(name, task)| (name, tokio::spawn(task(stopped.clone()))))
            .collect();
        let served = self.server.serve(shutdown.clone()).await;
        shutdown.cancel();
        stopped.cancel();
        for (name, task) in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, task = name, "a background task panicked");
            }
        }
        served
    }
}

/// Runs `tick` every `period` until `stopped` is cancelled; a failure is logged and the next
/// period tries again.
pub async fn repeat<F, Fut>(
    what: &'static str,
    period: Duration,
    mut tick: F,
    stopped: CancellationToken,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        tokio::select! {
            () = stopped.cancelled() => break,
            () = tokio::time::sleep(period) => {}
        }
        if let Err(error) = tick().await {
            tracing::warn!(error = format!("{error:#}"), what, "periodic task failed");
        }
    }
}

/// What a service with state connects to at start: its schema in Postgres (created and
/// migrated with the platform's conventions), Redis, and its outbox with the relay that
/// publishes it ([`Runtime::relay_outbox`]).
#[derive(Debug)]
pub struct Connections {
    /// The pool, bound to the service's schema.
    pub db: Db,
    /// The shared Redis connection.
    pub redis: Redis,
    /// The outbox operations enqueue events in.
    pub outbox: Outbox,
    /// The relay publishing the outbox to RabbitMQ.
    pub relay: OutboxRelay,
}

impl Connections {
    /// Connects `service`, which owns `schema` with `migrations`.
    pub async fn open(
        config: &InfraConfig,
        service: &'static str,
        schema: &'static str,
        migrations: &Migrator,
    ) -> anyhow::Result<Self> {
        let db = Db::connect(&config.db, schema, migrations).await?;
        let redis = Redis::connect(&config.redis)?;
        let outbox = Outbox::new(schema);
        let relay = outbox.relay(db.pool().clone(), Publisher::new(&config.amqp, service));
        Ok(Self {
            db,
            redis,
            outbox,
            relay,
        })
    }
}
