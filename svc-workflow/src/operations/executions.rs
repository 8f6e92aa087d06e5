//! Running workflows by hand, reading executions and their node runs, retrying and
//! cancelling them.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::error::FieldViolations;
use platform::idempotency::{Call, canonical_json};
use platform::paging::{fetch_limit, split_page};
use proto::formflow::events::v1 as events;
use proto::formflow::workflow::v1 as wire;
use serde_json::{Map, Value, json};
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::mpsc;

use super::Workflows;
use super::workflows::{load, name};
use crate::domain::execution::{
    Execution, ExecutionId, ExecutionState, Failure, NodeRun, NodeRunId, TriggerKind,
};
use crate::domain::{Definition, WorkflowId, expression};
use crate::engine::{Admitted, Engine, workflow_of};
use crate::error::Error;
use crate::grpc::convert::execution_to_proto;
use crate::progress;
use crate::store::{self, ExecutionFilter, ExecutionPosition};

/// Largest input of a run, as JSON.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// A validated RunWorkflow.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The workflow.
    pub workflow: WorkflowId,
    /// What the trigger node receives.
    pub input: Map<String, Value>,
    /// The version to run; `None` for the active one, or the latest while inactive.
    pub version: Option<i32>,
    /// The trigger node to start from; `None` for the manual one, or the only one.
    pub trigger_node: Option<String>,
}

/// A page of executions and where the next starts.
#[derive(Debug)]
pub struct ExecutionPage {
    /// The executions.
    pub executions: Vec<Execution>,
    /// Where the next page starts, when there is one.
    pub next: Option<ExecutionPosition>,
}

/// A page of node runs and the run the next page starts after.
#[derive(Debug)]
pub struct NodeRunPage {
    /// The runs, in the order they started.
    pub runs: Vec<NodeRun>,
    /// The run the next page starts after, when there is one.
    pub next: Option<NodeRunId>,
}

impl Workflows {
    /// Queues an execution of a workflow by hand and answers it (queued; a retry with the
    /// same idempotency key answers the first one again, as it was then).
    #[tracing::instrument(skip_all)]
    pub async fn run(
        &self,
        context: &RequestContext,
        new: NewRun,
    ) -> Result<wire::Execution, Error> {
        let tenant = context.authorize(Permission::WorkflowsRun)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let workflow = load(&mut transaction, tenant, new.workflow, false).await?;
        let scope = format!("RunWorkflow {}", name(workflow.id));
        let request = canonical_json(&json!({
            "input": new.input,
            "version": new.version,
            "trigger_node": new.trigger_node,
        }));
        let key = context.idempotency_key.as_ref();
        let call = self.idempotency.call(tenant, &scope, key, &request);
        if let Some(answer) = call.replay(&mut transaction).await? {
            transaction.commit().await?;
            return Ok(answer);
        }
        let version = new.version.unwrap_or(if workflow.active_version > 0 {
            workflow.active_version
        } else {
            workflow.latest_version
        });
        let definition = store::get_version(&mut transaction, tenant, workflow.id, version)
            .await?
            .ok_or_else(|| {
                Error::VersionNotFound(format!("{}/versions/{version}", name(workflow.id)))
            })?
            .definition;
        let trigger_node = trigger_node(&definition, version, new.trigger_node.as_deref())?;
        let execution = Execution {
            id: ExecutionId::generate(),
            workflow_id: workflow.id,
            workflow_version: version,
            workflow_display_name: workflow.display_name.clone(),
            workflow_owner: workflow.creator.clone(),
            state: ExecutionState::Queued,
            trigger_kind: TriggerKind::Manual,
            trigger_node,
            trigger_ref: String::new(),
            triggered_by: context.principal_name(),
            input: Value::Object(new.input),
            output: None,
            error: None,
            retry_of: None,
            created_at: Utc::now().trunc_subsecs(6),
            started_at: None,
            ended_at: None,
        };
        self.start(transaction, &call, tenant, execution, &definition)
            .await
    }

    /// Deletes the ended executions past their tenant's retention, in batches of 1,000, and
    /// answers how many.
    pub async fn delete_expired_executions(&self, default_days: i32) -> anyhow::Result<u64> {
        let mut deleted = 0;
        loop {
            let mut transaction = self.db.platform_tx().await?;
            let batch =
                store::delete_expired_executions(&mut transaction, default_days, 1_000).await?;
            transaction.commit().await?;
            deleted += batch;
            if batch < 1_000 {
                return Ok(deleted);
            }
        }
    }

    /// The execution `id`.
    #[tracing::instrument(skip_all)]
    pub async fn get_execution(
        &self,
        context: &RequestContext,
        id: ExecutionId,
    ) -> Result<Execution, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let execution = load_execution(&mut transaction, tenant, id).await?;
        transaction.commit().await?;
        Ok(execution)
    }

    /// The progress of an execution: its state and node runs now, then every change until it
    /// ends.
    #[tracing::instrument(skip_all)]
    pub async fn watch_execution(
        &self,
        context: &RequestContext,
        id: ExecutionId,
    ) -> Result<mpsc::Receiver<Result<wire::StreamExecutionResponse, Error>>, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        // Subscribed before anything is read, so that no later change is missed.
        let subscription = self.engine.progress().subscribe(tenant, id).await;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        load_execution(&mut transaction, tenant, id).await?;
        transaction.commit().await?;
        Ok(progress::watch(self.db.clone(), tenant, id, subscription))
    }

    /// One page of executions, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn list_executions(
        &self,
        context: &RequestContext,
        filter: &ExecutionFilter,
        after: Option<ExecutionPosition>,
        page_size: usize,
    ) -> Result<ExecutionPage, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if let Some(workflow) = filter.workflow {
            load(&mut transaction, tenant, workflow, false).await?;
        }
        let executions = store::list_executions(
            &mut transaction,
            tenant,
            after,
            filter,
            fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (executions, next) = split_page(executions, page_size, |execution| {
            (execution.created_at, execution.id)
        });
        Ok(ExecutionPage { executions, next })
    }

    /// One page of an execution's node runs, in the order they started.
    #[tracing::instrument(skip_all)]
    pub async fn list_node_runs(
        &self,
        context: &RequestContext,
        id: ExecutionId,
        node_id: Option<&str>,
        after: Option<NodeRunId>,
        page_size: usize,
    ) -> Result<NodeRunPage, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        load_execution(&mut transaction, tenant, id).await?;
        let runs = store::list_node_runs(
            &mut transaction,
            tenant,
            id,
            node_id,
            after,
            fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (runs, next) = split_page(runs, page_size, |run| run.id);
        Ok(NodeRunPage { runs, next })
    }

    /// Cancels an execution that has not ended: its running and waiting node runs are
    /// abandoned and no node starts any more.
    #[tracing::instrument(skip_all)]
    pub async fn cancel_execution(
        &self,
        context: &RequestContext,
        id: ExecutionId,
        reason: &str,
    ) -> Result<Execution, Error> {
        let tenant = context.authorize(Permission::WorkflowsRun)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let Some((execution, ledger)) = store::lock_execution(&mut transaction, tenant, id).await?
        else {
            return Err(Error::ExecutionNotFound(execution_name(id)));
        };
        if execution.state.is_ended() {
            return Err(Error::ExecutionEnded(execution.state.as_str()));
        }
        let message = if reason.is_empty() {
            format!("cancelled by {}", context.principal_name())
        } else {
            format!("cancelled by {}: {reason}", context.principal_name())
        };
        let failure = Failure::new("CANCELLED", message);
        let cancelled = store::cancel_execution(&mut transaction, tenant, id, &failure)
            .await?
            .ok_or_else(|| Error::ExecutionEnded(execution.state.as_str()))?;
        self.outbox
            .enqueue(
                &mut transaction,
                Some(tenant),
                events::ExecutionCancelled {
                    execution: Some(execution_to_proto(&cancelled, false)),
                    workflow: Some(workflow_of(&cancelled)),
                },
            )
            .await?;
        let next = match &ledger.lock_key {
            Some(key) => {
                store::wake_next_holder(&mut transaction, tenant, execution.workflow_id, key, id)
                    .await?
            }
            None => None,
        };
        transaction.commit().await?;
        self.outbox.notify();
        self.engine
            .progress()
            .publish(tenant, id, Some(&cancelled), &[]);
        if let Some((next, token)) = next {
            self.engine
                .jobs()
                .wake(tenant, next, token, Duration::ZERO)
                .await;
        }
        Ok(cancelled)
    }

    /// Queues a new execution of a failed or cancelled one's version, trigger and input.
    #[tracing::instrument(skip_all)]
    pub async fn retry_execution(
        &self,
        context: &RequestContext,
        id: ExecutionId,
    ) -> Result<wire::Execution, Error> {
        let tenant = context.authorize(Permission::WorkflowsRun)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let original = load_execution(&mut transaction, tenant, id).await?;
        let scope = format!("RetryExecution {}", execution_name(id));
        let key = context.idempotency_key.as_ref();
        let call = self.idempotency.call(tenant, &scope, key, b"");
        if let Some(answer) = call.replay(&mut transaction).await? {
            transaction.commit().await?;
            return Ok(answer);
        }
        if !matches!(
            original.state,
            ExecutionState::Failed | ExecutionState::Cancelled
        ) {
            return Err(Error::ExecutionNotRetryable(original.state.as_str()));
        }
        let workflow = load(&mut transaction, tenant, original.workflow_id, false).await?;
        let definition = store::get_version(
            &mut transaction,
            tenant,
            original.workflow_id,
            original.workflow_version,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("the version of execution {id} is gone"))?
        .definition;
        let execution = Execution {
            id: ExecutionId::generate(),
            workflow_display_name: workflow.display_name,
            workflow_owner: workflow.creator,
            state: ExecutionState::Queued,
            trigger_kind: TriggerKind::Retry,
            trigger_ref: execution_name(id),
            triggered_by: context.principal_name(),
            output: None,
            error: None,
            retry_of: Some(id),
            created_at: Utc::now().trunc_subsecs(6),
            started_at: None,
            ended_at: None,
            ..original
        };
        self.start(transaction, &call, tenant, execution, &definition)
            .await
    }

    /// Admits `execution` of a call made once per idempotency key, remembers the answer with
    /// `call`, commits, and sends its job or tells that it ran.
    async fn start(
        &self,
        mut transaction: Transaction<'static, Postgres>,
        call: &Call<'_>,
        tenant: TenantId,
        execution: Execution,
        definition: &Definition,
    ) -> Result<wire::Execution, Error> {
        let admitted = admit_execution(
            &self.engine,
            &mut transaction,
            tenant,
            execution,
            definition,
        )
        .await?;
        let answer = execution_to_proto(&admitted.execution, true);
        call.complete(&mut transaction, &answer).await?;
        transaction.commit().await?;
        self.engine.admitted(admitted).await;
        Ok(answer)
    }
}

/// Admits `execution` on `engine` ([`Engine::admit`]) with its lock key and deadline from
/// `definition`; the caller hands the answer to [`Engine::admitted`] after its commit.
pub async fn admit_execution(
    engine: &Engine,
    transaction: &mut PgConnection,
    tenant: TenantId,
    execution: Execution,
    definition: &Definition,
) -> Result<Admitted, Error> {
    let lock_key = lock_key(definition, &execution.input)?;
    let deadline = execution.created_at
        + chrono::Duration::milliseconds(
            i64::try_from(definition.settings.timeout_ms).unwrap_or(i64::MAX),
        );
    let admitted = engine
        .admit(
            transaction,
            tenant,
            execution,
            definition,
            lock_key.as_deref(),
            deadline,
        )
        .await?;
    Ok(admitted)
}

/// The trigger node a run starts from: the one asked for, or else the `trigger.manual` node,
/// or else the only trigger node.
fn trigger_node(
    definition: &Definition,
    version: i32,
    asked: Option<&str>,
) -> Result<String, Error> {
    let triggers: Vec<&str> = definition
        .nodes
        .iter()
        .filter(|node| node.node_type.starts_with("trigger."))
        .map(|node| node.id.as_str())
        .collect();
    if let Some(asked) = asked {
        if triggers.contains(&asked) {
            return Ok(asked.to_owned());
        }
        return Err(FieldViolations::single(
            "trigger_node",
            format!(
                "is not a trigger node of version {version}: its trigger nodes are {}",
                triggers.join(", ")
            ),
        )
        .into());
    }
    let manual: Vec<&str> = definition
        .nodes
        .iter()
        .filter(|node| node.node_type == "trigger.manual")
        .map(|node| node.id.as_str())
        .collect();
    match (manual.as_slice(), triggers.as_slice()) {
        ([only], _) | ([], [only]) => Ok((*only).to_owned()),
        _ => Err(FieldViolations::single(
            "trigger_node",
            format!(
                "is required: version {version} has several trigger nodes ({})",
                triggers.join(", ")
            ),
        )
        .into()),
    }
}

/// The lock key of an execution with `input`: the settings' template rendered over it;
/// `None` when the workflow has none or it renders empty.
fn lock_key(definition: &Definition, input: &Value) -> Result<Option<String>, Error> {
    let template = &definition.settings.lock_key;
    if template.is_empty() {
        return Ok(None);
    }
    let rendered = expression::data(input)
        .and_then(|data| expression::render(template, &data))
        .map_err(|reason| {
            FieldViolations::single(
                "input",
                format!("gives the workflow's lock key no value: {reason}"),
            )
        })?;
    let key = match rendered {
        Value::Null => String::new(),
        Value::String(text) => text,
        other => other.to_string(),
    };
    Ok((!key.is_empty()).then_some(key))
}

/// The execution `id` of `tenant`, or EXECUTION_NOT_FOUND.
async fn load_execution(
    transaction: &mut PgConnection,
    tenant: TenantId,
    id: ExecutionId,
) -> Result<Execution, Error> {
    store::get_execution(transaction, tenant, id)
        .await?
        .ok_or_else(|| Error::ExecutionNotFound(execution_name(id)))
}

/// The resource name of execution `id`.
fn execution_name(id: ExecutionId) -> String {
    format!("executions/{id}")
}
