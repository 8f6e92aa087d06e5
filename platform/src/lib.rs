//! What every FormFlow service shares, and nothing that only one of them needs.
//!
//! - [`config`]: clap blocks for Postgres, Redis, RabbitMQ and auth, with `<VAR>_FILE` secrets.
//! - [`telemetry`]: JSON logs, trace context, optional OTLP export.
//! - [`db`]: per-service schema, embedded migrations, tenant-scoped transactions (RLS).
//! - [`redis`]: the shared Redis connection and key prefix.
//! - [`amqp`]: RabbitMQ topology, a confirming publisher, a consumer with retries and DLQ.
//! - [`events`] and [`outbox`]: the event envelope and the transactional outbox with its relay.
//! - [`auth`] and [`context`]: JWT verification and signing, principals, the request context.
//! - [`error`]: `tonic::Status` with field violations and reasons.
//! - [`paging`]: page sizes and opaque page tokens.
//! - [`server`], [`metrics`], [`shutdown`]: the gRPC server with health, reflection, gRPC-web,
//!   `/metrics` and graceful shutdown.
//! - `testing` (feature `test-util`): per-test databases, prefixes, keys and a TCP proxy.

pub mod amqp;
pub mod auth;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod events;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod redis;
pub mod server;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
