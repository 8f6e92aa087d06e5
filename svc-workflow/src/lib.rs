//! svc-workflow owns workflows: versioned DAGs of typed nodes, validated when saved (each
//! node's config against its type's JSON Schema, no cycle, no dangling edge, every node
//! reachable from a trigger), activated version by version, and the credentials their nodes
//! use, sealed at rest; and their executions, run by a durable engine on RabbitMQ with every
//! node run recorded, started by hand or by form submissions. Webhook and schedule triggers,
//! live progress and dead letters are drafted in the proto and answer UNIMPLEMENTED until
//! they are built.
//!
//! Layers point one way: `grpc` → `operations` → `domain`, `store`.
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `WorkflowService` handlers and request parsing.
//! - [`operations`]: permissions, transactions, audit rows, sealing.
//! - [`engine`]: the workers that run executions.
//! - [`domain`]: definitions, node types, expressions, credentials, executions; no IO.
//! - [`store`]: the SQL.
//! - [`triggers`]: what starts executions besides manual runs (form submissions).
//! - [`error`]: errors and their gRPC statuses.

pub mod app;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod grpc;
mod metrics;
pub mod operations;
pub mod store;
pub mod triggers;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
