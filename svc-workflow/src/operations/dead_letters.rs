//! Dead letters: listing them, and replaying one.

use std::time::Duration;

use chrono::Utc;
use platform::context::{Permission, RequestContext};
use platform::paging::{fetch_limit, split_page};
use proto::formflow::workflow::v1 as wire;

use super::Workflows;
use crate::domain::WorkflowId;
use crate::domain::execution::{
    DeadLetter, DeadLetterId, NODE_JOB, NodeRun, NodeRunId, NodeRunState,
};
use crate::error::Error;
use crate::grpc::convert::dead_letter_to_proto;
use crate::store::{self, DeadLetterPosition};

/// A page of dead letters and where the next starts.
#[derive(Debug)]
pub struct DeadLetterPage {
    /// The dead letters, newest first.
    pub dead_letters: Vec<DeadLetter>,
    /// Where the next page starts, when there is one.
    pub next: Option<DeadLetterPosition>,
}

impl Workflows {
    /// One page of dead letters, newest first: pending or replayed ones, of a workflow and
    /// from a queue when given.
    #[tracing::instrument(skip_all)]
    pub async fn list_dead_letters(
        &self,
        context: &RequestContext,
        replayed: bool,
        workflow: Option<WorkflowId>,
        queue: Option<&str>,
        after: Option<DeadLetterPosition>,
        page_size: usize,
    ) -> Result<DeadLetterPage, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let dead_letters = store::list_dead_letters(
            &mut transaction,
            tenant,
            replayed,
            workflow,
            queue,
            after,
            fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (dead_letters, next) = split_page(dead_letters, page_size, |letter| {
            (letter.created_at, letter.id)
        });
        Ok(DeadLetterPage { dead_letters, next })
    }

    /// Replays a pending dead letter: a failed node resumes its FAILED execution from that
    /// node, in a new attempt group (a new idempotency key for its side effects).
    #[tracing::instrument(skip_all)]
    pub async fn replay_dead_letter(
        &self,
        context: &RequestContext,
        id: DeadLetterId,
    ) -> Result<wire::DeadLetter, Error> {
        let tenant = context.authorize(Permission::WorkflowsRun)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let name = format!("deadLetters/{id}");
        let scope = format!("ReplayDeadLetter {name}");
        let key = context.idempotency_key.as_ref();
        let call = self.idempotency.call(tenant, &scope, key, b"");
        if let Some(answer) = call.replay(&mut transaction).await? {
            transaction.commit().await?;
            return Ok(answer);
        }
        let mut letter = store::lock_dead_letter(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| Error::DeadLetterNotFound(name.clone()))?;
        if letter.replayed_at.is_some() {
            return Err(Error::DeadLetterReplayed);
        }
        if letter.job_type != NODE_JOB {
            return Err(anyhow::anyhow!(
                "{name} is a {} job, which cannot be replayed",
                letter.job_type
            )
            .into());
        }
        let execution_id = letter
            .execution_id
            .ok_or_else(|| anyhow::anyhow!("{name} names no execution"))?;
        let execution = store::get_execution(&mut transaction, tenant, execution_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{name}: its execution is gone"))?;
        let definition = store::get_version(
            &mut transaction,
            tenant,
            execution.workflow_id,
            execution.workflow_version,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("{name}: its workflow version is gone"))?
        .definition;
        let iteration = letter.payload["iteration"].as_i64().unwrap_or(-1);
        let last = store::list_node_runs(
            &mut transaction,
            tenant,
            execution_id,
            Some(&letter.node_id),
            None,
            i64::MAX,
        )
        .await?
        .into_iter()
        .filter(|run| i64::from(run.iteration) == iteration)
        .max_by_key(|run| run.attempt)
        .ok_or_else(|| anyhow::anyhow!("{name}: the node's runs are gone"))?;
        let now = Utc::now();
        let deadline = now
            + chrono::Duration::milliseconds(
                i64::try_from(definition.settings.timeout_ms).unwrap_or(i64::MAX),
            );
        let token = store::reopen_execution(&mut transaction, tenant, execution_id, deadline)
            .await?
            .ok_or(Error::ExecutionNotFailed(execution.state.as_str()))?;
        let again = NodeRun {
            id: NodeRunId::generate(),
            attempt: last.attempt + 1,
            attempt_group: last.attempt_group + 1,
            state: NodeRunState::Waiting,
            output: None,
            output_port: String::new(),
            error: None,
            wake_at: Some(now),
            started_at: now,
            ended_at: None,
            ..last
        };
        store::save_node_runs(&mut transaction, tenant, execution_id, &[again]).await?;
        letter.replayed_at = Some(store::mark_replayed(&mut transaction, tenant, id).await?);
        let answer = dead_letter_to_proto(&letter);
        call.complete(&mut transaction, &answer).await?;
        transaction.commit().await?;
        self.engine
            .jobs()
            .wake(tenant, execution_id, token, Duration::ZERO)
            .await;
        Ok(answer)
    }
}
