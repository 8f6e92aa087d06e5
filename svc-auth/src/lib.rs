//! svc-auth owns identity for every tenant: users (one account may belong to several tenants),
//! memberships and roles, sessions with rotating refresh tokens, brute-force protection, TOTP
//! two-factor authentication, invitations, API keys, service tokens for the suite's own calls,
//! and the Ed25519 keys that sign every token, published as a JWKS that every other service
//! verifies against.
//!
//! Layers point one way: `grpc` → `operations` → `domain`, `store`, `events` (and the
//! helpers beside them: `crypto`, `keys`, `totp`, `tenants`). Operations never import `grpc`.
//!
//! - [`app`]: build and run the service (`build`, `run`).
//! - [`admin`]: platform administrators, created by setup or the CLI.
//! - [`config`]: flags and environment variables.
//! - [`grpc`]: the `AuthService` handlers, request parsing and responses.
//! - [`operations`]: permissions, transactions, audit rows and events of every RPC.
//! - [`domain`]: emails, names, users, members, invitations, API keys, sessions, the password
//!   policy, lockout escalation and the API-key role ceiling; no IO.
//! - [`store`]: the SQL; rows become domain types.
//! - [`events`]: the `auth.*` events and the wire forms they share with responses.
//! - [`error`]: errors and their gRPC statuses.
//! - [`crypto`]: password hashing, token digests, sealing at rest.
//! - [`keys`]: the signing key ring and its rotation.
//! - `metrics`: the service's metrics.
//! - [`service_clients`]: the services allowed to obtain service tokens.
//! - [`tenants`]: calls to svc-tenant.
//! - [`totp`]: TOTP codes and recovery codes.

pub mod admin;
pub mod app;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod keys;
mod metrics;
pub mod operations;
pub mod service_clients;
pub mod store;
pub mod tenants;
pub mod totp;

pub use app::{build, run};
pub use config::Config;
