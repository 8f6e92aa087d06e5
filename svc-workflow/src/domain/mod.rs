//! What svc-workflow knows without IO: workflows and their versioned definitions, the node
//! types a definition may use, expressions over execution data, and credentials.
//!
//! - [`definition`]: the DAG of a version and the rules it must follow.
//! - [`node_types`]: every node type with its config's JSON Schema and outputs.
//! - [`expression`]: JMESPath expressions and the `{{ … }}` templates that embed them.
//! - [`credential`]: credential types and the shape of their values.
//! - [`execution`]: executions and the record of each node run.
//! - [`webhook`]: Standard Webhooks signatures.

pub mod credential;
pub mod definition;
pub mod execution;
pub mod expression;
pub mod node_types;
pub mod webhook;

use chrono::{DateTime, Utc};
use platform::context::TenantId;

pub use credential::{Credential, CredentialType, CredentialValue};
pub use definition::{Definition, Edge, Node, RetryPolicy, Settings};
pub use node_types::{NodeCategory, NodeType};

platform::id!(
    /// Id of a workflow.
    WorkflowId,
    "workflow id"
);
platform::id!(
    /// Id of a credential.
    CredentialId,
    "credential id"
);

/// Whether a workflow's triggers fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowState {
    /// Triggers do not fire; manual runs still work.
    Inactive,
    /// Triggers fire and run the active version.
    Active,
}

impl WorkflowState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Inactive => "inactive",
            WorkflowState::Active => "active",
        }
    }

    /// The state stored as `text`.
    pub fn parse(text: &str) -> Option<WorkflowState> {
        match text {
            "inactive" => Some(WorkflowState::Inactive),
            "active" => Some(WorkflowState::Active),
            _ => None,
        }
    }
}

/// A workflow with its latest definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Its id.
    pub id: WorkflowId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Human-readable name, 1 to 100 characters.
    pub display_name: String,
    /// Description, at most 2,000 characters.
    pub description: String,
    /// The latest version's definition.
    pub definition: Definition,
    /// Number of the latest version, from 1.
    pub latest_version: i32,
    /// Whether triggers fire.
    pub state: WorkflowState,
    /// Version the triggers run; 0 while inactive.
    pub active_version: i32,
    /// The active version's definition, when it is not the latest.
    pub active_definition: Option<Definition>,
    /// Who created it, `users/{id}`, `apiKeys/{id}` or `services/{name}`.
    pub creator: String,
    /// Row version, the etag.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Workflow {
    /// The definition the triggers run: the active version's; `None` while inactive.
    pub fn running_definition(&self) -> Option<&Definition> {
        match self.state {
            WorkflowState::Inactive => None,
            WorkflowState::Active => {
                Some(self.active_definition.as_ref().unwrap_or(&self.definition))
            }
        }
    }
}

/// An immutable version of a workflow's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowVersion {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// Its number, from 1.
    pub version: i32,
    /// The definition.
    pub definition: Definition,
    /// Who saved it.
    pub creator: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}
