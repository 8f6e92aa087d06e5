//! svc-notify tells people: notifications rendered from templates (or given inline) and
//! delivered by email over SMTP and to users' in-app inboxes, each delivery a job retried with
//! backoff, every attempt recorded, a failed one replayed by hand.
//!
//! It owns the Postgres schema `notify` (templates, notifications, deliveries and their
//! attempts, inbox messages; with the platform's outbox, audit log, processed events,
//! idempotency keys and row-level security) and serves `NotifyService`
//! (`proto/protos/formflow/notify/v1/`).
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `NotifyService` handlers and wire conversions.
//! - [`operations`]: who may do what, in which transaction.
//! - [`domain`]: templates, notifications, deliveries, inbox messages.
//! - [`store`]: the SQL.
//! - [`worker`]: sending deliveries, retries, the sweeper.
//! - [`mailer`]: the email channel over SMTP.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod mailer;
mod metrics;
pub mod operations;
pub mod store;
pub mod worker;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
