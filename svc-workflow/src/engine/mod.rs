//! The execution engine: workers that take executions from RabbitMQ and run their nodes.
//!
//! - [`plan`]: what an execution does next, from its definition and its recorded node runs.
//! - [`nodes`]: the nodes that do no IO (triggers, transforms, logic).
//! - [`actions`]: the nodes that act on the world, retried by their policy.
//!
//! How an execution moves (the executions table is its own outbox):
//! 0. One that needs no IO — every node it reaches is pure, none waits, it takes no lock key
//!    and it succeeds — runs at once in the transaction that admits it ([`Engine::admit`]):
//!    inserted ended with its node runs and events. Any other goes through the queue, so a
//!    failure is recorded, dead-lettered and replayable as below.
//! 1. It is inserted queued and due now; after the commit a job message naming it and its
//!    wake token goes to the work queue `{prefix}.svc-workflow.executions`.
//! 2. A worker takes the message, locks the row and takes a lease (a token bumped on each
//!    take, fencing every later write of the holder). A message whose wake token is not the
//!    row's is stale and dropped; one that comes while another worker's lease holds, or before
//!    the execution is due, waits in a delay queue for the rest.
//! 3. The worker runs the ready nodes in the order of the edges, recording each run; pure
//!    nodes are saved in batches, an action's run is saved before it acts and after. A worker
//!    that loses its lease (cancelled, or taken over after it stalled) stops without writing.
//! 4. When nothing is ready, the execution ends (events in the same transaction) or waits:
//!    it is parked due at its next timer under a new wake token, whose message goes to the
//!    delay queue.
//! 5. A sweeper sends the job again for any execution due for longer than
//!    `WORKFLOW_OVERDUE_AFTER` with no lease held: a message lost between a commit and its
//!    publish, or a worker that died, costs a delay, never the execution.

pub mod actions;
pub mod nodes;
pub mod plan;
pub mod services;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use platform::config::AmqpConfig;
use platform::context::TenantId;
use platform::db::Db;
use platform::jobs::{JobQueue, Wake, Wakes, Workers};
use platform::outbox::{Outbox, PendingEvent};
use proto::formflow::events::v1 as events;
use serde_json::Value;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use crate::app::SERVICE_NAME;
use crate::domain::execution::{
    Execution, ExecutionId, ExecutionState, Failure, MAX_OUTPUT_BYTES, NodeRun, NodeRunId,
    NodeRunState, json_size,
};
use crate::domain::{Definition, WorkflowId};
use crate::grpc::convert::execution_to_proto;
use crate::progress::Progress;
use crate::store;
use crate::store::NewExecution;
use actions::ActionFailure;
use plan::{Graph, Ready, RunState, Runs};

/// Name of the work queue, under the deployment's prefix.
pub const WORK_QUEUE: &str = "svc-workflow.executions";

/// Most node runs a worker keeps unsaved (a long loop saves as it goes, renewing its lease).
const SAVE_EVERY: usize = 1_000;

/// Most node runs an execution may make in the transaction that admits it (more, and it
/// goes through the queue).
const AT_ONCE_RUNS: usize = 100;

/// The message that asks a worker to look at an execution.
pub type Job = Wake<ExecutionId>;

impl Wakes for ExecutionId {
    const KIND: &'static str = "workflow.execution";
}

/// The engine of one replica: sends jobs, and works on them.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    outbox: Outbox,
    jobs: JobQueue<Job>,
    graphs: moka::sync::Cache<(TenantId, WorkflowId, i32), Arc<Graph>>,
    actions: actions::Actions,
    progress: Progress,
    settings: Workers,
}

/// Holding an execution: the fencing token of the lease.
#[derive(Debug, Clone, Copy)]
struct Lease {
    tenant: TenantId,
    id: ExecutionId,
    token: i64,
}

/// An execution inserted by [`Engine::admit`], queued or already ended.
#[derive(Debug)]
#[must_use = "a queued execution's job is sent by `Engine::admitted` after the commit"]
pub struct Admitted {
    tenant: TenantId,
    /// The execution as inserted.
    pub execution: Execution,
    /// The node runs of one that ran at once.
    runs: Vec<NodeRun>,
}

/// Why a pass over an execution stopped short.
#[derive(Debug)]
enum Halt {
    /// The lease was lost: another worker or a cancellation owns the execution now.
    LeaseLost,
    /// Postgres or RabbitMQ failed: try the job again later.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Halt {
    fn from(error: anyhow::Error) -> Self {
        Halt::Failed(error)
    }
}

impl From<sqlx::Error> for Halt {
    fn from(error: sqlx::Error) -> Self {
        Halt::Failed(error.into())
    }
}

impl Engine {
    /// An engine over `db`, enqueuing events in `outbox`, with RabbitMQ at `amqp`, running
    /// actions with `actions`, publishing changes to `progress`.
    pub fn new(
        db: Db,
        outbox: Outbox,
        amqp: &AmqpConfig,
        actions: actions::Actions,
        progress: Progress,
        settings: Workers,
    ) -> Self {
        Engine {
            inner: Arc::new(Inner {
                db,
                outbox,
                jobs: JobQueue::new(amqp, SERVICE_NAME, WORK_QUEUE),
                graphs: moka::sync::Cache::new(1_000),
                actions,
                progress,
                settings,
            }),
        }
    }

    /// Where executions' changes are published.
    pub fn progress(&self) -> &Progress {
        &self.inner.progress
    }

    /// The queue of the jobs that wake executions.
    pub fn jobs(&self) -> &JobQueue<Job> {
        &self.inner.jobs
    }

    /// Works on the queue until `stopped`, reconnecting after broker failures; with a
    /// concurrency of 0, does nothing (a replica serving only the API).
    pub async fn work(self, stopped: CancellationToken) {
        let concurrency = self.inner.settings.concurrency;
        let engine = &self;
        let take = |job| async move {
            match engine.take(job).await {
                Ok(()) | Err(Halt::LeaseLost) => Ok(()),
                Err(Halt::Failed(error)) => Err(error),
            }
        };
        self.inner.jobs.work(concurrency, take, stopped).await;
    }

    /// Sends the jobs of executions overdue with no worker again.
    pub async fn send_overdue(&self) -> anyhow::Result<()> {
        let mut transaction = self.inner.db.platform_tx().await?;
        let overdue =
            store::take_overdue(&mut transaction, self.inner.settings.overdue_after, 500).await?;
        transaction.commit().await?;
        self.inner.jobs.send_again(overdue).await;
        Ok(())
    }

    /// Measures the work queue, its dead-letter queue and the pending dead letters into the
    /// metrics, now and every `period` until `stopped`.
    pub async fn measure(self, period: Duration, stopped: CancellationToken) {
        const WHAT: &str = "measuring the engine's queues";
        if let Err(error) = self.measure_once().await {
            tracing::warn!(
                error = format!("{error:#}"),
                what = WHAT,
                "periodic task failed"
            );
        }
        platform::runtime::repeat(WHAT, period, || self.measure_once(), stopped).await;
    }

    async fn measure_once(&self) -> anyhow::Result<()> {
        for (queue, messages) in self.inner.jobs.message_counts().await? {
            crate::metrics::queue_messages(&queue, messages);
        }
        let mut transaction = self.inner.db.platform_tx().await?;
        let pending = store::count_pending_dead_letters(&mut transaction).await?;
        transaction.commit().await?;
        crate::metrics::dead_letters_pending(pending);
        Ok(())
    }

    /// Inserts `execution` (queued, created just now) in `transaction` with its `lock_key` and
    /// `deadline`. One that needs no IO and no other execution's lock — every node it reaches
    /// is pure, none waits, and it succeeds — is run at once instead and inserted ended, with
    /// its node runs and its events: no job, no lease, no second transaction. Any other is
    /// queued; its job is sent by [`Engine::admitted`] after the commit.
    pub async fn admit(
        &self,
        transaction: &mut PgConnection,
        tenant: TenantId,
        execution: Execution,
        definition: &Definition,
        lock_key: Option<&str>,
        deadline: DateTime<Utc>,
    ) -> anyhow::Result<Admitted> {
        let key = (tenant, execution.workflow_id, execution.workflow_version);
        let graph = self
            .inner
            .graphs
            .get_with(key, || Arc::new(Graph::new(definition.clone())));
        let now = Utc::now().trunc_subsecs(6);
        let mut pass = Pass::default();
        let at_once = match lock_key {
            Some(_) => None,
            None => match pass.step(&graph, &execution, now, AT_ONCE_RUNS) {
                Next::End(Ok(output)) => Some(output),
                _ => None,
            },
        };
        let Some(output) = at_once else {
            let new = NewExecution {
                execution: &execution,
                lock_key,
                deadline,
            };
            store::insert_execution(transaction, tenant, &new).await?;
            return Ok(Admitted {
                tenant,
                execution,
                runs: Vec::new(),
            });
        };
        let running = Execution {
            state: ExecutionState::Running,
            started_at: Some(now),
            ..execution
        };
        let ended = Execution {
            state: ExecutionState::Succeeded,
            output: Some(output),
            ended_at: Some(now),
            ..running.clone()
        };
        let new = NewExecution {
            execution: &ended,
            lock_key,
            deadline,
        };
        store::insert_execution(transaction, tenant, &new).await?;
        store::save_node_runs(transaction, tenant, ended.id, &pass.unsaved).await?;
        let events = [
            PendingEvent::new(Some(tenant), started_event(&running))?,
            ended_event(tenant, &ended)?,
        ];
        self.inner.outbox.enqueue_all(transaction, &events).await?;
        Ok(Admitted {
            tenant,
            execution: ended,
            runs: pass.unsaved,
        })
    }

    /// After the commit of `admitted`'s transaction: sends the job of a queued execution, or
    /// tells the outbox and the live streams of one that ran at once.
    pub async fn admitted(&self, admitted: Admitted) {
        let Admitted {
            tenant,
            execution,
            runs,
        } = admitted;
        if !execution.state.is_ended() {
            self.jobs()
                .wake(tenant, execution.id, 0, Duration::ZERO)
                .await;
            return;
        }
        self.inner.outbox.notify();
        self.inner
            .progress
            .publish(tenant, execution.id, Some(&execution), &runs);
        crate::metrics::execution_ended(execution.state, execution.created_at);
    }

    /// Takes the execution of `job` and runs it as far as it goes.
    async fn take(&self, job: Job) -> Result<(), Halt> {
        let tenant = job.tenant_id;
        let mut transaction = self.inner.db.tenant_tx(tenant).await?;
        let Some((execution, ledger)) =
            store::lock_execution(&mut transaction, tenant, job.id).await?
        else {
            return Ok(()); // deleted with its workflow
        };
        if execution.state.is_ended() || ledger.wake_token != job.wake_token {
            return Ok(());
        }
        let now = Utc::now();
        let not_before = ledger
            .lease_until
            .into_iter()
            .chain(ledger.wake_at)
            .filter(|at| *at > now)
            .max();
        if let Some(at) = not_before {
            transaction.rollback().await?;
            self.jobs()
                .wake(tenant, job.id, job.wake_token, until(at))
                .await;
            return Ok(());
        }
        if let Some(key) = &ledger.lock_key
            && store::lock_key_held(
                &mut transaction,
                tenant,
                execution.workflow_id,
                key,
                execution.id,
            )
            .await?
        {
            // The holder wakes it when it ends (the sweeper too, should that be lost).
            return Ok(());
        }
        let token = store::take_lease(
            &mut transaction,
            tenant,
            execution.id,
            now + self.inner.settings.lease,
        )
        .await?;
        let running = Execution {
            state: ExecutionState::Running,
            started_at: Some(execution.started_at.unwrap_or(now)),
            ..execution.clone()
        };
        if execution.started_at.is_none() {
            self.inner
                .outbox
                .enqueue(&mut transaction, Some(tenant), started_event(&running))
                .await?;
        }
        // What ran before this pass, read under the lease just taken; nothing can have run
        // before the first lease.
        let recorded = match execution.started_at {
            None => Vec::new(),
            Some(_) => {
                store::list_node_runs(&mut transaction, tenant, execution.id, None, None, i64::MAX)
                    .await?
            }
        };
        transaction.commit().await?;
        if execution.started_at.is_none() {
            self.inner.outbox.notify();
        }
        if execution.state != ExecutionState::Running {
            self.inner
                .progress
                .publish(tenant, execution.id, Some(&running), &[]);
        }
        let lease = Lease {
            tenant,
            id: execution.id,
            token,
        };
        self.advance(
            lease,
            &running,
            recorded,
            ledger.deadline,
            ledger.lock_key.as_deref(),
        )
        .await
    }

    /// The prepared definition of `version` of `workflow`.
    async fn graph(
        &self,
        tenant: TenantId,
        workflow: WorkflowId,
        version: i32,
    ) -> anyhow::Result<Arc<Graph>> {
        let key = (tenant, workflow, version);
        if let Some(graph) = self.inner.graphs.get(&key) {
            return Ok(graph);
        }
        let mut transaction = self.inner.db.tenant_tx(tenant).await?;
        let graph = self
            .graph_in(&mut transaction, tenant, workflow, version)
            .await?;
        transaction.commit().await?;
        Ok(graph)
    }

    /// The prepared definition of `version` of `workflow`, read in `transaction` unless known
    /// (a version never changes).
    pub async fn graph_in(
        &self,
        transaction: &mut PgConnection,
        tenant: TenantId,
        workflow: WorkflowId,
        version: i32,
    ) -> anyhow::Result<Arc<Graph>> {
        let key = (tenant, workflow, version);
        if let Some(graph) = self.inner.graphs.get(&key) {
            return Ok(graph);
        }
        let found = store::get_version(transaction, tenant, workflow, version)
            .await?
            .ok_or_else(|| anyhow::anyhow!("version {version} of workflow {workflow} is gone"))?;
        let graph = Arc::new(Graph::new(found.definition));
        self.inner.graphs.insert(key, graph.clone());
        Ok(graph)
    }

    /// Runs what is ready until the execution ends or waits.
    async fn advance(
        &self,
        lease: Lease,
        execution: &Execution,
        recorded: Vec<NodeRun>,
        deadline: DateTime<Utc>,
        lock_key: Option<&str>,
    ) -> Result<(), Halt> {
        let graph = self
            .graph(
                lease.tenant,
                execution.workflow_id,
                execution.workflow_version,
            )
            .await?;
        let mut pass = Pass::default();
        for run in &recorded {
            pass.remember(run);
        }
        loop {
            let now = Utc::now();
            if now >= deadline {
                let failure = Failure::new("TIMEOUT", "the execution ran longer than its timeout");
                return self
                    .end(lease, &mut pass, execution, Err(failure), lock_key)
                    .await;
            }
            match pass.step(&graph, execution, now, SAVE_EVERY) {
                Next::End(result) => {
                    return self
                        .end(lease, &mut pass, execution, result, lock_key)
                        .await;
                }
                Next::Wait(wake) => {
                    return self
                        .park(lease, &mut pass, execution, wake.min(deadline))
                        .await;
                }
                Next::Save => self.save(lease, &mut pass).await?,
                Next::Act(ready) => {
                    for ready in ready {
                        let node = graph.node(&ready.node_id).expect("planned nodes exist");
                        self.act(lease, &mut pass, node, ready, deadline).await?;
                    }
                }
            }
        }
    }

    /// Runs an action node: its run is saved as running, the action runs under the node's
    /// timeout while the lease is renewed, and the outcome is saved at once (with the next
    /// attempt, due after the backoff, when the policy allows one).
    async fn act(
        &self,
        lease: Lease,
        pass: &mut Pass,
        node: &crate::domain::Node,
        ready: Ready,
        deadline: DateTime<Utc>,
    ) -> Result<(), Halt> {
        let now = Utc::now();
        let mut run = match &ready.resumed {
            Some(resumed) => NodeRun {
                id: resumed.id,
                attempt: resumed.attempt,
                attempt_group: resumed.attempt_group,
                ..new_run(
                    &node.id,
                    &node.node_type,
                    ready.iteration,
                    ready.input.clone(),
                    now,
                )
            },
            None => new_run(
                &node.id,
                &node.node_type,
                ready.iteration,
                ready.input.clone(),
                now,
            ),
        };
        pass.record(run.clone());
        self.save(lease, pass).await?;

        let key = format!(
            "{}.{}.{}.{}",
            lease.id, node.id, run.iteration, run.attempt_group
        );
        let limit = Duration::from_millis(node.timeout_ms)
            .min((deadline - now).to_std().unwrap_or_default());
        let lost = CancellationToken::new();
        let heartbeat = tokio::spawn(self.clone().keep_lease(lease, lost.clone()));
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(
                limit,
                self.inner.actions.run(lease.tenant, node, &ready.input, &key),
            ) => outcome,
            () = lost.cancelled() => {
                heartbeat.abort();
                return Err(Halt::LeaseLost);
            }
        };
        heartbeat.abort();
        let ended = Utc::now();
        run.ended_at = Some(ended);
        let outcome = outcome.unwrap_or_else(|_| {
            Err(ActionFailure {
                failure: Failure::new(
                    "TIMEOUT",
                    format!(
                        "the node ran longer than its timeout of {} ms",
                        limit.as_millis()
                    ),
                ),
                retryable: true,
            })
        });
        crate::metrics::action_ended(
            &node.node_type,
            if outcome.is_ok() {
                "succeeded"
            } else {
                "failed"
            },
            (ended - now).num_milliseconds() as f64 / 1_000.0,
        );
        match outcome {
            Ok(output) if json_size(&output) > MAX_OUTPUT_BYTES => {
                run.state = NodeRunState::Failed;
                run.error = Some(
                    Failure::new(
                        "OUTPUT_TOO_LARGE",
                        format!(
                            "the output is larger than {} KiB of JSON",
                            MAX_OUTPUT_BYTES / 1024
                        ),
                    )
                    .of_node(&node.id),
                );
                pass.record(run);
            }
            Ok(output) => {
                run.state = NodeRunState::Succeeded;
                run.output = Some(output);
                pass.record(run);
            }
            Err(ActionFailure { failure, retryable }) => {
                run.state = NodeRunState::Failed;
                run.error = Some(failure.of_node(&node.id));
                let next_attempt = retryable
                    && u32::try_from(run.attempt).unwrap_or(u32::MAX) < node.retry.max_attempts;
                let retry = next_attempt.then(|| NodeRun {
                    id: NodeRunId::generate(),
                    attempt: run.attempt + 1,
                    attempt_group: run.attempt_group,
                    state: NodeRunState::Waiting,
                    wake_at: Some(ended + backoff(node, run.attempt)),
                    ..new_run(
                        &node.id,
                        &node.node_type,
                        run.iteration,
                        ready.input.clone(),
                        ended,
                    )
                });
                pass.record(run);
                if let Some(retry) = retry {
                    crate::metrics::retry_scheduled(&node.node_type);
                    pass.record(retry);
                }
            }
        }
        self.save(lease, pass).await
    }

    /// Renews `lease` until the task is aborted; cancels `lost` when it was lost.
    async fn keep_lease(self, lease: Lease, lost: CancellationToken) {
        let period = self.inner.settings.lease / 3;
        loop {
            tokio::time::sleep(period).await;
            let renewed = async {
                let mut transaction = self.inner.db.tenant_tx(lease.tenant).await?;
                let renewed = store::renew_lease(
                    &mut transaction,
                    lease.tenant,
                    lease.id,
                    lease.token,
                    Utc::now() + self.inner.settings.lease,
                )
                .await?;
                transaction.commit().await?;
                anyhow::Ok(renewed)
            }
            .await;
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    lost.cancel();
                    return;
                }
                Err(error) => {
                    tracing::warn!(execution = %lease.id, error = format!("{error:#}"), "renewing a lease failed");
                }
            }
        }
    }

    /// Saves the unsaved runs of `pass`, renewing its lease in the same transaction.
    async fn save(&self, lease: Lease, pass: &mut Pass) -> Result<(), Halt> {
        let mut transaction = self.inner.db.tenant_tx(lease.tenant).await?;
        self.renew(&mut transaction, lease).await?;
        store::save_node_runs(&mut transaction, lease.tenant, lease.id, &pass.unsaved).await?;
        transaction.commit().await?;
        self.inner
            .progress
            .publish(lease.tenant, lease.id, None, &pass.unsaved);
        pass.unsaved.clear();
        Ok(())
    }

    async fn renew(&self, transaction: &mut PgConnection, lease: Lease) -> Result<(), Halt> {
        let until = Utc::now() + self.inner.settings.lease;
        if store::renew_lease(transaction, lease.tenant, lease.id, lease.token, until).await? {
            Ok(())
        } else {
            Err(Halt::LeaseLost)
        }
    }

    /// Saves `pass` and parks `execution` until `wake`, then sends its job to come back then.
    async fn park(
        &self,
        lease: Lease,
        pass: &mut Pass,
        execution: &Execution,
        wake: DateTime<Utc>,
    ) -> Result<(), Halt> {
        let mut transaction = self.inner.db.tenant_tx(lease.tenant).await?;
        store::save_node_runs(&mut transaction, lease.tenant, lease.id, &pass.unsaved).await?;
        let Some(token) = store::park_execution(
            &mut transaction,
            lease.tenant,
            lease.id,
            lease.token,
            ExecutionState::Waiting,
            wake,
        )
        .await?
        else {
            return Err(Halt::LeaseLost);
        };
        transaction.commit().await?;
        let waiting = Execution {
            state: ExecutionState::Waiting,
            ..execution.clone()
        };
        self.inner
            .progress
            .publish(lease.tenant, lease.id, Some(&waiting), &pass.unsaved);
        pass.unsaved.clear();
        self.jobs()
            .wake(lease.tenant, lease.id, token, until(wake))
            .await;
        Ok(())
    }

    /// Saves `pass` and ends the execution with `result`, with its event; wakes the next
    /// execution waiting for its lock key.
    async fn end(
        &self,
        lease: Lease,
        pass: &mut Pass,
        execution: &Execution,
        result: Result<Value, Failure>,
        lock_key: Option<&str>,
    ) -> Result<(), Halt> {
        let mut transaction = self.inner.db.tenant_tx(lease.tenant).await?;
        store::save_node_runs(&mut transaction, lease.tenant, lease.id, &pass.unsaved).await?;
        let (state, output, failure) = match &result {
            Ok(output) => (ExecutionState::Succeeded, Some(output), None),
            Err(failure) => (ExecutionState::Failed, None, Some(failure)),
        };
        let Some(ended) = store::end_execution(
            &mut transaction,
            lease.tenant,
            lease.id,
            lease.token,
            state,
            output,
            failure,
        )
        .await?
        else {
            return Err(Halt::LeaseLost);
        };
        if let Err(failure) = &result
            && let Some(((_, iteration), _)) = pass.runs.iter().find(|((node, _), run)| {
                *node == failure.node_id && run.state == NodeRunState::Failed
            })
        {
            store::dead_letter_node(
                &mut transaction,
                lease.tenant,
                WORK_QUEUE,
                &ended,
                *iteration,
                failure,
            )
            .await?;
        }
        self.inner
            .outbox
            .enqueue_all(&mut transaction, &[ended_event(lease.tenant, &ended)?])
            .await?;
        let next = match lock_key {
            Some(key) => {
                store::wake_next_holder(
                    &mut transaction,
                    lease.tenant,
                    execution.workflow_id,
                    key,
                    execution.id,
                )
                .await?
            }
            None => None,
        };
        transaction.commit().await?;
        self.inner.outbox.notify();
        self.inner
            .progress
            .publish(lease.tenant, lease.id, Some(&ended), &pass.unsaved);
        pass.unsaved.clear();
        crate::metrics::execution_ended(
            state,
            execution.started_at.unwrap_or(execution.created_at),
        );
        if let Some((next, token)) = next {
            self.jobs()
                .wake(lease.tenant, next, token, Duration::ZERO)
                .await;
        }
        Ok(())
    }
}

/// The node runs of one pass over an execution.
#[derive(Debug, Default)]
struct Pass {
    /// The latest run of each node and iteration.
    runs: Runs,
    /// Runs recorded but not saved yet.
    unsaved: Vec<NodeRun>,
    /// Output of the node that succeeded last.
    last: Option<Value>,
}

/// Where a pass stands once it has run what needs no IO.
#[derive(Debug)]
enum Next {
    /// The execution ends so.
    End(Result<Value, Failure>),
    /// The execution waits until then.
    Wait(DateTime<Utc>),
    /// Runs are piling up unsaved (a long loop): save them and go on.
    Save,
    /// These action nodes are ready.
    Act(Vec<Ready>),
}

impl Pass {
    /// Records the skipped nodes and runs the ready pure nodes of `execution` (at `now`)
    /// until it ends, waits, has actions ready, or has `save_every` runs unsaved.
    fn step(
        &mut self,
        graph: &Graph,
        execution: &Execution,
        now: DateTime<Utc>,
        save_every: usize,
    ) -> Next {
        loop {
            if self.unsaved.len() >= save_every {
                return Next::Save;
            }
            let plan = graph.plan(&execution.trigger_node, &execution.input, &self.runs, now);
            if let Some(failure) = plan.failure {
                return Next::End(Err(failure));
            }
            let progressed = !plan.skipped.is_empty() || !plan.ready.is_empty();
            for (node_id, iteration) in &plan.skipped {
                let node = graph.node(node_id).expect("planned nodes exist");
                let mut run = new_run(node_id, &node.node_type, *iteration, Value::Null, now);
                run.input = None;
                run.state = NodeRunState::Skipped;
                run.ended_at = Some(now);
                self.record(run);
            }
            let mut actions = Vec::new();
            for ready in plan.ready {
                if self.unsaved.len() >= save_every {
                    break; // the rest is planned again after the save
                }
                let node = graph.node(&ready.node_id).expect("planned nodes exist");
                if nodes::is_pure(&node.node_type) {
                    self.record(run_pure(node, ready, now));
                } else {
                    actions.push(ready);
                }
            }
            if !actions.is_empty() {
                return Next::Act(actions);
            }
            if !progressed {
                return match plan.wake {
                    Some(wake) => Next::Wait(wake),
                    None => Next::End(Ok(self.last.clone().unwrap_or(Value::Null))),
                };
            }
        }
    }

    /// Records `run`, to be saved with the pass's next write. A run is recorded at most once
    /// between two saves (an action's is saved as running before it ends).
    fn record(&mut self, run: NodeRun) {
        self.remember(&run);
        self.unsaved.push(run);
    }

    /// Takes `run` into account for planning: the latest attempt of its node and iteration,
    /// and the latest output.
    fn remember(&mut self, run: &NodeRun) {
        let key = (run.node_id.clone(), run.iteration);
        let newer = self
            .runs
            .get(&key)
            .is_none_or(|known| known.attempt <= run.attempt);
        if run.state == NodeRunState::Succeeded {
            self.last.clone_from(&run.output);
        }
        if newer {
            self.runs.insert(
                key,
                RunState {
                    id: run.id,
                    attempt: run.attempt,
                    attempt_group: run.attempt_group,
                    state: run.state,
                    input: run.input.clone(),
                    output: run.output.clone(),
                    port: run.output_port.clone(),
                    error: run.error.clone(),
                    wake_at: run.wake_at,
                    started_at: run.started_at,
                },
            );
        }
    }
}

fn new_run(
    node_id: &str,
    node_type: &str,
    iteration: i32,
    input: Value,
    now: DateTime<Utc>,
) -> NodeRun {
    NodeRun {
        id: NodeRunId::generate(),
        node_id: node_id.to_owned(),
        node_type: node_type.to_owned(),
        iteration,
        attempt: 1,
        attempt_group: 1,
        state: NodeRunState::Running,
        input: Some(input),
        output: None,
        output_port: String::new(),
        error: None,
        wake_at: None,
        started_at: now,
        ended_at: None,
    }
}

/// Runs a pure node; a delay that came due completes with its input.
fn run_pure(node: &crate::domain::Node, ready: Ready, now: DateTime<Utc>) -> NodeRun {
    let mut run = new_run(
        &node.id,
        &node.node_type,
        ready.iteration,
        ready.input.clone(),
        now,
    );
    if let Some(resumed) = &ready.resumed {
        run.id = resumed.id;
        run.attempt = resumed.attempt;
        run.attempt_group = resumed.attempt_group;
        if resumed.state == NodeRunState::Waiting && node.node_type == "logic.delay" {
            run.started_at = resumed.started_at;
            run.state = NodeRunState::Succeeded;
            run.output = Some(ready.input);
            run.ended_at = Some(now);
            return run;
        }
    }
    match nodes::evaluate(node, &ready.input, now) {
        Ok(nodes::Step::Done { output, port }) => {
            run.state = NodeRunState::Succeeded;
            run.output = Some(output);
            run.output_port = port;
            run.ended_at = Some(now);
        }
        Ok(nodes::Step::Wait { until }) if until > now => {
            run.state = NodeRunState::Waiting;
            run.wake_at = Some(until);
        }
        Ok(nodes::Step::Wait { .. }) => {
            run.state = NodeRunState::Succeeded;
            run.output = Some(ready.input);
            run.ended_at = Some(now);
        }
        Err(failure) => {
            run.state = NodeRunState::Failed;
            run.error = Some(failure.of_node(&node.id));
            run.ended_at = Some(now);
        }
    }
    run
}

/// Wait before the attempt after `attempt`: the policy's initial backoff doubled per attempt,
/// capped, with up to 20 % jitter.
fn backoff(node: &crate::domain::Node, attempt: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let millis = node
        .retry
        .initial_backoff_ms
        .saturating_mul(1 << exponent)
        .min(node.retry.max_backoff_ms);
    let jittered = (millis as f64 * (1.0 + rand::random_range(0.0..0.2))) as i64;
    chrono::Duration::milliseconds(jittered)
}

/// The time left until `at`, zero if past.
fn until(at: DateTime<Utc>) -> Duration {
    (at - Utc::now()).to_std().unwrap_or_default()
}

/// The `started` event of `running`.
fn started_event(running: &Execution) -> events::ExecutionStarted {
    events::ExecutionStarted {
        execution: Some(execution_to_proto(running, false)),
        workflow: Some(workflow_of(running)),
    }
}

/// The `succeeded` or `failed` event of `ended`, as its state says.
fn ended_event(tenant: TenantId, ended: &Execution) -> anyhow::Result<PendingEvent> {
    let execution = Some(execution_to_proto(ended, true));
    let workflow = Some(workflow_of(ended));
    match ended.state {
        ExecutionState::Succeeded => PendingEvent::new(
            Some(tenant),
            events::ExecutionSucceeded {
                execution,
                workflow,
            },
        ),
        _ => PendingEvent::new(
            Some(tenant),
            events::ExecutionFailed {
                execution,
                workflow,
            },
        ),
    }
}

/// The workflow of an execution as its events carry it.
pub fn workflow_of(execution: &Execution) -> events::ExecutionWorkflow {
    events::ExecutionWorkflow {
        name: format!("workflows/{}", execution.workflow_id),
        display_name: execution.workflow_display_name.clone(),
        owner: execution.workflow_owner.clone(),
    }
}
