//! svc-notify tells people: notifications rendered from templates (or given inline) and
//! delivered by email over SMTP, to users' in-app inboxes and to signed outbound webhook
//! endpoints, each delivery a job retried with backoff, every attempt recorded, a failed one
//! replayed by hand.
//!
//! It owns the Postgres schema `notify` (templates, notifications, deliveries and their
//! attempts, inbox messages, webhook endpoints; with the platform's outbox, audit log, processed events,
//! idempotency keys and row-level security) and serves `NotifyService`
//! (`proto/protos/formflow/notify/v1/`).
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `NotifyService` handlers and wire conversions.
//! - [`operations`]: who may do what, in which transaction.
//! - [`domain`]: templates, notifications, deliveries, inbox messages, webhook endpoints.
//! - [`store`]: the SQL.
//! - [`worker`]: sending deliveries, retries, the sweeper.
//! - [`mailer`]: the email channel over SMTP.
//! - [`directory`]: users' email addresses, from svc-auth.
//! - [`clock`]: the time decisions are made by.
//! - [`reactions`]: the notifications other services' events cause.
//! - [`webhooks`]: the webhook channel: signed POSTs through the SSRF guard.
//! - [`live`]: live inboxes over Redis pub/sub (StreamInbox).
//! - [`sealing`]: content holding a secret, sealed at rest.

pub mod app;
pub mod clock;
pub mod config;
pub mod directory;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod live;
pub mod mailer;
mod metrics;
pub mod operations;
pub mod reactions;
pub mod sealing;
pub mod store;
pub mod webhooks;
pub mod worker;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
