//! Ai operations with state: label sets and their examples, classifications and corrections.
//! Who may do what, the transaction each runs in, its audit row and its events; handlers in
//! `grpc` only translate to and from the wire.
//!
//! Tenants: a resource of another tenant is NOT_FOUND whatever the caller may do, since every
//! query runs in the caller's tenant (and row-level security agrees). The prototype cache and
//! the result cache are keyed by tenant too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use platform::audit::{AuditEntry, AuditLog};
use platform::context::{Permission, RequestContext, TenantId};
use platform::db::Db;
use platform::error::FieldViolations;
use platform::idempotency::{Claim, Idempotency, canonical_json};
use platform::outbox::Outbox;
use platform::redis::Redis;
use platform::wire::resource_name;
use proto::formflow::ai::v1 as wire;
use proto::formflow::events::v1::ClassificationCompleted;
use redis::AsyncCommands;
use serde_json::json;
use sqlx::PgConnection;

use crate::app::SCHEMA;
use crate::domain::{
    Classification, ClassificationId, Example, ExampleId, Label, LabelSet, LabelSetId,
    MAX_EXAMPLES, MAX_TEXTS, Score,
};
use crate::error::Error;
use crate::models::Task;
use crate::pool::{InferencePool, LoadedModel};
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

/// A label set to create.
#[derive(Debug, Clone)]
pub struct NewLabelSet {
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Labels.
    pub labels: Vec<Label>,
}

/// Changes to a label set: each `Some` replaces the field.
#[derive(Debug, Clone, Default)]
pub struct LabelSetChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New labels.
    pub labels: Option<Vec<Label>>,
    /// The version the caller read (from its etag).
    pub expected_version: Option<i64>,
}

/// A page of something, and where the next one starts.
#[derive(Debug)]
pub struct Page<T, P> {
    /// The items.
    pub items: Vec<T>,
    /// The position the next page starts after, when there is one.
    pub next_after: Option<P>,
}

/// Label sets' prototypes kept in memory, by tenant, label set (or inline labels) with its
/// version, and model: computing them embeds every label description.
type PrototypeCache = moka::sync::Cache<(TenantId, String, String), Arc<Prototypes>>;

/// A result as the Redis cache keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CachedResult {
    scores: Vec<Score>,
    truncated: bool,
}

/// The ai operations over the service's database, the inference pool and the caches.
#[derive(Debug, Clone)]
pub struct Ai {
    db: Db,
    pool: Arc<InferencePool>,
    outbox: Outbox,
    audit: AuditLog,
    idempotency: Idempotency,
    redis: Redis,
    cache_ttl: Duration,
    prototypes: PrototypeCache,
}

impl Ai {
    /// Operations over `db` and `pool`, announcing classifications through `outbox`, caching
    /// results in `redis` for `cache_ttl` (zero: not at all).
    pub fn new(
        db: Db,
        pool: Arc<InferencePool>,
        outbox: Outbox,
        redis: Redis,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            db,
            pool,
            outbox,
            audit: AuditLog::new(SCHEMA.name),
            idempotency: Idempotency::new(SCHEMA.name),
            redis,
            cache_ttl,
            prototypes: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }

    /// The inference pool.
    pub fn pool(&self) -> &InferencePool {
        &self.pool
    }

    /// The model with id `id`, or the default embedding model.
    pub fn model(&self, id: Option<&str>) -> Result<&LoadedModel, Error> {
        match id {
            Some(id) => self
                .pool
                .get(id)
                .ok_or_else(|| Error::ModelNotFound(format!("models/{id}"))),
            None => self
                .pool
                .default_for(Task::Embedding)
                .ok_or(Error::NoModel("embeddings")),
        }
    }

    async fn audit(
        &self,
        transaction: &mut PgConnection,
        context: &RequestContext,
        tenant: TenantId,
        action: &'static str,
        target: String,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        let entry = AuditEntry::by(context, Some(tenant), action, target, details);
        self.audit.record(transaction, entry).await?;
        Ok(())
    }

    /// Creates a label set.
    pub async fn create_label_set(
        &self,
        context: &RequestContext,
        new: NewLabelSet,
    ) -> Result<LabelSet, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let now = Utc::now().trunc_subsecs(6);
        let set = LabelSet {
            id: LabelSetId::generate(),
            tenant_id: tenant,
            display_name: new.display_name,
            description: new.description,
            labels: new.labels,
            version: 1,
            example_count: 0,
            created_at: now,
            updated_at: now,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if !store::insert_label_set(&mut transaction, &set).await? {
            return Err(Error::LabelSetNameTaken(set.display_name));
        }
        self.audit(
            &mut transaction,
            context,
            tenant,
            "label_set.create",
            resource_name("labelSets", set.id),
            json!({"labels": set.labels.len()}),
        )
        .await?;
        transaction.commit().await?;
        Ok(set)
    }

    /// A label set of the caller's tenant.
    pub async fn get_label_set(
        &self,
        context: &RequestContext,
        id: LabelSetId,
    ) -> Result<LabelSet, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let set = store::find_label_set(&mut transaction, tenant, id, Lock::None).await?;
        transaction.commit().await?;
        set.ok_or_else(|| Error::LabelSetNotFound(resource_name("labelSets", id)))
    }

    /// A page of the tenant's label sets by display name, after the name `after`.
    pub async fn list_label_sets(
        &self,
        context: &RequestContext,
        after: Option<String>,
        page_size: usize,
    ) -> Result<Page<LabelSet, String>, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_label_sets(
            &mut transaction,
            tenant,
            after.as_deref(),
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (items, next_after) =
            platform::paging::split_page(rows, page_size, |last| last.display_name.clone());
        Ok(Page { items, next_after })
    }

    /// Changes a label set; removing a label deletes its examples.
    pub async fn update_label_set(
        &self,
        context: &RequestContext,
        id: LabelSetId,
        changes: LabelSetChanges,
    ) -> Result<LabelSet, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut set = store::find_label_set(&mut transaction, tenant, id, Lock::Update)
            .await?
            .ok_or_else(|| Error::LabelSetNotFound(resource_name("labelSets", id)))?;
        if changes
            .expected_version
            .is_some_and(|expected| expected != set.version)
        {
            return Err(platform::error::CommonError::EtagMismatch("label set").into());
        }
        let mut details = json!({});
        if let Some(display_name) = changes.display_name {
            set.display_name = display_name;
            details["display_name"] = json!(set.display_name);
        }
        if let Some(description) = changes.description {
            set.description = description;
        }
        if let Some(labels) = changes.labels {
            let values: Vec<String> = labels.iter().map(|label| label.value.clone()).collect();
            set.labels = labels;
            let dropped =
                store::delete_examples_outside(&mut transaction, tenant, id, &values).await?;
            set.example_count -= i64::try_from(dropped).unwrap_or(0);
            details["labels"] = json!(values);
            details["examples_deleted"] = json!(dropped);
        }
        set.version += 1;
        set.updated_at = Utc::now().trunc_subsecs(6);
        if !store::update_label_set(&mut transaction, &set).await? {
            return Err(Error::LabelSetNameTaken(set.display_name));
        }
        self.audit(
            &mut transaction,
            context,
            tenant,
            "label_set.update",
            resource_name("labelSets", id),
            details,
        )
        .await?;
        transaction.commit().await?;
        Ok(set)
    }

    /// Deletes a label set and its examples.
    pub async fn delete_label_set(
        &self,
        context: &RequestContext,
        id: LabelSetId,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if !store::delete_label_set(&mut transaction, tenant, id).await? {
            return Err(Error::LabelSetNotFound(resource_name("labelSets", id)));
        }
        self.audit(
            &mut transaction,
            context,
            tenant,
            "label_set.delete",
            resource_name("labelSets", id),
            json!({}),
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Adds an example of `label` to a label set: its text is embedded once, now, with the
    /// default model.
    pub async fn create_example(
        &self,
        context: &RequestContext,
        label_set: LabelSetId,
        label: String,
        text: String,
    ) -> Result<Example, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let model = self.model(None)?;
        let embedding = embed_one(model, &text).await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let set = store::find_label_set(&mut transaction, tenant, label_set, Lock::Update)
            .await?
            .ok_or_else(|| Error::LabelSetNotFound(resource_name("labelSets", label_set)))?;
        if !set.has_label(&label) {
            return Err(unknown_label("example.label", &label).into());
        }
        if set.example_count >= MAX_EXAMPLES {
            return Err(Error::TooManyExamples);
        }
        let now = Utc::now().trunc_subsecs(6);
        let example = Example {
            id: ExampleId::generate(),
            label_set_id: label_set,
            label,
            text,
            classification_id: None,
            created_at: now,
        };
        let example = store::upsert_example(
            &mut transaction,
            tenant,
            NewExample {
                example: &example,
                embedding_model: &model.key(),
                embedding: &embedding,
            },
        )
        .await?;
        store::bump_label_set_version(&mut transaction, tenant, label_set, now).await?;
        self.audit(
            &mut transaction,
            context,
            tenant,
            "label_example.create",
            example_name(&example),
            json!({"label": example.label}),
        )
        .await?;
        transaction.commit().await?;
        Ok(example)
    }

    /// A page of a label set's examples (of `label` only, when given), oldest first.
    pub async fn list_examples(
        &self,
        context: &RequestContext,
        label_set: LabelSetId,
        label: Option<String>,
        after: Option<ExampleId>,
        page_size: usize,
    ) -> Result<Page<Example, ExampleId>, Error> {
        let tenant = context.authorize(Permission::AiRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if store::find_label_set(&mut transaction, tenant, label_set, Lock::None)
            .await?
            .is_none()
        {
            return Err(Error::LabelSetNotFound(resource_name(
                "labelSets",
                label_set,
            )));
        }
        let rows = store::list_examples(
            &mut transaction,
            tenant,
            label_set,
            label.as_deref(),
            after,
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (items, next_after) = platform::paging::split_page(rows, page_size, |last| last.id);
        Ok(Page { items, next_after })
    }

    /// Deletes an example of a label set.
    pub async fn delete_example(
        &self,
        context: &RequestContext,
        label_set: LabelSetId,
        id: ExampleId,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let name = format!("labelSets/{label_set}/examples/{id}");
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if store::find_label_set(&mut transaction, tenant, label_set, Lock::Update)
            .await?
            .is_none()
            || !store::delete_example(&mut transaction, tenant, label_set, id).await?
        {
            return Err(Error::ExampleNotFound(name));
        }
        store::bump_label_set_version(&mut transaction, tenant, label_set, Utc::now()).await?;
        self.audit(
            &mut transaction,
            context,
            tenant,
            "label_example.delete",
            name,
            json!({}),
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes idempotency keys past their retention.
    pub async fn forget_expired_keys(&self) -> anyhow::Result<()> {
        self.idempotency.forget_expired(&self.db).await?;
        Ok(())
    }

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
        if let Some(key) = key {
            let mut transaction = self.db.tenant_tx(tenant).await?;
            let claim = self
                .idempotency
                .claim(&mut transaction, tenant, "Classify", key, &request)
                .await?;
            transaction.commit().await?;
            if let Claim::Replay(answer) = claim {
                return Ok(answer);
            }
        }
        let model = self.model(input.model.as_deref())?;
        let model_key = model.key();
        let (label_set, scope, prototypes) = match &input.labels {
            Labels::Set(id) => {
                let (set, prototypes) = self.label_set_prototypes(tenant, *id, model).await?;
                let scope = format!("labelSets/{}@{}", set.id, set.version);
                (Some((set.id, set.version)), scope, prototypes)
            }
            Labels::Inline(labels) => {
                let scope = serde_json::to_string(labels).map_err(anyhow::Error::from)?;
                let key = (tenant, scope.clone(), model_key.clone());
                let prototypes = match self.prototypes.get(&key) {
                    Some(prototypes) => prototypes,
                    None => {
                        let prototypes =
                            Arc::new(build_prototypes(model, labels, Vec::new()).await?);
                        self.prototypes.insert(key, prototypes.clone());
                        prototypes
                    }
                };
                (None, scope, prototypes)
            }
        };

        let hashes: Vec<String> = input
            .texts
            .iter()
            .map(|text| content_hash(&model_key, &scope, text))
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
                        .map(|&index| input.texts[index].clone())
                        .collect(),
                )
                .await?;
            // Stored in microseconds: answered as it will be read back.
            inference = Duration::from_micros(
                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            );
            let mut fresh = Vec::with_capacity(missing.len());
            for (&index, embedding) in missing.iter().zip(embedded) {
                let result = CachedResult {
                    scores: prototypes.scores(&embedding.vector),
                    truncated: embedding.truncated,
                };
                fresh.push((hashes[index].clone(), serde_json::to_string(&result)));
                results[index] = Some((result, false));
            }
            self.cache_results(tenant, fresh).await;
        }

        let now = Utc::now().trunc_subsecs(6);
        let classifications: Vec<Classification> = input
            .texts
            .into_iter()
            .zip(hashes)
            .zip(results)
            .map(|((text, hash), result)| {
                let (result, cached) = result.expect("every text has a result");
                Classification {
                    id: ClassificationId::generate(),
                    model: model.manifest().id.clone(),
                    model_version: model.version().to_owned(),
                    source: input.source.clone(),
                    content_hash: hash,
                    cached,
                    inference: if cached { Duration::ZERO } else { inference },
                    text,
                    truncated: result.truncated,
                    label_set,
                    scores: result.scores,
                    corrected_label: None,
                    created_at: now,
                }
            })
            .collect();
        let answer = wire::ClassifyResponse {
            classifications: classifications
                .iter()
                .map(crate::events::classification_to_proto)
                .collect(),
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if let Some(key) = key {
            if let Claim::Replay(answer) = self
                .idempotency
                .claim(&mut transaction, tenant, "Classify", key, &request)
                .await?
            {
                return Ok(answer);
            }
            self.idempotency
                .complete(&mut transaction, tenant, "Classify", key, &request, &answer)
                .await?;
        }
        for (classification, proto) in classifications.iter().zip(&answer.classifications) {
            store::insert_classification(&mut transaction, tenant, classification).await?;
            self.outbox
                .enqueue(
                    &mut transaction,
                    Some(tenant),
                    ClassificationCompleted {
                        classification: Some(proto.clone()),
                        batch_job: String::new(),
                    },
                )
                .await?;
        }
        transaction.commit().await?;
        self.outbox.notify();
        Ok(answer)
    }

    /// A label set and its prototypes for `model`, from the cache or computed (the set and
    /// its examples read in one transaction that keeps writers out, so that they match the
    /// version).
    async fn label_set_prototypes(
        &self,
        tenant: TenantId,
        id: LabelSetId,
        model: &LoadedModel,
    ) -> Result<(LabelSet, Arc<Prototypes>), Error> {
        let model_key = model.key();
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let set = store::find_label_set(&mut transaction, tenant, id, Lock::Share)
            .await?
            .ok_or_else(|| Error::LabelSetNotFound(resource_name("labelSets", id)))?;
        let key = (
            tenant,
            format!("labelSets/{}@{}", set.id, set.version),
            model_key.clone(),
        );
        if let Some(prototypes) = self.prototypes.get(&key) {
            transaction.commit().await?;
            return Ok((set, prototypes));
        }
        let examples = store::example_vectors(&mut transaction, tenant, id, &model_key).await?;
        transaction.commit().await?;
        let prototypes = Arc::new(build_prototypes(model, &set.labels, examples).await?);
        self.prototypes.insert(key, prototypes.clone());
        Ok((set, prototypes))
    }

    /// The cached result of each hash, if any; a Redis failure is a miss (the cache only
    /// saves work).
    async fn cached_results(
        &self,
        tenant: TenantId,
        hashes: &[String],
    ) -> Vec<Option<(CachedResult, bool)>> {
        let none = || hashes.iter().map(|_| None).collect();
        if self.cache_ttl.is_zero() {
            return none();
        }
        let keys: Vec<String> = hashes
            .iter()
            .map(|hash| self.cache_key(tenant, hash))
            .collect();
        let mut connection = self.redis.connection();
        match connection.mget::<_, Vec<Option<String>>>(&keys).await {
            Ok(values) => values
                .into_iter()
                .map(|value| {
                    value
                        .and_then(|value| serde_json::from_str(&value).ok())
                        .map(|result| (result, true))
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "reading cached classifications failed");
                none()
            }
        }
    }

    async fn cache_results(
        &self,
        tenant: TenantId,
        fresh: Vec<(String, serde_json::Result<String>)>,
    ) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut pipeline = redis::pipe();
        for (hash, value) in fresh {
            if let Ok(value) = value {
                pipeline
                    .set_ex(
                        self.cache_key(tenant, &hash),
                        value,
                        self.cache_ttl.as_secs().max(1),
                    )
                    .ignore();
            }
        }
        let mut connection = self.redis.connection();
        if let Err(error) = pipeline.query_async::<()>(&mut connection).await {
            tracing::warn!(%error, "caching classifications failed");
        }
    }

    fn cache_key(&self, tenant: TenantId, hash: &str) -> String {
        self.redis
            .key(&format!("ai:classification:{tenant}:{hash}"))
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
        self.audit(
            &mut transaction,
            context,
            tenant,
            "classification.correct",
            name,
            json!({"label": label}),
        )
        .await?;
        transaction.commit().await?;
        classification.corrected_label = Some(label);
        Ok(classification)
    }
}

fn example_name(example: &Example) -> String {
    format!("labelSets/{}/examples/{}", example.label_set_id, example.id)
}

fn unknown_label(field: &str, label: &str) -> FieldViolations {
    FieldViolations::single(field, format!("{label:?} is not a label of the label set"))
}

async fn embed_one(model: &LoadedModel, text: &str) -> Result<Vec<f32>, Error> {
    let mut embedded = model.embed(vec![text.to_owned()]).await?;
    Ok(embedded.remove(0).vector)
}

/// The prototypes of `labels`: each label's description embedded now, with its examples'
/// embeddings (those `model` did not compute embedded now too).
async fn build_prototypes(
    model: &LoadedModel,
    labels: &[Label],
    examples: Vec<store::ExampleVector>,
) -> Result<Prototypes, Error> {
    let mut texts: Vec<String> = labels
        .iter()
        .map(|label| label.prompt().to_owned())
        .collect();
    let missing: Vec<usize> = examples
        .iter()
        .enumerate()
        .filter(|(_, example)| example.embedding.is_none())
        .map(|(index, _)| index)
        .collect();
    texts.extend(missing.iter().map(|&index| examples[index].text.clone()));
    let mut embedded = Vec::with_capacity(texts.len());
    // The model's batch limit bounds a run; a large label set goes in several.
    for chunk in texts.chunks(MAX_TEXTS) {
        embedded.extend(model.embed(chunk.to_vec()).await?);
    }
    let mut computed = embedded.split_off(labels.len()).into_iter();
    let mut members: Vec<Vec<Vec<f32>>> = embedded
        .into_iter()
        .map(|description| vec![description.vector])
        .collect();
    for example in examples {
        let vector = match example.embedding {
            Some(vector) => vector,
            None => {
                computed
                    .next()
                    .expect("one embedding per missing example")
                    .vector
            }
        };
        if let Some(index) = labels.iter().position(|label| label.value == example.label) {
            members[index].push(vector);
        }
    }
    Ok(Prototypes::new(
        labels.iter().map(|label| label.value.clone()).collect(),
        members,
    ))
}
