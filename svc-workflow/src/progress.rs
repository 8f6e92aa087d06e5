//! Live progress of executions: what the engine publishes after each change it commits, and
//! the stream StreamExecution serves from it.
//!
//! Changes go out over Redis pub/sub ([`platform::live`]) on a channel per execution, as the
//! very messages the stream sends (length-delimited `StreamExecutionResponse`s), published
//! after their commit. A stream subscribes before it reads the execution, so it misses nothing
//! published after its first read. Pub/sub may still lose a message (Redis restarted, a
//! publish failed): a stream then reads the execution again from Postgres when it is told to
//! resync, every [`RESYNC_EVERY`] in any case, and always once the execution ended, sending
//! only what it has not shown yet. What a stream shows never goes back: a late message about
//! a node that already ended is dropped.

use std::collections::HashMap;
use std::time::Duration;

use platform::context::TenantId;
use platform::db::Db;
use platform::live::{Ended, Live, Subscription, Watch};
use proto::formflow::workflow::v1 as wire;
use proto::prost::Message;
use tokio::sync::mpsc;
use wire::stream_execution_response::Update;

use crate::domain::execution::{Execution, ExecutionId, NodeRun};
use crate::error::Error;
use crate::grpc::convert::{execution_to_proto, node_run_to_proto};
use crate::store;

/// How often a stream reads its execution again, whatever it was told.
const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// Publishes executions' changes and subscribes to them.
#[derive(Debug, Clone)]
pub struct Progress {
    live: Live,
}

impl Progress {
    /// Progress over `live`.
    pub fn new(live: Live) -> Self {
        Self { live }
    }

    /// Publishes the changes of execution `id`: its new state, when it changed, and node runs
    /// that started or changed.
    pub fn publish(
        &self,
        tenant: TenantId,
        id: ExecutionId,
        execution: Option<&Execution>,
        runs: &[NodeRun],
    ) {
        if execution.is_none() && runs.is_empty() {
            return;
        }
        let mut payload = Vec::new();
        let updates = execution
            .map(|execution| Update::Execution(execution_to_proto(execution, false)))
            .into_iter()
            .chain(
                runs.iter()
                    .map(|run| Update::NodeExecution(node_run_to_proto(id, run))),
            );
        for update in updates {
            wire::StreamExecutionResponse {
                update: Some(update),
            }
            .encode_length_delimited(&mut payload)
            .expect("a Vec grows as needed");
        }
        self.live.publish(&channel(tenant, id), payload);
    }

    /// Subscribes to the changes of execution `id`.
    pub async fn subscribe(&self, tenant: TenantId, id: ExecutionId) -> Subscription {
        self.live.subscribe(&channel(tenant, id)).await
    }
}

fn channel(tenant: TenantId, id: ExecutionId) -> String {
    format!("workflow.execution.{tenant}.{id}")
}

/// Streams execution `id`: its state and node runs as `db` has them now, then every change,
/// until it ends; the last message is the ended execution. `subscription` must have been taken before this is called.
pub fn watch(
    db: Db,
    tenant: TenantId,
    id: ExecutionId,
    subscription: Subscription,
) -> mpsc::Receiver<Result<wire::StreamExecutionResponse, Error>> {
    platform::live::watch(subscription, RESYNC_EVERY, |sender| Watcher {
        db,
        tenant,
        id,
        sender,
        shown: Shown::default(),
    })
}

struct Watcher {
    db: Db,
    tenant: TenantId,
    id: ExecutionId,
    sender: mpsc::Sender<Result<wire::StreamExecutionResponse, Error>>,
    shown: Shown,
}

impl Watch for Watcher {
    type Item = Result<wire::StreamExecutionResponse, Error>;

    fn sender(&self) -> &mpsc::Sender<Self::Item> {
        &self.sender
    }

    /// Sends what a published message says changed; once it says the execution ended, reads
    /// it whole and ends the stream.
    async fn apply(&mut self, payload: &[u8]) -> Result<(), Ended> {
        let mut rest = payload;
        while !rest.is_empty() {
            let Ok(update) = wire::StreamExecutionResponse::decode_length_delimited(&mut rest)
            else {
                tracing::warn!(execution = %self.id, "an undecodable live update; reading the execution again");
                return self.resync().await;
            };
            match update.update {
                Some(Update::Execution(execution)) if execution.end_time.is_some() => {
                    return self.resync().await;
                }
                Some(Update::Execution(execution)) if self.shown.execution(&execution) => {
                    self.send(Update::Execution(execution)).await?;
                }
                Some(Update::NodeExecution(run)) if self.shown.node_run(&run) => {
                    self.send(Update::NodeExecution(run)).await?;
                }
                // Shown already.
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads the execution and its node runs and sends what was not shown; ends the stream
    /// when the execution ended or is gone.
    async fn resync(&mut self) -> Result<(), Ended> {
        let read = async {
            let mut transaction = self.db.tenant_tx(self.tenant).await?;
            let execution = store::get_execution(&mut transaction, self.tenant, self.id).await?;
            let runs = match &execution {
                Some(_) => {
                    store::list_node_runs(
                        &mut transaction,
                        self.tenant,
                        self.id,
                        None,
                        None,
                        i64::MAX,
                    )
                    .await?
                }
                None => Vec::new(),
            };
            transaction.commit().await?;
            anyhow::Ok((execution, runs))
        };
        let (execution, runs) = match read.await {
            Ok(read) => read,
            Err(error) => {
                // The next resync tries again.
                tracing::warn!(execution = %self.id, error = format!("{error:#}"), "reading an execution to stream failed");
                return Ok(());
            }
        };
        let Some(execution) = execution else {
            let gone = Error::ExecutionNotFound(format!("executions/{}", self.id));
            let _ = self.sender.send(Err(gone)).await;
            return Err(Ended);
        };
        let execution = execution_to_proto(&execution, false);
        let ended = execution.end_time.is_some();
        // Its end comes last, after its nodes: a stream's last message is the ended execution.
        if !ended && self.shown.execution(&execution) {
            self.send(Update::Execution(execution.clone())).await?;
        }
        for run in &runs {
            let run = node_run_to_proto(self.id, run);
            if self.shown.node_run(&run) {
                self.send(Update::NodeExecution(run)).await?;
            }
        }
        if ended {
            if self.shown.execution(&execution) {
                self.send(Update::Execution(execution)).await?;
            }
            return Err(Ended);
        }
        Ok(())
    }
}

impl Watcher {
    async fn send(&self, update: Update) -> Result<(), Ended> {
        let response = wire::StreamExecutionResponse {
            update: Some(update),
        };
        self.sender.send(Ok(response)).await.map_err(|_| Ended)
    }
}

/// What a stream has shown: the execution's and each node run's last state.
#[derive(Default)]
struct Shown {
    execution: Option<Seen>,
    node_runs: HashMap<String, Option<Seen>>,
}

/// A state as shown: its number, and whether it was an end.
type Seen = (i32, bool);

impl Shown {
    /// Whether `execution` is news; remembers it when it is.
    fn execution(&mut self, execution: &wire::Execution) -> bool {
        remember(
            &mut self.execution,
            (execution.state, execution.end_time.is_some()),
        )
    }

    /// Whether `run` is news; remembers it when it is.
    fn node_run(&mut self, run: &wire::NodeExecution) -> bool {
        remember(
            self.node_runs.entry(run.id.clone()).or_default(),
            (run.state, run.end_time.is_some()),
        )
    }
}

/// Whether `now` is news after `shown` — a change, and nothing after an end — and remembers
/// it when it is.
fn remember(shown: &mut Option<Seen>, now: Seen) -> bool {
    let news = match shown {
        None => true,
        Some((_, true)) => false,
        Some(before) => *before != now,
    };
    if news {
        *shown = Some(now);
    }
    news
}
