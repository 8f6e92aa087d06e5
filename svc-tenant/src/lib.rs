//! svc-tenant owns FormFlow's tenants: organisations with a DNS-safe slug, custom domains,
//! settings, a plan and rate limits, and a lifecycle (active, suspended, deleted). It resolves
//! a request's id, slug or host to its tenant for the gateway, through a Redis cache that every
//! change invalidates, and announces every change as a `tenant.*` event through its outbox.
//!
//! Layers point one way: `grpc` → `operations` → `domain`, `store`, `cache`, `events`.
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `TenantService` handlers and request parsing.
//! - [`operations`]: permissions, transactions, audit rows, events and cache invalidation.
//! - [`domain`]: validated types and rules, without IO.
//! - [`store`]: the SQL.
//! - [`cache`]: resolved tenants in Redis.
//! - [`events`]: the `tenant.*` events and the tenant's wire form.
//! - [`error`]: errors and their gRPC statuses.
//! - `metrics`: the service's metrics.

pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
mod metrics;
pub mod operations;
pub mod store;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
