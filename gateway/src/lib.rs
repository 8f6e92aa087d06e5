//! The gateway is FormFlow's HTTP/JSON edge. Today it answers liveness (`/healthz`),
//! readiness (`/readyz`, which checks every upstream service's gRPC health) and `/metrics`,
//! and answers every other path with the suite's JSON error shape. REST-to-gRPC transcoding
//! from the protos' `google.api.http` annotations, tenant resolution, authentication and rate
//! limiting land with the gateway issue.
//!
//! - [`config`]: flags and environment variables.
//! - [`app`]: the router and the server.
//! - [`error`]: the JSON error shape.

pub mod app;
pub mod config;
pub mod error;

pub use app::{App, run};
pub use config::Config;
