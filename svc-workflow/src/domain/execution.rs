//! Executions of a workflow version and the record of each node run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WorkflowId;

platform::id!(
    /// Id of an execution.
    ExecutionId,
    "execution id"
);
platform::id!(
    /// Id of one run of a node.
    NodeRunId,
    "node execution id"
);
platform::id!(
    /// Id of a dead letter.
    DeadLetterId,
    "dead letter id"
);

/// Largest output a node may produce, as JSON; a larger one fails the node.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Largest input or output the API shows, as JSON; larger ones are shown as null, truncated.
pub const SHOWN_BYTES: usize = 64 * 1024;

platform::stored_enum! {
    /// Lifecycle state of an execution.
    ExecutionState {
        /// Waiting for a worker (or for its lock key).
        Queued => "queued",
        /// Nodes are running.
        Running => "running",
        /// Waiting for a timer or a node's next attempt.
        Waiting => "waiting",
        /// Every path completed.
        Succeeded => "succeeded",
        /// A node failed after its retries with no `error` edge, or the execution timed out.
        Failed => "failed",
        /// Cancelled.
        Cancelled => "cancelled",
    }
}

impl ExecutionState {
    /// Whether the execution is over.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            ExecutionState::Succeeded | ExecutionState::Failed | ExecutionState::Cancelled
        )
    }
}

platform::stored_enum! {
    /// What started an execution.
    TriggerKind {
        /// RunWorkflow.
        Manual => "manual",
        /// A form submission.
        Form => "form",
        /// A signed webhook.
        Webhook => "webhook",
        /// A cron schedule.
        Schedule => "schedule",
        /// RetryExecution.
        Retry => "retry",
        /// ReplayDeadLetter of a trigger.
        Replay => "replay",
    }
}

platform::stored_enum! {
    /// Lifecycle state of a node run.
    NodeRunState {
        /// Running.
        Running => "running",
        /// Waiting for a timer, or for its attempt to be due.
        Waiting => "waiting",
        /// Completed.
        Succeeded => "succeeded",
        /// Failed; another attempt may follow.
        Failed => "failed",
        /// Not run: no edge leading to it was taken.
        Skipped => "skipped",
        /// Abandoned when the execution was cancelled or timed out.
        Cancelled => "cancelled",
    }
}

/// Why a node or an execution failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Stable code: `TIMEOUT`, `EXPRESSION_ERROR`, `HTTP_ERROR`, ...
    pub code: String,
    /// What happened, at most 1,000 characters; never a credential's value.
    pub message: String,
    /// The node that failed; empty for the execution's own failures.
    #[serde(default)]
    pub node_id: String,
}

impl Failure {
    /// A failure of no node in particular; `message` is cut to 1,000 characters.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Failure {
            code: code.to_owned(),
            message: match message.char_indices().nth(1_000) {
                Some((cut, _)) => message[..cut].to_owned(),
                None => message,
            },
            node_id: String::new(),
        }
    }

    /// This failure, of node `node_id`.
    #[must_use]
    pub fn of_node(mut self, node_id: &str) -> Self {
        node_id.clone_into(&mut self.node_id);
        self
    }
}

/// One run of a workflow version.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// Its id.
    pub id: ExecutionId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The version it runs.
    pub workflow_version: i32,
    /// The workflow's display name when it was queued.
    pub workflow_display_name: String,
    /// Who owned the workflow when it was queued.
    pub workflow_owner: String,
    /// Lifecycle state.
    pub state: ExecutionState,
    /// What started it.
    pub trigger_kind: TriggerKind,
    /// The trigger node it started from.
    pub trigger_node: String,
    /// What the trigger refers to (a submission, a `webhook-id`, ...).
    pub trigger_ref: String,
    /// Who started it, or empty.
    pub triggered_by: String,
    /// The trigger's data.
    pub input: Value,
    /// Output of the last node that ran.
    pub output: Option<Value>,
    /// Why it failed, or was cancelled.
    pub error: Option<Failure>,
    /// The execution it retries.
    pub retry_of: Option<ExecutionId>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it up.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// One run of a node: one attempt, for one `logic.foreach` item (or none).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRun {
    /// Its id (UUIDv7: runs sort in the order they started).
    pub id: NodeRunId,
    /// The node.
    pub node_id: String,
    /// The node's type.
    pub node_type: String,
    /// Index of the item of the enclosing `logic.foreach`; -1 outside a loop.
    pub iteration: i32,
    /// Attempt number, from 1.
    pub attempt: i32,
    /// Attempts of one group share their idempotency key; a replay starts the next group.
    pub attempt_group: i32,
    /// Lifecycle state.
    pub state: NodeRunState,
    /// What the node received.
    pub input: Option<Value>,
    /// What it produced.
    pub output: Option<Value>,
    /// The output its successors follow (`true`, a case name); empty for the default one.
    pub output_port: String,
    /// Why it failed.
    pub error: Option<Failure>,
    /// While waiting: when its timer ends or its attempt is due.
    pub wake_at: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Job type of a node that failed every attempt, ending its execution.
pub const NODE_JOB: &str = "workflow.node";

/// A job that failed every attempt, set aside until someone replays it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its id.
    pub id: DeadLetterId,
    /// The queue the job came from, under the deployment's prefix.
    pub queue: String,
    /// [`NODE_JOB`], or the type of the event a trigger could not handle.
    pub job_type: String,
    /// The workflow concerned.
    pub workflow_id: Option<WorkflowId>,
    /// The execution concerned.
    pub execution_id: Option<ExecutionId>,
    /// The node concerned; empty if none.
    pub node_id: String,
    /// The job: for a node, its execution, iteration and input; for an event, its envelope.
    pub payload: Value,
    /// The last attempt's failure.
    pub last_error: Failure,
    /// Attempts made.
    pub attempts: i32,
    /// Whether it was replayed.
    pub replayed_at: Option<DateTime<Utc>>,
    /// When the first attempt failed.
    pub first_failure_at: DateTime<Utc>,
    /// When it was set aside.
    pub created_at: DateTime<Utc>,
}

/// `value` as the API shows it: itself when its JSON fits [`SHOWN_BYTES`], else `None` and
/// `true` (truncated).
pub fn shown(value: Option<&Value>) -> (Option<Value>, bool) {
    match value {
        None => (None, false),
        Some(value) if json_size(value) <= SHOWN_BYTES => (Some(value.clone()), false),
        Some(_) => (None, true),
    }
}

/// Size of `value` as compact JSON.
pub fn json_size(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).expect("a JSON value serialises");
    counter.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_round_trip_through_their_stored_form() {
        for state in [
            ExecutionState::Queued,
            ExecutionState::Running,
            ExecutionState::Waiting,
            ExecutionState::Succeeded,
            ExecutionState::Failed,
            ExecutionState::Cancelled,
        ] {
            assert_eq!(ExecutionState::parse(state.as_str()), Some(state));
        }
        assert!(ExecutionState::Cancelled.is_ended());
        assert!(!ExecutionState::Waiting.is_ended());
        assert_eq!(NodeRunState::parse("skipped"), Some(NodeRunState::Skipped));
        assert_eq!(TriggerKind::parse("cron"), None);
    }

    #[test]
    fn large_values_are_shown_as_truncated() {
        let small = json!({"a": 1});
        assert_eq!(shown(Some(&small)), (Some(small.clone()), false));
        let large = json!("x".repeat(SHOWN_BYTES));
        assert_eq!(shown(Some(&large)), (None, true));
        assert_eq!(json_size(&small), 7);
    }

    #[test]
    fn failure_messages_are_cut_at_a_thousand_characters() {
        let failure = Failure::new("HTTP_ERROR", "é".repeat(1_500)).of_node("fetch");
        assert_eq!(failure.message.chars().count(), 1_000);
        assert_eq!(failure.node_id, "fetch");
    }
}
