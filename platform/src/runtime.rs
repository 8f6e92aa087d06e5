//! The runtime every service runs in: its gRPC API behind the context layer, with health,
//! reflection, gRPC-web and `/metrics` ([`GrpcServer`]); the periodic refresh of the token
//! keys; its background tasks (outbox relay, consumers, timers) alongside; and a shutdown that
//! drains in-flight calls before it stops the background tasks.
//!
//! A service with state starts from [`ServiceConfig::start`] (its connections, and a runtime
//! that verifies tokens and relays the outbox), builds its operations, and serves them:
//!
//! ```ignore
//! pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
//!     let (mut runtime, connections) = config.start(&SCHEMA, listeners).await?;
//!     let tenants = Tenants::new(connections.db, connections.outbox);
//!     runtime.serve_api(TenantServiceServer::new(TenantApi::new(tenants)));
//!     Ok(runtime)
//! }
//!
//! pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
//!     config.run(&SCHEMA, build, shutdown).await
//! }
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

use crate::amqp::Publisher;
use crate::auth::{JwtVerifier, RevokedSessions};
use crate::config::{AmqpConfig, InfraConfig, ServiceConfig};
use crate::consumer::{self, EventHandler, Subscription};
use crate::context::ContextLayer;
use crate::db::{Db, Schema};
use crate::outbox::{Outbox, OutboxRelay};
use crate::redis::Redis;
use crate::server::{GrpcServer, Listeners};
use crate::suite::SuiteMember;

/// A task that runs beside the server until the token it is given is cancelled.
type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A built service: its listeners bound, its API added, not serving yet.
pub struct Runtime {
    server: GrpcServer,
    verifier: JwtVerifier,
    revocations: Option<RevokedSessions>,
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
    /// A runtime serving on `listeners` whose APIs verify tokens with `verifier` (kept fresh
    /// while the service runs, and ready once it knows a key); installs the metrics recorder.
    pub fn new(service_name: &'static str, listeners: Listeners, verifier: JwtVerifier) -> Self {
        crate::metrics::install();
        let mut server = GrpcServer::new(service_name, listeners);
        let keys = verifier.clone();
        server.ready_when(async move { keys.keys_loaded().await });
        let mut runtime = Self {
            server,
            verifier: verifier.clone(),
            revocations: None,
            tasks: Vec::new(),
        };
        runtime.spawn("token key refresh", move |stopped| {
            verifier.keep_fresh(stopped)
        });
        runtime
    }

    /// Makes the APIs served from now on refuse tokens of revoked sessions (a logout, a
    /// removal or a role change in svc-auth), for calls that do not come through the gateway.
    pub fn refuse_revoked_sessions(&mut self, revocations: RevokedSessions) -> &mut Self {
        self.revocations = Some(revocations);
        self
    }

    /// Serves `api` behind the [`ContextLayer`], which verifies each call's token and puts
    /// the call's [`RequestContext`](crate::context::RequestContext) in its extensions.
    pub fn serve_api<S>(&mut self, api: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let context =
            ContextLayer::new(self.verifier.clone()).with_revocations(self.revocations.clone());
        self.server.add_service(context.layer(api));
        self
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
/// migrated with the platform's conventions), Redis, and its outbox, which
/// [`Connections::relay`] publishes.
#[derive(Debug)]
pub struct Connections {
    /// The pool, bound to the service's schema.
    pub db: Db,
    /// The shared Redis connection.
    pub redis: Redis,
    /// The outbox operations enqueue events in.
    pub outbox: Outbox,
    amqp: AmqpConfig,
    service: &'static str,
}

impl Connections {
    /// Connects `service`, which owns `schema`.
    pub async fn open(
        config: &InfraConfig,
        service: &'static str,
        schema: &Schema,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            db: Db::connect(&config.db, schema).await?,
            redis: Redis::connect(&config.redis)?,
            outbox: Outbox::new(schema.name),
            amqp: config.amqp.clone(),
            service,
        })
    }

    /// The relay publishing the outbox to RabbitMQ ([`Runtime::relay_outbox`]).
    pub fn relay(&self) -> OutboxRelay {
        let publisher = Publisher::new(&self.amqp, self.service);
        self.outbox.relay(self.db.pool().clone(), publisher)
    }
}

impl<S: SuiteMember, O: clap::Args> ServiceConfig<S, O> {
    /// The start of every service with state: the connections (the schema migrated), a token
    /// verifier (svc-auth's keys fetched, or cached in Redis during an outage), and a runtime on
    /// `listeners` relaying the outbox and refusing tokens of revoked sessions.
    pub async fn start(
        &self,
        schema: &Schema,
        listeners: Listeners,
    ) -> anyhow::Result<(Runtime, Connections)> {
        let connections = Connections::open(&self.infra, S::SERVICE.name, schema).await?;
        let verifier =
            JwtVerifier::from_config(&self.auth, Some(connections.redis.clone())).await?;
        let mut runtime = Runtime::new(S::SERVICE.name, listeners, verifier);
        // Only checked here: svc-auth adds the entries, with their lifetime.
        let revocations = RevokedSessions::new(connections.redis.clone(), Duration::ZERO);
        runtime
            .relay_outbox(connections.relay())
            .refuse_revoked_sessions(revocations);
        Ok((runtime, connections))
    }

    /// Runs the service `build` builds until `shutdown`, on the ports configured; with
    /// `--migrate-only`, migrates `schema` and returns instead; with `health`, checks the
    /// health of the server running on the configured address.
    pub async fn run<F, Fut>(
        self,
        schema: &Schema,
        build: F,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()>
    where
        F: FnOnce(Self, Listeners) -> Fut,
        Fut: Future<Output = anyhow::Result<Runtime>>,
    {
        if self.command == Some(crate::health::HealthCommand::Health) {
            return crate::health::check_grpc(self.serve.grpc_addr).await;
        }
        if self.serve.migrate_only {
            return Db::migrate_only(&self.infra.db, schema).await;
        }
        let listeners = self.serve.listeners().await?;
        build(self, listeners)
            .await?
            .run_until_stopped(shutdown)
            .await
    }
}
