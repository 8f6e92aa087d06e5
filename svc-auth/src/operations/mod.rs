//! The identity operations: who may do what, the transaction each runs in, its audit row and
//! its event. Each takes the call's [`RequestContext`] as its caller; handlers in `grpc` only
//! translate to and from the wire.
//!
//! - `signup`: a new tenant and its owner.
//! - `login`: the two login steps, lockout and address throttling.
//! - `sessions`: tokens, refresh with reuse detection, logout.
//! - `account`: the caller's own account.
//! - `passwords`: changing and resetting passwords.
//! - `reset_requests`: the queue and worker that handle reset requests off the request path.
//! - `two_factor`: TOTP enrolment and recovery codes.
//! - `invitations`, `members`: who belongs to a tenant, with which role.
//! - `api_keys`: keys for machine clients.
//! - `service`: service tokens, the published key set, key rotation.

mod account;
mod api_keys;
mod invitations;
mod login;
mod members;
mod passwords;
mod reset_requests;
mod service;
mod sessions;
mod signup;
mod two_factor;

use std::sync::Arc;
use std::time::Duration;

use platform::audit::{AuditEntry, AuditLog};
use platform::auth::RevokedSessions;
use platform::context::{RequestContext, TenantId, UserId};
use platform::db::Db;
use platform::events::Event;
use platform::outbox::Outbox;
use platform::redis::Redis;
use sqlx::{PgConnection, Postgres, Transaction};

pub use account::Me;
pub use api_keys::{ApiKeyPage, CreatedApiKey, NewApiKeyRequest, VerifiedApiKey};
pub use invitations::{AcceptedInvitation, InvitationPage, NewInvitationRequest};
pub use login::LoginOutcome;
pub use members::{MemberPage, MemberPosition};
pub use service::{IssuedToken, SELF_CLIENT_ID};
pub use sessions::SessionTokens;
pub use signup::{SignUp, SignedUp};
pub use two_factor::Enrolment;

pub(crate) use reset_requests::{ResetRequests, reset_queue};

use crate::config::{SecurityConfig, TokenConfig};
use platform::crypto::Sealer;

use crate::crypto::Passwords;
use crate::domain::{LockoutPolicy, PasswordPolicy};
use crate::error::Error;
use crate::keys::KeyRing;
use crate::service_clients::ServiceClients;
use crate::tenants::TenantClient;

/// Token lifetimes, password and lockout settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Issued tokens.
    pub tokens: TokenConfig,
    /// Password hashing and brute-force protection.
    pub security: SecurityConfig,
}

impl Settings {
    /// The password policy.
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.security.password_min_length as usize,
        }
    }

    /// The account lockout policy.
    pub fn lockout_policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            threshold: self.security.lockout_threshold,
            base: self.security.lockout_base,
            max: self.security.lockout_max,
        }
    }

    /// How long retired signing keys stay published: the longest token lifetime plus leeway.
    pub fn key_retention(tokens: &TokenConfig) -> Duration {
        tokens.access_token_ttl.max(tokens.service_token_ttl) + Duration::from_secs(120)
    }
}

/// svc-auth's operations over its dependencies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Identity {
    pub(crate) db: Db,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) passwords: Passwords,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) clients: Arc<ServiceClients>,
    pub(crate) tenants: TenantClient,
    pub(crate) outbox: Outbox,
    pub(crate) audit: AuditLog,
    pub(crate) redis: Redis,
    pub(crate) revocations: RevokedSessions,
    pub(crate) settings: Arc<Settings>,
    pub(crate) reset_requests: ResetRequests,
}

impl Identity {
    /// A transaction scoped to `tenant`, or platform-wide for what belongs to no tenant
    /// (platform administrators' sessions).
    async fn transaction_for(
        &self,
        tenant: Option<TenantId>,
    ) -> sqlx::Result<Transaction<'static, Postgres>> {
        match tenant {
            Some(tenant) => self.db.tenant_tx(tenant).await,
            None => self.db.platform_tx().await,
        }
    }

    /// Appends `entry` to the audit trail inside the caller's transaction.
    async fn audit(&self, connection: &mut PgConnection, entry: AuditEntry) -> Result<(), Error> {
        self.audit.record(connection, entry).await?;
        Ok(())
    }

    /// Enqueues `event` inside the caller's transaction; [`Outbox::notify`] after the commit
    /// publishes it.
    async fn enqueue<T: Event>(
        &self,
        connection: &mut PgConnection,
        tenant: Option<TenantId>,
        event: T,
    ) -> Result<(), Error> {
        self.outbox.enqueue(connection, tenant, event).await?;
        Ok(())
    }

    /// Enqueues `event`, which carries a one-time token, sealed under the service's key: the
    /// outbox keeps it in clear only with `redact` applied, and erases the sealed envelope once
    /// published.
    async fn enqueue_sealed<T: Event>(
        &self,
        connection: &mut PgConnection,
        tenant: Option<TenantId>,
        event: T,
        redact: impl FnOnce(&mut T),
    ) -> Result<(), Error> {
        self.outbox
            .enqueue_sealed(connection, tenant, event, redact)
            .await?;
        Ok(())
    }
}

/// An audit entry for what the caller of `context` did to `target` in `tenant`, recorded as
/// done by `user`: calls such as sign-up or a password reset are anonymous, but the user they
/// prove is who acts.
fn audit_as_user(
    context: &RequestContext,
    user: UserId,
    tenant: Option<TenantId>,
    action: &'static str,
    target: String,
    details: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        actor: format!("user:{user}"),
        ..AuditEntry::by(context, tenant, action, target, details)
    }
}

/// The audit entry of the calling `user` changing their own account (password, second
/// factor), in the tenant they act in, if any.
fn own_account_entry(context: &RequestContext, user: UserId, action: &'static str) -> AuditEntry {
    audit_as_user(
        context,
        user,
        context.acting_tenant().ok(),
        action,
        platform::wire::resource_name("users", user),
        serde_json::json!({"ip_address": context.client_ip}),
    )
}
