//! The gateway is FormFlow's HTTP/JSON edge. It serves every RPC annotated with
//! `google.api.http` in the descriptor sets it loads (the suite's, embedded, and any other
//! team's, named in its configuration) as REST/JSON, relays gRPC-web from browsers, and does
//! what every request needs first: tenant resolution, authentication, rate limits.
//!
//! - [`config`]: flags and environment variables.
//! - [`app`]: the router, middleware and server.
//! - [`pipeline`]: one request, in order: route, tenant, credentials, limits, call, answer.
//! - [`transcode`]: routes from the descriptors, messages from path, query and body.
//! - [`tenant`], [`auth`], [`rate_limit`]: the cross-cutting steps.
//! - [`stream`]: server streaming as Server-Sent Events or NDJSON.
//! - [`grpc_web`]: relaying gRPC-web.
//! - [`openapi`]: the OpenAPI document.
//! - [`error`]: the JSON error shape.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod grpc_web;
mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod rate_limit;
pub mod stream;
pub mod tenant;
pub mod transcode;

pub use app::{App, run};
pub use config::Config;
