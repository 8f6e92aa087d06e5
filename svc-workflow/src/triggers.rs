//! What starts executions besides RunWorkflow.
//!
//! - `trigger.form`: each `forms.submission.created` event starts an execution of every
//!   active workflow whose active version has a `trigger.form` node for the form, from that
//!   node, with the submission as input. The event is consumed from the durable queue
//!   `{prefix}.svc-workflow.form-triggers` and marked handled in the transaction that queues
//!   the executions, so a redelivered event starts nothing twice.
//! - `trigger.schedule`: every replica looks every [`SCHEDULE_SCAN`] for ticks of the active
//!   schedules that came due; a tick is claimed by inserting it (its primary key lets one
//!   replica succeed) in the transaction that queues its execution, so it fires once however
//!   many replicas run. A schedule does not catch up: after an outage only its latest missed
//!   tick fires, and only when it is at most [`MISFIRE_GRACE`] late.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use platform::amqp::Outcome;
use platform::consumer::{Audience, EventHandler, ProcessedEvents, ReceivedEvent, Subscription};
use platform::context::TenantId;
use platform::db::Db;
use platform::wire::{from_timestamp, object_from_proto, value_from_proto};
use proto::formflow::events::v1 as events;
use serde_json::{Map, Value, json};

use crate::app::SCHEMA;
use crate::domain::execution::{Execution, ExecutionId, ExecutionState, TriggerKind};
use crate::engine::{Admitted, Engine};
use crate::operations::admit_execution;
use crate::store;

/// How often each replica looks for schedule ticks that came due.
pub const SCHEDULE_SCAN: Duration = Duration::from_secs(1);
/// How late a tick may be found and still fire.
pub const MISFIRE_GRACE: chrono::Duration = chrono::Duration::minutes(5);

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
    ) -> anyhow::Result<Option<Vec<Admitted>>> {
        let input = submission_input(created);
        let submission = created
            .submission
            .as_ref()
            .map(|submission| submission.name.clone())
            .unwrap_or_default();
        self.processed
            .once(&self.db, event, async |transaction| {
                let mut admitted = Vec::new();
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
                        admitted.push(
                            admit_execution(
                                &self.engine,
                                transaction,
                                tenant,
                                execution,
                                &workflow.definition,
                            )
                            .await?,
                        );
                    }
                }
                Ok(admitted)
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
            Ok(admitted) => {
                for admitted in admitted.into_iter().flatten() {
                    self.engine.admitted(admitted).await;
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

/// Fires the schedule triggers of active workflows.
#[derive(Debug, Clone)]
pub struct Schedules {
    db: Db,
    engine: Engine,
}

impl Schedules {
    /// Schedules over `db`, queuing on `engine`.
    pub fn new(db: Db, engine: Engine) -> Self {
        Self { db, engine }
    }

    /// Fires every schedule tick due now that no replica claimed yet.
    pub async fn fire_due(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        let mut transaction = self.db.platform_tx().await?;
        let scheduled = store::scheduled(&mut transaction).await?;
        let last_ticks = store::last_ticks(&mut transaction).await?;
        transaction.commit().await?;
        for (tenant, workflow) in scheduled {
            for node in workflow
                .definition
                .nodes
                .iter()
                .filter(|node| node.node_type == "trigger.schedule")
            {
                let last = last_ticks.get(&(workflow.id, node.id.clone())).copied();
                let Some(tick) = due_tick(&node.config, last, now) else {
                    continue;
                };
                let fired = self
                    .fire(tenant, &workflow, &node.id, &node.config, tick, now)
                    .await;
                if let Err(error) = fired {
                    tracing::warn!(workflow = %workflow.id, node = %node.id, error = format!("{error:#}"), "firing a schedule failed");
                }
            }
        }
        Ok(())
    }

    async fn fire(
        &self,
        tenant: TenantId,
        workflow: &store::ActiveVersion,
        node_id: &str,
        config: &Map<String, Value>,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if now - tick > MISFIRE_GRACE {
            store::claim_tick(&mut transaction, tenant, workflow.id, node_id, tick, None).await?;
            transaction.commit().await?;
            tracing::info!(workflow = %workflow.id, node = node_id, %tick, "a schedule tick was found too late and skipped");
            return Ok(());
        }
        let mut input = config
            .get("input")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        input.insert("scheduled_time".to_owned(), json!(tick.to_rfc3339()));
        let execution = Execution {
            id: ExecutionId::generate(),
            workflow_id: workflow.id,
            workflow_version: workflow.version,
            workflow_display_name: workflow.display_name.clone(),
            workflow_owner: workflow.creator.clone(),
            state: ExecutionState::Queued,
            trigger_kind: TriggerKind::Schedule,
            trigger_node: node_id.to_owned(),
            trigger_ref: tick.to_rfc3339(),
            triggered_by: String::new(),
            input: Value::Object(input),
            output: None,
            error: None,
            retry_of: None,
            created_at: Utc::now().trunc_subsecs(6),
            started_at: None,
            ended_at: None,
        };
        if !store::claim_tick(
            &mut transaction,
            tenant,
            workflow.id,
            node_id,
            tick,
            Some(execution.id),
        )
        .await?
        {
            return Ok(()); // another replica fired it
        }
        let admitted = admit_execution(
            &self.engine,
            &mut transaction,
            tenant,
            execution,
            &workflow.definition,
        )
        .await?;
        transaction.commit().await?;
        self.engine.admitted(admitted).await;
        Ok(())
    }
}

/// The latest tick of the schedule in `config` due at `now` since `last` (the latest one
/// claimed; without one, the last [`SCHEDULE_SCAN`]s), if any.
fn due_tick(
    config: &Map<String, Value>,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let cron: croner::Cron = config.get("cron")?.as_str()?.parse().ok()?;
    let zone: chrono_tz::Tz = config
        .get("time_zone")
        .and_then(Value::as_str)
        .unwrap_or("UTC")
        .parse()
        .ok()?;
    let since = last
        .unwrap_or_else(|| now - chrono::Duration::from_std(SCHEDULE_SCAN * 2).unwrap_or_default());
    let mut due = None;
    let mut after = since.with_timezone(&zone);
    while let Ok(next) = cron.find_next_occurrence(&after, false) {
        if next.with_timezone(&Utc) > now {
            break;
        }
        due = Some(next.with_timezone(&Utc));
        after = next;
    }
    due
}

/// The tenant setting that says how many days ended executions are kept.
pub const RETENTION_SETTING: &str = "workflow_execution_retention_days";

/// What the tenant settings consumer receives: every tenant's creation and updates.
pub const TENANT_SUBSCRIPTION: Subscription = Subscription {
    audience: Audience::OneReplica("svc-workflow.tenants"),
    bindings: &["tenant.created.v1", "tenant.updated.v1"],
    prefetch: 16,
};

/// Keeps each tenant's execution retention from its events.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    db: Db,
}

impl TenantSettings {
    /// The consumer over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl EventHandler for TenantSettings {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        let tenant = match (
            event.decode::<events::TenantCreated>(),
            event.decode::<events::TenantUpdated>(),
        ) {
            (Some(Ok(created)), _) => created.tenant,
            (_, Some(Ok(updated))) => updated.tenant,
            (Some(Err(reason)), _) | (_, Some(Err(reason))) => return Outcome::Reject(reason),
            (None, None) => return Outcome::Done,
        };
        let Some(tenant) = tenant else {
            return Outcome::Reject("a tenant event without its tenant".to_owned());
        };
        let Ok(id) = TenantId::parse(&tenant.id) else {
            return Outcome::Reject("a tenant event with a malformed tenant id".to_owned());
        };
        let days = tenant
            .settings
            .as_ref()
            .map(object_from_proto)
            .and_then(|settings| settings.get(RETENTION_SETTING)?.as_i64())
            .and_then(|days| i32::try_from(days).ok())
            .filter(|days| (1..=3650).contains(days));
        let updated_at = tenant
            .update_time
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(Utc::now);
        let saved = async {
            let mut transaction = self.db.tenant_tx(id).await?;
            store::set_retention(&mut transaction, id, days, updated_at).await?;
            transaction.commit().await?;
            anyhow::Ok(())
        }
        .await;
        match saved {
            Ok(()) => Outcome::Done,
            Err(error) => Outcome::Retry(format!("{error:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_latest_tick_since_the_last_one_is_due_in_the_schedules_time_zone() {
        let config = json!({"cron": "0 9 * * *", "time_zone": "Europe/Paris"});
        let config = config.as_object().unwrap();
        // 09:00 in Paris is 08:00 UTC in winter.
        let now = at("2026-12-07T08:00:00.5Z");
        assert_eq!(
            due_tick(config, Some(at("2026-12-06T08:00:00Z")), now),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            due_tick(config, Some(at("2026-12-07T08:00:00Z")), now),
            None
        );
        // After three days down, only the latest missed tick is due.
        assert_eq!(
            due_tick(config, Some(at("2026-12-03T08:00:00Z")), now),
            Some(at("2026-12-07T08:00:00Z"))
        );
        // A schedule never claimed looks back one scan or two only.
        assert_eq!(
            due_tick(config, None, at("2026-12-07T08:00:01Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(due_tick(config, None, at("2026-12-07T08:30:00Z")), None);
    }
}
