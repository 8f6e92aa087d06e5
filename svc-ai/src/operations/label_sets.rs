//! Label sets and their examples: create (from scratch or from a shipped default), read,
//! list, update, delete.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext};
use platform::wire::resource_name;
use serde_json::json;

use super::{Ai, Page, check_ticket_field, embed_one, example_name, taken_error, unknown_label};
use crate::domain::{Example, ExampleId, Label, LabelSet, LabelSetId, MAX_EXAMPLES};
use crate::error::Error;
use crate::store::{self, Lock, NewExample};
use crate::triage::{self, TicketField};

/// A label set to create.
#[derive(Debug, Clone)]
pub struct NewLabelSet {
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Labels (empty when they come from a shipped default).
    pub labels: Vec<Label>,
    /// What ClassifyTicket uses it for.
    pub ticket_field: Option<TicketField>,
    /// The shipped label set whose labels and examples it starts from.
    pub from_default: Option<TicketField>,
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
    /// New ticket field (`Some(None)`: none).
    pub ticket_field: Option<Option<TicketField>>,
    /// The version the caller read (from its etag).
    pub expected_version: Option<i64>,
}

impl Ai {
    /// Creates a label set, from a shipped default's labels and examples when `new` says so.
    pub async fn create_label_set(
        &self,
        context: &RequestContext,
        new: NewLabelSet,
    ) -> Result<LabelSet, Error> {
        let tenant = context.authorize(Permission::AiUse)?;
        let (labels, examples) = match new.from_default {
            Some(field) => {
                let model = self.model(None)?;
                let examples = self.default_examples(model, field).await?;
                let labels = triage::default_set(field).labels();
                (labels, Some((model.key(), examples)))
            }
            None => (new.labels, None),
        };
        check_ticket_field(new.ticket_field, &labels)?;
        let now = Utc::now().trunc_subsecs(6);
        let mut set = LabelSet {
            id: LabelSetId::generate(),
            tenant_id: tenant,
            display_name: new.display_name,
            description: new.description,
            labels,
            version: 1,
            example_count: 0,
            ticket_field: new.ticket_field,
            created_at: now,
            updated_at: now,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if let Err(taken) = store::insert_label_set(&mut transaction, &set).await? {
            return Err(taken_error(taken, &set));
        }
        if let Some((model_key, examples)) = &examples {
            for (label, text, embedding) in examples.iter() {
                let example = Example {
                    id: ExampleId::generate(),
                    label_set_id: set.id,
                    label: label.clone(),
                    text: text.clone(),
                    classification_id: None,
                    created_at: now,
                };
                store::upsert_example(
                    &mut transaction,
                    tenant,
                    NewExample {
                        example: &example,
                        embedding_model: model_key,
                        embedding,
                    },
                )
                .await?;
            }
            set.example_count = i64::try_from(examples.len()).unwrap_or(i64::MAX);
        }
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "label_set.create",
                resource_name("labelSets", set.id),
                json!({
                    "labels": set.labels.len(),
                    "ticket_field": set.ticket_field.map(TicketField::as_str),
                    "from_default": new.from_default.map(TicketField::as_str),
                }),
            )
            .await?;
        transaction.commit().await?;
        if examples.is_some() {
            self.retrain(tenant, set.id);
        }
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
        let set = store::find_label_set(&mut transaction, tenant, id, Lock::Share).await?;
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
        if let Some(ticket_field) = changes.ticket_field {
            set.ticket_field = ticket_field;
            details["ticket_field"] = json!(ticket_field.map(TicketField::as_str));
        }
        check_ticket_field(set.ticket_field, &set.labels)?;
        set.version += 1;
        set.updated_at = Utc::now().trunc_subsecs(6);
        if let Err(taken) = store::update_label_set(&mut transaction, &set).await? {
            return Err(taken_error(taken, &set));
        }
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "label_set.update",
                resource_name("labelSets", id),
                details,
            )
            .await?;
        transaction.commit().await?;
        self.retrain(tenant, id);
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
        self.audit
            .record_by(
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
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "label_example.create",
                example_name(&example),
                json!({"label": example.label}),
            )
            .await?;
        transaction.commit().await?;
        self.retrain(tenant, label_set);
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
        if store::find_label_set(&mut transaction, tenant, label_set, Lock::Share)
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
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "label_example.delete",
                name,
                json!({}),
            )
            .await?;
        transaction.commit().await?;
        self.retrain(tenant, label_set);
        Ok(())
    }
}
