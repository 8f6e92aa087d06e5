//! Ai operations with state: label sets and their examples, classifications and corrections.
//! Who may do what, the transaction each runs in, its audit row and its events; handlers in
//! `grpc` only translate to and from the wire.
//!
//! Tenants: a resource of another tenant is NOT_FOUND whatever the caller may do, since every
//! query runs in the caller's tenant (and row-level security agrees). The prototype cache and
//! the result cache are keyed by tenant too.

mod analysis;
mod batch;
mod classify;
mod label_sets;
mod ticket;

use std::sync::Arc;
use std::time::Duration;

use platform::audit::AuditLog;
use platform::config::AmqpConfig;
use platform::context::TenantId;
use platform::db::Db;
use platform::error::FieldViolations;
use platform::idempotency::{Idempotency, IdempotencyKey};
use platform::jobs::JobQueue;
use platform::outbox::Outbox;
use platform::redis::Redis;
use platform::wire::resource_name;
use proto::formflow::events::v1::ClassificationCompleted;
use redis::AsyncCommands;
use sqlx::PgConnection;

use crate::app::SCHEMA;
use crate::config::AiOptions;
use crate::domain::{
    BatchJobId, Classification, Example, Label, LabelSet, LabelSetId, MAX_TEXTS, Method, Score,
};
use crate::error::Error;
use crate::models::Task;
use crate::pool::{InferenceError, InferencePool, LoadedModel};
use crate::prototypes::Prototypes;
use crate::store::{self, Lock, Taken};
use crate::triage::TicketField;

pub use analysis::{AnalyzeInput, SimilarQuery, SimilarSubmissions, SimilarTo};
use batch::BatchSettings;
pub use batch::{BATCH_QUEUE, NewBatchJob};
pub use classify::{ClassifyInput, Labels};
pub use label_sets::{LabelSetChanges, NewLabelSet};
pub use ticket::TicketInput;

/// A page of something, and where the next one starts.
#[derive(Debug)]
pub struct Page<T, P> {
    /// The items.
    pub items: Vec<T>,
    /// The position the next page starts after, when there is one.
    pub next_after: Option<P>,
}

/// Label sets' prototypes kept in memory, by tenant, label set (or inline labels) with its
/// version, and model: computing them embeds every label description and example, so callers
/// that miss at once wait for one computation ([`Ai::cached_prototypes`]).
type PrototypeCache = moka::future::Cache<(TenantId, String, String), Arc<Prototypes>>;

/// The shipped examples of a triage field's default label set (label, text, embedding), per
/// field and model (`{id}@{version}`).
type DefaultExamples =
    moka::future::Cache<(TicketField, String), Arc<Vec<(String, String, Vec<f32>)>>>;

/// A result as the Redis cache keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CachedResult {
    scores: Vec<Score>,
    method: Method,
    truncated: bool,
    #[serde(default)]
    ticket: Option<crate::domain::TicketTriage>,
}

impl CachedResult {
    /// The result of a text against labels' `prototypes`, embedded as `embedded`.
    fn of_labels(prototypes: &Prototypes, embedded: &crate::models::Embedded) -> Self {
        Self {
            scores: prototypes.scores(&embedded.vector),
            method: prototypes.method(),
            truncated: embedded.truncated,
            ticket: None,
        }
    }
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
    default_examples: DefaultExamples,
    batches: Arc<Batches>,
    scan_limit: usize,
    /// `AI_TICKET_SENTIMENT_MODEL`, when set.
    sentiment_model: Option<String>,
}

/// Where batch jobs' messages go, and how jobs are worked on.
#[derive(Debug)]
struct Batches {
    jobs: JobQueue<batch::JobMessage>,
    settings: BatchSettings,
}

impl Ai {
    /// Operations over `db` and `pool`, announcing classifications through `outbox`, caching
    /// results in `redis`, queuing batch jobs on `amqp`, as `options` say.
    pub fn new(
        db: Db,
        pool: Arc<InferencePool>,
        outbox: Outbox,
        redis: Redis,
        amqp: &AmqpConfig,
        options: &AiOptions,
    ) -> Self {
        Self {
            db,
            pool,
            outbox,
            audit: AuditLog::new(SCHEMA.name),
            idempotency: Idempotency::new(SCHEMA.name),
            redis,
            cache_ttl: options.cache_ttl,
            prototypes: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            default_examples: moka::future::Cache::new(16),
            batches: Arc::new(Batches {
                jobs: JobQueue::new(amqp, crate::app::SERVICE_NAME, BATCH_QUEUE),
                settings: BatchSettings {
                    concurrency: options.batch_concurrency,
                    lease: options.batch_lease,
                },
            }),
            scan_limit: options.similar_scan_limit as usize,
            sentiment_model: Some(options.ticket_sentiment_model.clone())
                .filter(|id| !id.is_empty()),
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

    /// Erases every copy of the texts that came from `source` (a deleted submission):
    /// classifications, the examples their corrections made, batch items. Answers how many
    /// rows went.
    pub async fn erase_source(&self, tenant: TenantId, source: &str) -> anyhow::Result<u64> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let (erased, label_sets) =
            store::erase_source(&mut transaction, tenant, source, chrono::Utc::now()).await?;
        transaction.commit().await?;
        for label_set in label_sets {
            self.retrain(tenant, label_set);
        }
        Ok(erased)
    }

    /// Builds the prototypes and linear head of a label set's current version in the
    /// background, so that the next classification against it finds them ready.
    fn retrain(&self, tenant: TenantId, id: LabelSetId) {
        let ai = self.clone();
        tokio::spawn(async move {
            let Ok(model) = ai.model(None) else {
                return;
            };
            if let Err(error) = ai.tenant_prototypes(tenant, model, id).await {
                tracing::warn!(%error, label_set = %id, "training a label set failed");
            }
        });
    }

    /// Deletes idempotency keys past their retention.
    pub async fn forget_expired_keys(&self) -> anyhow::Result<()> {
        self.idempotency.forget_expired(&self.db).await?;
        Ok(())
    }

    /// The answer the call's idempotency key was first given in `scope`, if any.
    async fn replayed<T: prost::Message + Default>(
        &self,
        tenant: TenantId,
        key: Option<&IdempotencyKey>,
        scope: &str,
        request: &[u8],
    ) -> Result<Option<T>, Error> {
        if key.is_none() {
            return Ok(None);
        }
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let call = self.idempotency.call(tenant, scope, key, request);
        let answer = call.replay(&mut transaction).await?;
        transaction.commit().await?;
        Ok(answer)
    }

    /// Stores `classifications` and announces each, with `answer` kept for the call's
    /// idempotency key, in one transaction; answers what the key's first call was answered
    /// instead when a retry got there first.
    async fn record<T: prost::Message + Default>(
        &self,
        tenant: TenantId,
        key: Option<&IdempotencyKey>,
        scope: &str,
        request: &[u8],
        classifications: &[Classification],
        answer: T,
    ) -> Result<T, Error> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let call = self.idempotency.call(tenant, scope, key, request);
        if let Some(first) = call.replay(&mut transaction).await? {
            return Ok(first);
        }
        call.complete(&mut transaction, &answer).await?;
        self.store_classifications(&mut transaction, tenant, classifications, None)
            .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(answer)
    }

    /// Stores `classifications` and announces each (as items of `batch_job`, when given) in
    /// the caller's transaction.
    async fn store_classifications(
        &self,
        transaction: &mut PgConnection,
        tenant: TenantId,
        classifications: &[Classification],
        batch_job: Option<BatchJobId>,
    ) -> Result<(), Error> {
        for classification in classifications {
            store::insert_classification(transaction, tenant, classification).await?;
            self.outbox
                .enqueue(
                    transaction,
                    Some(tenant),
                    ClassificationCompleted {
                        classification: Some(crate::events::classification_to_proto(
                            classification,
                        )),
                        batch_job: batch_job
                            .map(|id| resource_name("batchJobs", id))
                            .unwrap_or_default(),
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// The prototypes of a label set of the tenant for `model`, with the set's id and version:
    /// from the cache when its version's are there (read without a lock: one indexed lookup),
    /// else computed from the set and its examples read under a share lock, so that they
    /// match its version.
    async fn tenant_prototypes(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        id: LabelSetId,
    ) -> Result<((LabelSetId, i64), Arc<Prototypes>), Error> {
        let not_found = || Error::LabelSetNotFound(resource_name("labelSets", id));
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let version = store::label_set_version(&mut transaction, tenant, id)
            .await?
            .ok_or_else(not_found)?;
        if let Some(prototypes) = self
            .prototypes
            .get(&prototypes_key(tenant, id, version, model))
            .await
        {
            transaction.commit().await?;
            return Ok(((id, version), prototypes));
        }
        let set = store::find_label_set(&mut transaction, tenant, id, Lock::Share)
            .await?
            .ok_or_else(not_found)?;
        let prototypes = self
            .set_prototypes(&mut transaction, tenant, model, &set)
            .await?;
        transaction.commit().await?;
        Ok(((set.id, set.version), prototypes))
    }

    /// The prototypes of `set` (read in `transaction`, which keeps its writers out) for
    /// `model`, from the cache or computed from its examples read in the same transaction.
    async fn set_prototypes(
        &self,
        transaction: &mut PgConnection,
        tenant: TenantId,
        model: &LoadedModel,
        set: &LabelSet,
    ) -> Result<Arc<Prototypes>, Error> {
        let key = prototypes_key(tenant, set.id, set.version, model);
        self.cached_prototypes(key, async {
            let examples =
                store::example_vectors(transaction, tenant, set.id, &model.key()).await?;
            build_prototypes(model, &set.labels, examples).await
        })
        .await
    }

    /// The prototypes cached under `key`, or those `build` computes (and caches): of callers
    /// that miss together, one computes and the others wait for its result (the shipped
    /// defaults embed 720 examples: computing them once per caller would swamp the model).
    async fn cached_prototypes(
        &self,
        key: (TenantId, String, String),
        build: impl Future<Output = Result<Prototypes, Error>>,
    ) -> Result<Arc<Prototypes>, Error> {
        self.prototypes
            .try_get_with(key, async { build.await.map(Arc::new) })
            .await
            .map_err(shared_error)
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
}

/// Whether a label set's labels suit its ticket field.
fn check_ticket_field(field: Option<TicketField>, labels: &[Label]) -> Result<(), FieldViolations> {
    match field {
        Some(field) if !field.accepts(labels) => Err(FieldViolations::single(
            "label_set.labels",
            format!(
                "a label set for the ticket {} has exactly the labels {}",
                field.as_str(),
                field.required_labels().unwrap_or_default().join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

fn taken_error(taken: Taken, set: &LabelSet) -> Error {
    match (taken, set.ticket_field) {
        (Taken::TicketField, Some(field)) => Error::TicketFieldTaken(field.as_str()),
        _ => Error::LabelSetNameTaken(set.display_name.clone()),
    }
}

fn example_name(example: &Example) -> String {
    format!("labelSets/{}/examples/{}", example.label_set_id, example.id)
}

fn unknown_label(field: &str, label: &str) -> FieldViolations {
    FieldViolations::single(field, format!("{label:?} is not a label of the label set"))
}

/// Where the prototypes of version `version` of label set `id` for `model` are cached.
fn prototypes_key(
    tenant: TenantId,
    id: LabelSetId,
    version: i64,
    model: &LoadedModel,
) -> (TenantId, String, String) {
    (tenant, format!("labelSets/{id}@{version}"), model.key())
}

/// The time since `started`, in whole microseconds: as stored, so that an answer says what
/// reading it back will.
fn elapsed_micros(started: std::time::Instant) -> Duration {
    Duration::from_micros(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// A classification of `text` from `source` made now with `model`: `result` as computed or
/// (`cached`) read from the cache under `hash`.
fn classification(
    model: &LoadedModel,
    source: String,
    hash: String,
    (result, cached): (CachedResult, bool),
    inference: Duration,
    text: String,
    label_set: Option<(LabelSetId, i64)>,
) -> Classification {
    Classification {
        id: crate::domain::ClassificationId::generate(),
        model: model.manifest().id.clone(),
        model_version: model.version().to_owned(),
        source,
        content_hash: hash,
        cached,
        inference: if cached { Duration::ZERO } else { inference },
        text,
        truncated: result.truncated,
        label_set,
        scores: result.scores,
        method: result.method,
        corrected_label: None,
        ticket: result.ticket,
        created_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
    }
}

async fn embed_one(model: &LoadedModel, text: &str) -> Result<Vec<f32>, Error> {
    let mut embedded = model.embed(vec![text.to_owned()]).await?;
    Ok(embedded.remove(0).vector)
}

/// The failure of a computation several callers waited for ([`moka`]'s `try_get_with`):
/// the computing caller's own, another caller's told again.
fn shared_error(error: Arc<Error>) -> Error {
    match Arc::try_unwrap(error) {
        Ok(error) => error,
        Err(shared) => match &*shared {
            Error::Inference(InferenceError::Busy) => Error::Inference(InferenceError::Busy),
            Error::Inference(InferenceError::Expired) => Error::Inference(InferenceError::Expired),
            Error::Inference(InferenceError::Stopped) => Error::Inference(InferenceError::Stopped),
            other => Error::from(anyhow::anyhow!("{other}")),
        },
    }
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
    let values = labels.iter().map(|label| label.value.clone()).collect();
    // Training takes a few milliseconds per hundred examples: off the async threads.
    let prototypes = tokio::task::spawn_blocking(move || Prototypes::trained(values, members))
        .await
        .map_err(anyhow::Error::from)??;
    Ok(prototypes)
}
