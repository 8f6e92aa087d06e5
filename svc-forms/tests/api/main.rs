//! svc-forms over real gRPC, Postgres, Redis and RabbitMQ.

mod kit;
