//! svc-auth over real gRPC, with a real svc-tenant, against real Postgres, Redis and RabbitMQ.

mod helpers;

mod api_keys;
mod callers;
mod keys;
mod lockout;
mod members;
mod passwords;
mod secrets_at_rest;
mod sessions;
mod signup;
mod two_factor;
mod validation;
