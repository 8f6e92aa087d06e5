//! Submitting a form, and reading and deleting its submissions. A submission, its event and
//! its idempotency key are written in one transaction, so an acknowledged submission always
//! has exactly one event and a retry with the same key never makes a second one.

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext};
use platform::error::FieldViolations;
use serde_json::{Map, Value, json};

use super::versions::{submitters_tenant, visible_to_submitter};
use super::{Forms, load};
use crate::domain::{Submission, SubmissionId, ViewId, check_answers};
use crate::error::Error;
use crate::events::{self, submission_to_proto};
use crate::store::{self, FormRef, SubmissionFilter, SubmissionPosition};

/// A submission as sent.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    /// The form it answers.
    pub form: FormRef,
    /// The answers by field id, not checked yet.
    pub data: Map<String, Value>,
    /// The start token of the view it was filled in.
    pub start_token: Option<ViewId>,
    /// Whether the honeypot field was filled, as only robots do.
    pub honeypot_filled: bool,
}

/// What a listing of submissions shows.
#[derive(Debug, Clone, Default)]
pub struct SubmissionQuery {
    /// Which submissions.
    pub filter: SubmissionFilter,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    /// Where the page starts.
    pub after: Option<SubmissionPosition>,
    /// How many at most.
    pub page_size: usize,
}

/// A page of submissions and where the next starts.
#[derive(Debug)]
pub struct SubmissionPage {
    /// The submissions.
    pub submissions: Vec<Submission>,
    /// Where the next page starts, when there is one.
    pub next: Option<SubmissionPosition>,
}

/// A submission of `form`, or SUBMISSION_NOT_FOUND.
async fn find_submission(
    transaction: &mut sqlx::PgConnection,
    tenant: platform::context::TenantId,
    form: crate::domain::FormId,
    id: SubmissionId,
) -> Result<Submission, Error> {
    store::get_submission(transaction, tenant, form, id)
        .await?
        .ok_or_else(|| Error::SubmissionNotFound(format!("forms/{form}/submissions/{id}")))
}

/// How long a start token is good for.
const START_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// The least time a person takes to fill a form.
const MIN_FILL_TIME: chrono::Duration = chrono::Duration::seconds(2);

/// Whether `token` is a view of `form` that may still be submitted, now.
async fn check_start_token(
    transaction: &mut sqlx::PgConnection,
    tenant: platform::context::TenantId,
    form: &crate::domain::Form,
    token: ViewId,
    now: chrono::DateTime<Utc>,
) -> Result<(), Error> {
    let Some((viewed_at, submitted_at)) =
        store::lock_view(transaction, tenant, form.id, token).await?
    else {
        return Err(Error::StartTokenInvalid);
    };
    if submitted_at.is_some() {
        return Err(Error::StartTokenUsed);
    }
    if now - viewed_at > START_TOKEN_LIFETIME {
        return Err(Error::StartTokenInvalid);
    }
    if now - viewed_at < MIN_FILL_TIME {
        return Err(Error::SubmittedTooFast);
    }
    Ok(())
}

impl Forms {
    /// Checks a submission against the form's latest published version, stores it with its
    /// `forms.submission.created` event and answers it. With an idempotency key, a retry of
    /// the same submission answers the first one again.
    #[tracing::instrument(skip_all)]
    pub async fn submit(
        &self,
        context: &RequestContext,
        new: NewSubmission,
    ) -> Result<Submission, Error> {
        if new.honeypot_filled {
            return Err(Error::SpamSuspected);
        }
        let tenant = submitters_tenant(context)?;
        if let Some(token) = new.start_token {
            // An attempt starts its view even when it is refused, so apart from the submission.
            let mut transaction = self.db.tenant_tx(tenant).await?;
            store::start_view(&mut transaction, tenant, token).await?;
            transaction.commit().await?;
        }
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut form = load(&mut transaction, tenant, &new.form, false).await?;
        let name = visible_to_submitter(context, &form, Permission::SubmissionsCreate)?;
        let scope = format!("SubmitForm {name}");
        let request = platform::idempotency::canonical_json(&Value::Object(new.data.clone()));
        let key = context.idempotency_key.as_ref();
        let call = self.idempotency.call(tenant, &scope, key, &request);
        if let Some(answer) = call.replay(&mut transaction).await? {
            transaction.commit().await?;
            return Ok(events::submission_from_proto(answer)?);
        }
        let now = Utc::now().trunc_subsecs(6);
        if let Some(refusal) = form.refuses_submissions(now) {
            return Err(Error::SubmissionRefused(refusal));
        }
        match new.start_token {
            Some(token) => check_start_token(&mut transaction, tenant, &form, token, now).await?,
            None if form.settings.require_start_token && context.principal.is_none() => {
                return Err(FieldViolations::single(
                    "start_token",
                    "is required: send the start_token of GetPublishedForm",
                )
                .into());
            }
            None => {}
        }
        if form.settings.max_submissions > 0 {
            // Counted under the form's row lock, so concurrent submissions cannot overshoot.
            form = load(&mut transaction, tenant, &FormRef::Id(form.id), true).await?;
            let count = store::count_submissions(&mut transaction, tenant, form.id).await?;
            if form.settings.is_full(count) {
                return Err(Error::SubmissionRefused(
                    crate::domain::SubmissionRefusal::Full,
                ));
            }
        }
        let version = self
            .published_version(&mut transaction, tenant, &form)
            .await?;
        let answers = check_answers(&version.definition.fields, &new.data).map_err(|problems| {
            let mut violations = FieldViolations::new();
            for (field, reason) in problems {
                violations.add(format!("submission.data.{field}"), reason);
            }
            violations
        })?;
        let submission = Submission {
            id: SubmissionId::generate(),
            form_id: form.id,
            form_version: version.version,
            data: answers.to_json(),
            submitter: context.principal_name(),
            created_at: now,
        };
        store::insert_submission(&mut transaction, tenant, &submission).await?;
        if let Some(token) = new.start_token {
            store::submit_view(&mut transaction, tenant, token, now).await?;
        }
        let event = events::submission_created(&form, &version, &submission, &answers);
        self.enqueue(&mut transaction, tenant, event).await?;
        let answer = submission_to_proto(&submission);
        call.complete(&mut transaction, &answer).await?;
        transaction.commit().await?;
        self.outbox.notify();
        crate::metrics::submission_received();
        Ok(submission)
    }

    /// One page of a form's submissions.
    #[tracing::instrument(skip_all)]
    pub async fn list_submissions(
        &self,
        context: &RequestContext,
        form: &FormRef,
        query: SubmissionQuery,
    ) -> Result<SubmissionPage, Error> {
        let tenant = context.authorize(Permission::SubmissionsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let limit = i64::try_from(query.page_size + 1).unwrap_or(i64::MAX);
        let mut submissions = store::list_submissions(
            &mut transaction,
            tenant,
            form.id,
            &query.filter,
            query.oldest_first,
            query.after,
            limit,
        )
        .await?;
        transaction.commit().await?;
        let next = if submissions.len() > query.page_size {
            submissions.truncate(query.page_size);
            submissions
                .last()
                .map(|submission| (submission.created_at, submission.id))
        } else {
            None
        };
        Ok(SubmissionPage { submissions, next })
    }

    /// A submission of a form.
    #[tracing::instrument(skip_all)]
    pub async fn get_submission(
        &self,
        context: &RequestContext,
        form: &FormRef,
        id: SubmissionId,
    ) -> Result<Submission, Error> {
        let tenant = context.authorize(Permission::SubmissionsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let submission = find_submission(&mut transaction, tenant, form.id, id).await?;
        transaction.commit().await?;
        Ok(submission)
    }

    /// Deletes a submission for good and emits `forms.submission.deleted`.
    #[tracing::instrument(skip_all)]
    pub async fn delete_submission(
        &self,
        context: &RequestContext,
        form: &FormRef,
        id: SubmissionId,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::SubmissionsDelete)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let submission = find_submission(&mut transaction, tenant, form.id, id).await?;
        store::delete_submission(&mut transaction, tenant, form.id, id).await?;
        let details = json!({"submission": id.to_string()});
        self.audit(
            &mut transaction,
            context,
            &form,
            "submission.delete",
            details,
        )
        .await?;
        self.enqueue(
            &mut transaction,
            tenant,
            events::submission_deleted(&submission),
        )
        .await?;
        transaction.commit().await?;
        self.outbox.notify();
        Ok(())
    }
}
