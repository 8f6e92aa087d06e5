//! SQL of the ai schema: one function per query. Callers pass the transaction, which decides
//! whose rows row-level security shows (`Db::tenant_tx`); every query also names the tenant.
//! Stored rows were validated on the way in; a row that fails to become a domain type is
//! corrupt, an error.

mod analysis;
mod batch;

pub use analysis::*;
pub use batch::*;

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Classification, ClassificationId, Example, ExampleId, Label, LabelSet, LabelSetId, Method,
    Score, TicketTriage,
};
use crate::triage::TicketField;

struct LabelSetRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: String,
    description: String,
    labels: Value,
    version: i64,
    example_count: i64,
    ticket_field: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<LabelSetRow> for LabelSet {
    type Error = anyhow::Error;

    fn try_from(row: LabelSetRow) -> anyhow::Result<LabelSet> {
        Ok(LabelSet {
            id: LabelSetId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            display_name: row.display_name,
            description: row.description,
            labels: serde_json::from_value(row.labels).context("stored labels")?,
            version: row.version,
            example_count: row.example_count,
            ticket_field: row
                .ticket_field
                .map(|field| TicketField::parse(&field).context("stored ticket field"))
                .transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn labels_json(labels: &[Label]) -> Value {
    serde_json::to_value(labels).expect("labels serialise")
}

/// What another label set of the tenant already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The display name.
    DisplayName,
    /// The ticket field.
    TicketField,
}

/// The unique constraint a failed write ran into, if that is why it failed.
fn taken(
    result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>,
) -> anyhow::Result<Result<(), Taken>> {
    match result {
        Ok(_) => Ok(Ok(())),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            match error.constraint() {
                Some("label_sets_tenant_id_display_name_key") => Ok(Err(Taken::DisplayName)),
                Some("label_sets_ticket_field") => Ok(Err(Taken::TicketField)),
                _ => Err(sqlx::Error::Database(error).into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// Inserts a label set, unless another of the tenant has its display name or ticket field.
pub async fn insert_label_set(
    connection: &mut PgConnection,
    set: &LabelSet,
) -> anyhow::Result<Result<(), Taken>> {
    taken(
        sqlx::query!(
            "INSERT INTO ai.label_sets (id, tenant_id, display_name, description, labels, \
                 version, ticket_field, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            set.id.as_uuid(),
            set.tenant_id.as_uuid(),
            set.display_name,
            set.description,
            labels_json(&set.labels),
            set.version,
            set.ticket_field.map(TicketField::as_str),
            set.created_at,
            set.updated_at,
        )
        .execute(connection)
        .await,
    )
}

/// The version of a label set of `tenant`, read without a lock.
pub async fn label_set_version(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: LabelSetId,
) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query_scalar!(
        "SELECT version FROM ai.label_sets WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?)
}

/// A label set of `tenant`, locked as `lock` says until the transaction ends (writers of the
/// set and of its examples take [`Lock::Update`]).
pub async fn find_label_set(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: LabelSetId,
    lock: Lock,
) -> anyhow::Result<Option<LabelSet>> {
    let row =
        match lock {
            Lock::Share => sqlx::query_as!(
                LabelSetRow,
                r#"SELECT id, tenant_id, display_name, description, labels, version, ticket_field,
                   created_at, updated_at,
                   (SELECT count(*) FROM ai.label_examples e
                     WHERE e.tenant_id = s.tenant_id AND e.label_set_id = s.id) AS "example_count!"
               FROM ai.label_sets s WHERE tenant_id = $1 AND id = $2 FOR SHARE"#,
                tenant.as_uuid(),
                id.as_uuid(),
            )
            .fetch_optional(&mut *connection)
            .await?,
            Lock::Update => sqlx::query_as!(
                LabelSetRow,
                r#"SELECT id, tenant_id, display_name, description, labels, version, ticket_field,
                   created_at, updated_at,
                   (SELECT count(*) FROM ai.label_examples e
                     WHERE e.tenant_id = s.tenant_id AND e.label_set_id = s.id) AS "example_count!"
               FROM ai.label_sets s WHERE tenant_id = $1 AND id = $2 FOR UPDATE"#,
                tenant.as_uuid(),
                id.as_uuid(),
            )
            .fetch_optional(&mut *connection)
            .await?,
        };
    row.map(LabelSet::try_from).transpose()
}

/// The label sets of `tenant` that stand for a ticket field, and `also` when given, locked
/// against writers until the transaction ends (so that their examples match their versions).
pub async fn find_ticket_label_sets(
    connection: &mut PgConnection,
    tenant: TenantId,
    also: Option<LabelSetId>,
) -> anyhow::Result<Vec<LabelSet>> {
    sqlx::query_as!(
        LabelSetRow,
        r#"SELECT id, tenant_id, display_name, description, labels, version, ticket_field,
               created_at, updated_at,
               (SELECT count(*) FROM ai.label_examples e
                 WHERE e.tenant_id = s.tenant_id AND e.label_set_id = s.id) AS "example_count!"
           FROM ai.label_sets s
           WHERE tenant_id = $1 AND (ticket_field IS NOT NULL OR id = $2) FOR SHARE"#,
        tenant.as_uuid(),
        also.map(|id| id.as_uuid()),
    )
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(LabelSet::try_from)
    .collect()
}

/// How [`find_label_set`] locks the row it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Against writers (who take [`Lock::Update`]): what it says holds until the transaction
    /// ends, its examples included.
    Share,
    /// Against writers and sharers.
    Update,
}

/// Up to `limit` label sets of `tenant` by display name, after `after`.
pub async fn list_label_sets(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<LabelSet>> {
    sqlx::query_as!(
        LabelSetRow,
        r#"SELECT id, tenant_id, display_name, description, labels, version, ticket_field,
               created_at, updated_at,
               (SELECT count(*) FROM ai.label_examples e
                 WHERE e.tenant_id = s.tenant_id AND e.label_set_id = s.id) AS "example_count!"
           FROM ai.label_sets s
           WHERE tenant_id = $1 AND ($2::text IS NULL OR display_name > $2)
           ORDER BY display_name LIMIT $3"#,
        tenant.as_uuid(),
        after,
        limit,
    )
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(LabelSet::try_from)
    .collect()
}

/// Stores a label set's changed fields and version, unless another of the tenant has its
/// new display name or ticket field.
pub async fn update_label_set(
    connection: &mut PgConnection,
    set: &LabelSet,
) -> anyhow::Result<Result<(), Taken>> {
    taken(
        sqlx::query!(
            "UPDATE ai.label_sets SET display_name = $3, description = $4, labels = $5, \
                 version = $6, ticket_field = $7, updated_at = $8 \
             WHERE tenant_id = $1 AND id = $2",
            set.tenant_id.as_uuid(),
            set.id.as_uuid(),
            set.display_name,
            set.description,
            labels_json(&set.labels),
            set.version,
            set.ticket_field.map(TicketField::as_str),
            set.updated_at,
        )
        .execute(connection)
        .await,
    )
}

/// Makes a label set's version the next one (its examples changed).
pub async fn bump_label_set_version(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: LabelSetId,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE ai.label_sets SET version = version + 1, updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
        now,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes a label set and its examples; `false` when there was none.
pub async fn delete_label_set(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: LabelSetId,
) -> anyhow::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM ai.label_sets WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Deletes the examples of a label set whose label is not in `labels`; answers how many.
pub async fn delete_examples_outside(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: LabelSetId,
    labels: &[String],
) -> anyhow::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM ai.label_examples \
         WHERE tenant_id = $1 AND label_set_id = $2 AND NOT (label = ANY($3))",
        tenant.as_uuid(),
        id.as_uuid(),
        labels,
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}

/// An example to store, with its text's embedding.
#[derive(Debug)]
pub struct NewExample<'a> {
    /// The example.
    pub example: &'a Example,
    /// The model (`{id}@{version}`) that embedded its text.
    pub embedding_model: &'a str,
    /// The embedding.
    pub embedding: &'a [f32],
}

/// Stores an example; a correction replaces the earlier correction of its classification.
pub async fn upsert_example(
    connection: &mut PgConnection,
    tenant: TenantId,
    new: NewExample<'_>,
) -> anyhow::Result<Example> {
    let example = new.example;
    let row = sqlx::query!(
        "INSERT INTO ai.label_examples (id, tenant_id, label_set_id, label, text, \
             classification_id, embedding_model, embedding, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, classification_id) DO UPDATE \
             SET label = excluded.label, created_at = excluded.created_at \
         RETURNING id, created_at",
        example.id.as_uuid(),
        tenant.as_uuid(),
        example.label_set_id.as_uuid(),
        example.label,
        example.text,
        example.classification_id.map(|id| id.as_uuid()),
        new.embedding_model,
        new.embedding,
        example.created_at,
    )
    .fetch_one(connection)
    .await?;
    Ok(Example {
        id: ExampleId::from(row.id),
        created_at: row.created_at,
        ..example.clone()
    })
}

/// Up to `limit` examples of a label set (of `label` only, when given), oldest first, after
/// the example `after`.
pub async fn list_examples(
    connection: &mut PgConnection,
    tenant: TenantId,
    label_set: LabelSetId,
    label: Option<&str>,
    after: Option<ExampleId>,
    limit: i64,
) -> anyhow::Result<Vec<Example>> {
    let rows = sqlx::query!(
        "SELECT id, label_set_id, label, text, classification_id, created_at \
         FROM ai.label_examples \
         WHERE tenant_id = $1 AND label_set_id = $2 AND ($3::text IS NULL OR label = $3) \
           AND ($4::uuid IS NULL OR id > $4) \
         ORDER BY id LIMIT $5",
        tenant.as_uuid(),
        label_set.as_uuid(),
        label,
        after.map(|id| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Example {
            id: ExampleId::from(row.id),
            label_set_id: LabelSetId::from(row.label_set_id),
            label: row.label,
            text: row.text,
            classification_id: row.classification_id.map(ClassificationId::from),
            created_at: row.created_at,
        })
        .collect())
}

/// An example as prototypes read it.
#[derive(Debug)]
pub struct ExampleVector {
    /// Its label.
    pub label: String,
    /// Its text.
    pub text: String,
    /// Its embedding, when the model asked for computed it.
    pub embedding: Option<Vec<f32>>,
}

/// Every example of a label set, with its embedding when `model` (`{id}@{version}`) computed
/// it.
pub async fn example_vectors(
    connection: &mut PgConnection,
    tenant: TenantId,
    label_set: LabelSetId,
    model: &str,
) -> anyhow::Result<Vec<ExampleVector>> {
    let rows = sqlx::query!(
        "SELECT label, text, embedding_model, embedding FROM ai.label_examples \
         WHERE tenant_id = $1 AND label_set_id = $2 ORDER BY id",
        tenant.as_uuid(),
        label_set.as_uuid(),
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ExampleVector {
            label: row.label,
            text: row.text,
            embedding: (row.embedding_model == model).then_some(row.embedding),
        })
        .collect())
}

/// Deletes an example of a label set; `false` when there was none.
pub async fn delete_example(
    connection: &mut PgConnection,
    tenant: TenantId,
    label_set: LabelSetId,
    id: ExampleId,
) -> anyhow::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM ai.label_examples WHERE tenant_id = $1 AND label_set_id = $2 AND id = $3",
        tenant.as_uuid(),
        label_set.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

struct ClassificationRow {
    id: Uuid,
    model: String,
    model_version: String,
    source: String,
    content_hash: String,
    cached: bool,
    inference_micros: i64,
    text: String,
    truncated: bool,
    label_set_id: Option<Uuid>,
    label_set_version: Option<i64>,
    method: String,
    scores: Value,
    corrected_label: Option<String>,
    ticket: Option<Value>,
    created_at: DateTime<Utc>,
}

impl TryFrom<ClassificationRow> for Classification {
    type Error = anyhow::Error;

    fn try_from(row: ClassificationRow) -> anyhow::Result<Classification> {
        let scores: Vec<Score> = serde_json::from_value(row.scores).context("stored scores")?;
        Ok(Classification {
            id: ClassificationId::from(row.id),
            model: row.model,
            model_version: row.model_version,
            source: row.source,
            content_hash: row.content_hash,
            cached: row.cached,
            inference: std::time::Duration::from_micros(
                u64::try_from(row.inference_micros).unwrap_or_default(),
            ),
            text: row.text,
            truncated: row.truncated,
            label_set: row
                .label_set_id
                .map(LabelSetId::from)
                .zip(row.label_set_version),
            scores,
            method: Method::parse(&row.method).context("stored method")?,
            corrected_label: row.corrected_label,
            ticket: row
                .ticket
                .map(serde_json::from_value::<TicketTriage>)
                .transpose()
                .context("stored ticket triage")?,
            created_at: row.created_at,
        })
    }
}

/// Stores a classification.
pub async fn insert_classification(
    connection: &mut PgConnection,
    tenant: TenantId,
    classification: &Classification,
) -> anyhow::Result<()> {
    let (label_set_id, label_set_version) = classification.label_set.unzip();
    sqlx::query!(
        "INSERT INTO ai.classifications (id, tenant_id, model, model_version, source, \
             content_hash, cached, inference_micros, text, truncated, label_set_id, \
             label_set_version, method, scores, ticket, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        classification.id.as_uuid(),
        tenant.as_uuid(),
        classification.model,
        classification.model_version,
        classification.source,
        classification.content_hash,
        classification.cached,
        i64::try_from(classification.inference.as_micros()).unwrap_or(i64::MAX),
        classification.text,
        classification.truncated,
        label_set_id.map(|id| id.as_uuid()),
        label_set_version,
        classification.method.as_str(),
        serde_json::to_value(&classification.scores)?,
        classification
            .ticket
            .as_ref()
            .map(serde_json::to_value)
            .transpose()?,
        classification.created_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// A classification of `tenant`, locked against other corrections when `for_update`.
pub async fn find_classification(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ClassificationId,
    for_update: bool,
) -> anyhow::Result<Option<Classification>> {
    if !for_update {
        return Ok(find_classifications(connection, tenant, &[id.as_uuid()])
            .await?
            .pop());
    }
    sqlx::query_as!(
        ClassificationRow,
        "SELECT id, model, model_version, source, content_hash, cached, inference_micros, \
             text, truncated, label_set_id, label_set_version, method, scores, corrected_label, \
             ticket, created_at \
         FROM ai.classifications WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?
    .map(Classification::try_from)
    .transpose()
}

/// The classifications of `tenant` with these ids, in no order, in one query.
pub async fn find_classifications(
    connection: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> anyhow::Result<Vec<Classification>> {
    sqlx::query_as!(
        ClassificationRow,
        "SELECT id, model, model_version, source, content_hash, cached, inference_micros, \
             text, truncated, label_set_id, label_set_version, method, scores, corrected_label, \
             ticket, created_at \
         FROM ai.classifications WHERE tenant_id = $1 AND id = ANY($2)",
        tenant.as_uuid(),
        ids,
    )
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Classification::try_from)
    .collect()
}

/// What ListClassifications keeps.
#[derive(Debug, Default)]
pub struct ClassificationFilter {
    /// Only against this label set.
    pub label_set: Option<LabelSetId>,
    /// Only of texts from this source.
    pub source: Option<String>,
}

/// Up to `limit` classifications of `tenant` that `filter` keeps, newest first, before the
/// position `before` (creation time and id).
pub async fn list_classifications(
    connection: &mut PgConnection,
    tenant: TenantId,
    filter: &ClassificationFilter,
    before: Option<(DateTime<Utc>, ClassificationId)>,
    limit: i64,
) -> anyhow::Result<Vec<Classification>> {
    let (before_time, before_id) = before.unzip();
    sqlx::query_as!(
        ClassificationRow,
        "SELECT id, model, model_version, source, content_hash, cached, inference_micros, \
             text, truncated, label_set_id, label_set_version, method, scores, corrected_label, \
                 ticket, \
             created_at \
         FROM ai.classifications \
         WHERE tenant_id = $1 \
           AND ($2::uuid IS NULL OR label_set_id = $2) \
           AND ($3::text IS NULL OR source = $3) \
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6",
        tenant.as_uuid(),
        filter.label_set.map(|id| id.as_uuid()),
        filter.source.as_deref(),
        before_time,
        before_id.map(|id| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?
    .into_iter()
    .map(Classification::try_from)
    .collect()
}

/// Records the label a user gave a classification instead of its own.
pub async fn set_corrected_label(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ClassificationId,
    label: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE ai.classifications SET corrected_label = $3 WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
        label,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes the analysis of the submission `source`, the classifications whose source it is,
/// the examples their corrections made (their label sets take a new version), and the text of
/// batch items from it (their results say they were erased); answers how many rows changed
/// and the label sets changed.
pub async fn erase_source(
    connection: &mut PgConnection,
    tenant: TenantId,
    source: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(u64, Vec<LabelSetId>)> {
    let label_sets: Vec<Uuid> = sqlx::query_scalar!(
        "WITH gone AS (DELETE FROM ai.label_examples e USING ai.classifications c \
             WHERE e.tenant_id = $1 AND c.tenant_id = $1 AND e.classification_id = c.id \
               AND c.source = $2 \
             RETURNING e.label_set_id) \
         UPDATE ai.label_sets SET version = version + 1, updated_at = $3 \
         WHERE tenant_id = $1 AND id IN (SELECT label_set_id FROM gone) RETURNING id",
        tenant.as_uuid(),
        source,
        now,
    )
    .fetch_all(&mut *connection)
    .await?;
    let analyses = sqlx::query!(
        "DELETE FROM ai.submission_analyses WHERE tenant_id = $1 AND submission = $2",
        tenant.as_uuid(),
        source,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    let classifications = sqlx::query!(
        "DELETE FROM ai.classifications WHERE tenant_id = $1 AND source = $2",
        tenant.as_uuid(),
        source,
    )
    .execute(&mut *connection)
    .await?
    .rows_affected();
    let items = sqlx::query!(
        "UPDATE ai.batch_items SET text = '', subject = '', \
             result = CASE WHEN result IS NULL THEN NULL \
                 ELSE jsonb_build_object('item_id', item_id, \
                     'error', 'erased: the submission it came from was deleted') END \
         WHERE tenant_id = $1 AND source = $2 AND text <> ''",
        tenant.as_uuid(),
        source,
    )
    .execute(connection)
    .await?
    .rows_affected();
    Ok((
        analyses + classifications + items + label_sets.len() as u64,
        label_sets.into_iter().map(LabelSetId::from).collect(),
    ))
}
