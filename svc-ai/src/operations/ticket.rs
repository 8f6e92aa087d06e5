//! Ticket triage: a ticket's category, priority and sentiment in one inference.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use proto::formflow::ai::v1 as wire;
use serde_json::json;

use super::{Ai, CachedResult, SetRef, build_prototypes};
use crate::domain::{Classification, ClassificationId, LabelSetId, TicketTriage};
use crate::error::Error;
use crate::pool::LoadedModel;
use crate::prototypes::{Prototypes, content_hash};
use crate::store::ExampleVector;
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
        let category = match category_label_set {
            Some(id) => self.field_prototypes(tenant, model, SetRef::Id(id), TicketField::Category),
            None => self.field_prototypes(
                tenant,
                model,
                SetRef::Field(TicketField::Category),
                TicketField::Category,
            ),
        }
        .await?;
        let priority = self
            .field_prototypes(
                tenant,
                model,
                SetRef::Field(TicketField::Priority),
                TicketField::Priority,
            )
            .await?;
        let sentiment = self
            .field_prototypes(
                tenant,
                model,
                SetRef::Field(TicketField::Sentiment),
                TicketField::Sentiment,
            )
            .await?;

        let text = triage::ticket_text(subject, body);
        let scope = format!(
            "ticket|{}|{}|{}",
            category.scope(TicketField::Category),
            priority.scope(TicketField::Priority),
            sentiment.scope(TicketField::Sentiment)
        );
        let hash = content_hash(&model.key(), &scope, &text);
        let (result, cached, inference) = match self
            .cached_results(tenant, std::slice::from_ref(&hash))
            .await
            .remove(0)
        {
            Some((result, cached)) if result.ticket.is_some() => (result, cached, Duration::ZERO),
            _ => {
                let started = Instant::now();
                let embedding = model.embed(vec![text.clone()]).await?.remove(0);
                let inference = Duration::from_micros(
                    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                );
                let vector = &embedding.vector;
                let category_scores = category.prototypes.scores(vector);
                let top_category = category_scores.first().map(|score| score.label.as_str());
                let ticket = TicketTriage {
                    priority: triage::with_cues(
                        TicketField::Priority,
                        &text,
                        top_category,
                        &priority.prototypes.scores(vector),
                    ),
                    sentiment: triage::with_cues(
                        TicketField::Sentiment,
                        &text,
                        top_category,
                        &sentiment.prototypes.scores(vector),
                    ),
                    urgency_cues: triage::urgency_cues(&text)
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    priority_label_set: priority.label_set.map(|(id, _)| id),
                    sentiment_label_set: sentiment.label_set.map(|(id, _)| id),
                };
                let result = CachedResult {
                    method: category.prototypes.method(),
                    scores: category_scores,
                    truncated: embedding.truncated,
                    ticket: Some(ticket),
                };
                self.cache_results(tenant, vec![(hash.clone(), serde_json::to_string(&result))])
                    .await;
                (result, false, inference)
            }
        };
        Ok(Classification {
            id: ClassificationId::generate(),
            model: model.manifest().id.clone(),
            model_version: model.version().to_owned(),
            source,
            content_hash: hash,
            cached,
            inference,
            text,
            truncated: result.truncated,
            label_set: category.label_set,
            scores: result.scores,
            method: result.method,
            corrected_label: None,
            ticket: result.ticket,
            created_at: Utc::now().trunc_subsecs(6),
        })
    }

    /// The prototypes of a triage field: of the tenant's label set `set`, or the shipped
    /// default when the tenant has none for the field.
    async fn field_prototypes(
        &self,
        tenant: TenantId,
        model: &LoadedModel,
        set: SetRef,
        field: TicketField,
    ) -> Result<FieldPrototypes, Error> {
        if let Some((set, prototypes)) = self.tenant_prototypes(tenant, model, set).await? {
            return Ok(FieldPrototypes {
                label_set: Some((set.id, set.version)),
                prototypes,
            });
        }
        // The shipped defaults are every tenant's: cached under the nil tenant.
        let key = (
            TenantId::from(uuid::Uuid::nil()),
            format!("default:{}@{}", field.as_str(), *DEFAULTS_VERSION),
            model.key(),
        );
        let prototypes = match self.prototypes.get(&key) {
            Some(prototypes) => prototypes,
            None => {
                let shipped = triage::default_set(field);
                let examples = shipped
                    .labels
                    .iter()
                    .flat_map(|label| {
                        label.examples.iter().map(|text| ExampleVector {
                            label: label.value.clone(),
                            text: text.clone(),
                            embedding: None,
                        })
                    })
                    .collect();
                let prototypes =
                    Arc::new(build_prototypes(model, &shipped.labels(), examples).await?);
                self.prototypes.insert(key, prototypes.clone());
                prototypes
            }
        };
        Ok(FieldPrototypes {
            label_set: None,
            prototypes,
        })
    }
}
