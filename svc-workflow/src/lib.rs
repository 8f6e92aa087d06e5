//! svc-workflow owns workflows: versioned DAGs of typed nodes, validated when saved (each
//! node's config against its type's JSON Schema, no cycle, no dangling edge, every node
//! reachable from a trigger), activated version by version, and the credentials their nodes
//! use, sealed at rest; and their executions, run by a durable engine on RabbitMQ with every
//! node run recorded, started by hand, by form submissions, signed webhooks or schedules,
//! followed live, with the nodes that failed every attempt set aside for replay.
//!
//! Layers point one way: `grpc` → `operations` → `domain`, `store`.
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `WorkflowService` handlers and request parsing.
//! - [`operations`]: permissions, transactions, audit rows, sealing.
//! - [`engine`]: the workers that run executions.
//! - [`progress`]: executions' changes published live, and the streams that follow them.
//! - [`domain`]: definitions, node types, expressions, credentials, executions; no IO.
//! - [`store`]: the SQL.
//! - [`triggers`]: what starts executions besides manual runs and webhooks (form submissions,
//!   schedules), and the tenant settings the service keeps.
//! - [`error`]: errors and their gRPC statuses.

pub mod app;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod grpc;
mod metrics;
pub mod operations;
pub mod progress;
pub mod store;
pub mod triggers;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
