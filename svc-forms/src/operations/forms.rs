//! Creating, reading, listing, updating and archiving forms.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext};
use platform::error::{CommonError, FieldViolations};
use platform::paging::{fetch_limit, split_page};
use serde_json::json;

use super::{Forms, load};
use crate::domain::{Definition, Field, Form, FormId, FormSlug, FormState, Settings, SettingsPart};
use crate::error::Error;
use crate::store::{self, FormPosition, FormRef};

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewForm {
    /// The slug asked for; derived from the title when `None`.
    pub slug: Option<FormSlug>,
    /// Title, description and fields of the draft.
    pub draft: Definition,
    /// Settings.
    pub settings: Settings,
}

/// A validated update: the parts its mask names.
#[derive(Debug, Clone, Default)]
pub struct FormChanges {
    /// New draft title.
    pub title: Option<String>,
    /// New draft description.
    pub description: Option<String>,
    /// New draft fields (checked together).
    pub fields: Option<Vec<Field>>,
    /// The settings sent, and which parts of them to take.
    pub settings: Option<(Settings, Vec<SettingsPart>)>,
    /// The version the client read, if it sent an etag.
    pub expected_version: Option<i64>,
}

/// A page of forms and where the next starts.
#[derive(Debug)]
pub struct FormPage {
    /// The forms.
    pub forms: Vec<Form>,
    /// Where the next page starts, when there is one.
    pub next: Option<FormPosition>,
}

/// Slugs tried with a number before giving up on a derived slug.
const DERIVED_SLUG_ATTEMPTS: u32 = 20;

impl Forms {
    /// Creates a form as a draft.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, context: &RequestContext, new: NewForm) -> Result<Form, Error> {
        let tenant = context.authorize(Permission::FormsWrite)?;
        let now = Utc::now().trunc_subsecs(6);
        let derived = new.slug.is_none();
        let base = new
            .slug
            .unwrap_or_else(|| FormSlug::from_title(&new.draft.title));
        let mut form = Form {
            id: FormId::generate(),
            tenant_id: tenant,
            slug: base.clone(),
            draft: new.draft,
            settings: new.settings,
            state: FormState::Draft,
            state_before_archive: None,
            published_version: 0,
            draft_changed: true,
            creator: context.principal_name(),
            version: 1,
            created_at: now,
            updated_at: now,
            published_at: None,
            archived_at: None,
        };
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut attempt = 1;
        while !store::insert_form(&mut transaction, &form).await? {
            if !derived || attempt >= DERIVED_SLUG_ATTEMPTS {
                return Err(Error::SlugTaken(form.slug));
            }
            attempt += 1;
            form.slug = base.with_suffix(attempt);
        }
        let details = json!({"slug": form.slug.as_str(), "title": form.draft.title});
        self.audit(&mut transaction, context, &form, "create", details)
            .await?;
        transaction.commit().await?;
        tracing::info!(form_id = %form.id, "form created");
        Ok(form)
    }

    /// Reads a form with its draft.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, context: &RequestContext, form: &FormRef) -> Result<Form, Error> {
        let tenant = context.authorize(Permission::FormsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        transaction.commit().await?;
        Ok(form)
    }

    /// One page of forms, most recently updated first.
    #[tracing::instrument(skip_all)]
    pub async fn list(
        &self,
        context: &RequestContext,
        after: Option<FormPosition>,
        state: Option<FormState>,
        search: Option<&str>,
        page_size: usize,
    ) -> Result<FormPage, Error> {
        let tenant = context.authorize(Permission::FormsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let limit = fetch_limit(page_size);
        let forms =
            store::list_forms(&mut transaction, tenant, after, state, search, limit).await?;
        transaction.commit().await?;
        let (forms, next) = split_page(forms, page_size, |form| (form.updated_at, form.id));
        Ok(FormPage { forms, next })
    }

    /// Applies `changes` to a form's draft and settings.
    #[tracing::instrument(skip_all)]
    pub async fn update(
        &self,
        context: &RequestContext,
        form: &FormRef,
        changes: FormChanges,
    ) -> Result<Form, Error> {
        let tenant = context.authorize(Permission::FormsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut form = load(&mut transaction, tenant, form, true).await?;
        if form.state == FormState::Archived {
            return Err(Error::FormArchived);
        }
        if changes
            .expected_version
            .is_some_and(|expected| expected != form.version)
        {
            return Err(CommonError::EtagMismatch("form").into());
        }
        let mut changed = Vec::new();
        let draft = &mut form.draft;
        if let Some(title) = changes.title.filter(|title| *title != draft.title) {
            draft.title = title;
            changed.push("title");
        }
        if let Some(description) = changes
            .description
            .filter(|description| *description != draft.description)
        {
            draft.description = description;
            changed.push("description");
        }
        if let Some(fields) = changes.fields.filter(|fields| *fields != draft.fields) {
            draft.fields = fields;
            changed.push("fields");
        }
        if !changed.is_empty() {
            form.draft_changed = true;
        }
        if let Some((settings, parts)) = changes.settings {
            let previous = form.settings.clone();
            for part in parts {
                form.settings.apply(part, &settings);
            }
            if let Some((field, reason)) = form.settings.conflict() {
                return Err(FieldViolations::single(format!("form.{field}"), reason).into());
            }
            if form.settings != previous {
                changed.push("settings");
            }
        }
        if changed.is_empty() {
            transaction.commit().await?;
            return Ok(form);
        }
        (form.version, form.updated_at) = store::update_form(&mut transaction, &form).await?;
        self.audit(
            &mut transaction,
            context,
            &form,
            "update",
            json!({"changed": changed}),
        )
        .await?;
        transaction.commit().await?;
        Ok(form)
    }

    /// Archives a form: it takes no submissions and cannot change until unarchived.
    #[tracing::instrument(skip_all)]
    pub async fn archive(&self, context: &RequestContext, form: &FormRef) -> Result<Form, Error> {
        let tenant = context.authorize(Permission::FormsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut form = load(&mut transaction, tenant, form, true).await?;
        if form.state == FormState::Archived {
            transaction.commit().await?;
            return Ok(form);
        }
        form.state_before_archive = Some(form.state);
        form.state = FormState::Archived;
        form.archived_at = Some(Utc::now());
        (form.version, form.updated_at) = store::update_form(&mut transaction, &form).await?;
        self.audit(&mut transaction, context, &form, "archive", json!({}))
            .await?;
        transaction.commit().await?;
        Ok(form)
    }

    /// Returns an archived form to the state it had.
    #[tracing::instrument(skip_all)]
    pub async fn unarchive(&self, context: &RequestContext, form: &FormRef) -> Result<Form, Error> {
        let tenant = context.authorize(Permission::FormsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut form = load(&mut transaction, tenant, form, true).await?;
        let Some(previous) = form
            .state_before_archive
            .filter(|_| form.state == FormState::Archived)
        else {
            return Err(Error::FormNotArchived);
        };
        form.state = previous;
        form.state_before_archive = None;
        form.archived_at = None;
        (form.version, form.updated_at) = store::update_form(&mut transaction, &form).await?;
        let details = json!({"state": previous.as_str()});
        self.audit(&mut transaction, context, &form, "unarchive", details)
            .await?;
        transaction.commit().await?;
        Ok(form)
    }
}
