//! svc-forms over real gRPC, Postgres, Redis and RabbitMQ.

mod events;
mod field_types;
mod forms;
mod helpers;
mod idempotency;
mod isolation;
mod kit;
mod submissions;
mod versions;
