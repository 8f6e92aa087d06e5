//! SQL of the workflow schema: one function per query. Callers pass the transaction, which
//! decides whose rows row-level security shows (`Db::tenant_tx`); every query also names the
//! tenant. Stored rows were validated on the way in; a row that fails to become a domain type
//! is corrupt, an error.

mod executions;

pub use executions::*;

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Credential, CredentialId, CredentialType, Definition, Workflow, WorkflowId, WorkflowState,
    WorkflowVersion,
};

struct WorkflowRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: String,
    description: String,
    latest_version: i32,
    state: String,
    active_version: i32,
    creator: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    definition: Value,
    active_definition: Option<Value>,
}

impl TryFrom<WorkflowRow> for Workflow {
    type Error = anyhow::Error;

    fn try_from(row: WorkflowRow) -> anyhow::Result<Workflow> {
        Ok(Workflow {
            id: WorkflowId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            display_name: row.display_name,
            description: row.description,
            definition: definition(row.definition)?,
            latest_version: row.latest_version,
            state: WorkflowState::parse(&row.state).context("stored workflow state")?,
            active_version: row.active_version,
            active_definition: row.active_definition.map(definition).transpose()?,
            creator: row.creator,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn definition(stored: Value) -> anyhow::Result<Definition> {
    serde_json::from_value(stored).context("stored definition")
}

/// Inserts a new workflow; its first version follows with [`insert_version`].
pub async fn insert_workflow(
    connection: &mut PgConnection,
    workflow: &Workflow,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO workflow.workflows (id, tenant_id, display_name, description, latest_version, state, \
             active_version, creator, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        workflow.id.as_uuid(),
        workflow.tenant_id.as_uuid(),
        workflow.display_name,
        workflow.description,
        workflow.latest_version,
        workflow.state.as_str(),
        workflow.active_version,
        workflow.creator,
        workflow.version,
        workflow.created_at,
        workflow.updated_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Inserts a version of a workflow of `tenant`.
pub async fn insert_version(
    connection: &mut PgConnection,
    tenant: TenantId,
    version: &WorkflowVersion,
) -> anyhow::Result<()> {
    let credentials: Vec<Uuid> = version
        .definition
        .credential_refs()
        .iter()
        .map(|reference| reference.id.as_uuid())
        .collect();
    sqlx::query!(
        "INSERT INTO workflow.workflow_versions (tenant_id, workflow_id, version, definition, node_types, \
             credentials, creator, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        tenant.as_uuid(),
        version.workflow_id.as_uuid(),
        version.version,
        serde_json::to_value(&version.definition).context("serialising a definition")?,
        &version.definition.node_types(),
        &credentials,
        version.creator,
        version.created_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The workflow `id` of `tenant` with its latest and active definitions, its row locked for
/// update when `for_update`.
pub async fn get_workflow(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WorkflowId,
    for_update: bool,
) -> anyhow::Result<Option<Workflow>> {
    let row = if for_update {
        sqlx::query_as!(
            WorkflowRow,
            r#"SELECT w.id, w.tenant_id, w.display_name, w.description, w.latest_version, w.state, w.active_version,
                      w.creator, w.version, w.created_at, w.updated_at, latest.definition,
                      active.definition AS "active_definition?"
               FROM workflow.workflows w
               JOIN workflow.workflow_versions latest
                 ON latest.tenant_id = w.tenant_id AND latest.workflow_id = w.id AND latest.version = w.latest_version
               LEFT JOIN workflow.workflow_versions active
                 ON active.tenant_id = w.tenant_id AND active.workflow_id = w.id AND active.version = w.active_version
                AND w.active_version <> w.latest_version
               WHERE w.tenant_id = $1 AND w.id = $2 FOR UPDATE OF w"#,
            tenant.as_uuid(),
            id.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            WorkflowRow,
            r#"SELECT w.id, w.tenant_id, w.display_name, w.description, w.latest_version, w.state, w.active_version,
                      w.creator, w.version, w.created_at, w.updated_at, latest.definition,
                      active.definition AS "active_definition?"
               FROM workflow.workflows w
               JOIN workflow.workflow_versions latest
                 ON latest.tenant_id = w.tenant_id AND latest.workflow_id = w.id AND latest.version = w.latest_version
               LEFT JOIN workflow.workflow_versions active
                 ON active.tenant_id = w.tenant_id AND active.workflow_id = w.id AND active.version = w.active_version
                AND w.active_version <> w.latest_version
               WHERE w.tenant_id = $1 AND w.id = $2"#,
            tenant.as_uuid(),
            id.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(Workflow::try_from).transpose()
}

/// Where a page of workflows starts: after this update time and id.
pub type WorkflowPosition = (DateTime<Utc>, WorkflowId);

/// One page of `tenant`'s workflows, most recently updated first, after `after`: in `state`
/// if given; whose latest or active version has a node of `node_type`, if given.
pub async fn list_workflows(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<WorkflowPosition>,
    state: Option<WorkflowState>,
    node_type: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Workflow>> {
    let (after_time, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        WorkflowRow,
        r#"SELECT w.id, w.tenant_id, w.display_name, w.description, w.latest_version, w.state, w.active_version,
                  w.creator, w.version, w.created_at, w.updated_at, latest.definition,
                  active.definition AS "active_definition?"
           FROM workflow.workflows w
           JOIN workflow.workflow_versions latest
             ON latest.tenant_id = w.tenant_id AND latest.workflow_id = w.id AND latest.version = w.latest_version
           LEFT JOIN workflow.workflow_versions active
             ON active.tenant_id = w.tenant_id AND active.workflow_id = w.id AND active.version = w.active_version
            AND w.active_version <> w.latest_version
           WHERE w.tenant_id = $1
             AND ($2::timestamptz IS NULL OR (w.updated_at, w.id) < ($2, $3))
             AND ($4::text IS NULL OR w.state = $4)
             AND ($5::text IS NULL OR $5 = ANY(latest.node_types) OR $5 = ANY(active.node_types))
           ORDER BY w.updated_at DESC, w.id DESC LIMIT $6"#,
        tenant.as_uuid(),
        after_time,
        after_id.map(|id| id.as_uuid()),
        state.map(WorkflowState::as_str),
        node_type,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Workflow::try_from).collect()
}

/// Writes what may change of `workflow` (name, description, versions, state) and bumps its
/// row version; the new row version and update time.
pub async fn update_workflow(
    connection: &mut PgConnection,
    workflow: &Workflow,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let row = sqlx::query!(
        "UPDATE workflow.workflows SET display_name = $3, description = $4, latest_version = $5, state = $6, \
             active_version = $7, version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at",
        workflow.tenant_id.as_uuid(),
        workflow.id.as_uuid(),
        workflow.display_name,
        workflow.description,
        workflow.latest_version,
        workflow.state.as_str(),
        workflow.active_version,
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}

/// Deletes a workflow with its versions.
pub async fn delete_workflow(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WorkflowId,
) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM workflow.workflows WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

struct VersionRow {
    workflow_id: Uuid,
    version: i32,
    definition: Value,
    creator: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<VersionRow> for WorkflowVersion {
    type Error = anyhow::Error;

    fn try_from(row: VersionRow) -> anyhow::Result<WorkflowVersion> {
        Ok(WorkflowVersion {
            workflow_id: WorkflowId::from(row.workflow_id),
            version: row.version,
            definition: definition(row.definition)?,
            creator: row.creator,
            created_at: row.created_at,
        })
    }
}

/// Version `version` of workflow `workflow` of `tenant`.
pub async fn get_version(
    connection: &mut PgConnection,
    tenant: TenantId,
    workflow: WorkflowId,
    version: i32,
) -> anyhow::Result<Option<WorkflowVersion>> {
    let row = sqlx::query_as!(
        VersionRow,
        "SELECT workflow_id, version, definition, creator, created_at FROM workflow.workflow_versions \
         WHERE tenant_id = $1 AND workflow_id = $2 AND version = $3",
        tenant.as_uuid(),
        workflow.as_uuid(),
        version,
    )
    .fetch_optional(connection)
    .await?;
    row.map(WorkflowVersion::try_from).transpose()
}

/// One page of a workflow's versions, newest first, before version `before`.
pub async fn list_versions(
    connection: &mut PgConnection,
    tenant: TenantId,
    workflow: WorkflowId,
    before: Option<i32>,
    limit: i64,
) -> anyhow::Result<Vec<WorkflowVersion>> {
    let rows = sqlx::query_as!(
        VersionRow,
        "SELECT workflow_id, version, definition, creator, created_at FROM workflow.workflow_versions \
         WHERE tenant_id = $1 AND workflow_id = $2 AND ($3::integer IS NULL OR version < $3) \
         ORDER BY version DESC LIMIT $4",
        tenant.as_uuid(),
        workflow.as_uuid(),
        before,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(WorkflowVersion::try_from).collect()
}

struct CredentialRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: String,
    r#type: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<CredentialRow> for Credential {
    type Error = anyhow::Error;

    fn try_from(row: CredentialRow) -> anyhow::Result<Credential> {
        Ok(Credential {
            id: CredentialId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            display_name: row.display_name,
            kind: CredentialType::parse(&row.r#type).context("stored credential type")?,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Whether `error` is a unique constraint's refusal.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|database| database.is_unique_violation())
}

/// Inserts a credential with its sealed value; `false` when its display name is taken in its
/// tenant.
pub async fn insert_credential(
    connection: &mut PgConnection,
    credential: &Credential,
    sealed_value: &[u8],
) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO workflow.credentials (id, tenant_id, display_name, type, sealed_value, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, display_name) DO NOTHING",
        credential.id.as_uuid(),
        credential.tenant_id.as_uuid(),
        credential.display_name,
        credential.kind.as_str(),
        sealed_value,
        credential.version,
        credential.created_at,
        credential.updated_at,
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The credential `id` of `tenant`, without its value; its row locked when `for_update`.
pub async fn get_credential(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: CredentialId,
    for_update: bool,
) -> anyhow::Result<Option<Credential>> {
    let row = if for_update {
        sqlx::query_as!(
            CredentialRow,
            "SELECT id, tenant_id, display_name, type, version, created_at, updated_at FROM workflow.credentials \
             WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            tenant.as_uuid(),
            id.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            CredentialRow,
            "SELECT id, tenant_id, display_name, type, version, created_at, updated_at FROM workflow.credentials \
             WHERE tenant_id = $1 AND id = $2",
            tenant.as_uuid(),
            id.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(Credential::try_from).transpose()
}

/// The type and sealed value of credential `id` of `tenant`, for a node to use.
pub async fn get_sealed_credential(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: CredentialId,
) -> anyhow::Result<Option<(CredentialType, Vec<u8>)>> {
    let row = sqlx::query!(
        "SELECT type, sealed_value FROM workflow.credentials WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        let kind = CredentialType::parse(&row.r#type).context("stored credential type")?;
        Ok((kind, row.sealed_value))
    })
    .transpose()
}

/// The sealed secrets of WEBHOOK_SECRET credential `id` of `tenant`: its value, and its
/// previous one while the rotation overlap lasts; `None` unless it is such a credential.
pub async fn get_webhook_secrets(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: CredentialId,
) -> anyhow::Result<Option<(Vec<u8>, Option<Vec<u8>>)>> {
    let row = sqlx::query!(
        r#"SELECT sealed_value,
                  CASE WHEN previous_valid_until > now() THEN previous_sealed_value END AS previous
           FROM workflow.credentials WHERE tenant_id = $1 AND id = $2 AND type = 'webhook_secret'"#,
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| (row.sealed_value, row.previous)))
}

/// The credentials of `tenant` among `ids`, without their values.
pub async fn get_credentials(
    connection: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> anyhow::Result<Vec<Credential>> {
    let rows = sqlx::query_as!(
        CredentialRow,
        "SELECT id, tenant_id, display_name, type, version, created_at, updated_at FROM workflow.credentials \
         WHERE tenant_id = $1 AND id = ANY($2)",
        tenant.as_uuid(),
        ids,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Credential::try_from).collect()
}

/// Where a page of credentials starts: after this display name and id.
pub type CredentialPosition = (String, CredentialId);

/// One page of `tenant`'s credentials by display name, after `after`, of `kind` if given.
pub async fn list_credentials(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<CredentialPosition>,
    kind: Option<CredentialType>,
    limit: i64,
) -> anyhow::Result<Vec<Credential>> {
    let (after_name, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        CredentialRow,
        "SELECT id, tenant_id, display_name, type, version, created_at, updated_at FROM workflow.credentials \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR (display_name, id) > ($2, $3)) \
           AND ($4::text IS NULL OR type = $4) \
         ORDER BY display_name, id LIMIT $5",
        tenant.as_uuid(),
        after_name,
        after_id.map(|id| id.as_uuid()),
        kind.map(CredentialType::as_str),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Credential::try_from).collect()
}

/// Writes a credential's display name and, when given, its new sealed value, bumping its row
/// version; the new row version and update time, or `None` when the display name is taken.
pub async fn update_credential(
    connection: &mut PgConnection,
    credential: &Credential,
    sealed_value: Option<&[u8]>,
) -> anyhow::Result<Option<(i64, DateTime<Utc>)>> {
    let updated = sqlx::query!(
        "UPDATE workflow.credentials SET display_name = $3, sealed_value = COALESCE($4, sealed_value), \
             previous_sealed_value = CASE WHEN $4::bytea IS NOT NULL AND type = 'webhook_secret' \
                 THEN sealed_value ELSE previous_sealed_value END, \
             previous_valid_until = CASE WHEN $4::bytea IS NOT NULL AND type = 'webhook_secret' \
                 THEN now() + make_interval(secs => $5) ELSE previous_valid_until END, \
             version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at",
        credential.tenant_id.as_uuid(),
        credential.id.as_uuid(),
        credential.display_name,
        sealed_value,
        crate::domain::webhook::ROTATION_OVERLAP.num_seconds() as f64,
    )
    .fetch_one(connection)
    .await;
    match updated {
        Ok(row) => Ok(Some((row.version, row.updated_at))),
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The workflows of `tenant` whose active version uses credential `id`, by display name.
pub async fn workflows_using(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: CredentialId,
) -> anyhow::Result<Vec<(WorkflowId, String)>> {
    let rows = sqlx::query!(
        "SELECT w.id, w.display_name FROM workflow.workflows w \
         JOIN workflow.workflow_versions v \
           ON v.tenant_id = w.tenant_id AND v.workflow_id = w.id AND v.version = w.active_version \
         WHERE w.tenant_id = $1 AND w.state = 'active' AND $2 = ANY(v.credentials) \
         ORDER BY w.display_name",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (WorkflowId::from(row.id), row.display_name))
        .collect())
}

/// Deletes credential `id` of `tenant`.
pub async fn delete_credential(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: CredentialId,
) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM workflow.credentials WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}
