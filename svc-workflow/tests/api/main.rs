//! svc-workflow over real gRPC and Postgres.

mod ai_classify;
mod credentials;
mod definitions;
mod executions;
mod form_trigger;
mod helpers;
mod http;
mod isolation;
mod notify_actions;
mod progress;
mod retention;
mod schedules;
mod target;
mod webhooks;
mod workflows;
