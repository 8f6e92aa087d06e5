//! Classifying texts against labels; reading and correcting stored classifications.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::idempotency::canonical_json;
use platform::wire::resource_name;
use proto::formflow::ai::v1 as wire;
use serde_json::json;

use super::{Ai, CachedResult, Page, build_prototypes, embed_one, unknown_label};
use crate::domain::{
    Classification, ClassificationId, Example, ExampleId, Label, LabelSetId, MAX_EXAMPLES,
};
use crate::error::Error;
use crate::pool::LoadedModel;
use crate::prototypes::{Prototypes, content_hash};
use crate::store::{self, ClassificationFilter, Lock, NewExample};

/// What a text is classified against.
#[derive(Debug, Clone)]
pub enum Labels {
    /// A label set of the tenant.
    Set(LabelSetId),
    /// Labels given with the request.
    Inline(Vec<Label>),
}

/// A Classify call, checked.
#[derive(Debug, Clone)]
pub struct ClassifyInput {
    /// Model id; `None` is the default embedding model.
    pub model: Option<String>,
    /// The texts, each classified on its own.
    pub texts: Vec<String>,
    /// What they are classified against.
    pub labels: Labels,
    /// What the texts come from.
    pub source: String,
}

impl Ai {
    /// Classifies every text of `input`, stores each result and announces it. With the
    /// call's `Idempotency-Key`, a retry of the same request answers the first call's results
    /// (stored and announced once); the texts are computed before the key is taken, so a
    /// retry racing the first call may compute them twice, never store them twice.
    pub async fn classify(
        &self,
        context: &RequestContext,
        input: ClassifyInput,
    ) -> Result<wire::ClassifyResponse, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let key = context.idempotency_key.as_ref();
        let request = canonical_json(&json!({
            "model": input.model,
            "texts": input.texts,
            "label_set": match &input.labels {
                Labels::Set(id) => json!(id.to_string()),
                Labels::Inline(labels) => json!(labels),
            },
            "source": input.source,
        }));
        if let Some(answer) = self.replayed(tenant, key, "Classify", &request).await? {
            return Ok(answer);
        }
        let model = self.model(input.model.as_deref())?;
        let texts = input
            .texts
            .into_iter()
            .map(|text| (text, input.source.clone()))
            .collect();
        let classifications = self
            .classifications(tenant, model, &input.labels, texts)
            .await?;
        let answer = wire::ClassifyResponse {
            classifications: classifications
                .iter()
                .map(crate::events::classification_to_proto)
                .collect(),
        };
        self.record(tenant, key, "Classify", &request, &classifications, answer)
            .await
    }

    /// The classifications of `texts` (each with its source) against `labels` with `model`,
    /// from the cache or computed (and cached), not stored.
    pub(super) async fn classifications(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        labels: &Labels,
        texts: Vec<(String, String)>,
    ) -> Result<Vec<Classification>, Error> {
        let model_key = model.key();
        let (label_set, scope, prototypes) = self.label_prototypes(tenant, model, labels).await?;
        let hashes: Vec<String> = texts
            .iter()
            .map(|(text, _)| content_hash(&model_key, &scope, text))
            .collect();
        let mut results = self.cached_results(tenant, &hashes).await;
        let missing: Vec<usize> = (0..results.len())
            .filter(|&index| results[index].is_none())
            .collect();
        let mut inference = Duration::ZERO;
        if !missing.is_empty() {
            let started = Instant::now();
            let embedded = model
                .embed(
                    missing
                        .iter()
                        .map(|&index| texts[index].0.clone())
                        .collect(),
                )
                .await?;
            inference = super::elapsed_micros(started);
            let mut fresh = Vec::with_capacity(missing.len());
            for (&index, embedding) in missing.iter().zip(embedded) {
                let result = CachedResult::of_labels(&prototypes, &embedding);
                fresh.push((hashes[index].clone(), serde_json::to_string(&result)));
                results[index] = Some((result, false));
            }
            self.cache_results(tenant, fresh).await;
        }

        Ok(texts
            .into_iter()
            .zip(hashes)
            .zip(results)
            .map(|(((text, source), hash), result)| {
                let result = result.expect("every text has a result");
                super::classification(model, source, hash, result, inference, text, label_set)
            })
            .collect())
    }

    /// The prototypes of `labels` for `model`, with the label set and version they come from
    /// and what names them in cache keys.
    pub(super) async fn label_prototypes(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        labels: &Labels,
    ) -> Result<(Option<(LabelSetId, i64)>, String, Arc<Prototypes>), Error> {
        let model_key = model.key();
        Ok(match labels {
            Labels::Set(id) => {
                let ((id, version), prototypes) =
                    self.tenant_prototypes(tenant, model, *id).await?;
                let scope = format!("labelSets/{id}@{version}");
                (Some((id, version)), scope, prototypes)
            }
            Labels::Inline(labels) => {
                let scope = serde_json::to_string(labels).map_err(anyhow::Error::from)?;
                let key = (tenant, scope.clone(), model_key.clone());
                let prototypes = self
                    .cached_prototypes(key, build_prototypes(model, labels, Vec::new()))
                    .await?;
                (None, scope, prototypes)
            }
        })
    }

    /// A classification of the caller's tenant.
    pub async fn get_classification(
        &self,
        context: &RequestContext,
        id: ClassificationId,
    ) -> Result<Classification, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let found = store::find_classification(&mut transaction, tenant, id, false).await?;
        transaction.commit().await?;
        found.ok_or_else(|| Error::ClassificationNotFound(resource_name("classifications", id)))
    }

    /// A page of the tenant's classifications that `filter` keeps, newest first.
    pub async fn list_classifications(
        &self,
        context: &RequestContext,
        filter: &ClassificationFilter,
        before: Option<(chrono::DateTime<Utc>, ClassificationId)>,
        page_size: usize,
    ) -> Result<Page<Classification, (chrono::DateTime<Utc>, ClassificationId)>, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_classifications(
            &mut transaction,
            tenant,
            filter,
            before,
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (items, next_after) =
            platform::paging::split_page(rows, page_size, |last| (last.created_at, last.id));
        Ok(Page { items, next_after })
    }

    /// Corrects a classification against a label set: its text becomes an example of
    /// `label` (replacing an earlier correction of it), and the label set's version grows.
    pub async fn correct_classification(
        &self,
        context: &RequestContext,
        id: ClassificationId,
        label: String,
    ) -> Result<Classification, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let name = resource_name("classifications", id);
        let model = self.model(None)?;
        // The text is read first and embedded outside the transaction that writes.
        let text = self.get_classification(context, id).await?.text;
        let embedding = embed_one(model, &text).await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut classification = store::find_classification(&mut transaction, tenant, id, true)
            .await?
            .ok_or_else(|| Error::ClassificationNotFound(name.clone()))?;
        let Some((label_set, _)) = classification.label_set else {
            return Err(Error::NotCorrectable(name));
        };
        let set = store::find_label_set(&mut transaction, tenant, label_set, Lock::Update)
            .await?
            .ok_or_else(|| Error::LabelSetNotFound(resource_name("labelSets", label_set)))?;
        if !set.has_label(&label) {
            return Err(unknown_label("label", &label).into());
        }
        if classification.corrected_label.is_none() && set.example_count >= MAX_EXAMPLES {
            return Err(Error::TooManyExamples);
        }
        let now = Utc::now().trunc_subsecs(6);
        let example = Example {
            id: ExampleId::generate(),
            label_set_id: label_set,
            label: label.clone(),
            text: classification.text.clone(),
            classification_id: Some(id),
            created_at: now,
        };
        store::upsert_example(
            &mut transaction,
            tenant,
            NewExample {
                example: &example,
                embedding_model: &model.key(),
                embedding: &embedding,
            },
        )
        .await?;
        store::set_corrected_label(&mut transaction, tenant, id, &label).await?;
        store::bump_label_set_version(&mut transaction, tenant, label_set, now).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "classification.correct",
                name,
                json!({"label": label}),
            )
            .await?;
        transaction.commit().await?;
        self.retrain(tenant, label_set);
        classification.corrected_label = Some(label);
        Ok(classification)
    }
}
