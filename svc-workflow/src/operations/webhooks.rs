//! TriggerWebhook: a signed request to a `trigger.webhook` node of an active workflow queues
//! an execution of its active version, once per `webhook-id`.

use chrono::{SubsecRound, Utc};
use platform::context::RequestContext;
use platform::error::FieldViolations;
use serde_json::{Map, Value, json};

use super::Workflows;
use crate::domain::execution::{Execution, ExecutionId, ExecutionState, TriggerKind};
use crate::domain::webhook::{self, Signed};
use crate::domain::{CredentialId, CredentialType, CredentialValue, WorkflowId};
use crate::error::Error;
use crate::operations::{admit_execution, seal_context};
use crate::store;

/// Largest webhook body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A webhook request as it arrived.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    /// The workflow.
    pub workflow: WorkflowId,
    /// The `trigger.webhook` node.
    pub node_id: String,
    /// `webhook-id`.
    pub webhook_id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The body's content type.
    pub content_type: String,
    /// The raw body, as signed.
    pub body: Vec<u8>,
}

impl Workflows {
    /// Verifies `call` and queues its execution; answers it, and whether its `webhook-id` had
    /// been accepted before (the execution is then the first one's).
    #[tracing::instrument(skip_all)]
    pub async fn trigger_webhook(
        &self,
        context: &RequestContext,
        call: WebhookCall,
    ) -> Result<(ExecutionId, bool), Error> {
        let tenant = match context.principal {
            Some(_) => context.acting_tenant()?,
            None => context.routed_tenant()?,
        };
        let not_found = || {
            Error::WebhookNotFound(format!(
                "workflows/{}/webhooks/{}",
                call.workflow, call.node_id
            ))
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let workflow = store::get_running(&mut transaction, tenant, call.workflow)
            .await?
            .ok_or_else(not_found)?;
        let graph = self
            .engine
            .graph_in(&mut transaction, tenant, call.workflow, workflow.version)
            .await?;
        let definition = graph.definition();
        let node = definition
            .node(&call.node_id)
            .filter(|node| node.node_type == "trigger.webhook")
            .ok_or_else(not_found)?;
        let credential = node
            .config
            .get("credential")
            .and_then(Value::as_str)
            .and_then(|name| name.strip_prefix("credentials/"))
            .and_then(|id| CredentialId::parse(id).ok())
            .ok_or_else(not_found)?;
        let tolerance = node
            .config
            .get("tolerance_seconds")
            .and_then(Value::as_i64)
            .unwrap_or(300);
        let (current, previous) = store::get_webhook_secrets(&mut transaction, tenant, credential)
            .await?
            .ok_or(Error::WebhookRefused(webhook::Refusal::Signature))?;
        let secrets: Vec<Vec<u8>> = std::iter::once(current)
            .chain(previous)
            .filter_map(|sealed| {
                let json = self
                    .sealer
                    .open(&seal_context(tenant, credential), &sealed)
                    .ok()?;
                let value: Map<String, Value> = serde_json::from_slice(&json).ok()?;
                let value = CredentialValue::parse(CredentialType::WebhookSecret, value).ok()?;
                platform::webhooks::secret_bytes(value.get("secret")?)
            })
            .collect();
        let signed = Signed {
            id: &call.webhook_id,
            timestamp: &call.timestamp,
            signature: &call.signature,
        };
        webhook::verify(
            &signed,
            &call.body,
            &secrets,
            Utc::now().timestamp(),
            tolerance,
        )
        .map_err(Error::WebhookRefused)?;

        let data = payload(&call)?;
        if node.config.get("payload_schema").is_some() {
            let validator = graph
                .payload_schema(&node.id)
                .ok_or_else(|| anyhow::anyhow!("a stored payload schema does not compile"))?;
            let mut violations = FieldViolations::new();
            for error in validator.iter_errors(&data) {
                violations.add(
                    format!(
                        "body{}",
                        error.instance_path().to_string().replace('/', ".")
                    ),
                    error.masked().to_string(),
                );
            }
            violations.into_result()?;
        }
        let input = match data {
            Value::Object(object) => Value::Object(object),
            other => json!({"body": other}),
        };
        let execution = Execution {
            id: ExecutionId::generate(),
            workflow_id: call.workflow,
            workflow_version: workflow.version,
            workflow_display_name: workflow.display_name,
            workflow_owner: workflow.creator,
            state: ExecutionState::Queued,
            trigger_kind: TriggerKind::Webhook,
            trigger_node: call.node_id.clone(),
            trigger_ref: call.webhook_id.clone(),
            triggered_by: context.principal_name(),
            input,
            output: None,
            error: None,
            retry_of: None,
            created_at: Utc::now().trunc_subsecs(6),
            started_at: None,
            ended_at: None,
        };
        if let Some(first) = store::claim_delivery(
            &mut transaction,
            tenant,
            call.workflow,
            &call.node_id,
            &call.webhook_id,
            execution.id,
        )
        .await?
        {
            transaction.commit().await?;
            return Ok((first, true));
        }
        let admitted = admit_execution(
            &self.engine,
            &mut transaction,
            tenant,
            execution,
            definition,
        )
        .await?;
        let id = admitted.execution.id;
        transaction.commit().await?;
        self.engine.admitted(admitted).await;
        Ok((id, false))
    }

    /// Forgets the `webhook-id`s and schedule ticks older than a week (the latest tick of
    /// each schedule excepted).
    pub async fn forget_old_trigger_records(&self) -> anyhow::Result<()> {
        let mut transaction = self.db.platform_tx().await?;
        store::forget_old_deliveries(&mut transaction).await?;
        store::forget_old_ticks(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }
}

/// The body as data: JSON when it says so (and must then be JSON), else text.
fn payload(call: &WebhookCall) -> Result<Value, Error> {
    let is_json = call.content_type.is_empty() || call.content_type.contains("json");
    if is_json && !call.body.is_empty() {
        return serde_json::from_slice(&call.body).map_err(|_| {
            FieldViolations::single("body", "is not JSON, as its content type says").into()
        });
    }
    Ok(Value::String(
        String::from_utf8_lossy(&call.body).into_owned(),
    ))
}
