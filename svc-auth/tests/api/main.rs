//! svc-auth over real gRPC, with a real svc-tenant, against real Postgres, Redis and RabbitMQ.

mod helpers;

mod keys;
mod lockout;
mod sessions;
mod signup;
