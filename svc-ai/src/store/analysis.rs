//! Analyses of form submissions and the exact scan of their embeddings.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use platform::context::TenantId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Classification, SubmissionAnalysis};

/// An analysis as stored, before its classification is read.
struct AnalysisRow {
    id: Uuid,
    submission: String,
    form: String,
    classification_id: Uuid,
    embedding_model: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl AnalysisRow {
    fn with(self, classification: Classification) -> SubmissionAnalysis {
        SubmissionAnalysis {
            id: self.id,
            submission: self.submission,
            form: self.form,
            classification,
            embedding_model: self.embedding_model,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// An embedding as stored: unit-length f32 values, little-endian.
pub fn embedding_bytes(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// A stored embedding as values.
pub fn embedding_vector(stored: &[u8]) -> Vec<f32> {
    stored
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes(bytes.try_into().expect("chunks of four bytes")))
        .collect()
}

/// The cosine similarity of a stored embedding to `query` (both of unit length): their dot
/// product, read straight from the stored bytes.
pub fn similarity(stored: &[u8], query: &[f32]) -> f32 {
    stored
        .chunks_exact(4)
        .zip(query)
        .map(|(bytes, value)| {
            f32::from_le_bytes(bytes.try_into().expect("chunks of four bytes")) * value
        })
        .sum()
}

/// Stores `analysis` with its `embedding`, replacing the submission's earlier analysis when
/// `replace`; answers when the submission was first analyzed, or `None` (and stores nothing)
/// when it had an analysis and not `replace`.
pub async fn save_analysis(
    connection: &mut PgConnection,
    tenant: TenantId,
    analysis: &SubmissionAnalysis,
    embedding: &[f32],
    replace: bool,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let created_at = sqlx::query_scalar!(
        "INSERT INTO ai.submission_analyses (id, tenant_id, submission, form, \
             classification_id, embedding_model, embedding, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET classification_id = $5, \
             embedding_model = $6, embedding = $7, updated_at = $8 \
         WHERE $9 \
         RETURNING created_at",
        analysis.id,
        tenant.as_uuid(),
        analysis.submission,
        analysis.form,
        analysis.classification.id.as_uuid(),
        analysis.embedding_model,
        embedding_bytes(embedding),
        analysis.updated_at,
        replace,
    )
    .fetch_optional(connection)
    .await?;
    Ok(created_at)
}

/// The analyses of `tenant` with these ids, in no order, with their classifications.
pub async fn find_analyses(
    connection: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> anyhow::Result<Vec<SubmissionAnalysis>> {
    let rows = sqlx::query_as!(
        AnalysisRow,
        "SELECT id, submission, form, classification_id, embedding_model, created_at, \
             updated_at \
         FROM ai.submission_analyses WHERE tenant_id = $1 AND id = ANY($2)",
        tenant.as_uuid(),
        ids,
    )
    .fetch_all(&mut *connection)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.classification_id).collect();
    let classifications = super::find_classifications(&mut *connection, tenant, &ids).await?;
    let mut analyses = Vec::with_capacity(rows.len());
    for row in rows {
        let classification = classifications
            .iter()
            .find(|classification| classification.id.as_uuid() == row.classification_id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("analysis {} has no classification", row.id))?;
        analyses.push(row.with(classification));
    }
    Ok(analyses)
}

/// The embedding of an analysis of `tenant`, with the model that computed it.
pub async fn analysis_embedding(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    let row = sqlx::query!(
        "SELECT embedding_model, embedding FROM ai.submission_analyses \
         WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| (row.embedding_model, row.embedding)))
}

/// Calls `visit` with the position (newest first), id and embedding of each of the newest
/// `limit` analyses of `tenant` that `model` embedded (of `form` only, when given), streaming
/// them; answers how many there were.
pub async fn scan_embeddings(
    connection: &mut PgConnection,
    tenant: TenantId,
    model: &str,
    form: Option<&str>,
    limit: i64,
    mut visit: impl FnMut(usize, Uuid, &[u8]),
) -> anyhow::Result<usize> {
    let mut rows = sqlx::query!(
        "SELECT id, embedding FROM ai.submission_analyses \
         WHERE tenant_id = $1 AND embedding_model = $2 AND ($3::text IS NULL OR form = $3) \
         ORDER BY updated_at DESC LIMIT $4",
        tenant.as_uuid(),
        model,
        form,
        limit,
    )
    .fetch(connection);
    let mut scanned = 0;
    while let Some(row) = rows.try_next().await? {
        visit(scanned, row.id, &row.embedding);
        scanned += 1;
    }
    Ok(scanned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_stored_as_little_endian_values_and_compared_from_them() {
        let stored = embedding_bytes(&[0.6, -0.8]);
        assert_eq!(stored.len(), 8);
        assert_eq!(embedding_vector(&stored), [0.6, -0.8]);
        assert!((similarity(&stored, &[0.6, -0.8]) - 1.0).abs() < 1e-6);
        assert!((similarity(&stored, &[0.8, 0.6])).abs() < 1e-6);
    }
}
