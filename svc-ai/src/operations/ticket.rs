//! Ticket triage: a ticket's category, priority and sentiment in one inference.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use platform::context::{Permission, RequestContext, TenantId};
use platform::wire::resource_name;
use proto::formflow::ai::v1 as wire;
use serde_json::json;

use super::{Ai, CachedResult, build_prototypes, shared_error};
use crate::domain::MAX_TEXTS;
use crate::domain::{Classification, LabelSetId, TicketTriage};
use crate::error::Error;
use crate::models::Embedded;
use crate::pool::LoadedModel;
use crate::prototypes::{Prototypes, content_hash};
use crate::store::{self, ExampleVector};
use crate::triage::{self, TicketField};

/// A ClassifyTicket call, checked.
#[derive(Debug, Clone)]
pub struct TicketInput {
    /// Model id; `None` is the default embedding model.
    pub model: Option<String>,
    /// The ticket's subject.
    pub subject: String,
    /// Its body.
    pub body: String,
    /// The category label set asked for, instead of the tenant's or the shipped one.
    pub category_label_set: Option<LabelSetId>,
    /// What the ticket comes from.
    pub source: String,
}

/// What names the shipped defaults and the cues in cache keys: a hash of the defaults' file
/// and the cues' version (bump it when a cue changes).
static DEFAULTS_VERSION: LazyLock<String> = LazyLock::new(|| {
    content_hash(
        include_str!("../../triage/defaults.json"),
        triage::CUES_VERSION,
        "",
    )[..16]
        .to_owned()
});

/// The prototypes of one triage field, and the tenant's label set they come from, if any.
struct FieldPrototypes {
    label_set: Option<(LabelSetId, i64)>,
    prototypes: Arc<Prototypes>,
}

impl FieldPrototypes {
    fn scope(&self, field: TicketField) -> String {
        match self.label_set {
            Some((id, version)) => format!("labelSets/{id}@{version}"),
            None => format!("default:{}@{}", field.as_str(), *DEFAULTS_VERSION),
        }
    }
}

/// The three label sets of a triage, with their prototypes.
pub(super) struct TicketLabelSets {
    category: FieldPrototypes,
    priority: FieldPrototypes,
    sentiment: FieldPrototypes,
    /// The id and version of the model the sentiment's prototypes are of.
    sentiment_model: (String, String),
    /// Whether that model is another than the one of the category's and priority's.
    sentiment_apart: bool,
}

impl TicketLabelSets {
    /// What names these label sets (and their versions) in cache keys.
    pub(super) fn scope(&self) -> String {
        let (id, version) = &self.sentiment_model;
        format!(
            "ticket|{}|{}|{}{}",
            self.category.scope(TicketField::Category),
            self.priority.scope(TicketField::Priority),
            self.sentiment.scope(TicketField::Sentiment),
            if self.sentiment_apart {
                format!("|sentiment by {id}@{version}")
            } else {
                String::new()
            }
        )
    }

    /// The category label set the triage names, with its version; `None` for the default.
    pub(super) fn category_label_set(&self) -> Option<(LabelSetId, i64)> {
        self.category.label_set
    }

    /// The triage of `text`, embedded as `embedded`, and as `sentiment` by the sentiment's
    /// model when that is another ([`Ai::embed_ticket`]).
    pub(super) fn triage(
        &self,
        text: &str,
        embedded: &Embedded,
        sentiment: Option<&Embedded>,
    ) -> CachedResult {
        let vector = &embedded.vector;
        let sentiment_vector = &sentiment.unwrap_or(embedded).vector;
        let category_scores = self.category.prototypes.scores(vector);
        let top_category = category_scores.first().map(|score| score.label.as_str());
        let ticket = TicketTriage {
            priority: triage::with_cues(
                TicketField::Priority,
                text,
                top_category,
                &self.priority.prototypes.scores(vector),
            ),
            sentiment: triage::with_cues(
                TicketField::Sentiment,
                text,
                top_category,
                &self.sentiment.prototypes.scores(sentiment_vector),
            ),
            urgency_cues: triage::urgency_cues(text)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            priority_label_set: self.priority.label_set.map(|(id, _)| id),
            sentiment_label_set: self.sentiment.label_set.map(|(id, _)| id),
            sentiment_model: self.sentiment_model.0.clone(),
            sentiment_model_version: self.sentiment_model.1.clone(),
        };
        CachedResult {
            method: self.category.prototypes.method(),
            scores: category_scores,
            truncated: embedded.truncated || sentiment.is_some_and(|embedded| embedded.truncated),
            ticket: Some(ticket),
        }
    }
}

impl Ai {
    /// Triages a ticket, stores the result and announces it (as Classify does, with the
    /// call's `Idempotency-Key`).
    pub async fn classify_ticket(
        &self,
        context: &RequestContext,
        input: TicketInput,
    ) -> Result<wire::Classification, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let key = context.idempotency_key.as_ref();
        let request = platform::idempotency::canonical_json(&json!({
            "model": input.model,
            "subject": input.subject,
            "body": input.body,
            "category_label_set": input.category_label_set.map(|id| id.to_string()),
            "source": input.source,
        }));
        if let Some(answer) = self
            .replayed(tenant, key, "ClassifyTicket", &request)
            .await?
        {
            return Ok(answer);
        }
        let model = self.model(input.model.as_deref())?;
        let classification = self
            .ticket_classification(
                tenant,
                model,
                input.category_label_set,
                (&input.subject, &input.body),
                input.source,
            )
            .await?;
        let answer = crate::events::classification_to_proto(&classification);
        self.record(
            tenant,
            key,
            "ClassifyTicket",
            &request,
            std::slice::from_ref(&classification),
            answer,
        )
        .await
    }

    /// The triage of a ticket (`subject`, `body`) from `source` with `model`, from the cache
    /// or computed (and cached), not stored.
    pub(super) async fn ticket_classification(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        category_label_set: Option<LabelSetId>,
        (subject, body): (&str, &str),
        source: String,
    ) -> Result<Classification, Error> {
        let sets = self
            .ticket_label_sets(tenant, model, category_label_set)
            .await?;
        let text = triage::ticket_text(subject, body);
        let hash = content_hash(&model.key(), &sets.scope(), &text);
        let (result, cached, inference) = match self
            .cached_results(tenant, std::slice::from_ref(&hash))
            .await
            .remove(0)
        {
            Some((result, cached)) if result.ticket.is_some() => (result, cached, Duration::ZERO),
            _ => {
                let started = Instant::now();
                let (embedded, sentiment) = self.embed_ticket(model, &text).await?;
                let inference = super::elapsed_micros(started);
                let result = sets.triage(&text, &embedded, sentiment.as_ref());
                self.cache_results(tenant, vec![(hash.clone(), serde_json::to_string(&result))])
                    .await;
                (result, false, inference)
            }
        };
        Ok(super::classification(
            model,
            source,
            hash,
            (result, cached),
            inference,
            text,
            sets.category.label_set,
        ))
    }

    /// The model that reads the sentiment of a ticket whose category and priority `model`
    /// reads: `AI_TICKET_SENTIMENT_MODEL`'s, else `model`.
    fn sentiment_model<'a>(&'a self, model: &'a LoadedModel) -> &'a LoadedModel {
        self.sentiment_model
            .as_deref()
            .and_then(|id| self.pool.get(id))
            .unwrap_or(model)
    }

    /// A ticket's `text` embedded by `model` and, when the sentiment's model is another, by
    /// that one too, both at once.
    pub(super) async fn embed_ticket(
        &self,
        model: &LoadedModel,
        text: &str,
    ) -> Result<(Embedded, Option<Embedded>), Error> {
        let (mut embedded, sentiment) = tokio::try_join!(
            async {
                model
                    .embed(vec![text.to_owned()])
                    .await
                    .map_err(Error::from)
            },
            self.sentiment_embedding(model, text)
        )?;
        Ok((embedded.remove(0), sentiment))
    }

    /// `text` embedded by the sentiment's model when that is not `model`.
    async fn sentiment_embedding(
        &self,
        model: &LoadedModel,
        text: &str,
    ) -> Result<Option<Embedded>, Error> {
        let sentiment_model = self.sentiment_model(model);
        if sentiment_model.manifest().id == model.manifest().id {
            return Ok(None);
        }
        Ok(Some(
            sentiment_model
                .embed(vec![text.to_owned()])
                .await?
                .remove(0),
        ))
    }

    /// The label sets a ticket of `tenant` is triaged with: the tenant's own where it has
    /// them (`category_label_set` for the category, when given), else the shipped defaults;
    /// the sentiment's prototypes are of the sentiment's model. The tenant's are read in one
    /// transaction, with their examples when their prototypes are not cached.
    pub(super) async fn ticket_label_sets(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        category_label_set: Option<LabelSetId>,
    ) -> Result<TicketLabelSets, Error> {
        let sentiment_model = self.sentiment_model(model);
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let sets =
            store::find_ticket_label_sets(&mut transaction, tenant, category_label_set).await?;
        let mut fields = Vec::with_capacity(3);
        for field in [
            TicketField::Category,
            TicketField::Priority,
            TicketField::Sentiment,
        ] {
            let set = match (field, category_label_set) {
                (TicketField::Category, Some(id)) => Some(
                    sets.iter()
                        .find(|set| set.id == id)
                        .ok_or_else(|| Error::LabelSetNotFound(resource_name("labelSets", id)))?,
                ),
                _ => sets.iter().find(|set| set.ticket_field == Some(field)),
            };
            let model = match field {
                TicketField::Sentiment => sentiment_model,
                TicketField::Category | TicketField::Priority => model,
            };
            fields.push(match set {
                Some(set) => FieldPrototypes {
                    label_set: Some((set.id, set.version)),
                    prototypes: self
                        .set_prototypes(&mut transaction, tenant, model, set)
                        .await?,
                },
                None => FieldPrototypes {
                    label_set: None,
                    prototypes: self.default_prototypes(model, field).await?,
                },
            });
        }
        transaction.commit().await?;
        let [category, priority, sentiment] =
            <[FieldPrototypes; 3]>::try_from(fields).unwrap_or_else(|_| unreachable!());
        Ok(TicketLabelSets {
            category,
            priority,
            sentiment,
            sentiment_model: (
                sentiment_model.manifest().id.clone(),
                sentiment_model.version().to_owned(),
            ),
            sentiment_apart: sentiment_model.manifest().id != model.manifest().id,
        })
    }

    /// The prototypes of the shipped default label set of a triage field: every tenant's,
    /// cached under the nil tenant.
    async fn default_prototypes(
        &self,
        model: &LoadedModel,
        field: TicketField,
    ) -> Result<Arc<Prototypes>, Error> {
        let key = (
            TenantId::from(uuid::Uuid::nil()),
            format!("default:{}@{}", field.as_str(), *DEFAULTS_VERSION),
            model.key(),
        );
        self.cached_prototypes(key, async {
            let examples = self
                .default_examples(model, field)
                .await?
                .iter()
                .map(|(label, text, embedding)| ExampleVector {
                    label: label.clone(),
                    text: text.clone(),
                    embedding: Some(embedding.clone()),
                })
                .collect();
            build_prototypes(model, &triage::default_set(field).labels(), examples).await
        })
        .await
    }

    /// The shipped examples of a triage field's default label set, embedded by `model`:
    /// computed once per process and model (several hundred texts), then shared by every
    /// tenant's triage and every label set copied from the default.
    pub(super) async fn default_examples(
        &self,
        model: &LoadedModel,
        field: TicketField,
    ) -> Result<Arc<Vec<(String, String, Vec<f32>)>>, Error> {
        let embed = async {
            let texts: Vec<(String, String)> = triage::default_set(field)
                .labels
                .iter()
                .flat_map(|label| {
                    let value = &label.value;
                    label
                        .examples
                        .iter()
                        .map(|text| (value.clone(), text.clone()))
                })
                .collect();
            let mut embeddings = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(MAX_TEXTS) {
                let chunk = chunk.iter().map(|(_, text)| text.clone()).collect();
                embeddings.extend(model.embed(chunk).await?);
            }
            let examples = texts.into_iter().zip(embeddings);
            Ok(Arc::new(
                examples
                    .map(|((label, text), embedded)| (label, text, embedded.vector))
                    .collect(),
            ))
        };
        self.default_examples
            .try_get_with((field, model.key()), embed)
            .await
            .map_err(shared_error)
    }
}
