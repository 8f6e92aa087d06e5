//! What starts executions besides RunWorkflow.
//!
//! - `trigger.form`: each `forms.submission.created` event starts an execution of every
//!   active workflow whose active version has a `trigger.form` node for the form, from that
//!   node, with the submission as input. The event is consumed from the durable queue
//!   `{prefix}.svc-workflow.form-triggers` and marked handled in the transaction that queues
//!   the executions, so a redelivered event starts nothing twice.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use platform::amqp::Outcome;
use platform::consumer::{Audience, EventHandler, ProcessedEvents, ReceivedEvent, Subscription};
use platform::context::TenantId;
use platform::db::Db;
use platform::wire::{from_timestamp, object_from_proto, value_from_proto};
use proto::formflow::events::v1 as events;
use serde_json::{Map, Value, json};

use crate::app::SCHEMA;
use crate::domain::execution::{Execution, ExecutionId, ExecutionState, TriggerKind};
use crate::engine::Engine;
use crate::operations::queue_execution;
use crate::store;

/// Queue of the form triggers.
const FORM_TRIGGERS: &str = "svc-workflow.form-triggers";

/// What the form triggers consume.
pub const FORM_SUBSCRIPTION: Subscription = Subscription {
    audience: Audience::OneReplica(FORM_TRIGGERS),
    bindings: &["forms.submission.created.v1"],
    prefetch: 16,
};

/// Starts the executions of each form submission.
#[derive(Debug, Clone)]
pub struct FormTriggers {
    db: Db,
    engine: Engine,
    processed: ProcessedEvents,
}

impl FormTriggers {
    /// Form triggers over `db`, queuing on `engine`.
    pub fn new(db: Db, engine: Engine) -> Self {
        Self {
            db,
            engine,
            processed: ProcessedEvents::new(SCHEMA.name, FORM_TRIGGERS),
        }
    }

    /// Queues the executions `created` starts in `tenant`, once per event.
    async fn queue(
        &self,
        event: &ReceivedEvent,
        tenant: TenantId,
        created: &events::SubmissionCreated,
    ) -> anyhow::Result<Option<Vec<ExecutionId>>> {
        let input = submission_input(created);
        let submission = created
            .submission
            .as_ref()
            .map(|submission| submission.name.clone())
            .unwrap_or_default();
        self.processed
            .once(&self.db, event, async |transaction| {
                let mut queued = Vec::new();
                for workflow in store::form_triggered(transaction, tenant, &created.form).await? {
                    let triggers = workflow.definition.nodes.iter().filter(|node| {
                        node.node_type == "trigger.form"
                            && node.config.get("form").and_then(Value::as_str)
                                == Some(created.form.as_str())
                    });
                    for node in triggers {
                        let execution = Execution {
                            id: ExecutionId::generate(),
                            workflow_id: workflow.id,
                            workflow_version: workflow.version,
                            workflow_display_name: workflow.display_name.clone(),
                            workflow_owner: workflow.creator.clone(),
                            state: ExecutionState::Queued,
                            trigger_kind: TriggerKind::Form,
                            trigger_node: node.id.clone(),
                            trigger_ref: submission.clone(),
                            triggered_by: String::new(),
                            input: input.clone(),
                            output: None,
                            error: None,
                            retry_of: None,
                            created_at: Utc::now().trunc_subsecs(6),
                            started_at: None,
                            ended_at: None,
                        };
                        queue_execution(transaction, tenant, &execution, &workflow.definition)
                            .await?;
                        queued.push(execution.id);
                    }
                }
                Ok(queued)
            })
            .await
    }
}

impl EventHandler for FormTriggers {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        let created = match event.decode::<events::SubmissionCreated>() {
            None => return Outcome::Done,
            Some(Err(reason)) => return Outcome::Reject(reason),
            Some(Ok(created)) => created,
        };
        let Some(tenant) = event.tenant_id else {
            return Outcome::Reject("a submission event names no tenant".to_owned());
        };
        match self.queue(&event, tenant, &created).await {
            Ok(queued) => {
                for id in queued.into_iter().flatten() {
                    self.engine.dispatch(tenant, id, 0, Duration::ZERO).await;
                }
                Outcome::Done
            }
            Err(error) => Outcome::Retry(format!("{error:#}")),
        }
    }
}

/// The input of an execution a submission starts: the submission, its form, the answers by
/// field id and their labels.
fn submission_input(created: &events::SubmissionCreated) -> Value {
    let submission = created.submission.clone().unwrap_or_default();
    let answers = submission
        .data
        .as_ref()
        .map(object_from_proto)
        .unwrap_or_default();
    let mut labels = Map::new();
    for answer in &created.answers {
        labels.insert(answer.field_id.clone(), json!(answer.label));
    }
    // Answers the event lists but the submission's data lacks (none today) still count.
    let mut answers = answers;
    for answer in &created.answers {
        if !answers.contains_key(&answer.field_id)
            && let Some(value) = &answer.value
        {
            answers.insert(answer.field_id.clone(), value_from_proto(value));
        }
    }
    json!({
        "submission": submission.name,
        "form": created.form,
        "form_title": created.form_title,
        "form_slug": created.form_slug,
        "form_version": submission.form_version,
        "answers": answers,
        "labels": labels,
        "submitter": submission.submitter,
        "submitted_at": submission
            .create_time
            .as_ref()
            .and_then(from_timestamp)
            .map(|time| time.to_rfc3339()),
    })
}
