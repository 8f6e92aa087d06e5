//! svc-workflow over real gRPC and Postgres.

mod credentials;
mod definitions;
mod helpers;
mod isolation;
mod workflows;
