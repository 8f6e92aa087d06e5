//! Batch jobs, their items and results, and the leases of the workers on them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{BatchItem, BatchJob, BatchJobId, BatchState, BatchTask, LabelSetId};

struct BatchJobRow {
    id: Uuid,
    tenant_id: Uuid,
    task: String,
    model: String,
    label_set_id: Option<Uuid>,
    webhook_endpoint: String,
    state: String,
    total_count: i32,
    processed_count: i32,
    failed_count: i32,
    error: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    expire_at: Option<DateTime<Utc>>,
}

impl TryFrom<BatchJobRow> for BatchJob {
    type Error = anyhow::Error;

    fn try_from(row: BatchJobRow) -> anyhow::Result<BatchJob> {
        Ok(BatchJob {
            id: BatchJobId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            task: BatchTask::parse(&row.task).context("stored batch task")?,
            model: row.model,
            label_set: row.label_set_id.map(LabelSetId::from),
            webhook_endpoint: row.webhook_endpoint,
            state: BatchState::parse(&row.state).context("stored batch state")?,
            total: row.total_count,
            processed: row.processed_count,
            failed: row.failed_count,
            error: row.error,
            created_at: row.created_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            expire_at: row.expire_at,
        })
    }
}

/// Stores a new job and its items.
pub async fn insert_batch_job(
    connection: &mut PgConnection,
    job: &BatchJob,
    items: &[BatchItem],
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO ai.batch_jobs (id, tenant_id, task, model, label_set_id, webhook_endpoint, \
             state, total_count, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        job.id.as_uuid(),
        job.tenant_id.as_uuid(),
        job.task.as_str(),
        job.model,
        job.label_set.map(|id| id.as_uuid()),
        job.webhook_endpoint,
        job.state.as_str(),
        job.total,
        job.created_at,
    )
    .execute(&mut *connection)
    .await?;
    let positions: Vec<i32> = (0..items.len())
        .map(|position| i32::try_from(position).expect("at most 1,000 items"))
        .collect();
    let ids: Vec<&str> = items.iter().map(|item| item.id.as_str()).collect();
    let texts: Vec<&str> = items.iter().map(|item| item.text.as_str()).collect();
    let subjects: Vec<&str> = items.iter().map(|item| item.subject.as_str()).collect();
    let sources: Vec<&str> = items.iter().map(|item| item.source.as_str()).collect();
    sqlx::query!(
        "INSERT INTO ai.batch_items (tenant_id, job_id, position, item_id, text, subject, source) \
         SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::text[])",
        job.tenant_id.as_uuid(),
        job.id.as_uuid(),
        &positions,
        &ids as &[&str],
        &texts as &[&str],
        &subjects as &[&str],
        &sources as &[&str],
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// A job of `tenant`, locked against workers and cancellations when `for_update`.
pub async fn find_batch_job(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    for_update: bool,
) -> anyhow::Result<Option<BatchJob>> {
    let row = if for_update {
        sqlx::query_as!(
            BatchJobRow,
            "SELECT id, tenant_id, task, model, label_set_id, webhook_endpoint, state, \
                 total_count, processed_count, failed_count, error, created_at, started_at, \
                 ended_at, expire_at \
             FROM ai.batch_jobs WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            tenant.as_uuid(),
            id.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            BatchJobRow,
            "SELECT id, tenant_id, task, model, label_set_id, webhook_endpoint, state, \
                 total_count, processed_count, failed_count, error, created_at, started_at, \
                 ended_at, expire_at \
             FROM ai.batch_jobs WHERE tenant_id = $1 AND id = $2",
            tenant.as_uuid(),
            id.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(BatchJob::try_from).transpose()
}

/// Up to `limit` jobs of `tenant` (in `state` only, when given), newest first, before the
/// position `before`.
pub async fn list_batch_jobs(
    connection: &mut PgConnection,
    tenant: TenantId,
    state: Option<BatchState>,
    before: Option<(DateTime<Utc>, BatchJobId)>,
    limit: i64,
) -> anyhow::Result<Vec<BatchJob>> {
    let (before_time, before_id) = before.unzip();
    sqlx::query_as!(
        BatchJobRow,
        "SELECT id, tenant_id, task, model, label_set_id, webhook_endpoint, state, total_count, \
             processed_count, failed_count, error, created_at, started_at, ended_at, expire_at \
         FROM ai.batch_jobs \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR state = $2) \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
        tenant.as_uuid(),
        state.map(BatchState::as_str),
        before_time,
        before_id.map(|id| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(BatchJob::try_from)
    .collect()
}

/// The results of a job's processed items, in item order (proto3 JSON of `BatchResult`).
pub async fn batch_results(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
) -> anyhow::Result<Vec<Value>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT result AS "result!" FROM ai.batch_items
           WHERE tenant_id = $1 AND job_id = $2 AND result IS NOT NULL ORDER BY position"#,
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_all(connection)
    .await?)
}

/// Takes a job that is waiting or whose worker's lease lapsed, under a new lease, unless it
/// was taken `max_attempts` times already; `None` when it is not to be taken.
pub async fn take_batch_job(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    lease: (Uuid, DateTime<Utc>),
    now: DateTime<Utc>,
    max_attempts: i32,
) -> anyhow::Result<Option<BatchJob>> {
    sqlx::query_as!(
        BatchJobRow,
        "UPDATE ai.batch_jobs SET state = 'running', lease_token = $3, lease_until = $4, \
             attempts = attempts + 1, started_at = coalesce(started_at, $5) \
         WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running') \
           AND (lease_until IS NULL OR lease_until < $5) AND attempts < $6 \
         RETURNING id, tenant_id, task, model, label_set_id, webhook_endpoint, state, \
             total_count, processed_count, failed_count, error, created_at, started_at, \
             ended_at, expire_at",
        tenant.as_uuid(),
        id.as_uuid(),
        lease.0,
        lease.1,
        now,
        max_attempts,
    )
    .fetch_optional(connection)
    .await?
    .map(BatchJob::try_from)
    .transpose()
}

/// Whether the job is still running under the lease `token`, locking it until the
/// transaction ends.
pub async fn holds_lease(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    token: Uuid,
) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT 1 FROM ai.batch_jobs \
         WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND lease_token = $3 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
        token,
    )
    .fetch_optional(connection)
    .await?
    .is_some())
}

/// Up to `limit` items of a job not processed yet, in order, with their positions.
pub async fn pending_items(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    limit: i64,
) -> anyhow::Result<Vec<(i32, BatchItem)>> {
    let rows = sqlx::query!(
        "SELECT position, item_id, text, subject, source FROM ai.batch_items \
         WHERE tenant_id = $1 AND job_id = $2 AND result IS NULL ORDER BY position LIMIT $3",
        tenant.as_uuid(),
        id.as_uuid(),
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.position,
                BatchItem {
                    id: row.item_id,
                    text: row.text,
                    subject: row.subject,
                    source: row.source,
                },
            )
        })
        .collect())
}

/// Stores the results of processed items (position, result, whether it failed) and counts
/// them, renewing the lease until `lease_until`.
pub async fn save_results(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    results: &[(i32, Value, bool)],
    lease_until: DateTime<Utc>,
) -> anyhow::Result<()> {
    let positions: Vec<i32> = results.iter().map(|(position, _, _)| *position).collect();
    let values: Vec<Value> = results.iter().map(|(_, value, _)| value.clone()).collect();
    sqlx::query!(
        "UPDATE ai.batch_items i SET result = r.result \
         FROM unnest($3::int[], $4::jsonb[]) AS r(position, result) \
         WHERE i.tenant_id = $1 AND i.job_id = $2 AND i.position = r.position",
        tenant.as_uuid(),
        id.as_uuid(),
        &positions,
        &values,
    )
    .execute(&mut *connection)
    .await?;
    let failed = results.iter().filter(|(_, _, failed)| *failed).count();
    sqlx::query!(
        "UPDATE ai.batch_jobs SET processed_count = processed_count + $3, \
             failed_count = failed_count + $4, lease_until = $5 \
         WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
        i32::try_from(results.len()).expect("a chunk of items"),
        i32::try_from(failed).expect("a chunk of items"),
        lease_until,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Ends a job that has not ended, in `state` with `error`; `None` when it had ended already.
pub async fn end_batch_job(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    state: BatchState,
    error: &str,
    now: DateTime<Utc>,
    expire_at: DateTime<Utc>,
) -> anyhow::Result<Option<BatchJob>> {
    sqlx::query_as!(
        BatchJobRow,
        "UPDATE ai.batch_jobs SET state = $3, error = $4, ended_at = $5, expire_at = $6, \
             lease_token = NULL, lease_until = NULL \
         WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running') \
         RETURNING id, tenant_id, task, model, label_set_id, webhook_endpoint, state, \
             total_count, processed_count, failed_count, error, created_at, started_at, \
             ended_at, expire_at",
        tenant.as_uuid(),
        id.as_uuid(),
        state.as_str(),
        error,
        now,
        expire_at,
    )
    .fetch_optional(connection)
    .await?
    .map(BatchJob::try_from)
    .transpose()
}

/// Lets another worker take the job at once (this one failed on it for a passing reason).
pub async fn release_lease(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    token: Uuid,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE ai.batch_jobs SET lease_until = NULL \
         WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'running'",
        tenant.as_uuid(),
        id.as_uuid(),
        token,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Every tenant's unfinished jobs no worker holds and created before `before`: their
/// messages may be lost (a crash between a commit and its publish, a worker gone).
pub async fn unattended_batch_jobs(
    connection: &mut PgConnection,
    now: DateTime<Utc>,
    before: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<(TenantId, BatchJobId)>> {
    let rows = sqlx::query!(
        "SELECT tenant_id, id FROM ai.batch_jobs \
         WHERE state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < $1) \
           AND created_at < $2 \
         ORDER BY created_at LIMIT $3",
        now,
        before,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (TenantId::from(row.tenant_id), BatchJobId::from(row.id)))
        .collect())
}

/// Deletes every tenant's jobs past their retention; answers how many.
pub async fn delete_expired_batch_jobs(
    connection: &mut PgConnection,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let deleted = sqlx::query!("DELETE FROM ai.batch_jobs WHERE expire_at < $1", now)
        .execute(connection)
        .await?;
    Ok(deleted.rows_affected())
}

/// Whether an unfinished job no worker holds was taken `max_attempts` times already, locking
/// it until the transaction ends.
pub async fn exhausted_batch_job(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: BatchJobId,
    now: DateTime<Utc>,
    max_attempts: i32,
) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT 1 FROM ai.batch_jobs \
         WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running') \
           AND attempts >= $4 AND (lease_until IS NULL OR lease_until < $3) FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
        now,
        max_attempts,
    )
    .fetch_optional(connection)
    .await?
    .is_some())
}
