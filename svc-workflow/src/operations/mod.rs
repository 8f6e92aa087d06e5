//! Workflow operations: who may do what, the transaction each runs in and its audit row.
//! Handlers in `grpc` only translate to and from the wire.
//!
//! - [`workflows`]: create, read, list, update, delete, activate, deactivate; versions.
//! - [`credentials`]: create, read, list, update (rotate), delete; values sealed at rest.
//! - [`executions`]: manual runs, reading executions and node runs, retry, cancel.
//! - [`dead_letters`]: listing nodes that failed every attempt, and replaying them.
//! - [`webhooks`]: signed requests to `trigger.webhook` nodes.
//!
//! Tenants: a workflow or credential of another tenant is NOT_FOUND whatever the caller may
//! do, since every query runs in the caller's tenant (and row-level security agrees).

mod credentials;
mod dead_letters;
mod executions;
mod webhooks;
mod workflows;

use std::sync::Arc;

use platform::audit::AuditLog;
use platform::context::TenantId;
use platform::crypto::Sealer;
use platform::db::Db;
use platform::error::FieldViolations;
use platform::idempotency::Idempotency;
use platform::outbox::Outbox;
use sqlx::PgConnection;
use uuid::Uuid;

pub use credentials::{CredentialChanges, CredentialPage, NewCredential, seal_context, value_path};
pub use dead_letters::DeadLetterPage;
pub use executions::{ExecutionPage, MAX_INPUT_BYTES, NewRun, NodeRunPage, admit_execution};
pub use webhooks::{MAX_BODY_BYTES, WebhookCall};
pub use workflows::{NewWorkflow, VersionPage, WorkflowChanges, WorkflowPage};

use crate::app::SCHEMA;
use crate::domain::{CredentialId, Definition};
use crate::engine::Engine;
use crate::error::Error;
use crate::store;

/// The workflow operations, over the service's database, its outbox, its credential keys and
/// the engine that runs executions.
#[derive(Debug, Clone)]
pub struct Workflows {
    db: Db,
    outbox: Outbox,
    audit: AuditLog,
    idempotency: Idempotency,
    sealer: Arc<Sealer>,
    engine: Engine,
}

impl Workflows {
    /// Operations over `db` and `outbox`, sealing credentials with `sealer`, queuing
    /// executions on `engine`.
    pub fn new(db: Db, outbox: Outbox, sealer: Arc<Sealer>, engine: Engine) -> Self {
        Self {
            db,
            outbox,
            audit: AuditLog::new(SCHEMA.name),
            idempotency: Idempotency::new(SCHEMA.name),
            sealer,
            engine,
        }
    }

    /// Deletes idempotency keys past their retention.
    pub async fn forget_expired_keys(&self) -> anyhow::Result<()> {
        self.idempotency.forget_expired(&self.db).await?;
        Ok(())
    }
}

/// What is wrong with the credentials `definition` names in `tenant`: each missing one, or one
/// of a type its node cannot use, as (index of the node, reason).
async fn credential_problems(
    transaction: &mut PgConnection,
    tenant: TenantId,
    definition: &Definition,
) -> Result<Vec<(usize, String)>, Error> {
    let references = definition.credential_refs();
    if references.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = references
        .iter()
        .map(|reference| reference.id.as_uuid())
        .collect();
    let found = store::get_credentials(transaction, tenant, &ids).await?;
    Ok(references
        .into_iter()
        .filter_map(|reference| {
            let name = credential_name(reference.id);
            match found
                .iter()
                .find(|credential| credential.id == reference.id)
            {
                None => Some((reference.node, format!("{name} does not exist"))),
                Some(credential) if !credential.kind.serves(reference.usage) => Some((
                    reference.node,
                    format!(
                        "{name} is a {} credential, which a {} node cannot use",
                        credential.kind.wire_name(),
                        definition.nodes[reference.node].node_type
                    ),
                )),
                Some(_) => None,
            }
        })
        .collect())
}

/// Refuses a definition about to be saved whose credentials do not fit, as violations of
/// `workflow.definition.nodes[i].config.credential`.
async fn check_credentials(
    transaction: &mut PgConnection,
    tenant: TenantId,
    definition: &Definition,
) -> Result<(), Error> {
    let mut violations = FieldViolations::new();
    for (node, reason) in credential_problems(transaction, tenant, definition).await? {
        violations.add(
            format!("workflow.definition.nodes[{node}].config.credential"),
            reason,
        );
    }
    violations.into_result()?;
    Ok(())
}

fn credential_name(id: CredentialId) -> String {
    format!("credentials/{id}")
}
