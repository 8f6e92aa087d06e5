//! SQL of executions, node runs and dead letters.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use platform::jobs::Wake;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::execution::{
    DeadLetter, DeadLetterId, Execution, ExecutionId, ExecutionState, Failure, NodeRun, NodeRunId,
    NodeRunState, TriggerKind,
};
use crate::domain::{Definition, WorkflowId};

struct ExecutionRow {
    id: Uuid,
    workflow_id: Uuid,
    workflow_version: i32,
    workflow_display_name: String,
    workflow_owner: String,
    state: String,
    trigger_kind: String,
    trigger_node: String,
    trigger_ref: String,
    triggered_by: String,
    input: Value,
    output: Option<Value>,
    error: Option<Value>,
    retry_of: Option<Uuid>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

impl TryFrom<ExecutionRow> for Execution {
    type Error = anyhow::Error;

    fn try_from(row: ExecutionRow) -> anyhow::Result<Execution> {
        Ok(Execution {
            id: ExecutionId::from(row.id),
            workflow_id: WorkflowId::from(row.workflow_id),
            workflow_version: row.workflow_version,
            workflow_display_name: row.workflow_display_name,
            workflow_owner: row.workflow_owner,
            state: ExecutionState::parse(&row.state).context("stored execution state")?,
            trigger_kind: TriggerKind::parse(&row.trigger_kind).context("stored trigger kind")?,
            trigger_node: row.trigger_node,
            trigger_ref: row.trigger_ref,
            triggered_by: row.triggered_by,
            input: row.input,
            output: row.output,
            error: row.error.map(failure).transpose()?,
            retry_of: row.retry_of.map(ExecutionId::from),
            created_at: row.created_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
        })
    }
}

fn failure(stored: Value) -> anyhow::Result<Failure> {
    serde_json::from_value(stored).context("stored failure")
}

fn stored(failure: Option<&Failure>) -> Option<Value> {
    failure.map(|failure| serde_json::to_value(failure).expect("a failure serialises"))
}

/// What the engine keeps of an execution besides what the API shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    /// Bumped by each lease taken and by a cancellation: fences a worker that lost its lease.
    pub lease_token: i64,
    /// Until when the lease holds; `None` when no worker holds it.
    pub lease_until: Option<DateTime<Utc>>,
    /// When the execution next needs a worker; `None` once ended.
    pub wake_at: Option<DateTime<Utc>>,
    /// The token of the latest job message sent for it; older ones are stale.
    pub wake_token: i64,
    /// When it times out.
    pub deadline: DateTime<Utc>,
    /// Its evaluated lock key.
    pub lock_key: Option<String>,
}

/// A new execution to insert.
#[derive(Debug)]
pub struct NewExecution<'a> {
    /// The execution: queued, or ended (run at once).
    pub execution: &'a Execution,
    /// Its evaluated lock key.
    pub lock_key: Option<&'a str>,
    /// When it times out.
    pub deadline: DateTime<Utc>,
}

/// Inserts an execution of `tenant`: a queued one due now with wake token 0, an ended one
/// due never.
pub async fn insert_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    new: &NewExecution<'_>,
) -> anyhow::Result<()> {
    let execution = new.execution;
    let wake_at = (!execution.state.is_ended()).then_some(execution.created_at);
    sqlx::query!(
        "INSERT INTO workflow.executions (id, tenant_id, workflow_id, workflow_version, workflow_display_name, \
             workflow_owner, state, trigger_kind, trigger_node, trigger_ref, triggered_by, input, retry_of, \
             lock_key, wake_at, deadline, created_at, output, error, started_at, ended_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        execution.id.as_uuid(),
        tenant.as_uuid(),
        execution.workflow_id.as_uuid(),
        execution.workflow_version,
        execution.workflow_display_name,
        execution.workflow_owner,
        execution.state.as_str(),
        execution.trigger_kind.as_str(),
        execution.trigger_node,
        execution.trigger_ref,
        execution.triggered_by,
        execution.input,
        execution.retry_of.map(|id| id.as_uuid()),
        new.lock_key,
        wake_at,
        new.deadline,
        execution.created_at,
        execution.output,
        stored(execution.error.as_ref()),
        execution.started_at,
        execution.ended_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The execution `id` of `tenant`.
pub async fn get_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
) -> anyhow::Result<Option<Execution>> {
    let row = sqlx::query_as!(
        ExecutionRow,
        "SELECT id, workflow_id, workflow_version, workflow_display_name, workflow_owner, state, trigger_kind, \
             trigger_node, trigger_ref, triggered_by, input, output, error, retry_of, created_at, started_at, ended_at \
         FROM workflow.executions WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Execution::try_from).transpose()
}

/// The execution `id` of `tenant` and its ledger, its row locked for update.
pub async fn lock_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
) -> anyhow::Result<Option<(Execution, Ledger)>> {
    let Some(row) = sqlx::query!(
        "SELECT id, workflow_id, workflow_version, workflow_display_name, workflow_owner, state, trigger_kind, \
             trigger_node, trigger_ref, triggered_by, input, output, error, retry_of, created_at, started_at, \
             ended_at, lease_token, lease_until, wake_at, wake_token, deadline, lock_key \
         FROM workflow.executions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?
    else {
        return Ok(None);
    };
    let ledger = Ledger {
        lease_token: row.lease_token,
        lease_until: row.lease_until,
        wake_at: row.wake_at,
        wake_token: row.wake_token,
        deadline: row.deadline,
        lock_key: row.lock_key,
    };
    let execution = Execution::try_from(ExecutionRow {
        id: row.id,
        workflow_id: row.workflow_id,
        workflow_version: row.workflow_version,
        workflow_display_name: row.workflow_display_name,
        workflow_owner: row.workflow_owner,
        state: row.state,
        trigger_kind: row.trigger_kind,
        trigger_node: row.trigger_node,
        trigger_ref: row.trigger_ref,
        triggered_by: row.triggered_by,
        input: row.input,
        output: row.output,
        error: row.error,
        retry_of: row.retry_of,
        created_at: row.created_at,
        started_at: row.started_at,
        ended_at: row.ended_at,
    })?;
    Ok(Some((execution, ledger)))
}

/// The active version of an active workflow, as triggers start it.
#[derive(Debug, Clone)]
pub struct ActiveVersion {
    /// The workflow.
    pub id: WorkflowId,
    /// Its active version.
    pub version: i32,
    /// Its display name.
    pub display_name: String,
    /// Its creator.
    pub creator: String,
    /// The version's definition.
    pub definition: Definition,
}

impl ActiveVersion {
    fn from_row(
        id: Uuid,
        version: i32,
        display_name: String,
        creator: String,
        definition: Value,
    ) -> anyhow::Result<Self> {
        Ok(ActiveVersion {
            id: WorkflowId::from(id),
            version,
            display_name,
            creator,
            definition: serde_json::from_value(definition).context("stored definition")?,
        })
    }
}

/// The workflow `id` of `tenant` as its triggers start it, while it is active: its active
/// version, display name and creator (the definition is the engine's to cache).
pub async fn get_running(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WorkflowId,
) -> anyhow::Result<Option<RunningWorkflow>> {
    let row = sqlx::query_as!(
        RunningWorkflow,
        "SELECT active_version AS version, display_name, creator FROM workflow.workflows \
         WHERE tenant_id = $1 AND id = $2 AND state = 'active'",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row)
}

/// An active workflow as [`get_running`] reads it.
#[derive(Debug, Clone)]
pub struct RunningWorkflow {
    /// Its active version.
    pub version: i32,
    /// Its display name.
    pub display_name: String,
    /// Its creator.
    pub creator: String,
}

/// The active workflows of `tenant` whose active version has a `trigger.form` node for
/// `form` (`forms/{id}`).
pub async fn form_triggered(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: &str,
) -> anyhow::Result<Vec<ActiveVersion>> {
    let pattern = serde_json::json!([{"type": "trigger.form", "config": {"form": form}}]);
    let rows = sqlx::query!(
        "SELECT w.id, w.active_version, w.display_name, w.creator, v.definition          FROM workflow.workflows w JOIN workflow.workflow_versions v            ON v.tenant_id = w.tenant_id AND v.workflow_id = w.id AND v.version = w.active_version          WHERE w.tenant_id = $1 AND w.state = 'active' AND 'trigger.form' = ANY(v.node_types)            AND v.definition -> 'nodes' @> $2          ORDER BY w.id",
        tenant.as_uuid(),
        pattern,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            ActiveVersion::from_row(
                row.id,
                row.active_version,
                row.display_name,
                row.creator,
                row.definition,
            )
        })
        .collect()
}

/// Whether an execution of the same workflow and lock key queued before `id` has not ended.
pub async fn lock_key_held(
    connection: &mut PgConnection,
    tenant: TenantId,
    workflow: WorkflowId,
    lock_key: &str,
    id: ExecutionId,
) -> anyhow::Result<bool> {
    let held = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT FROM workflow.executions WHERE tenant_id = $1 AND workflow_id = $2
               AND lock_key = $3 AND ended_at IS NULL AND id < $4) AS "held!""#,
        tenant.as_uuid(),
        workflow.as_uuid(),
        lock_key,
        id.as_uuid(),
    )
    .fetch_one(connection)
    .await?;
    Ok(held)
}

/// The next execution waiting for the lock key `lock_key` of `workflow` after `id` ended:
/// it is made due now under a new wake token, answered to be sent.
pub async fn wake_next_holder(
    connection: &mut PgConnection,
    tenant: TenantId,
    workflow: WorkflowId,
    lock_key: &str,
    id: ExecutionId,
) -> anyhow::Result<Option<(ExecutionId, i64)>> {
    let next = sqlx::query!(
        "UPDATE workflow.executions SET wake_at = now(), wake_token = wake_token + 1 \
         WHERE id = (SELECT id FROM workflow.executions WHERE tenant_id = $1 AND workflow_id = $2 \
                     AND lock_key = $3 AND ended_at IS NULL AND id > $4 ORDER BY id LIMIT 1) \
         RETURNING id, wake_token",
        tenant.as_uuid(),
        workflow.as_uuid(),
        lock_key,
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(next.map(|row| (ExecutionId::from(row.id), row.wake_token)))
}

/// Takes the lease of execution `id` until `until`: running from now on, started now unless
/// it had started. Answers the lease token that fences the holder's writes.
pub async fn take_lease(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    until: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let token = sqlx::query_scalar!(
        "UPDATE workflow.executions SET lease_token = lease_token + 1, lease_until = $3, state = 'running', \
             started_at = coalesce(started_at, now()) \
         WHERE tenant_id = $1 AND id = $2 RETURNING lease_token",
        tenant.as_uuid(),
        id.as_uuid(),
        until,
    )
    .fetch_one(connection)
    .await?;
    Ok(token)
}

/// Extends the lease of `token`'s holder until `until`; `false` when the lease was lost (a
/// cancellation, or another worker took it over).
pub async fn renew_lease(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    token: i64,
    until: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let renewed = sqlx::query!(
        "UPDATE workflow.executions SET lease_until = $4 \
         WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND ended_at IS NULL",
        tenant.as_uuid(),
        id.as_uuid(),
        token,
        until,
    )
    .execute(connection)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Releases the lease of `token`'s holder with the execution waiting until `wake_at` (or
/// running on, due at once), under a new wake token, answered; `None` when the lease was lost.
pub async fn park_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    token: i64,
    state: ExecutionState,
    wake_at: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let parked = sqlx::query_scalar!(
        "UPDATE workflow.executions SET state = $4, wake_at = $5, wake_token = wake_token + 1, lease_until = NULL \
         WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND ended_at IS NULL RETURNING wake_token",
        tenant.as_uuid(),
        id.as_uuid(),
        token,
        state.as_str(),
        wake_at,
    )
    .fetch_optional(connection)
    .await?;
    Ok(parked)
}

/// Ends the execution held with `token` in `state` (succeeded or failed) with its output or
/// failure; answers the execution as it ended, `None` when the lease was lost.
pub async fn end_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    token: i64,
    state: ExecutionState,
    output: Option<&Value>,
    error: Option<&Failure>,
) -> anyhow::Result<Option<Execution>> {
    let row = sqlx::query_as!(
        ExecutionRow,
        "UPDATE workflow.executions SET state = $4, output = $5, error = $6, ended_at = now(), wake_at = NULL, \
             lease_until = NULL \
         WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND ended_at IS NULL \
         RETURNING id, workflow_id, workflow_version, workflow_display_name, workflow_owner, state, trigger_kind, \
             trigger_node, trigger_ref, triggered_by, input, output, error, retry_of, created_at, started_at, ended_at",
        tenant.as_uuid(),
        id.as_uuid(),
        token,
        state.as_str(),
        output,
        stored(error),
    )
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    abandon_node_runs(connection, tenant, id).await?;
    row.try_into().map(Some)
}

/// Cancels execution `id` unless it has ended, fencing out whichever worker holds it, and
/// abandons its running and waiting node runs; answers it cancelled, `None` if it had ended.
pub async fn cancel_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    reason: &Failure,
) -> anyhow::Result<Option<Execution>> {
    let row = sqlx::query_as!(
        ExecutionRow,
        "UPDATE workflow.executions SET state = 'cancelled', error = $3, ended_at = now(), wake_at = NULL, \
             lease_until = NULL, lease_token = lease_token + 1 \
         WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL \
         RETURNING id, workflow_id, workflow_version, workflow_display_name, workflow_owner, state, trigger_kind, \
             trigger_node, trigger_ref, triggered_by, input, output, error, retry_of, created_at, started_at, ended_at",
        tenant.as_uuid(),
        id.as_uuid(),
        stored(Some(reason)),
    )
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    abandon_node_runs(connection, tenant, id).await?;
    row.try_into().map(Some)
}

async fn abandon_node_runs(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE workflow.node_executions SET state = 'cancelled', ended_at = now(), wake_at = NULL \
         WHERE tenant_id = $1 AND execution_id = $2 AND state IN ('running', 'waiting')",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Up to `limit` executions of any tenant due for longer than `grace` and held by no worker,
/// each given a new wake token (in a platform transaction).
pub async fn take_overdue(
    connection: &mut PgConnection,
    grace: std::time::Duration,
    limit: i64,
) -> anyhow::Result<Vec<Wake<ExecutionId>>> {
    let grace_seconds = grace.as_secs_f64();
    let rows = sqlx::query!(
        "UPDATE workflow.executions SET wake_token = wake_token + 1, wake_at = now() \
         WHERE id IN (SELECT id FROM workflow.executions \
                      WHERE wake_at < now() - make_interval(secs => $1) \
                        AND (lease_until IS NULL OR lease_until < now()) \
                      ORDER BY wake_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING tenant_id, id, wake_token",
        grace_seconds,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Wake {
            tenant_id: TenantId::from(row.tenant_id),
            id: ExecutionId::from(row.id),
            wake_token: row.wake_token,
        })
        .collect())
}

/// Filters of a list of executions.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this workflow's.
    pub workflow: Option<WorkflowId>,
    /// Only in this state.
    pub state: Option<ExecutionState>,
    /// Only started this way.
    pub trigger_kind: Option<TriggerKind>,
    /// Only queued at or after.
    pub since: Option<DateTime<Utc>>,
    /// Only queued before.
    pub until: Option<DateTime<Utc>>,
}

/// Where a page of executions starts: after this queue time and id.
pub type ExecutionPosition = (DateTime<Utc>, ExecutionId);

/// One page of `tenant`'s executions, newest first, after `after`, matching `filter`.
pub async fn list_executions(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<ExecutionPosition>,
    filter: &ExecutionFilter,
    limit: i64,
) -> anyhow::Result<Vec<Execution>> {
    let (after_time, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        ExecutionRow,
        r#"SELECT id, workflow_id, workflow_version, workflow_display_name, workflow_owner, state, trigger_kind,
                  trigger_node, trigger_ref, triggered_by, input, output, error, retry_of, created_at, started_at, ended_at
           FROM workflow.executions
           WHERE tenant_id = $1
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             AND ($4::uuid IS NULL OR workflow_id = $4)
             AND ($5::text IS NULL OR state = $5)
             AND ($6::text IS NULL OR trigger_kind = $6)
             AND ($7::timestamptz IS NULL OR created_at >= $7)
             AND ($8::timestamptz IS NULL OR created_at < $8)
           ORDER BY created_at DESC, id DESC LIMIT $9"#,
        tenant.as_uuid(),
        after_time,
        after_id.map(|id| id.as_uuid()),
        filter.workflow.map(|id| id.as_uuid()),
        filter.state.map(ExecutionState::as_str),
        filter.trigger_kind.map(TriggerKind::as_str),
        filter.since,
        filter.until,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Execution::try_from).collect()
}

struct NodeRunRow {
    id: Uuid,
    node_id: String,
    node_type: String,
    iteration: i32,
    attempt: i32,
    attempt_group: i32,
    state: String,
    input: Option<Value>,
    output: Option<Value>,
    output_port: String,
    error: Option<Value>,
    wake_at: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl TryFrom<NodeRunRow> for NodeRun {
    type Error = anyhow::Error;

    fn try_from(row: NodeRunRow) -> anyhow::Result<NodeRun> {
        Ok(NodeRun {
            id: NodeRunId::from(row.id),
            node_id: row.node_id,
            node_type: row.node_type,
            iteration: row.iteration,
            attempt: row.attempt,
            attempt_group: row.attempt_group,
            state: NodeRunState::parse(&row.state).context("stored node run state")?,
            input: row.input,
            output: row.output,
            output_port: row.output_port,
            error: row.error.map(failure).transpose()?,
            wake_at: row.wake_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
        })
    }
}

/// The node runs of execution `id`, in the order they started, after run `after`, up to
/// `limit`; only node `node_id`'s when given.
pub async fn list_node_runs(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    node_id: Option<&str>,
    after: Option<NodeRunId>,
    limit: i64,
) -> anyhow::Result<Vec<NodeRun>> {
    let rows = sqlx::query_as!(
        NodeRunRow,
        r#"SELECT id, node_id, node_type, iteration, attempt, attempt_group, state, input, output, output_port,
                  error, wake_at, started_at, ended_at
           FROM workflow.node_executions
           WHERE tenant_id = $1 AND execution_id = $2 AND ($3::text IS NULL OR node_id = $3)
             AND ($4::uuid IS NULL OR id > $4)
           ORDER BY id LIMIT $5"#,
        tenant.as_uuid(),
        id.as_uuid(),
        node_id,
        after.map(|run| run.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(NodeRun::try_from).collect()
}

/// Writes `runs` of execution `id`: new ones are inserted, known ones (by id) take their new
/// state, output, error and times.
pub async fn save_node_runs(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    runs: &[NodeRun],
) -> anyhow::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = runs.iter().map(|run| run.id.as_uuid()).collect();
    let node_ids: Vec<String> = runs.iter().map(|run| run.node_id.clone()).collect();
    let node_types: Vec<String> = runs.iter().map(|run| run.node_type.clone()).collect();
    let iterations: Vec<i32> = runs.iter().map(|run| run.iteration).collect();
    let attempts: Vec<i32> = runs.iter().map(|run| run.attempt).collect();
    let groups: Vec<i32> = runs.iter().map(|run| run.attempt_group).collect();
    let states: Vec<String> = runs
        .iter()
        .map(|run| run.state.as_str().to_owned())
        .collect();
    let inputs: Vec<Value> = runs
        .iter()
        .map(|run| run.input.clone().unwrap_or(Value::Null))
        .collect();
    let outputs: Vec<Value> = runs
        .iter()
        .map(|run| run.output.clone().unwrap_or(Value::Null))
        .collect();
    let ports: Vec<String> = runs.iter().map(|run| run.output_port.clone()).collect();
    let errors: Vec<Value> = runs
        .iter()
        .map(|run| stored(run.error.as_ref()).unwrap_or(Value::Null))
        .collect();
    let wakes: Vec<Option<DateTime<Utc>>> = runs.iter().map(|run| run.wake_at).collect();
    let starts: Vec<DateTime<Utc>> = runs.iter().map(|run| run.started_at).collect();
    let ends: Vec<Option<DateTime<Utc>>> = runs.iter().map(|run| run.ended_at).collect();
    sqlx::query!(
        "INSERT INTO workflow.node_executions (id, tenant_id, execution_id, node_id, node_type, iteration, attempt, \
             attempt_group, state, input, output, output_port, error, wake_at, started_at, ended_at) \
         SELECT run.id, $1, $2, run.node_id, run.node_type, run.iteration, run.attempt, run.attempt_group, run.state, \
             nullif(run.input, 'null'), nullif(run.output, 'null'), run.output_port, nullif(run.error, 'null'), \
             run.wake_at, run.started_at, run.ended_at \
         FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::text[], $10::jsonb[], \
                     $11::jsonb[], $12::text[], $13::jsonb[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[]) \
             AS run(id, node_id, node_type, iteration, attempt, attempt_group, state, input, output, output_port, \
                    error, wake_at, started_at, ended_at) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, output = excluded.output, \
             output_port = excluded.output_port, error = excluded.error, wake_at = excluded.wake_at, \
             started_at = excluded.started_at, ended_at = excluded.ended_at",
        tenant.as_uuid(),
        id.as_uuid(),
        &ids,
        &node_ids,
        &node_types,
        &iterations,
        &attempts,
        &groups,
        &states,
        &inputs,
        &outputs,
        &ports,
        &errors,
        &wakes as &[Option<DateTime<Utc>>],
        &starts,
        &ends as &[Option<DateTime<Utc>>],
    )
    .execute(connection)
    .await?;
    Ok(())
}

struct DeadLetterRow {
    id: Uuid,
    queue: String,
    job_type: String,
    workflow_id: Option<Uuid>,
    execution_id: Option<Uuid>,
    node_id: String,
    payload: Value,
    last_error: Value,
    attempts: i32,
    replayed_at: Option<DateTime<Utc>>,
    first_failure_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = anyhow::Error;

    fn try_from(row: DeadLetterRow) -> anyhow::Result<DeadLetter> {
        Ok(DeadLetter {
            id: DeadLetterId::from(row.id),
            queue: row.queue,
            job_type: row.job_type,
            workflow_id: row.workflow_id.map(WorkflowId::from),
            execution_id: row.execution_id.map(ExecutionId::from),
            node_id: row.node_id,
            payload: row.payload,
            last_error: failure(row.last_error)?,
            attempts: row.attempts,
            replayed_at: row.replayed_at,
            first_failure_at: row.first_failure_at,
            created_at: row.created_at,
        })
    }
}

/// Sets aside node `node_id` (in `iteration`) of execution `id`, which failed every attempt
/// with `failure`: its payload names the execution, the node and its input; the time of its
/// first failure is read from its runs.
pub async fn dead_letter_node(
    connection: &mut PgConnection,
    tenant: TenantId,
    queue: &str,
    execution: &Execution,
    iteration: i32,
    failure: &Failure,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO workflow.dead_letters (id, tenant_id, queue, job_type, workflow_id, execution_id, node_id, \
             payload, last_error, attempts, state, first_failure_at) \
         SELECT $1, $2, $3, 'workflow.node', $4, $5, $6, \
             jsonb_build_object('execution', 'executions/' || $5::text, 'node_id', $6::text, 'iteration', $7::int, \
                 'input', CASE WHEN octet_length(last.input::text) <= 65536 THEN last.input END), \
             $8, last.attempt, 'pending', \
             coalesce((SELECT min(ended_at) FROM workflow.node_executions \
                       WHERE tenant_id = $2 AND execution_id = $5 AND node_id = $6 AND iteration = $7 \
                         AND state = 'failed'), now()) \
         FROM (SELECT input, attempt FROM workflow.node_executions \
               WHERE tenant_id = $2 AND execution_id = $5 AND node_id = $6 AND iteration = $7 \
               ORDER BY attempt DESC LIMIT 1) AS last",
        Uuid::now_v7(),
        tenant.as_uuid(),
        queue,
        execution.workflow_id.as_uuid(),
        execution.id.as_uuid(),
        failure.node_id,
        iteration,
        stored(Some(failure)),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Sets aside a message that failed every delivery on `queue` (what a trigger could not
/// handle), as job `job_type` with `payload`.
pub async fn dead_letter_message(
    connection: &mut PgConnection,
    tenant: TenantId,
    queue: &str,
    job_type: &str,
    payload: &Value,
    failure: &Failure,
    attempts: i32,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO workflow.dead_letters (id, tenant_id, queue, job_type, payload, last_error, attempts, state, \
             first_failure_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', now())",
        Uuid::now_v7(),
        tenant.as_uuid(),
        queue,
        job_type,
        payload,
        stored(Some(failure)),
        attempts,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Where a page of dead letters starts: after this time and id.
pub type DeadLetterPosition = (DateTime<Utc>, DeadLetterId);

/// One page of `tenant`'s dead letters, newest first, after `after`: replayed ones or
/// pending ones, of `workflow` and from `queue` when given.
/// How many dead letters of every tenant wait for a replay.
pub async fn count_pending_dead_letters(connection: &mut PgConnection) -> anyhow::Result<i64> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM workflow.dead_letters WHERE state = 'pending'"#
    )
    .fetch_one(connection)
    .await?;
    Ok(count)
}

pub async fn list_dead_letters(
    connection: &mut PgConnection,
    tenant: TenantId,
    replayed: bool,
    workflow: Option<WorkflowId>,
    queue: Option<&str>,
    after: Option<DeadLetterPosition>,
    limit: i64,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (after_time, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        DeadLetterRow,
        r#"SELECT id, queue, job_type, workflow_id, execution_id, node_id, payload, last_error, attempts,
                  replayed_at, first_failure_at, created_at
           FROM workflow.dead_letters
           WHERE tenant_id = $1 AND state = $2
             AND ($3::uuid IS NULL OR workflow_id = $3)
             AND ($4::text IS NULL OR queue = $4)
             AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
           ORDER BY created_at DESC, id DESC LIMIT $7"#,
        tenant.as_uuid(),
        if replayed { "replayed" } else { "pending" },
        workflow.map(|id| id.as_uuid()),
        queue,
        after_time,
        after_id.map(|id| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(DeadLetter::try_from).collect()
}

/// The dead letter `id` of `tenant`, its row locked for update.
pub async fn lock_dead_letter(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeadLetterId,
) -> anyhow::Result<Option<DeadLetter>> {
    let row = sqlx::query_as!(
        DeadLetterRow,
        "SELECT id, queue, job_type, workflow_id, execution_id, node_id, payload, last_error, attempts, \
             replayed_at, first_failure_at, created_at \
         FROM workflow.dead_letters WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(DeadLetter::try_from).transpose()
}

/// Marks dead letter `id` replayed now; answers the time.
pub async fn mark_replayed(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeadLetterId,
) -> anyhow::Result<DateTime<Utc>> {
    let at = sqlx::query_scalar!(
        "UPDATE workflow.dead_letters SET state = 'replayed', replayed_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING replayed_at AS \"at!\"",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_one(connection)
    .await?;
    Ok(at)
}

/// Opens failed execution `id` again, due now under a new wake token (answered), with a new
/// deadline; `None` when it is not FAILED.
pub async fn reopen_execution(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
    deadline: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let token = sqlx::query_scalar!(
        "UPDATE workflow.executions SET state = 'queued', error = NULL, output = NULL, ended_at = NULL, \
             wake_at = now(), wake_token = wake_token + 1, lease_until = NULL, deadline = $3 \
         WHERE tenant_id = $1 AND id = $2 AND state = 'failed' RETURNING wake_token",
        tenant.as_uuid(),
        id.as_uuid(),
        deadline,
    )
    .fetch_optional(connection)
    .await?;
    Ok(token)
}

/// Records that webhook `node_id` of `workflow` accepted `webhook_id` for `execution`;
/// when it had accepted that id before, records nothing and answers the first execution.
pub async fn claim_delivery(
    connection: &mut PgConnection,
    tenant: TenantId,
    workflow: WorkflowId,
    node_id: &str,
    webhook_id: &str,
    execution: ExecutionId,
) -> anyhow::Result<Option<ExecutionId>> {
    let inserted = sqlx::query!(
        "INSERT INTO workflow.webhook_deliveries (tenant_id, workflow_id, node_id, webhook_id, execution_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        tenant.as_uuid(),
        workflow.as_uuid(),
        node_id,
        webhook_id,
        execution.as_uuid(),
    )
    .execute(&mut *connection)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let first = sqlx::query_scalar!(
        "SELECT execution_id FROM workflow.webhook_deliveries \
         WHERE tenant_id = $1 AND workflow_id = $2 AND node_id = $3 AND webhook_id = $4",
        tenant.as_uuid(),
        workflow.as_uuid(),
        node_id,
        webhook_id,
    )
    .fetch_one(connection)
    .await?;
    Ok(Some(ExecutionId::from(first)))
}

/// Forgets the `webhook-id`s accepted more than a week ago (senders retry for a few days at
/// most), in a platform transaction.
pub async fn forget_old_deliveries(connection: &mut PgConnection) -> anyhow::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM workflow.webhook_deliveries WHERE created_at < now() - interval '7 days'"
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}

/// Every active workflow of any tenant whose active version has a `trigger.schedule` node
/// (in a platform transaction).
pub async fn scheduled(
    connection: &mut PgConnection,
) -> anyhow::Result<Vec<(TenantId, ActiveVersion)>> {
    let rows = sqlx::query!(
        "SELECT w.tenant_id, w.id, w.active_version, w.display_name, w.creator, v.definition \
         FROM workflow.workflows w JOIN workflow.workflow_versions v \
           ON v.tenant_id = w.tenant_id AND v.workflow_id = w.id AND v.version = w.active_version \
         WHERE w.state = 'active' AND 'trigger.schedule' = ANY(v.node_types)",
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            let active = ActiveVersion::from_row(
                row.id,
                row.active_version,
                row.display_name,
                row.creator,
                row.definition,
            )?;
            Ok((TenantId::from(row.tenant_id), active))
        })
        .collect()
}

/// The latest tick claimed for each scheduled node, by workflow and node (in a platform
/// transaction).
pub async fn last_ticks(
    connection: &mut PgConnection,
) -> anyhow::Result<std::collections::HashMap<(WorkflowId, String), DateTime<Utc>>> {
    let rows = sqlx::query!(
        r#"SELECT workflow_id, node_id, max(tick) AS "tick!" FROM workflow.schedule_fires
           GROUP BY workflow_id, node_id"#
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ((WorkflowId::from(row.workflow_id), row.node_id), row.tick))
        .collect())
}

/// Claims `tick` of schedule node `node_id` of `workflow` for `execution` (`None`: skipped);
/// `false` when another replica claimed it first.
pub async fn claim_tick(
    connection: &mut PgConnection,
    tenant: TenantId,
    workflow: WorkflowId,
    node_id: &str,
    tick: DateTime<Utc>,
    execution: Option<ExecutionId>,
) -> anyhow::Result<bool> {
    let claimed = sqlx::query!(
        "INSERT INTO workflow.schedule_fires (tenant_id, workflow_id, node_id, tick, execution_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        tenant.as_uuid(),
        workflow.as_uuid(),
        node_id,
        tick,
        execution.map(|id| id.as_uuid()),
    )
    .execute(connection)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Forgets ticks claimed more than a week ago but the latest of each node (in a platform
/// transaction).
pub async fn forget_old_ticks(connection: &mut PgConnection) -> anyhow::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM workflow.schedule_fires f WHERE f.created_at < now() - interval '7 days' \
           AND f.tick < (SELECT max(tick) FROM workflow.schedule_fires l \
                         WHERE l.tenant_id = f.tenant_id AND l.workflow_id = f.workflow_id AND l.node_id = f.node_id)"
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}

/// Records the execution retention of `tenant` as of `updated_at` (`None`: the default),
/// unless a later update was recorded already.
pub async fn set_retention(
    connection: &mut PgConnection,
    tenant: TenantId,
    days: Option<i32>,
    updated_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO workflow.tenant_settings (tenant_id, execution_retention_days, updated_at) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET execution_retention_days = excluded.execution_retention_days, \
             updated_at = excluded.updated_at \
         WHERE workflow.tenant_settings.updated_at <= excluded.updated_at",
        tenant.as_uuid(),
        days,
        updated_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes up to `limit` ended executions of any tenant older than their tenant's retention
/// (`default_days` for tenants without one), with their node runs and dead letters; answers
/// how many (in a platform transaction).
pub async fn delete_expired_executions(
    connection: &mut PgConnection,
    default_days: i32,
    limit: i64,
) -> anyhow::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM workflow.executions WHERE id IN ( \
             SELECT e.id FROM workflow.executions e \
             LEFT JOIN workflow.tenant_settings s ON s.tenant_id = e.tenant_id \
             WHERE e.ended_at IS NOT NULL \
               AND e.ended_at < now() - make_interval(days => coalesce(s.execution_retention_days, $1)) \
             LIMIT $2)",
        default_days,
        limit,
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}
