//! The `FormService` gRPC API: handlers of a few lines that parse the request ([`convert`]),
//! call [`Forms`] with the call's context, and convert the answer back (`crate::events` holds
//! the wire forms).

pub mod convert;

use futures_util::StreamExt;
use platform::context::RequestContext;
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::form_service_server::FormService;
use proto::google::api::HttpBody;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use platform::wire::{object_to_proto, timestamp};

use crate::domain::ViewId;
use crate::domain::json_schema;
use crate::error::Error;
use crate::events::{field_to_proto, form_to_proto, submission_to_proto, version_to_proto};
use crate::operations::{Analytics, Forms, NewSubmission};
use crate::page::{self, Posted, Problem};
use platform::error::CommonError;

/// The `FormService` implementation.
#[derive(Debug, Clone)]
pub struct FormsApi {
    forms: Forms,
}

impl FormsApi {
    /// An API over `forms`.
    pub fn new(forms: Forms) -> Self {
        Self { forms }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl FormService for FormsApi {
    type ExportSubmissionsStream = BoxStream<HttpBody>;

    async fn create_form(&self, request: Request<wire::CreateFormRequest>) -> Answer<wire::Form> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_form(request.get_ref().clone())?;
        let form = self.forms.create(context, new).await?;
        Ok(Response::new(form_to_proto(&form)))
    }

    async fn get_form(&self, request: Request<wire::GetFormRequest>) -> Answer<wire::Form> {
        let context = RequestContext::of(&request)?;
        let form = convert::form_only(&request.get_ref().name)?;
        let form = self.forms.get(context, &form).await?;
        Ok(Response::new(form_to_proto(&form)))
    }

    async fn list_forms(
        &self,
        request: Request<wire::ListFormsRequest>,
    ) -> Answer<wire::ListFormsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_forms(request.get_ref())?;
        let page = self
            .forms
            .list(
                context,
                listing.after,
                listing.filter.state,
                listing.filter.search.as_deref(),
                listing.size,
            )
            .await?;
        Ok(Response::new(wire::ListFormsResponse {
            forms: page.forms.iter().map(form_to_proto).collect(),
            next_page_token: listing.next_page_token(page.next),
        }))
    }

    async fn update_form(&self, request: Request<wire::UpdateFormRequest>) -> Answer<wire::Form> {
        let context = RequestContext::of(&request)?;
        let (form, changes) = convert::form_changes(request.get_ref().clone())?;
        let form = self.forms.update(context, &form, changes).await?;
        Ok(Response::new(form_to_proto(&form)))
    }

    async fn publish_form(&self, request: Request<wire::PublishFormRequest>) -> Answer<wire::Form> {
        let context = RequestContext::of(&request)?;
        let (form, expected_version) = convert::publish(request.get_ref())?;
        let (form, _) = self.forms.publish(context, &form, expected_version).await?;
        Ok(Response::new(form_to_proto(&form)))
    }

    async fn archive_form(&self, request: Request<wire::ArchiveFormRequest>) -> Answer<wire::Form> {
        let context = RequestContext::of(&request)?;
        let form = convert::form_only(&request.get_ref().name)?;
        let form = self.forms.archive(context, &form).await?;
        Ok(Response::new(form_to_proto(&form)))
    }

    async fn unarchive_form(
        &self,
        request: Request<wire::UnarchiveFormRequest>,
    ) -> Answer<wire::Form> {
        let context = RequestContext::of(&request)?;
        let form = convert::form_only(&request.get_ref().name)?;
        let form = self.forms.unarchive(context, &form).await?;
        Ok(Response::new(form_to_proto(&form)))
    }

    async fn list_form_versions(
        &self,
        request: Request<wire::ListFormVersionsRequest>,
    ) -> Answer<wire::ListFormVersionsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_versions(request.get_ref())?;
        let page = self
            .forms
            .list_versions(context, &listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(wire::ListFormVersionsResponse {
            versions: page.versions.iter().map(version_to_proto).collect(),
            next_page_token: listing.next_page_token(page.next_before),
        }))
    }

    async fn get_form_version(
        &self,
        request: Request<wire::GetFormVersionRequest>,
    ) -> Answer<wire::FormVersion> {
        let context = RequestContext::of(&request)?;
        let (form, version) = convert::version_name(&request.get_ref().name)?;
        let version = self.forms.get_version(context, &form, version).await?;
        Ok(Response::new(version_to_proto(&version)))
    }

    async fn get_form_version_json_schema(
        &self,
        request: Request<wire::GetFormVersionJsonSchemaRequest>,
    ) -> Answer<pbjson_types::Struct> {
        let context = RequestContext::of(&request)?;
        let (form, version) = convert::version_name(&request.get_ref().name)?;
        let version = self.forms.get_version(context, &form, version).await?;
        let schema = json_schema(&version.definition);
        Ok(Response::new(object_to_proto(&schema)))
    }

    async fn get_published_form(
        &self,
        request: Request<wire::GetPublishedFormRequest>,
    ) -> Answer<wire::PublishedForm> {
        let context = RequestContext::of(&request)?;
        let form = convert::form_only(&request.get_ref().name)?;
        let (form, version, view) = self.forms.get_published(context, &form, true).await?;
        let accepting = form.refuses_submissions(chrono::Utc::now()).is_none();
        Ok(Response::new(wire::PublishedForm {
            name: crate::events::form_name(&form),
            version: version.version,
            title: version.definition.title,
            description: version.definition.description,
            fields: version
                .definition
                .fields
                .iter()
                .map(field_to_proto)
                .collect(),
            accepting_submissions: accepting,
            confirmation_message: form.settings.confirmation_message,
            redirect_url: form.settings.redirect_url,
            close_time: form.settings.close_time.map(platform::wire::timestamp),
            start_token: view.map(|view| view.to_string()).unwrap_or_default(),
        }))
    }

    async fn submit_form(
        &self,
        request: Request<wire::SubmitFormRequest>,
    ) -> Answer<wire::Submission> {
        let context = RequestContext::of(&request)?;
        let new = convert::submit(request.get_ref().clone())?;
        let submission = self.forms.submit(context, new).await?;
        Ok(Response::new(submission_to_proto(&submission)))
    }

    async fn list_submissions(
        &self,
        request: Request<wire::ListSubmissionsRequest>,
    ) -> Answer<wire::ListSubmissionsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_submissions(request.get_ref())?;
        let page = self
            .forms
            .list_submissions(context, &listing.form, listing.query.clone())
            .await?;
        Ok(Response::new(wire::ListSubmissionsResponse {
            submissions: page.submissions.iter().map(submission_to_proto).collect(),
            next_page_token: listing.next_page_token(page.next),
        }))
    }

    async fn get_submission(
        &self,
        request: Request<wire::GetSubmissionRequest>,
    ) -> Answer<wire::Submission> {
        let context = RequestContext::of(&request)?;
        let (form, id) = convert::submission_name(&request.get_ref().name)?;
        let submission = self.forms.get_submission(context, &form, id).await?;
        Ok(Response::new(submission_to_proto(&submission)))
    }

    async fn export_submissions(
        &self,
        request: Request<wire::ExportSubmissionsRequest>,
    ) -> Answer<Self::ExportSubmissionsStream> {
        let context = RequestContext::of(&request)?;
        let (form, filter, format) = convert::export_submissions(request.get_ref())?;
        let export = self.forms.export(context, &form, filter, format).await?;
        let chunks = ReceiverStream::new(export.chunks).map(move |chunk| {
            chunk
                .map(|data| HttpBody {
                    content_type: export.content_type.to_owned(),
                    data,
                    extensions: Vec::new(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn get_form_analytics(
        &self,
        request: Request<wire::GetFormAnalyticsRequest>,
    ) -> Answer<wire::FormAnalytics> {
        let context = RequestContext::of(&request)?;
        let (form, query, cache_key) = convert::analytics(request.get_ref(), chrono::Utc::now())?;
        let analytics = self
            .forms
            .analytics(context, &form, query, &cache_key)
            .await?;
        Ok(Response::new(analytics_to_proto(&analytics)))
    }

    async fn render_form_page(
        &self,
        request: Request<wire::RenderFormPageRequest>,
    ) -> Answer<HttpBody> {
        let context = RequestContext::of(&request)?;
        let form = convert::page_form(&request.get_ref().slug)?;
        let (form, version, view) = self.forms.get_published(context, &form, true).await?;
        let accepting = form.refuses_submissions(chrono::Utc::now()).is_none();
        let view = view.expect("a new view was asked for");
        let html = page::render_form(&form, &version, accepting, view, None, &[]);
        Ok(Response::new(html_body(html)))
    }

    async fn submit_form_page(
        &self,
        request: Request<wire::SubmitFormPageRequest>,
    ) -> Answer<HttpBody> {
        let context = RequestContext::of(&request)?;
        let form_ref = convert::page_form(&request.get_ref().slug)?;
        let body = request
            .get_ref()
            .body
            .as_ref()
            .map(|body| body.data.as_slice());
        let posted = Posted::parse(body.unwrap_or_default());
        let (form, version, _) = self.forms.get_published(context, &form_ref, false).await?;
        let token = posted
            .start_token()
            .and_then(|token| uuid::Uuid::try_parse(token).ok())
            .map(ViewId::from);
        let new = NewSubmission {
            form: form_ref.clone(),
            data: posted.answers(&version.definition.fields),
            start_token: token,
            honeypot_filled: posted.honeypot_filled(),
        };
        let problems = match self.forms.submit(context, new).await {
            Ok(_) => return Ok(Response::new(html_body(page::render_done(&form, &version)))),
            Err(error) => page_problems(error)?,
        };
        // A refused post keeps its token, unless the token itself was the problem.
        let token = match token {
            Some(token) if !problems.1 => token,
            _ => {
                let (_, _, view) = self.forms.get_published(context, &form_ref, true).await?;
                view.expect("a new view was asked for")
            }
        };
        let accepting = form.refuses_submissions(chrono::Utc::now()).is_none();
        let html = page::render_form(
            &form,
            &version,
            accepting,
            token,
            Some(&posted),
            &problems.0,
        );
        Ok(Response::new(html_body(html)))
    }

    async fn delete_submission(
        &self,
        request: Request<wire::DeleteSubmissionRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let (form, id) = convert::submission_name(&request.get_ref().name)?;
        self.forms.delete_submission(context, &form, id).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }
}

fn analytics_to_proto(analytics: &Analytics) -> wire::FormAnalytics {
    let (views, submissions) = (analytics.views(), analytics.submissions());
    let rate = |part: i64, whole: i64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    wire::FormAnalytics {
        name: format!("forms/{}/analytics", analytics.form_id),
        start_time: Some(timestamp(analytics.start)),
        end_time: Some(timestamp(analytics.end)),
        view_count: views,
        submission_count: submissions,
        conversion_rate: rate(submissions, views),
        start_count: analytics.starts(),
        median_completion_seconds: analytics.median_completion_seconds,
        mean_completion_seconds: analytics.mean_completion_seconds,
        buckets: analytics
            .buckets
            .iter()
            .map(|bucket| wire::AnalyticsBucket {
                start_time: Some(timestamp(bucket.start)),
                view_count: bucket.views,
                submission_count: bucket.submissions,
                start_count: bucket.starts,
            })
            .collect(),
        fields: analytics
            .fields
            .iter()
            .map(|(id, _, stats)| wire::FieldAnalytics {
                field_id: id.to_string(),
                answer_count: stats.answers,
                answer_rate: rate(stats.answers, submissions),
                value_counts: stats
                    .values
                    .iter()
                    .map(|(value, count)| wire::ValueCount {
                        value: value.clone(),
                        count: *count,
                    })
                    .collect(),
                min: stats.min,
                max: stats.max,
                mean: stats.mean,
            })
            .collect(),
    }
}

fn html_body(html: String) -> HttpBody {
    HttpBody {
        content_type: page::CONTENT_TYPE.to_owned(),
        data: html.into_bytes(),
        extensions: Vec::new(),
    }
}

/// The problems a refused post shows on its page, and whether its start token must be
/// replaced; errors a page cannot show go to the caller as they are.
fn page_problems(error: Error) -> Result<(Vec<Problem>, bool), Status> {
    let whole = |message: String| Problem {
        field: None,
        message,
    };
    Ok(match error {
        Error::Common(CommonError::InvalidArgument(violations)) => {
            let token_problem = violations.fields().contains(&"start_token");
            let problems = violations
                .violations()
                .iter()
                .map(
                    |(field, message)| match field.strip_prefix("submission.data.") {
                        Some(id) => Problem {
                            field: Some(id.to_owned()),
                            message: capitalised(message),
                        },
                        None => whole("The page expired: please submit it again.".to_owned()),
                    },
                )
                .collect();
            (problems, token_problem)
        }
        error @ (Error::StartTokenInvalid | Error::StartTokenUsed) => {
            (vec![whole(capitalised(&error.to_string()))], true)
        }
        error @ (Error::SubmissionRefused(_) | Error::SpamSuspected | Error::SubmittedTooFast) => {
            (vec![whole(capitalised(&error.to_string()))], false)
        }
        error => return Err(error.into()),
    })
}

fn capitalised(message: &str) -> String {
    let mut characters = message.chars();
    characters
        .next()
        .map(|first| first.to_uppercase().chain(characters).collect())
        .unwrap_or_default()
}
