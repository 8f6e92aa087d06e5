//! Form operations: who may do what, the transaction each runs in, its audit row and its
//! event. Handlers in `grpc` only translate to and from the wire.
//!
//! - [`forms`]: create, read, list, update, archive, unarchive.
//! - [`versions`]: publish, versions, their JSON Schema, the published form.
//! - [`submissions`]: submit (idempotently), list, read, delete.
//! - [`export`]: a form's submissions as a CSV or NDJSON file of any size.
//! - [`analytics`]: views, starts, submissions, completion times and answer statistics.
//!
//! Tenants: a form of another tenant is NOT_FOUND whatever the caller may do, since every
//! query runs in the caller's tenant (and row-level security agrees).

mod analytics;
mod export;
mod forms;
mod submissions;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use platform::audit::{AuditEntry, AuditLog};
use platform::context::{RequestContext, TenantId};
use platform::db::Db;
use platform::events::Event;
use platform::idempotency::Idempotency;
use platform::outbox::Outbox;
use platform::redis::Redis;
use sqlx::PgConnection;

pub use analytics::{Analytics, AnalyticsQuery, Interval};
pub use export::Export;
pub use forms::{FormChanges, FormPage, NewForm};
pub use submissions::{NewSubmission, SubmissionPage, SubmissionQuery};
pub use versions::VersionPage;

use crate::app::SCHEMA;
use crate::domain::{Form, FormId, FormVersion};
use crate::error::Error;
use crate::events::form_name;
use crate::store::{self, FormRef};

/// The form operations, over the service's database and outbox.
#[derive(Debug, Clone)]
pub struct Forms {
    db: Db,
    outbox: Outbox,
    audit: AuditLog,
    idempotency: Idempotency,
    redis: Redis,
    published: PublishedVersions,
}

/// Published versions by tenant, form and number: a published version never changes, so each
/// is read from Postgres and parsed once per replica, not for every submission.
type PublishedVersions = moka::future::Cache<(TenantId, FormId, i32), Arc<FormVersion>>;

impl Forms {
    /// Operations over these dependencies.
    pub fn new(db: Db, outbox: Outbox, redis: Redis) -> Self {
        Self {
            db,
            outbox,
            redis,
            audit: AuditLog::new(SCHEMA.name),
            idempotency: Idempotency::new(SCHEMA.name),
            published: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }

    /// The published version `form` answers submissions with.
    async fn published_version(
        &self,
        transaction: &mut PgConnection,
        tenant: TenantId,
        form: &Form,
    ) -> Result<Arc<FormVersion>, Error> {
        let key = (tenant, form.id, form.published_version);
        if let Some(version) = self.published.get(&key).await {
            return Ok(version);
        }
        let version = store::get_version(transaction, tenant, form.id, form.published_version)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no version {}",
                    form_name(form),
                    form.published_version
                )
            })?;
        let version = Arc::new(version);
        self.published.insert(key, Arc::clone(&version)).await;
        Ok(version)
    }

    /// Deletes idempotency keys past their retention.
    pub async fn forget_expired_keys(&self) -> anyhow::Result<()> {
        self.idempotency.forget_expired(&self.db).await?;
        Ok(())
    }

    async fn enqueue<T: Event>(
        &self,
        transaction: &mut PgConnection,
        tenant: TenantId,
        event: T,
    ) -> Result<(), Error> {
        self.outbox
            .enqueue(transaction, Some(tenant), event)
            .await?;
        Ok(())
    }

    async fn audit(
        &self,
        transaction: &mut PgConnection,
        context: &RequestContext,
        form: &Form,
        action: &'static str,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        let entry = AuditEntry::by(
            context,
            Some(form.tenant_id),
            action,
            form_name(form),
            details,
        );
        self.audit.record(transaction, entry).await?;
        Ok(())
    }
}

/// The form `form` names in `tenant`, or FORM_NOT_FOUND.
async fn load(
    transaction: &mut PgConnection,
    tenant: TenantId,
    form: &FormRef,
    for_update: bool,
) -> Result<Form, Error> {
    store::get_form(transaction, tenant, form, for_update)
        .await?
        .ok_or_else(|| Error::FormNotFound(describe(form)))
}

fn describe(form: &FormRef) -> String {
    match form {
        FormRef::Id(id) => format!("forms/{id}"),
        FormRef::Slug(slug) => format!("forms/{slug}"),
    }
}
