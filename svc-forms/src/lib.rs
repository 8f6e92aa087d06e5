//! svc-forms owns forms: an editable draft of typed fields with conditional logic and
//! sections, live settings (public submissions, a submission window, a maximum), immutable
//! published versions, and the submissions to them, each validated against its version and
//! stored with its `forms.submission.created` event in one transaction, idempotently with an
//! `Idempotency-Key`.
//!
//! Layers point one way: `grpc` → `operations` → `domain`, `store`, `events`, `export`.
//!
//! - [`app`]: build the service (`build`); `main` runs it with `Config::run`.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `FormService` handlers and request parsing.
//! - [`operations`]: permissions, transactions, audit rows, events, idempotency.
//! - [`domain`]: fields, logic, answers, forms, versions; no IO.
//! - [`store`]: the SQL.
//! - [`events`]: the `forms.*` events and the wire forms they share with responses.
//! - [`export`]: the CSV and NDJSON files of exports.
//! - [`page`]: the hosted form page, HTML without and with JavaScript.
//! - [`error`]: errors and their gRPC statuses.
//! - `metrics`: the service's metrics.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod grpc;
mod metrics;
pub mod operations;
pub mod page;
pub mod store;

pub use app::{SERVICE_NAME, build};
pub use config::Config;
