//! Batch jobs: many texts embedded, classified or triaged in the background, on the work
//! queue `jobs.ai`. A job's row is its own outbox: the message only says "look at job X", and
//! a worker takes the job under a lease, processes its items in chunks that each commit their
//! results, classifications and events with the lease checked, and ends it with
//! `ai.batch_job.completed`. A crash loses at most the chunk in progress, which the next
//! worker does again (nothing of it was stored); a job whose message was lost, or whose worker
//! died, is sent again by the sweeper once its lease lapses.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::wire::resource_name;
use proto::formflow::ai::v1 as wire;
use proto::formflow::events::v1::BatchJobCompleted;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Ai, Labels, Page};
use crate::domain::{
    BATCH_RETENTION_DAYS, BatchItem, BatchJob, BatchJobId, BatchState, BatchTask, LabelSetId,
};
use crate::error::Error;
use crate::store;

/// The work queue of batch jobs (under the deployment's prefix).
pub const BATCH_QUEUE: &str = "jobs.ai";
/// Items processed (and committed) together.
const CHUNK: i64 = 32;
/// Takes of a job before it fails instead (a job that keeps failing for a passing reason).
const MAX_ATTEMPTS: i32 = 5;

/// How batch jobs are worked on.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchSettings {
    /// Jobs a replica works on at once; 0 works on none.
    pub concurrency: u16,
    /// How long a worker holds a job between two chunks.
    pub lease: Duration,
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewBatchJob {
    /// What to do with each item.
    pub task: BatchTask,
    /// Model id; `None` is the default.
    pub model: Option<String>,
    /// The label set (CLASSIFY; CLASSIFY_TICKET's categories).
    pub label_set: Option<LabelSetId>,
    /// svc-notify's webhook endpoint to tell, or empty.
    pub webhook_endpoint: String,
    /// The items.
    pub items: Vec<BatchItem>,
}

/// A job message on `jobs.ai`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct JobMessage {
    tenant_id: TenantId,
    job_id: BatchJobId,
}

impl platform::jobs::Job for JobMessage {
    const KIND: &'static str = "ai.batch_job";

    fn subject(&self) -> impl std::fmt::Display {
        self.job_id
    }

    /// Unique per message: a job is looked at again whenever it is sent.
    fn message_id(&self) -> String {
        format!("{}.{}", self.job_id, Uuid::now_v7())
    }
}

/// Why a job stopped being worked on.
enum Stop {
    /// Another worker has it now, or it ended meanwhile (cancelled).
    LostIt,
    /// For good: the job fails with this error.
    Fail(String),
    /// For a passing reason: another take will go on.
    Retry(anyhow::Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        match error {
            Error::LabelSetNotFound(_) | Error::ModelNotFound(_) | Error::NoModel(_) => {
                Stop::Fail(error.to_string())
            }
            other => Stop::Retry(anyhow::Error::new(other)),
        }
    }
}

impl From<anyhow::Error> for Stop {
    fn from(error: anyhow::Error) -> Self {
        Stop::Retry(error)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Stop::Retry(error.into())
    }
}

impl Ai {
    /// Creates a job and queues it; answers it as QUEUED.
    pub async fn create_batch_job(
        &self,
        context: &RequestContext,
        new: NewBatchJob,
    ) -> Result<BatchJob, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let model = self.model(new.model.as_deref())?;
        let job = BatchJob {
            id: BatchJobId::generate(),
            tenant_id: tenant,
            task: new.task,
            model: model.manifest().id.clone(),
            label_set: new.label_set,
            webhook_endpoint: new.webhook_endpoint,
            state: BatchState::Queued,
            total: i32::try_from(new.items.len()).expect("at most 1,000 items"),
            processed: 0,
            failed: 0,
            error: String::new(),
            created_at: Utc::now().trunc_subsecs(6),
            started_at: None,
            ended_at: None,
            expire_at: None,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if let Some(id) = job.label_set
            && store::find_label_set(&mut transaction, tenant, id, store::Lock::Share)
                .await?
                .is_none()
        {
            return Err(Error::LabelSetNotFound(resource_name("labelSets", id)));
        }
        store::insert_batch_job(&mut transaction, &job, &new.items).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "batch_job.create",
                resource_name("batchJobs", job.id),
                json!({"task": job.task.as_str(), "items": job.total}),
            )
            .await?;
        transaction.commit().await?;
        self.dispatch(tenant, job.id).await;
        Ok(job)
    }

    /// A job of the caller's tenant, with the results of its items once it has ended.
    pub async fn get_batch_job(
        &self,
        context: &RequestContext,
        id: BatchJobId,
    ) -> Result<(BatchJob, Vec<wire::BatchResult>), Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let job = store::find_batch_job(&mut transaction, tenant, id, false)
            .await?
            .ok_or_else(|| Error::BatchJobNotFound(resource_name("batchJobs", id)))?;
        let results = if job.state.has_ended() {
            store::batch_results(&mut transaction, tenant, id)
                .await?
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::from)?
        } else {
            Vec::new()
        };
        transaction.commit().await?;
        Ok((job, results))
    }

    /// A page of the tenant's jobs (in `state` only, when given), newest first.
    pub async fn list_batch_jobs(
        &self,
        context: &RequestContext,
        state: Option<BatchState>,
        before: Option<(DateTime<Utc>, BatchJobId)>,
        page_size: usize,
    ) -> Result<Page<BatchJob, (DateTime<Utc>, BatchJobId)>, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_batch_jobs(
            &mut transaction,
            tenant,
            state,
            before,
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (items, next_after) =
            platform::paging::split_page(rows, page_size, |last| (last.created_at, last.id));
        Ok(Page { items, next_after })
    }

    /// Cancels a job that has not ended (announcing its end); an ended job is answered as it
    /// is.
    pub async fn cancel_batch_job(
        &self,
        context: &RequestContext,
        id: BatchJobId,
    ) -> Result<BatchJob, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let name = resource_name("batchJobs", id);
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let job = store::find_batch_job(&mut transaction, tenant, id, true)
            .await?
            .ok_or_else(|| Error::BatchJobNotFound(name.clone()))?;
        if job.state.has_ended() {
            transaction.commit().await?;
            return Ok(job);
        }
        let job = self
            .end(&mut transaction, tenant, id, BatchState::Cancelled, "")
            .await?
            .expect("locked and not ended");
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "batch_job.cancel",
                name,
                json!({"processed": job.processed}),
            )
            .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(job)
    }

    /// Ends a job in `state` and announces it, in the caller's transaction.
    async fn end(
        &self,
        transaction: &mut sqlx::PgConnection,
        tenant: TenantId,
        id: BatchJobId,
        state: BatchState,
        error: &str,
    ) -> anyhow::Result<Option<BatchJob>> {
        let now = Utc::now().trunc_subsecs(6);
        let expire_at = now + chrono::Duration::days(BATCH_RETENTION_DAYS);
        let Some(job) =
            store::end_batch_job(transaction, tenant, id, state, error, now, expire_at).await?
        else {
            return Ok(None);
        };
        self.outbox
            .enqueue(
                transaction,
                Some(tenant),
                BatchJobCompleted {
                    batch_job: Some(crate::events::batch_job_to_proto(&job, Vec::new())),
                },
            )
            .await?;
        Ok(Some(job))
    }

    /// Sends job `id`'s message; a failure is only logged: the sweeper sends it again.
    async fn dispatch(&self, tenant: TenantId, id: BatchJobId) {
        let message = JobMessage {
            tenant_id: tenant,
            job_id: id,
        };
        self.batches.jobs.send(&message, Duration::ZERO).await;
    }

    /// Works on `jobs.ai` until `stopped`, reconnecting after broker failures.
    pub async fn work_on_batches(self, stopped: CancellationToken) {
        let concurrency = self.batches.settings.concurrency;
        let take = |message: JobMessage| self.take_batch(message.tenant_id, message.job_id);
        self.batches.jobs.work(concurrency, take, stopped).await;
    }

    /// Sends the messages of unfinished jobs no worker holds again.
    pub async fn send_unattended_batches(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        let before =
            now - chrono::Duration::from_std(self.batches.settings.lease).unwrap_or_default();
        let mut transaction = self.db.platform_tx().await?;
        let jobs = store::unattended_batch_jobs(&mut transaction, now, before, 100).await?;
        transaction.commit().await?;
        let messages = jobs
            .into_iter()
            .map(|(tenant_id, job_id)| JobMessage { tenant_id, job_id });
        self.batches.jobs.send_again(messages).await;
        Ok(())
    }

    /// Deletes jobs past their retention, with their items.
    pub async fn forget_expired_batches(&self) -> anyhow::Result<()> {
        let mut transaction = self.db.platform_tx().await?;
        let deleted = store::delete_expired_batch_jobs(&mut transaction, Utc::now()).await?;
        transaction.commit().await?;
        if deleted > 0 {
            tracing::info!(deleted, "deleted batch jobs past their retention");
        }
        Ok(())
    }

    /// Takes job `id` if no worker holds it, and works on it until it ends or is lost.
    async fn take_batch(&self, tenant: TenantId, id: BatchJobId) -> anyhow::Result<()> {
        let token = Uuid::now_v7();
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let lease = (token, self.lease_until());
        let taken = store::take_batch_job(
            &mut transaction,
            tenant,
            id,
            lease,
            Utc::now(),
            MAX_ATTEMPTS,
        )
        .await?;
        let Some(job) = taken else {
            // Ended, held by another worker, or taken as often as it may be: then it fails.
            if store::exhausted_batch_job(&mut transaction, tenant, id, Utc::now(), MAX_ATTEMPTS)
                .await?
            {
                self.end(
                    &mut transaction,
                    tenant,
                    id,
                    BatchState::Failed,
                    "the job failed on every attempt",
                )
                .await?;
            }
            transaction.commit().await?;
            self.outbox.notify();
            return Ok(());
        };
        transaction.commit().await?;
        match self.work_on(&job, token).await {
            Ok(()) | Err(Stop::LostIt) => Ok(()),
            Err(Stop::Fail(error)) => {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                if store::holds_lease(&mut transaction, tenant, id, token).await? {
                    self.end(&mut transaction, tenant, id, BatchState::Failed, &error)
                        .await?;
                }
                transaction.commit().await?;
                self.outbox.notify();
                Ok(())
            }
            Err(Stop::Retry(error)) => {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                store::release_lease(&mut transaction, tenant, id, token).await?;
                transaction.commit().await?;
                Err(error)
            }
        }
    }

    fn lease_until(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.batches.settings.lease).unwrap_or_default()
    }

    /// Processes the job's pending items chunk by chunk under lease `token`, then ends it.
    async fn work_on(&self, job: &BatchJob, token: Uuid) -> Result<(), Stop> {
        let tenant = job.tenant_id;
        let model = self.model(Some(&job.model))?;
        loop {
            let mut transaction = self.db.tenant_tx(tenant).await?;
            let items = store::pending_items(&mut transaction, tenant, job.id, CHUNK).await?;
            transaction.commit().await?;
            if items.is_empty() {
                let mut transaction = self.db.tenant_tx(tenant).await?;
                if !store::holds_lease(&mut transaction, tenant, job.id, token).await? {
                    return Err(Stop::LostIt);
                }
                self.end(&mut transaction, tenant, job.id, BatchState::Succeeded, "")
                    .await?;
                transaction.commit().await?;
                self.outbox.notify();
                return Ok(());
            }
            let (results, classifications) = self.process(job, model, &items).await?;
            let mut transaction = self.db.tenant_tx(tenant).await?;
            if !store::holds_lease(&mut transaction, tenant, job.id, token).await? {
                return Err(Stop::LostIt);
            }
            store::save_results(
                &mut transaction,
                tenant,
                job.id,
                &results,
                self.lease_until(),
            )
            .await?;
            self.store_classifications(&mut transaction, tenant, &classifications, Some(job.id))
                .await?;
            transaction.commit().await?;
            self.outbox.notify();
        }
    }

    /// The results of `items` (position, BatchResult JSON, whether it failed), and the
    /// classifications among them to store.
    async fn process(
        &self,
        job: &BatchJob,
        model: &crate::pool::LoadedModel,
        items: &[(i32, BatchItem)],
    ) -> Result<
        (
            Vec<(i32, serde_json::Value, bool)>,
            Vec<crate::domain::Classification>,
        ),
        Stop,
    > {
        let tenant = job.tenant_id;
        let mut results = Vec::with_capacity(items.len());
        let mut classifications = Vec::new();
        let to_json =
            |result: wire::BatchResult| serde_json::to_value(result).expect("a result serialises");
        match job.task {
            BatchTask::Embed => {
                let embedded = model
                    .embed(items.iter().map(|(_, item)| item.text.clone()).collect())
                    .await
                    .map_err(Error::from)?;
                for ((position, item), embedding) in items.iter().zip(embedded) {
                    let output = wire::batch_result::Output::Embedding(wire::Embedding {
                        values: embedding.vector,
                        token_count: i32::try_from(embedding.tokens).unwrap_or(i32::MAX),
                        truncated: embedding.truncated,
                    });
                    let result = wire::BatchResult {
                        item_id: item.id.clone(),
                        output: Some(output),
                    };
                    results.push((*position, to_json(result), false));
                }
            }
            BatchTask::Classify => {
                let label_set = job
                    .label_set
                    .ok_or_else(|| Stop::Fail("a CLASSIFY job without a label set".to_owned()))?;
                let texts = items
                    .iter()
                    .map(|(_, item)| (item.text.clone(), item.source.clone()))
                    .collect();
                let made = self
                    .classifications(tenant, model, &Labels::Set(label_set), texts)
                    .await?;
                for ((position, item), classification) in items.iter().zip(&made) {
                    results.push((*position, to_json(classified(item, classification)), false));
                }
                classifications = made;
            }
            BatchTask::ClassifyTicket => {
                for (position, item) in items {
                    let classification = self
                        .ticket_classification(
                            tenant,
                            model,
                            job.label_set,
                            (&item.subject, &item.text),
                            item.source.clone(),
                        )
                        .await?;
                    results.push((*position, to_json(classified(item, &classification)), false));
                    classifications.push(classification);
                }
            }
        }
        Ok((results, classifications))
    }
}

fn classified(
    item: &BatchItem,
    classification: &crate::domain::Classification,
) -> wire::BatchResult {
    wire::BatchResult {
        item_id: item.id.clone(),
        output: Some(wire::batch_result::Output::Classification(
            crate::events::classification_to_proto(classification),
        )),
    }
}
