//! svc-tenant over real gRPC, against real Postgres, Redis and RabbitMQ.

mod helpers;

mod cache;
mod events;
mod grpcurl;
mod isolation;
mod lifecycle;
mod listing;
mod outbox;
mod permissions;
mod resolve;
mod validation;
