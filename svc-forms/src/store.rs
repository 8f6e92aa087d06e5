//! SQL of the forms schema: one function per query. Callers pass the transaction, which
//! decides whose rows row-level security shows (`Db::tenant_tx`); every query also names the
//! tenant. Stored rows were validated on the way in; a row that fails to become a domain type
//! is corrupt, an error.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Definition, Field, Form, FormId, FormSlug, FormState, FormVersion, Submission, SubmissionId,
    ViewId,
};

/// How a request names a form: by id or by slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormRef {
    /// `forms/{id}`.
    Id(FormId),
    /// `forms/{slug}`.
    Slug(FormSlug),
}

struct FormRow {
    id: Uuid,
    tenant_id: Uuid,
    slug: String,
    title: String,
    description: String,
    fields: Value,
    settings: Value,
    state: String,
    state_before_archive: Option<String>,
    published_version: i32,
    draft_changed: bool,
    creator: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    archived_at: Option<DateTime<Utc>>,
}

impl TryFrom<FormRow> for Form {
    type Error = anyhow::Error;

    fn try_from(row: FormRow) -> anyhow::Result<Form> {
        let state = |text: &str| FormState::parse(text).context("stored form state");
        Ok(Form {
            id: FormId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            slug: FormSlug::parse(&row.slug)
                .map_err(anyhow::Error::msg)
                .context("stored slug")?,
            draft: Definition {
                title: row.title,
                description: row.description,
                fields: fields(row.fields)?,
            },
            settings: serde_json::from_value(row.settings).context("stored settings")?,
            state: state(&row.state)?,
            state_before_archive: row.state_before_archive.as_deref().map(state).transpose()?,
            published_version: row.published_version,
            draft_changed: row.draft_changed,
            creator: row.creator,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            published_at: row.published_at,
            archived_at: row.archived_at,
        })
    }
}

fn fields(stored: Value) -> anyhow::Result<Vec<Field>> {
    serde_json::from_value(stored).context("stored fields")
}

fn to_json<T: serde::Serialize>(value: &T) -> anyhow::Result<Value> {
    serde_json::to_value(value).context("serialising for storage")
}

/// Inserts a new form; `false` when its slug is taken in its tenant.
pub async fn insert_form(connection: &mut PgConnection, form: &Form) -> anyhow::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO forms.forms (id, tenant_id, slug, title, description, fields, settings, state, \
             state_before_archive, published_version, draft_changed, creator, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (tenant_id, slug) DO NOTHING",
        form.id.as_uuid(),
        form.tenant_id.as_uuid(),
        form.slug.as_str(),
        form.draft.title,
        form.draft.description,
        to_json(&form.draft.fields)?,
        to_json(&form.settings)?,
        form.state.as_str(),
        form.state_before_archive.map(FormState::as_str),
        form.published_version,
        form.draft_changed,
        form.creator,
        form.version,
        form.created_at,
        form.updated_at,
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The form `form` names in `tenant`, its row locked for update when `for_update`.
pub async fn get_form(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: &FormRef,
    for_update: bool,
) -> anyhow::Result<Option<Form>> {
    let (id, slug) = match form {
        FormRef::Id(id) => (Some(id.as_uuid()), None),
        FormRef::Slug(slug) => (None, Some(slug.as_str())),
    };
    let row = if for_update {
        sqlx::query_as!(
            FormRow,
            "SELECT id, tenant_id, slug, title, description, fields, settings, state, state_before_archive, \
                    published_version, draft_changed, creator, version, created_at, updated_at, published_at, archived_at \
             FROM forms.forms WHERE tenant_id = $1 AND (id = $2 OR slug = $3) FOR UPDATE",
            tenant.as_uuid(),
            id,
            slug,
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            FormRow,
            "SELECT id, tenant_id, slug, title, description, fields, settings, state, state_before_archive, \
                    published_version, draft_changed, creator, version, created_at, updated_at, published_at, archived_at \
             FROM forms.forms WHERE tenant_id = $1 AND (id = $2 OR slug = $3)",
            tenant.as_uuid(),
            id,
            slug,
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(Form::try_from).transpose()
}

/// Where a page of forms starts: after this update time and id.
pub type FormPosition = (DateTime<Utc>, FormId);

/// One page of `tenant`'s forms, most recently updated first, after `after`: in `state`, or
/// drafts and published forms without one; whose title contains `search`, if given.
pub async fn list_forms(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<FormPosition>,
    state: Option<FormState>,
    search: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Form>> {
    let (after_time, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        FormRow,
        "SELECT id, tenant_id, slug, title, description, fields, settings, state, state_before_archive, \
                published_version, draft_changed, creator, version, created_at, updated_at, published_at, archived_at \
         FROM forms.forms \
         WHERE tenant_id = $1 \
           AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3)) \
           AND (($4::text IS NULL AND state <> 'archived') OR state = $4) \
           AND ($5::text IS NULL OR strpos(lower(title), lower($5)) > 0) \
         ORDER BY updated_at DESC, id DESC LIMIT $6",
        tenant.as_uuid(),
        after_time,
        after_id.map(|id| id.as_uuid()),
        state.map(FormState::as_str),
        search,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Form::try_from).collect()
}

/// Writes what may change of `form` (not its id, tenant, slug, creator or creation) and bumps
/// its version; the new version and update time.
pub async fn update_form(
    connection: &mut PgConnection,
    form: &Form,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let row = sqlx::query!(
        "UPDATE forms.forms SET title = $3, description = $4, fields = $5, settings = $6, state = $7, \
             state_before_archive = $8, published_version = $9, draft_changed = $10, published_at = $11, \
             archived_at = $12, version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at",
        form.tenant_id.as_uuid(),
        form.id.as_uuid(),
        form.draft.title,
        form.draft.description,
        to_json(&form.draft.fields)?,
        to_json(&form.settings)?,
        form.state.as_str(),
        form.state_before_archive.map(FormState::as_str),
        form.published_version,
        form.draft_changed,
        form.published_at,
        form.archived_at,
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}

struct VersionRow {
    form_id: Uuid,
    version: i32,
    title: String,
    description: String,
    fields: Value,
    publisher: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<VersionRow> for FormVersion {
    type Error = anyhow::Error;

    fn try_from(row: VersionRow) -> anyhow::Result<FormVersion> {
        Ok(FormVersion {
            form_id: FormId::from(row.form_id),
            version: row.version,
            definition: Definition {
                title: row.title,
                description: row.description,
                fields: fields(row.fields)?,
            },
            publisher: row.publisher,
            created_at: row.created_at,
        })
    }
}

/// Stores a published version.
pub async fn insert_version(
    connection: &mut PgConnection,
    tenant: TenantId,
    version: &FormVersion,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO forms.form_versions (tenant_id, form_id, version, title, description, fields, publisher, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        tenant.as_uuid(),
        version.form_id.as_uuid(),
        version.version,
        version.definition.title,
        version.definition.description,
        to_json(&version.definition.fields)?,
        version.publisher,
        version.created_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Version `version` of a form.
pub async fn get_version(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    version: i32,
) -> anyhow::Result<Option<FormVersion>> {
    let row = sqlx::query_as!(
        VersionRow,
        "SELECT form_id, version, title, description, fields, publisher, created_at \
         FROM forms.form_versions WHERE tenant_id = $1 AND form_id = $2 AND version = $3",
        tenant.as_uuid(),
        form.as_uuid(),
        version,
    )
    .fetch_optional(connection)
    .await?;
    row.map(FormVersion::try_from).transpose()
}

/// One page of a form's versions, newest first, before version `before`.
pub async fn list_versions(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    before: Option<i32>,
    limit: i64,
) -> anyhow::Result<Vec<FormVersion>> {
    let rows = sqlx::query_as!(
        VersionRow,
        "SELECT form_id, version, title, description, fields, publisher, created_at \
         FROM forms.form_versions \
         WHERE tenant_id = $1 AND form_id = $2 AND ($3::int IS NULL OR version < $3) \
         ORDER BY version DESC LIMIT $4",
        tenant.as_uuid(),
        form.as_uuid(),
        before,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(FormVersion::try_from).collect()
}

struct SubmissionRow {
    id: Uuid,
    form_id: Uuid,
    form_version: i32,
    data: Value,
    submitter: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<SubmissionRow> for Submission {
    type Error = anyhow::Error;

    fn try_from(row: SubmissionRow) -> anyhow::Result<Submission> {
        let Value::Object(data) = row.data else {
            anyhow::bail!("submission {} has non-object data", row.id);
        };
        Ok(Submission {
            id: SubmissionId::from(row.id),
            form_id: FormId::from(row.form_id),
            form_version: row.form_version,
            data,
            submitter: row.submitter,
            created_at: row.created_at,
        })
    }
}

/// Stores a submission.
pub async fn insert_submission(
    connection: &mut PgConnection,
    tenant: TenantId,
    submission: &Submission,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO forms.submissions (id, tenant_id, form_id, form_version, data, submitter, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        submission.id.as_uuid(),
        tenant.as_uuid(),
        submission.form_id.as_uuid(),
        submission.form_version,
        Value::Object(submission.data.clone()),
        submission.submitter,
        submission.created_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// How many submissions a form has.
pub async fn count_submissions(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
) -> sqlx::Result<i64> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM forms.submissions WHERE tenant_id = $1 AND form_id = $2"#,
        tenant.as_uuid(),
        form.as_uuid(),
    )
    .fetch_one(connection)
    .await?;
    Ok(count)
}

/// A submission of a form.
pub async fn get_submission(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    id: SubmissionId,
) -> anyhow::Result<Option<Submission>> {
    let row = sqlx::query_as!(
        SubmissionRow,
        "SELECT id, form_id, form_version, data, submitter, created_at FROM forms.submissions \
         WHERE tenant_id = $1 AND form_id = $2 AND id = $3",
        tenant.as_uuid(),
        form.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Submission::try_from).transpose()
}

/// Deletes a submission of a form; `false` when there was none.
pub async fn delete_submission(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    id: SubmissionId,
) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM forms.submissions WHERE tenant_id = $1 AND form_id = $2 AND id = $3",
        tenant.as_uuid(),
        form.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Which submissions a listing shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubmissionFilter {
    /// Only those to this version.
    pub form_version: Option<i32>,
    /// Only those received at or after this time.
    pub start_time: Option<DateTime<Utc>>,
    /// Only those received before this time.
    pub end_time: Option<DateTime<Utc>>,
    /// Only those whose data contains these answers (`@>`: equal values; for a list, the
    /// listed choices among others).
    pub answers: Map<String, Value>,
}

/// Where a page of submissions starts: after this time and id, in the listing's order.
pub type SubmissionPosition = (DateTime<Utc>, SubmissionId);

/// One page of a form's submissions matching `filter`, newest first (or oldest first when
/// `oldest_first`), after `after`.
pub async fn list_submissions(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    filter: &SubmissionFilter,
    oldest_first: bool,
    after: Option<SubmissionPosition>,
    limit: i64,
) -> anyhow::Result<Vec<Submission>> {
    let (after_time, after_id) = after.unzip();
    let after_id = after_id.map(|id| id.as_uuid());
    let answers = Value::Object(filter.answers.clone());
    let rows = if oldest_first {
        sqlx::query_as!(
            SubmissionRow,
            "SELECT id, form_id, form_version, data, submitter, created_at FROM forms.submissions \
             WHERE tenant_id = $1 AND form_id = $2 \
               AND ($3::int IS NULL OR form_version = $3) \
               AND ($4::timestamptz IS NULL OR created_at >= $4) \
               AND ($5::timestamptz IS NULL OR created_at < $5) \
               AND data @> $6 \
               AND ($7::timestamptz IS NULL OR (created_at, id) > ($7, $8)) \
             ORDER BY created_at, id LIMIT $9",
            tenant.as_uuid(),
            form.as_uuid(),
            filter.form_version,
            filter.start_time,
            filter.end_time,
            answers,
            after_time,
            after_id,
            limit,
        )
        .fetch_all(connection)
        .await?
    } else {
        sqlx::query_as!(
            SubmissionRow,
            "SELECT id, form_id, form_version, data, submitter, created_at FROM forms.submissions \
             WHERE tenant_id = $1 AND form_id = $2 \
               AND ($3::int IS NULL OR form_version = $3) \
               AND ($4::timestamptz IS NULL OR created_at >= $4) \
               AND ($5::timestamptz IS NULL OR created_at < $5) \
               AND data @> $6 \
               AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8)) \
             ORDER BY created_at DESC, id DESC LIMIT $9",
            tenant.as_uuid(),
            form.as_uuid(),
            filter.form_version,
            filter.start_time,
            filter.end_time,
            answers,
            after_time,
            after_id,
            limit,
        )
        .fetch_all(connection)
        .await?
    };
    rows.into_iter().map(Submission::try_from).collect()
}

/// Every submission of a form matching `filter`, oldest first, read from the connection as
/// the stream is polled: the whole result is never in memory.
pub fn stream_submissions<'c>(
    connection: &'c mut PgConnection,
    tenant: TenantId,
    form: FormId,
    filter: &SubmissionFilter,
) -> impl futures_util::Stream<Item = anyhow::Result<Submission>> + Send + 'c {
    use futures_util::StreamExt;
    sqlx::query_as!(
        SubmissionRow,
        "SELECT id, form_id, form_version, data, submitter, created_at FROM forms.submissions \
         WHERE tenant_id = $1 AND form_id = $2 \
           AND ($3::int IS NULL OR form_version = $3) \
           AND ($4::timestamptz IS NULL OR created_at >= $4) \
           AND ($5::timestamptz IS NULL OR created_at < $5) \
           AND data @> $6 \
         ORDER BY created_at, id",
        tenant.as_uuid(),
        form.as_uuid(),
        filter.form_version,
        filter.start_time,
        filter.end_time,
        Value::Object(filter.answers.clone()),
    )
    .fetch(connection)
    .map(|row| Submission::try_from(row?))
}

/// Records a view of a published form; its id is the start token handed to the submitter.
pub async fn insert_view(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    view: ViewId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO forms.form_views (id, tenant_id, form_id) VALUES ($1, $2, $3)",
        view.as_uuid(),
        tenant.as_uuid(),
        form.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Marks a view started, once.
pub async fn start_view(
    connection: &mut PgConnection,
    tenant: TenantId,
    view: ViewId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE forms.form_views SET started_at = coalesce(started_at, now()) \
         WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        view.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// A view of `form`, locked: when it was made and when its submission was accepted.
pub async fn lock_view(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    view: ViewId,
) -> sqlx::Result<Option<(DateTime<Utc>, Option<DateTime<Utc>>)>> {
    let row = sqlx::query!(
        "SELECT created_at, submitted_at FROM forms.form_views \
         WHERE tenant_id = $1 AND form_id = $2 AND id = $3 FOR UPDATE",
        tenant.as_uuid(),
        form.as_uuid(),
        view.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| (row.created_at, row.submitted_at)))
}

/// Records that the submission of a view was accepted at `at`.
pub async fn submit_view(
    connection: &mut PgConnection,
    tenant: TenantId,
    view: ViewId,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE forms.form_views SET submitted_at = $3, started_at = coalesce(started_at, $3) \
         WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        view.as_uuid(),
        at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Views, starts and submissions of one time bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BucketCounts {
    /// Where the bucket starts.
    pub start: DateTime<Utc>,
    /// Views made in it.
    pub views: i64,
    /// Of those, views started.
    pub starts: i64,
    /// Submissions received in it.
    pub submissions: i64,
}

/// The counts of a form in [`start`, `end`) per `unit` (`hour`, `day`, `week`) bucket of
/// `time_zone`, empty buckets included.
pub async fn bucket_counts(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    unit: &str,
    time_zone: &str,
) -> sqlx::Result<Vec<BucketCounts>> {
    let rows = sqlx::query!(
        r#"WITH buckets AS (
             SELECT generate_series(
                      date_trunc($5, $3 AT TIME ZONE $6),
                      ($4 AT TIME ZONE $6) - interval '1 microsecond',
                      ('1 ' || $5)::interval) AS local_start),
           views AS (
             SELECT date_trunc($5, created_at AT TIME ZONE $6) AS local_start,
                    count(*) AS views, count(started_at) AS starts
             FROM forms.form_views
             WHERE tenant_id = $1 AND form_id = $2 AND created_at >= $3 AND created_at < $4
             GROUP BY 1),
           submitted AS (
             SELECT date_trunc($5, created_at AT TIME ZONE $6) AS local_start,
                    count(*) AS submissions
             FROM forms.submissions
             WHERE tenant_id = $1 AND form_id = $2 AND created_at >= $3 AND created_at < $4
             GROUP BY 1)
           SELECT b.local_start AT TIME ZONE $6 AS "start!",
                  coalesce(v.views, 0) AS "views!", coalesce(v.starts, 0) AS "starts!",
                  coalesce(s.submissions, 0) AS "submissions!"
           FROM buckets b
           LEFT JOIN views v USING (local_start)
           LEFT JOIN submitted s USING (local_start)
           ORDER BY 1"#,
        tenant.as_uuid(),
        form.as_uuid(),
        start,
        end,
        unit,
        time_zone,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| BucketCounts {
            start: row.start,
            views: row.views,
            starts: row.starts,
            submissions: row.submissions,
        })
        .collect())
}

/// The median and mean seconds from a view to its submission, over views submitted in
/// [`start`, `end`).
pub async fn completion_times(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<(Option<f64>, Option<f64>)> {
    let row = sqlx::query!(
        "SELECT percentile_cont(0.5) WITHIN GROUP \
                  (ORDER BY extract(epoch FROM submitted_at - created_at))::float8 AS median, \
                avg(extract(epoch FROM submitted_at - created_at))::float8 AS mean \
         FROM forms.form_views \
         WHERE tenant_id = $1 AND form_id = $2 AND submitted_at >= $3 AND submitted_at < $4",
        tenant.as_uuid(),
        form.as_uuid(),
        start,
        end,
    )
    .fetch_one(connection)
    .await?;
    Ok((row.median, row.mean))
}

/// Answer statistics of one field over a period.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnswerStats {
    /// Submissions that answered it.
    pub answers: i64,
    /// Least numeric answer.
    pub min: Option<f64>,
    /// Greatest numeric answer.
    pub max: Option<f64>,
    /// Mean numeric answer.
    pub mean: Option<f64>,
    /// Answers per value (each choice of a list apart), as text.
    pub values: Vec<(String, i64)>,
}

/// Answer statistics per field id of the submissions received in [`start`, `end`), with
/// value counts for the fields in `counted`.
pub async fn answer_stats(
    connection: &mut PgConnection,
    tenant: TenantId,
    form: FormId,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    counted: &[String],
) -> sqlx::Result<BTreeMap<String, AnswerStats>> {
    let mut stats = BTreeMap::new();
    let rows = sqlx::query!(
        r#"SELECT e.key AS "field!", count(*) AS "answers!",
                  min((e.value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(e.value) = 'number') AS min,
                  max((e.value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(e.value) = 'number') AS max,
                  avg((e.value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(e.value) = 'number') AS mean
           FROM forms.submissions s CROSS JOIN LATERAL jsonb_each(s.data) AS e
           WHERE s.tenant_id = $1 AND s.form_id = $2 AND s.created_at >= $3 AND s.created_at < $4
           GROUP BY e.key"#,
        tenant.as_uuid(),
        form.as_uuid(),
        start,
        end,
    )
    .fetch_all(&mut *connection)
    .await?;
    for row in rows {
        stats.insert(
            row.field,
            AnswerStats {
                answers: row.answers,
                min: row.min,
                max: row.max,
                mean: row.mean,
                values: Vec::new(),
            },
        );
    }
    let values = sqlx::query!(
        r#"SELECT e.key AS "field!", v.value AS "value!", count(*) AS "count!"
           FROM forms.submissions s
           CROSS JOIN LATERAL jsonb_each(s.data) AS e
           CROSS JOIN LATERAL (
             SELECT jsonb_array_elements_text(e.value) WHERE jsonb_typeof(e.value) = 'array'
             UNION ALL
             SELECT e.value #>> '{}' WHERE jsonb_typeof(e.value) <> 'array') AS v(value)
           WHERE s.tenant_id = $1 AND s.form_id = $2 AND s.created_at >= $3 AND s.created_at < $4
             AND e.key = ANY($5)
           GROUP BY 1, 2
           ORDER BY 3 DESC, 2"#,
        tenant.as_uuid(),
        form.as_uuid(),
        start,
        end,
        counted,
    )
    .fetch_all(connection)
    .await?;
    for row in values {
        if let Some(field) = stats.get_mut(&row.field) {
            field.values.push((row.value, row.count));
        }
    }
    Ok(stats)
}

/// Whether Postgres knows `name` as a time zone.
pub async fn time_zone_exists(connection: &mut PgConnection, name: &str) -> sqlx::Result<bool> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS "exists!""#,
        name,
    )
    .fetch_one(connection)
    .await?;
    Ok(exists)
}
