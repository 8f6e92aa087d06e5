//! svc-workflow over real gRPC and Postgres.

mod credentials;
mod definitions;
mod executions;
mod form_trigger;
mod helpers;
mod http;
mod isolation;
mod target;
mod webhooks;
mod workflows;
