//! Submission analysis: a form submission's text answers classified and embedded, and the
//! exact search of the most similar analyzed submissions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use chrono::{SubsecRound, Utc};
use platform::consumer::{ProcessedEvents, ReceivedEvent};
use platform::context::{Permission, RequestContext, TenantId};
use platform::wire::resource_name;
use uuid::Uuid;

use super::{Ai, CachedResult, Labels};
use crate::domain::{LabelSetId, SubmissionAnalysis, SubmissionText, submission_text};
use crate::error::Error;
use crate::models::Embedded;
use crate::pool::LoadedModel;
use crate::prototypes::content_hash;
use crate::store;

/// A submission to analyze, checked.
#[derive(Debug, Clone)]
pub struct AnalyzeInput {
    /// Its id.
    pub id: Uuid,
    /// Its resource name, `forms/{form}/submissions/{id}`.
    pub submission: String,
    /// Its form, `forms/{id}`.
    pub form: String,
    /// Its text answers.
    pub answers: Vec<SubmissionText>,
    /// The label set to classify it against; `None`: triaged as a ticket.
    pub label_set: Option<LabelSetId>,
    /// Model id; `None` is the default embedding model.
    pub model: Option<String>,
}

/// What the submissions found are compared with.
#[derive(Debug, Clone)]
pub enum SimilarTo {
    /// A text.
    Text(String),
    /// An analyzed submission (left out of the results).
    Analysis(Uuid),
}

/// A similar-submission search, checked.
#[derive(Debug, Clone)]
pub struct SimilarQuery {
    /// What to compare with.
    pub to: SimilarTo,
    /// Only submissions of this form, `forms/{id}`.
    pub form: Option<String>,
    /// Most results.
    pub limit: usize,
    /// Least similarity of a result.
    pub min_score: Option<f32>,
    /// Model id; `None` is the default embedding model.
    pub model: Option<String>,
}

/// What a similar-submission search found.
#[derive(Debug)]
pub struct SimilarSubmissions {
    /// The analyses found, most similar first, with their similarity.
    pub results: Vec<(SubmissionAnalysis, f32)>,
    /// How many analyses were compared.
    pub scanned: usize,
    /// Whether older analyses were left out by the scan bound.
    pub scan_truncated: bool,
}

impl Ai {
    /// Analyzes a submission on a caller's request, replacing its earlier analysis.
    pub async fn analyze_submission(
        &self,
        context: &RequestContext,
        input: AnalyzeInput,
    ) -> Result<SubmissionAnalysis, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let (analysis, embedding) = self.analysis(tenant, input).await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let analysis = self
            .save_analysis(&mut transaction, tenant, analysis, &embedding, true)
            .await?
            .expect("a replacing analysis is always saved");
        transaction.commit().await?;
        self.outbox.notify();
        Ok(analysis)
    }

    /// Analyzes a submission `event` announced, once whatever its deliveries, unless the
    /// submission was analyzed already (on a caller's request).
    pub async fn analyze_announced(
        &self,
        processed: &ProcessedEvents,
        event: &ReceivedEvent,
        tenant: TenantId,
        input: AnalyzeInput,
    ) -> Result<(), Error> {
        // A redelivered event costs one look, not two inferences.
        if processed.handled(&self.db, event).await? {
            return Ok(());
        }
        let (analysis, embedding) = self.analysis(tenant, input).await?;
        processed
            .once(&self.db, event, async move |transaction| {
                self.save_analysis(transaction, tenant, analysis, &embedding, false)
                    .await
                    .map_err(anyhow::Error::from)
            })
            .await?;
        self.outbox.notify();
        Ok(())
    }

    /// A submission's analysis and embedding, computed (not stored).
    async fn analysis(
        &self,
        tenant: TenantId,
        input: AnalyzeInput,
    ) -> Result<(SubmissionAnalysis, Vec<f32>), Error> {
        let model = self.model(input.model.as_deref())?;
        let text = submission_text(&input.answers);
        // The embedding is needed whatever the cache holds: the classification is computed
        // from it rather than read from the cache.
        let started = Instant::now();
        let (embedded, sentiment) = match input.label_set {
            // Triaged as a ticket: the sentiment's model reads it at the same time.
            None => self.embed_ticket(model, &text).await?,
            Some(_) => (model.embed(vec![text.clone()]).await?.remove(0), None),
        };
        let inference = super::elapsed_micros(started);
        let (label_set, scope, result) = self
            .classify_embedded(
                tenant,
                model,
                input.label_set,
                &text,
                (&embedded, sentiment.as_ref()),
            )
            .await?;
        let hash = content_hash(&model.key(), &scope, &text);
        let classification = super::classification(
            model,
            input.submission.clone(),
            hash,
            (result, false),
            inference,
            text,
            label_set,
        );
        let now = Utc::now().trunc_subsecs(6);
        let analysis = SubmissionAnalysis {
            id: input.id,
            submission: input.submission,
            form: input.form,
            classification,
            embedding_model: model.key(),
            created_at: now,
            updated_at: now,
        };
        Ok((analysis, embedded.vector))
    }

    /// The classification of `text`, embedded as `embedded` (and by the sentiment's model as
    /// `sentiment`, for a ticket), against `label_set` or as a ticket: the label set and
    /// version used, what names them in cache keys, and the result.
    async fn classify_embedded(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        label_set: Option<LabelSetId>,
        text: &str,
        (embedded, sentiment): (&Embedded, Option<&Embedded>),
    ) -> Result<(Option<(LabelSetId, i64)>, String, CachedResult), Error> {
        Ok(match label_set {
            Some(id) => {
                let (label_set, scope, prototypes) = self
                    .label_prototypes(tenant, model, &Labels::Set(id))
                    .await?;
                (
                    label_set,
                    scope,
                    CachedResult::of_labels(&prototypes, embedded),
                )
            }
            None => {
                let sets = self.ticket_label_sets(tenant, model, None).await?;
                (
                    sets.category_label_set(),
                    sets.scope(),
                    sets.triage(text, embedded, sentiment),
                )
            }
        })
    }

    /// Saves `analysis` and, when it was saved, stores and announces its classification;
    /// answers the analysis as stored, or `None` when the submission had one and not
    /// `replace`.
    async fn save_analysis(
        &self,
        transaction: &mut sqlx::PgConnection,
        tenant: TenantId,
        mut analysis: SubmissionAnalysis,
        embedding: &[f32],
        replace: bool,
    ) -> Result<Option<SubmissionAnalysis>, Error> {
        let Some(created_at) =
            store::save_analysis(transaction, tenant, &analysis, embedding, replace).await?
        else {
            return Ok(None);
        };
        analysis.created_at = created_at;
        self.store_classifications(
            transaction,
            tenant,
            std::slice::from_ref(&analysis.classification),
            None,
        )
        .await?;
        Ok(Some(analysis))
    }

    /// A submission's analysis in the caller's tenant.
    pub async fn get_submission_analysis(
        &self,
        context: &RequestContext,
        id: Uuid,
    ) -> Result<SubmissionAnalysis, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut found = store::find_analyses(&mut transaction, tenant, &[id]).await?;
        transaction.commit().await?;
        found.pop().ok_or_else(|| analysis_not_found(id))
    }

    /// The analyzed submissions of the caller's tenant most similar to `query`: an exact scan
    /// of the newest `scan_limit` analyses' embeddings.
    pub async fn similar_submissions(
        &self,
        context: &RequestContext,
        query: SimilarQuery,
    ) -> Result<SimilarSubmissions, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let model = self.model(query.model.as_deref())?;
        let model_key = model.key();
        // A text is embedded before a connection is taken: inference may wait in the queue.
        let embedded = match &query.to {
            SimilarTo::Text(text) => Some(super::embed_one(model, text).await?),
            SimilarTo::Analysis(_) => None,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let (vector, excluded) = match query.to {
            SimilarTo::Text(_) => (embedded.expect("a text is embedded above"), None),
            SimilarTo::Analysis(id) => {
                let (embedded_by, bytes) = store::analysis_embedding(&mut transaction, tenant, id)
                    .await?
                    .ok_or_else(|| analysis_not_found(id))?;
                if embedded_by != model_key {
                    return Err(Error::AnalysisOfAnotherModel(
                        resource_name("submissionAnalyses", id),
                        embedded_by,
                    ));
                }
                (store::embedding_vector(&bytes), Some(id))
            }
        };
        let bound = self.scan_limit;
        let mut best = TopK::new(query.limit);
        let scanned = store::scan_embeddings(
            &mut transaction,
            tenant,
            &model_key,
            query.form.as_deref(),
            i64::try_from(bound + 1).unwrap_or(i64::MAX),
            |index, id, bytes| {
                // The one past the bound only tells that there are more.
                if index < bound && Some(id) != excluded {
                    let score = store::similarity(bytes, &vector);
                    if query.min_score.is_none_or(|least| score >= least) {
                        best.offer(score, id);
                    }
                }
            },
        )
        .await?;
        let best = best.into_sorted();
        let ids: Vec<Uuid> = best.iter().map(|&(_, id)| id).collect();
        let mut analyses = store::find_analyses(&mut transaction, tenant, &ids).await?;
        transaction.commit().await?;
        let results = best
            .into_iter()
            .filter_map(|(score, id)| {
                let index = analyses.iter().position(|analysis| analysis.id == id)?;
                Some((analyses.swap_remove(index), score))
            })
            .collect();
        Ok(SimilarSubmissions {
            results,
            scanned: scanned.min(bound),
            scan_truncated: scanned > bound,
        })
    }
}

fn analysis_not_found(id: Uuid) -> Error {
    Error::SubmissionAnalysisNotFound(resource_name("submissionAnalyses", id))
}

/// The `k` highest scores offered, with their ids.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

/// A score and its id, ordered by score (then id, for a stable order).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ranked(f32, Uuid);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, score: f32, id: Uuid) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Ranked(score, id)));
        } else if let Some(Reverse(lowest)) = self.heap.peek()
            && Ranked(score, id) > *lowest
        {
            self.heap.pop();
            self.heap.push(Reverse(Ranked(score, id)));
        }
    }

    /// The scores kept, highest first.
    fn into_sorted(self) -> Vec<(f32, Uuid)> {
        // Ascending order of `Reverse` is descending order of scores.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(Ranked(score, id))| (score, id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_k_keeps_the_highest_scores_highest_first() {
        let ids: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
        let mut top = TopK::new(3);
        for (score, id) in [0.1, 0.9, -0.5, 0.7, 0.95, 0.2].into_iter().zip(&ids) {
            top.offer(score, *id);
        }
        assert_eq!(
            top.into_sorted(),
            [(0.95, ids[4]), (0.9, ids[1]), (0.7, ids[3])]
        );
        let mut none = TopK::new(0);
        none.offer(1.0, ids[0]);
        assert!(none.into_sorted().is_empty());
    }
}
