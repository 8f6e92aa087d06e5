//! svc-tenant owns FormFlow's tenants: organisations with a DNS-safe slug, custom domains,
//! settings, a plan and rate limits, and a lifecycle (active, suspended, deleted). It resolves
//! a request's id, slug or host to its tenant for the gateway, through a Redis cache that every
//! change invalidates, and announces every change as a `tenant.*` event through its outbox.
//!
//! - [`app`]: build and run the service (`App::build`, `run`).
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `TenantService` handlers and wire conversions.
//! - [`tenants`]: the operations, their permissions, audit rows and events.
//! - [`domain`]: validated types and rules, without IO.
//! - [`store`]: the SQL.
//! - [`cache`]: resolved tenants in Redis.
//! - [`error`]: errors and their gRPC statuses.

pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod store;
pub mod tenants;

pub use app::{App, run};
pub use config::Config;
