//! Notify operations: who may do what, the transaction each runs in, its audit row and the
//! jobs it queues. Handlers in `grpc` only translate to and from the wire.
//!
//! - [`templates`]: create, read, list, update, delete, preview.
//! - [`send`]: accepting a notification: rendering, recipients × channels, dedup; reading it.
//! - [`deliveries`]: listing and reading deliveries, retrying a failed one.
//! - [`endpoints`]: webhook endpoints and their secrets.
//! - [`inbox`]: the caller's in-app messages.
//!
//! Tenants: a resource of another tenant is NOT_FOUND whatever the caller may do, since every
//! query runs in the caller's tenant (and row-level security agrees); an inbox is its user's
//! only.

mod deliveries;
mod endpoints;
mod inbox;
mod preferences;
mod send;
mod templates;

use platform::audit::AuditLog;
use platform::db::Db;
use platform::idempotency::Idempotency;

pub use deliveries::DeliveryPage;
pub use endpoints::{NewWebhookEndpoint, WebhookEndpointChanges, WebhookEndpointPage};
pub use inbox::InboxPage;
pub use preferences::PreferenceChanges;
pub use send::{Body, NewNotification};
pub use templates::{NewTemplate, PreviewSource, TemplateChanges, TemplatePage, TemplateRef};

use crate::app::SCHEMA;
use crate::clock::Clock;
use crate::live::Inboxes;
use crate::store;
use crate::worker::Worker;

/// The notify operations, over the service's database, the delivery worker and the live
/// inboxes.
#[derive(Debug, Clone)]
pub struct Notify {
    db: Db,
    audit: AuditLog,
    idempotency: Idempotency,
    worker: Worker,
    inboxes: Inboxes,
    clock: Clock,
}

impl Notify {
    /// Operations over `db`, queuing deliveries on `worker`, publishing inbox changes to
    /// `inboxes`, deciding quiet hours by `clock`.
    pub fn new(db: Db, worker: Worker, inboxes: Inboxes, clock: Clock) -> Self {
        Self {
            db,
            audit: AuditLog::new(SCHEMA.name),
            idempotency: Idempotency::new(SCHEMA.name),
            worker,
            inboxes,
            clock,
        }
    }

    /// Deletes notifications older than `days` days with nothing left to send, in batches;
    /// answers how many.
    pub async fn forget_expired_notifications(&self, days: i32) -> anyhow::Result<u64> {
        let before = self.clock.now() - chrono::Duration::days(i64::from(days));
        let mut deleted = 0;
        loop {
            let mut transaction = self.db.platform_tx().await?;
            let batch =
                store::delete_expired_notifications(&mut transaction, before, 1_000).await?;
            transaction.commit().await?;
            deleted += batch;
            if batch < 1_000 {
                return Ok(deleted);
            }
        }
    }

    /// Deletes idempotency keys past their retention.
    pub async fn forget_expired_keys(&self) -> anyhow::Result<()> {
        self.idempotency.forget_expired(&self.db).await?;
        Ok(())
    }
}
