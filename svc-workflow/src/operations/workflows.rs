//! Creating, reading, listing, updating, deleting, activating and deactivating workflows, and
//! reading their versions.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::error::CommonError;
use platform::paging::{fetch_limit, split_page};
use serde_json::json;
use sqlx::PgConnection;

use super::{Workflows, check_credentials, credential_problems};
use crate::domain::{Definition, Workflow, WorkflowId, WorkflowState, WorkflowVersion};
use crate::error::Error;
use crate::store::{self, WorkflowPosition};

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    /// Human-readable name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Definition of version 1, already checked as a whole.
    pub definition: Definition,
}

/// A validated update: the parts its mask names.
#[derive(Debug, Clone, Default)]
pub struct WorkflowChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New definition, already checked as a whole.
    pub definition: Option<Definition>,
    /// The row version the client read, if it sent an etag.
    pub expected_version: Option<i64>,
}

/// A page of workflows and where the next starts.
#[derive(Debug)]
pub struct WorkflowPage {
    /// The workflows.
    pub workflows: Vec<Workflow>,
    /// Where the next page starts, when there is one.
    pub next: Option<WorkflowPosition>,
}

/// A page of versions and the version the next page starts before.
#[derive(Debug)]
pub struct VersionPage {
    /// The versions, newest first.
    pub versions: Vec<WorkflowVersion>,
    /// The version the next page starts before, when there is one.
    pub next: Option<i32>,
}

impl Workflows {
    /// Creates a workflow, inactive, with its definition as version 1.
    #[tracing::instrument(skip_all)]
    pub async fn create(
        &self,
        context: &RequestContext,
        new: NewWorkflow,
    ) -> Result<Workflow, Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let now = Utc::now().trunc_subsecs(6);
        let workflow = Workflow {
            id: WorkflowId::generate(),
            tenant_id: tenant,
            display_name: new.display_name,
            description: new.description,
            definition: new.definition,
            latest_version: 1,
            state: WorkflowState::Inactive,
            active_version: 0,
            active_definition: None,
            creator: context.principal_name(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        check_credentials(&mut transaction, tenant, &workflow.definition).await?;
        store::insert_workflow(&mut transaction, &workflow).await?;
        store::insert_version(&mut transaction, tenant, &first_version(&workflow)).await?;
        let details = json!({"display_name": workflow.display_name, "version": 1});
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "create",
                name(workflow.id),
                details,
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(workflow_id = %workflow.id, "workflow created");
        Ok(workflow)
    }

    /// Reads a workflow with its latest definition.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, context: &RequestContext, id: WorkflowId) -> Result<Workflow, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let workflow = load(&mut transaction, tenant, id, false).await?;
        transaction.commit().await?;
        Ok(workflow)
    }

    /// One page of workflows, most recently updated first.
    #[tracing::instrument(skip_all)]
    pub async fn list(
        &self,
        context: &RequestContext,
        after: Option<WorkflowPosition>,
        state: Option<WorkflowState>,
        node_type: Option<&str>,
        page_size: usize,
    ) -> Result<WorkflowPage, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let limit = fetch_limit(page_size);
        let workflows =
            store::list_workflows(&mut transaction, tenant, after, state, node_type, limit).await?;
        transaction.commit().await?;
        let (workflows, next) = split_page(workflows, page_size, |workflow| {
            (workflow.updated_at, workflow.id)
        });
        Ok(WorkflowPage { workflows, next })
    }

    /// Applies `changes`; a changed definition becomes a new version (the active version does
    /// not change).
    #[tracing::instrument(skip_all)]
    pub async fn update(
        &self,
        context: &RequestContext,
        id: WorkflowId,
        changes: WorkflowChanges,
    ) -> Result<Workflow, Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut workflow = load(&mut transaction, tenant, id, true).await?;
        check_etag(&workflow, changes.expected_version)?;
        let mut changed = Vec::new();
        if let Some(display_name) = changes
            .display_name
            .filter(|display_name| *display_name != workflow.display_name)
        {
            workflow.display_name = display_name;
            changed.push("display_name");
        }
        if let Some(description) = changes
            .description
            .filter(|description| *description != workflow.description)
        {
            workflow.description = description;
            changed.push("description");
        }
        if let Some(definition) = changes
            .definition
            .filter(|definition| *definition != workflow.definition)
        {
            check_credentials(&mut transaction, tenant, &definition).await?;
            if workflow.state == WorkflowState::Active
                && workflow.active_version == workflow.latest_version
            {
                workflow.active_definition = Some(workflow.definition.clone());
            }
            workflow.definition = definition;
            workflow.latest_version += 1;
            let version = WorkflowVersion {
                workflow_id: workflow.id,
                version: workflow.latest_version,
                definition: workflow.definition.clone(),
                creator: context.principal_name(),
                created_at: Utc::now().trunc_subsecs(6),
            };
            store::insert_version(&mut transaction, tenant, &version).await?;
            changed.push("definition");
        }
        if changed.is_empty() {
            transaction.commit().await?;
            return Ok(workflow);
        }
        (workflow.version, workflow.updated_at) =
            store::update_workflow(&mut transaction, &workflow).await?;
        let details = json!({"changed": changed, "latest_version": workflow.latest_version});
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "update",
                name(id),
                details,
            )
            .await?;
        transaction.commit().await?;
        Ok(workflow)
    }

    /// Deletes an inactive workflow with its versions.
    #[tracing::instrument(skip_all)]
    pub async fn delete(
        &self,
        context: &RequestContext,
        id: WorkflowId,
        expected_version: Option<i64>,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let workflow = load(&mut transaction, tenant, id, true).await?;
        check_etag(&workflow, expected_version)?;
        if workflow.state == WorkflowState::Active {
            return Err(Error::WorkflowActive);
        }
        store::delete_workflow(&mut transaction, tenant, id).await?;
        let details = json!({"display_name": workflow.display_name});
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "delete",
                name(id),
                details,
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Activates `version` (the latest when `None`): from now on its triggers fire. The
    /// credentials it names must still exist and fit.
    #[tracing::instrument(skip_all)]
    pub async fn activate(
        &self,
        context: &RequestContext,
        id: WorkflowId,
        version: Option<i32>,
    ) -> Result<Workflow, Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut workflow = load(&mut transaction, tenant, id, true).await?;
        let version = version.unwrap_or(workflow.latest_version);
        if workflow.state == WorkflowState::Active && workflow.active_version == version {
            transaction.commit().await?;
            return Ok(workflow);
        }
        let activated = store::get_version(&mut transaction, tenant, id, version)
            .await?
            .ok_or_else(|| Error::VersionNotFound(format!("{}/versions/{version}", name(id))))?;
        if let Some((node, reason)) =
            credential_problems(&mut transaction, tenant, &activated.definition)
                .await?
                .into_iter()
                .next()
        {
            return Err(Error::CredentialUnusable {
                version,
                node: activated.definition.nodes[node].id.clone(),
                reason,
            });
        }
        workflow.state = WorkflowState::Active;
        workflow.active_version = version;
        workflow.active_definition =
            (version != workflow.latest_version).then_some(activated.definition);
        (workflow.version, workflow.updated_at) =
            store::update_workflow(&mut transaction, &workflow).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "activate",
                name(id),
                json!({"version": version}),
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(workflow_id = %id, version, "workflow activated");
        Ok(workflow)
    }

    /// Deactivates a workflow: its triggers stop firing.
    #[tracing::instrument(skip_all)]
    pub async fn deactivate(
        &self,
        context: &RequestContext,
        id: WorkflowId,
    ) -> Result<Workflow, Error> {
        let tenant = context.authorize(Permission::WorkflowsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut workflow = load(&mut transaction, tenant, id, true).await?;
        if workflow.state == WorkflowState::Inactive {
            transaction.commit().await?;
            return Ok(workflow);
        }
        let previous = workflow.active_version;
        workflow.state = WorkflowState::Inactive;
        workflow.active_version = 0;
        workflow.active_definition = None;
        (workflow.version, workflow.updated_at) =
            store::update_workflow(&mut transaction, &workflow).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "deactivate",
                name(id),
                json!({"version": previous}),
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(workflow_id = %id, "workflow deactivated");
        Ok(workflow)
    }

    /// One page of a workflow's versions, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn list_versions(
        &self,
        context: &RequestContext,
        id: WorkflowId,
        before: Option<i32>,
        page_size: usize,
    ) -> Result<VersionPage, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        load(&mut transaction, tenant, id, false).await?;
        let limit = fetch_limit(page_size);
        let versions = store::list_versions(&mut transaction, tenant, id, before, limit).await?;
        transaction.commit().await?;
        let (versions, next) = split_page(versions, page_size, |version| version.version);
        Ok(VersionPage { versions, next })
    }

    /// Reads a version.
    #[tracing::instrument(skip_all)]
    pub async fn get_version(
        &self,
        context: &RequestContext,
        id: WorkflowId,
        version: i32,
    ) -> Result<WorkflowVersion, Error> {
        let tenant = context.authorize(Permission::WorkflowsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        load(&mut transaction, tenant, id, false).await?;
        let found = store::get_version(&mut transaction, tenant, id, version)
            .await?
            .ok_or_else(|| Error::VersionNotFound(format!("{}/versions/{version}", name(id))))?;
        transaction.commit().await?;
        Ok(found)
    }

    /// Checks that the caller may read the node types (any member of the tenant).
    pub fn authorize_node_types(&self, context: &RequestContext) -> Result<(), Error> {
        context.authorize(Permission::WorkflowsRead)?;
        Ok(())
    }
}

fn first_version(workflow: &Workflow) -> WorkflowVersion {
    WorkflowVersion {
        workflow_id: workflow.id,
        version: 1,
        definition: workflow.definition.clone(),
        creator: workflow.creator.clone(),
        created_at: workflow.created_at,
    }
}

/// The workflow `id` of `tenant`, or WORKFLOW_NOT_FOUND.
pub(super) async fn load(
    transaction: &mut PgConnection,
    tenant: TenantId,
    id: WorkflowId,
    for_update: bool,
) -> Result<Workflow, Error> {
    store::get_workflow(transaction, tenant, id, for_update)
        .await?
        .ok_or_else(|| Error::WorkflowNotFound(name(id)))
}

fn check_etag(workflow: &Workflow, expected_version: Option<i64>) -> Result<(), Error> {
    if expected_version.is_some_and(|expected| expected != workflow.version) {
        return Err(CommonError::EtagMismatch("workflow").into());
    }
    Ok(())
}

/// The resource name of workflow `id`.
pub(super) fn name(id: WorkflowId) -> String {
    format!("workflows/{id}")
}
