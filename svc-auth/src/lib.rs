//! svc-auth owns identity for every tenant: users (one account may belong to several tenants),
//! memberships and roles, sessions with rotating refresh tokens, brute-force protection, TOTP
//! two-factor authentication, invitations, API keys, service tokens for the suite's own calls,
//! and the Ed25519 keys that sign every token, published as a JWKS that every other service
//! verifies against.
//!
//! - [`app`]: build and run the service (`App::build`, `run`).
//! - [`admin`]: platform administrators, created by setup or the CLI.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `AuthService` handlers and wire conversions.
//! - [`identity`]: the operations, their permissions, audit rows and events.
//! - [`domain`]: emails, names, the password policy; no IO.
//! - [`crypto`]: password hashing, token digests, sealing at rest.
//! - [`keys`]: the signing key ring and its rotation.
//! - [`service_clients`]: the services allowed to obtain service tokens.
//! - [`store`]: the SQL.
//! - [`tenants`]: calls to svc-tenant.
//! - [`totp`]: TOTP codes and recovery codes.
//! - [`error`]: errors and their gRPC statuses.

pub mod admin;
pub mod app;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod keys;
pub mod service_clients;
pub mod store;
pub mod tenants;
pub mod totp;

pub use app::{build, run};
pub use config::Config;
