//! The gateway over real HTTP, in front of a real svc-auth, svc-tenant and a test gRPC service
//! (loaded from its descriptor set file, as another team's API would be), against real
//! Postgres, Redis and RabbitMQ.

mod helpers;

mod auth;
mod credentials;
mod edge;
mod errors;
mod rate_limits;
mod tenants;
mod transcoding;
