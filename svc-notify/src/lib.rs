//! svc-notify will own notifications: templates, channels, preferences, deliveries and the in-app inbox.
//!
//! Today it is the template a service starts from, on the platform's service kit: it owns
//! the Postgres schema `notify` (with the platform's outbox, audit log, processed events and
//! row-level security function, and its own migrations in `migrations/`), relays its outbox
//! to RabbitMQ, verifies tokens, and serves its API — drafted in
//! `proto/protos/formflow/notify/v1/` — whose every RPC answers UNIMPLEMENTED until it is built.
//! A service grows the rooms svc-tenant has: `operations` (permissions, transactions, audit,
//! events), `domain`, `store`, `events` and `error`, with `grpc` → `operations` → the rest.
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `NotifyService` handlers.

pub mod app;
pub mod config;
pub mod grpc;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
