//! Publishing a form's draft as an immutable version, reading versions, and what submitters
//! see of a published form.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext, TenantId};
use platform::error::CommonError;
use platform::paging::{fetch_limit, split_page};
use serde_json::json;

use super::{Forms, load};
use crate::domain::{Form, FormId, FormState, FormVersion, ViewId};
use crate::error::Error;
use crate::events;
use crate::store::{self, FormRef};

/// A page of versions and the version the next page starts before.
#[derive(Debug)]
pub struct VersionPage {
    /// The versions, newest first.
    pub versions: Vec<FormVersion>,
    /// The next page's versions are older than this one.
    pub next_before: Option<i32>,
}

impl Forms {
    /// Publishes the draft as the next version and emits `forms.form.published`.
    #[tracing::instrument(skip_all)]
    pub async fn publish(
        &self,
        context: &RequestContext,
        form: &FormRef,
        expected_version: Option<i64>,
    ) -> Result<(Form, FormVersion), Error> {
        let tenant = context.authorize(Permission::FormsWrite)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut form = load(&mut transaction, tenant, form, true).await?;
        if form.state == FormState::Archived {
            return Err(Error::FormArchived);
        }
        if expected_version.is_some_and(|expected| expected != form.version) {
            return Err(CommonError::EtagMismatch("form").into());
        }
        if !form.draft.fields.iter().any(|field| field.kind.is_input()) {
            return Err(Error::NothingToPublish);
        }
        // Postgres keeps microseconds: the version returned must equal the version read back.
        let now = Utc::now().trunc_subsecs(6);
        let version = FormVersion {
            form_id: form.id,
            version: form.published_version + 1,
            definition: form.draft.clone(),
            publisher: context.principal_name(),
            created_at: now,
        };
        store::insert_version(&mut transaction, tenant, &version).await?;
        form.state = FormState::Published;
        form.published_version = version.version;
        form.draft_changed = false;
        form.published_at = Some(now);
        (form.version, form.updated_at) = store::update_form(&mut transaction, &form).await?;
        let details = json!({"version": version.version});
        self.audit(&mut transaction, context, &form, "publish", details)
            .await?;
        self.enqueue(&mut transaction, tenant, events::published(&form, &version))
            .await?;
        transaction.commit().await?;
        self.outbox.notify();
        tracing::info!(form_id = %form.id, version = version.version, "form published");
        Ok((form, version))
    }

    /// One page of a form's versions, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn list_versions(
        &self,
        context: &RequestContext,
        form: &FormRef,
        before: Option<i32>,
        page_size: usize,
    ) -> Result<VersionPage, Error> {
        let tenant = context.authorize(Permission::FormsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let limit = fetch_limit(page_size);
        let versions =
            store::list_versions(&mut transaction, tenant, form.id, before, limit).await?;
        transaction.commit().await?;
        let (versions, next_before) = split_page(versions, page_size, |version| version.version);
        Ok(VersionPage {
            versions,
            next_before,
        })
    }

    /// A published version of a form.
    #[tracing::instrument(skip_all)]
    pub async fn get_version(
        &self,
        context: &RequestContext,
        form: &FormRef,
        version: i32,
    ) -> Result<FormVersion, Error> {
        let tenant = context.authorize(Permission::FormsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let found = version_of(&mut transaction, tenant, form.id, version).await?;
        transaction.commit().await?;
        Ok(found)
    }

    /// What a submitter sees: the form's latest published version and whether it takes
    /// submissions now, counted as a view whose id is the start token to submit with (`None`:
    /// shown again to the same submitter, with the token they have). Without credentials
    /// only forms that take public submissions are found.
    #[tracing::instrument(skip_all)]
    pub async fn get_published(
        &self,
        context: &RequestContext,
        form: &FormRef,
        new_view: bool,
    ) -> Result<(Form, FormVersion, Option<ViewId>), Error> {
        let tenant = submitters_tenant(context)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let found = visible_to_submitter(context, &form, Permission::FormsRead)?;
        if form.published_version == 0 || form.state == FormState::Archived {
            return Err(Error::FormNotFound(found));
        }
        let version = version_of(&mut transaction, tenant, form.id, form.published_version).await?;
        let view = if new_view {
            // Random, not time-ordered: a token must not be guessable.
            let view = ViewId::from(uuid::Uuid::new_v4());
            store::insert_view(&mut transaction, tenant, form.id, view).await?;
            Some(view)
        } else {
            None
        };
        transaction.commit().await?;
        Ok((form, version, view))
    }
}

/// The tenant a possibly anonymous caller submits in: its own, or the routed one.
pub(super) fn submitters_tenant(context: &RequestContext) -> Result<TenantId, Error> {
    Ok(match context.principal {
        Some(_) => context.acting_tenant()?,
        None => context.routed_tenant()?,
    })
}

/// Whether the caller may see `form` as a submitter: anyone when it takes public
/// submissions; otherwise callers with `permission` (anonymous ones find nothing, so a
/// private form does not reveal it exists). The form's name, for a NOT_FOUND.
pub(super) fn visible_to_submitter(
    context: &RequestContext,
    form: &Form,
    permission: Permission,
) -> Result<String, Error> {
    let name = events::form_name(form);
    if form.settings.public_submissions {
        return Ok(name);
    }
    if context.principal.is_none() {
        return Err(Error::FormNotFound(name));
    }
    context.authorize_on(form.tenant_id, permission)?;
    Ok(name)
}

async fn version_of(
    transaction: &mut sqlx::PgConnection,
    tenant: TenantId,
    form: FormId,
    version: i32,
) -> Result<FormVersion, Error> {
    store::get_version(transaction, tenant, form, version)
        .await?
        .ok_or_else(|| Error::VersionNotFound(format!("forms/{form}/versions/{version}")))
}
