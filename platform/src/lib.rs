//! What every FormFlow service shares, and nothing that only one of them needs.
//!
//! - [`config`]: clap blocks for Postgres, Redis, RabbitMQ and auth, with `<VAR>_FILE` secrets.
//! - [`telemetry`]: JSON logs, trace context, optional OTLP export.
//! - [`db`]: per-service schema, embedded migrations, tenant-scoped transactions (RLS).
//! - [`redis`]: the shared Redis connection and key prefix.
//! - [`amqp`]: RabbitMQ topology, a confirming publisher, a consumer with retries and DLQ.
//! - [`consumer`]: reacting to events: typed decoding, a reconnecting runner, handled-once.
//! - [`events`] and [`outbox`]: the event envelope and the transactional outbox with its relay.
//! - [`auth`] and [`context`]: JWT verification and signing, principals, the request context.
//! - [`crypto`]: secrets sealed at rest under rotating keys (AES-256-GCM).
//! - [`health`]: the `health` subcommand of every binary, for container health checks.
//! - [`id`]: typed resource ids (`platform::id!`).
//! - [`idempotency`]: `Idempotency-Key`: answers replayed, reuse and concurrency refused.
//! - [`client`]: channels to other suite services and authorised requests.
//! - [`outbound`]: HTTP to user-chosen addresses, internal destinations refused (SSRF).
//! - [`webhooks`]: Standard Webhooks: secrets, signing and verifying.
//! - [`error`]: the error core of every service, `tonic::Status` with field violations and
//!   reasons.
//! - [`audit`]: the audit trail, one shape for every service.
//! - [`wire`]: timestamps, resource names, etags, field masks and enum fields on the wire.
//! - [`paging`]: page sizes, opaque page tokens and checked list requests.
//! - [`jobs`]: a service's own job queue (wake jobs, retries, dead letters, resends).
//! - [`live`]: live updates over Redis pub/sub, and the loop of a live stream.
//! - [`runtime`], [`server`], [`metrics`], [`shutdown`]: what a service runs in: the gRPC
//!   server with health, reflection, gRPC-web and `/metrics`, its background tasks, graceful
//!   shutdown.
//! - [`suite`]: the table of the suite's services.
//! - `testing` (feature `test-util`): per-test databases, prefixes and keys, services started
//!   in process, status helpers and a TCP proxy.
//!
//! Every binary that links the platform allocates with mimalloc: under load glibc's malloc
//! spent much of the gateway's CPU on its arena locks (docs/benchmarks.md).

pub mod amqp;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod consumer;
pub mod context;
pub mod crypto;
pub mod db;
pub mod error;
pub mod events;
pub mod health;
pub mod id;
pub mod idempotency;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod outbox;
pub mod paging;
pub mod redis;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod suite;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod webhooks;
pub mod wire;

/// What the platform's macros expand to; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use anyhow;
    pub use serde;
    pub use sqlx;
    pub use uuid;
}

/// The allocator of every suite binary, its tests and benchmarks. (The platform's own unit
/// tests get it from the copy of the platform they link as a dev-dependency.)
#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The macros name this crate `::platform`, inside it as well as outside.
extern crate self as platform;
