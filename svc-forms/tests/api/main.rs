//! svc-forms over real gRPC, Postgres, Redis and RabbitMQ.

mod analytics;
mod events;
mod export;
mod field_types;
mod forms;
mod helpers;
mod idempotency;
mod isolation;
mod kit;
mod page;
mod spam;
mod submissions;
mod versions;
