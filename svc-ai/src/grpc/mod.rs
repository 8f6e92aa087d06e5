//! The `AiService` gRPC API: thin handlers that validate the request into domain types, call
//! [`Ai`] (or, for stateless inference, its pool), and convert the result back.

pub mod convert;

use platform::context::{Permission, RequestContext};
use platform::error::FieldViolations;
use platform::paging;
use platform::wire::id_of;
use proto::formflow::ai::v1 as wire;
use proto::formflow::ai::v1::ai_service_server::AiService;
use tonic::{Request, Response, Status};

use crate::domain::{MAX_TEXT_CHARS, MAX_TEXTS, check_text, check_texts};
use crate::error::Error;
use crate::events::classification_to_proto;
use crate::models::Task;
use crate::operations::Ai;
use crate::pool::LoadedModel;
use crate::prototypes::dot;

/// The `AiService` implementation.
#[derive(Debug, Clone)]
pub struct AiApi {
    ai: Ai,
}

type Answer<T> = Result<Response<T>, Status>;

impl AiApi {
    /// An API over `ai`.
    pub fn new(ai: Ai) -> Self {
        Self { ai }
    }

    fn describe(&self, model: &LoadedModel) -> wire::Model {
        let manifest = model.manifest();
        let tasks = |filter: &dyn Fn(Task) -> bool| -> Vec<i32> {
            manifest
                .tasks
                .iter()
                .copied()
                .filter(|&task| filter(task))
                .flat_map(wire_tasks)
                .map(|task| task as i32)
                .collect()
        };
        let pool = self.ai.pool();
        wire::Model {
            name: format!("models/{}", manifest.id),
            id: manifest.id.clone(),
            display_name: manifest.display_name.clone(),
            tasks: tasks(&|_| true),
            default_for: tasks(&|task| {
                pool.default_for(task)
                    .is_some_and(|default| default.manifest().id == manifest.id)
            }),
            dimensions: i32::try_from(manifest.dimensions).unwrap_or(i32::MAX),
            max_input_tokens: i32::try_from(manifest.max_input_tokens).unwrap_or(i32::MAX),
            quantization: manifest.quantization.clone(),
            languages: manifest.languages.clone(),
            // Only models that loaded are in the pool: a model that fails stops the start.
            state: wire::ModelState::Ready as i32,
            version: model.version().to_owned(),
            source: manifest.source.clone(),
        }
    }

    /// The texts of an inference call checked (1 to `MAX_TEXTS`, each 1 to `MAX_TEXT_CHARS`
    /// characters), and the model `name` names.
    fn inference_model(
        &self,
        violations: &mut FieldViolations,
        name: &str,
    ) -> Result<Option<&LoadedModel>, Status> {
        let id = convert::model_id(violations, "model", name);
        if id.is_none() && !name.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.ai.model(id.as_deref())?))
    }
}

/// The wire tasks a model's task serves: an embedding model also classifies.
fn wire_tasks(task: Task) -> Vec<wire::ModelTask> {
    match task {
        Task::Embedding => vec![wire::ModelTask::Embedding, wire::ModelTask::Classification],
    }
}

#[tonic::async_trait]
impl AiService for AiApi {
    async fn embed(&self, request: Request<wire::EmbedRequest>) -> Answer<wire::EmbedResponse> {
        RequestContext::of(&request)?.authorize(Permission::AiUse)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let model = self.inference_model(&mut violations, &request.model)?;
        check_texts(&mut violations, "texts", &request.texts, MAX_TEXTS);
        violations.into_result()?;
        let model = model.expect("checked");
        let embedded = model.embed(request.texts).await.map_err(Error::from)?;
        let manifest = model.manifest();
        Ok(Response::new(wire::EmbedResponse {
            model: format!("models/{}", manifest.id),
            dimensions: i32::try_from(manifest.dimensions).unwrap_or(i32::MAX),
            embeddings: embedded
                .into_iter()
                .map(|embedding| wire::Embedding {
                    values: embedding.vector,
                    token_count: i32::try_from(embedding.tokens).unwrap_or(i32::MAX),
                    truncated: embedding.truncated,
                })
                .collect(),
        }))
    }

    async fn similarity(
        &self,
        request: Request<wire::SimilarityRequest>,
    ) -> Answer<wire::SimilarityResponse> {
        RequestContext::of(&request)?.authorize(Permission::AiUse)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let model = self.inference_model(&mut violations, &request.model)?;
        check_text(&mut violations, "text", &request.text, MAX_TEXT_CHARS);
        check_texts(
            &mut violations,
            "candidates",
            &request.candidates,
            MAX_TEXTS - 1,
        );
        violations.into_result()?;
        let model = model.expect("checked");
        let mut texts = vec![request.text];
        texts.extend(request.candidates);
        let mut embedded = model.embed(texts).await.map_err(Error::from)?;
        let text = embedded.remove(0);
        Ok(Response::new(wire::SimilarityResponse {
            model: format!("models/{}", model.manifest().id),
            scores: embedded
                .iter()
                .map(|candidate| dot(&text.vector, &candidate.vector))
                .collect(),
            truncated: text.truncated,
            candidates_truncated: embedded
                .iter()
                .map(|candidate| candidate.truncated)
                .collect(),
        }))
    }

    async fn list_models(
        &self,
        request: Request<wire::ListModelsRequest>,
    ) -> Answer<wire::ListModelsResponse> {
        RequestContext::of(&request)?.acting_tenant()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let page_size = paging::page_size(&mut violations, request.page_size);
        let task = match wire::ModelTask::try_from(request.task) {
            Ok(wire::ModelTask::Unspecified) => None,
            Ok(task) => Some(task),
            Err(_) => {
                violations.add("task", "is not a ModelTask");
                None
            }
        };
        let filter = format!("task={}", request.task);
        let after = paging::decode_page_token(&mut violations, &request.page_token, &filter);
        violations.into_result()?;
        let mut models = self
            .ai
            .pool()
            .models()
            .iter()
            .filter(|model| {
                after
                    .as_deref()
                    .is_none_or(|after| model.manifest().id.as_str() > after)
            })
            .map(|model| self.describe(model))
            .filter(|model| task.is_none_or(|task| model.tasks.contains(&(task as i32))))
            .take(page_size + 1)
            .collect::<Vec<_>>();
        let next_page_token = if models.len() > page_size {
            models.truncate(page_size);
            paging::encode_page_token(&filter, &models[page_size - 1].id)
        } else {
            String::new()
        };
        Ok(Response::new(wire::ListModelsResponse {
            models,
            next_page_token,
        }))
    }

    async fn get_model(&self, request: Request<wire::GetModelRequest>) -> Answer<wire::Model> {
        RequestContext::of(&request)?.acting_tenant()?;
        let mut violations = FieldViolations::new();
        let name = &request.get_ref().name;
        let id = convert::model_id(&mut violations, "name", name);
        if name.is_empty() {
            violations.add("name", "is required");
        }
        violations.into_result()?;
        let model = self.ai.model(id.as_deref())?;
        Ok(Response::new(self.describe(model)))
    }

    async fn classify(
        &self,
        request: Request<wire::ClassifyRequest>,
    ) -> Answer<wire::ClassifyResponse> {
        let context = RequestContext::of(&request)?;
        let input = convert::classify_input(request.get_ref().clone())?;
        Ok(Response::new(self.ai.classify(context, input).await?))
    }

    async fn classify_ticket(
        &self,
        request: Request<wire::ClassifyTicketRequest>,
    ) -> Answer<wire::Classification> {
        let context = RequestContext::of(&request)?;
        let input = convert::ticket_input(request.get_ref().clone())?;
        Ok(Response::new(
            self.ai.classify_ticket(context, input).await?,
        ))
    }

    async fn get_classification(
        &self,
        request: Request<wire::GetClassificationRequest>,
    ) -> Answer<wire::Classification> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "classifications")?;
        let classification = self.ai.get_classification(context, id).await?;
        Ok(Response::new(classification_to_proto(&classification)))
    }

    async fn list_classifications(
        &self,
        request: Request<wire::ListClassificationsRequest>,
    ) -> Answer<wire::ListClassificationsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_classifications_request(request.get_ref())?;
        let page = self
            .ai
            .list_classifications(context, &listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(convert::classifications_page(
            &page,
            &listing.key,
        )))
    }

    async fn correct_classification(
        &self,
        request: Request<wire::CorrectClassificationRequest>,
    ) -> Answer<wire::Classification> {
        let context = RequestContext::of(&request)?;
        let request = request.get_ref();
        let mut violations = FieldViolations::new();
        let id = platform::wire::parse_resource_name(
            &mut violations,
            "name",
            &request.name,
            "classifications",
        );
        if request.label.is_empty() {
            violations.add("label", "is required");
        }
        violations.into_result()?;
        let classification = self
            .ai
            .correct_classification(context, id.expect("checked"), request.label.clone())
            .await?;
        Ok(Response::new(classification_to_proto(&classification)))
    }

    async fn create_label_set(
        &self,
        request: Request<wire::CreateLabelSetRequest>,
    ) -> Answer<wire::LabelSet> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_label_set(request.get_ref().clone())?;
        let set = self.ai.create_label_set(context, new).await?;
        Ok(Response::new(convert::label_set_to_proto(&set)))
    }

    async fn get_label_set(
        &self,
        request: Request<wire::GetLabelSetRequest>,
    ) -> Answer<wire::LabelSet> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "labelSets")?;
        let set = self.ai.get_label_set(context, id).await?;
        Ok(Response::new(convert::label_set_to_proto(&set)))
    }

    async fn list_label_sets(
        &self,
        request: Request<wire::ListLabelSetsRequest>,
    ) -> Answer<wire::ListLabelSetsResponse> {
        let context = RequestContext::of(&request)?;
        let (after, size) = convert::list_label_sets_request(request.get_ref())?;
        let page = self.ai.list_label_sets(context, after, size).await?;
        Ok(Response::new(convert::label_sets_page(&page)))
    }

    async fn update_label_set(
        &self,
        request: Request<wire::UpdateLabelSetRequest>,
    ) -> Answer<wire::LabelSet> {
        let context = RequestContext::of(&request)?;
        let (id, changes) = convert::label_set_changes(request.get_ref().clone())?;
        let set = self.ai.update_label_set(context, id, changes).await?;
        Ok(Response::new(convert::label_set_to_proto(&set)))
    }

    async fn delete_label_set(
        &self,
        request: Request<wire::DeleteLabelSetRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "labelSets")?;
        self.ai.delete_label_set(context, id).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn create_label_example(
        &self,
        request: Request<wire::CreateLabelExampleRequest>,
    ) -> Answer<wire::LabelExample> {
        let context = RequestContext::of(&request)?;
        let (label_set, label, text) = convert::new_example(request.get_ref().clone())?;
        let example = self
            .ai
            .create_example(context, label_set, label, text)
            .await?;
        Ok(Response::new(convert::example_to_proto(&example)))
    }

    async fn list_label_examples(
        &self,
        request: Request<wire::ListLabelExamplesRequest>,
    ) -> Answer<wire::ListLabelExamplesResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_examples_request(request.get_ref())?;
        let page = self
            .ai
            .list_examples(
                context,
                listing.label_set,
                listing.label,
                listing.after,
                listing.size,
            )
            .await?;
        Ok(Response::new(convert::examples_page(&page, &listing.key)))
    }

    async fn delete_label_example(
        &self,
        request: Request<wire::DeleteLabelExampleRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let (label_set, id) = convert::example_name(&request.get_ref().name)?;
        self.ai.delete_example(context, label_set, id).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn create_batch_job(
        &self,
        request: Request<wire::CreateBatchJobRequest>,
    ) -> Answer<wire::BatchJob> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_batch_job(request.get_ref().clone())?;
        let job = self.ai.create_batch_job(context, new).await?;
        Ok(Response::new(crate::events::batch_job_to_proto(
            &job,
            Vec::new(),
        )))
    }

    async fn get_batch_job(
        &self,
        request: Request<wire::GetBatchJobRequest>,
    ) -> Answer<wire::BatchJob> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "batchJobs")?;
        let (job, results) = self.ai.get_batch_job(context, id).await?;
        Ok(Response::new(crate::events::batch_job_to_proto(
            &job, results,
        )))
    }

    async fn list_batch_jobs(
        &self,
        request: Request<wire::ListBatchJobsRequest>,
    ) -> Answer<wire::ListBatchJobsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_batch_jobs_request(request.get_ref())?;
        let page = self
            .ai
            .list_batch_jobs(context, listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(convert::batch_jobs_page(&page, &listing.key)))
    }

    async fn cancel_batch_job(
        &self,
        request: Request<wire::CancelBatchJobRequest>,
    ) -> Answer<wire::BatchJob> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "batchJobs")?;
        let job = self.ai.cancel_batch_job(context, id).await?;
        Ok(Response::new(crate::events::batch_job_to_proto(
            &job,
            Vec::new(),
        )))
    }

    async fn analyze_submission(
        &self,
        request: Request<wire::AnalyzeSubmissionRequest>,
    ) -> Answer<wire::SubmissionAnalysis> {
        let context = RequestContext::of(&request)?;
        let input = convert::analyze_input(request.get_ref().clone())?;
        let analysis = self.ai.analyze_submission(context, input).await?;
        Ok(Response::new(convert::analysis_to_proto(&analysis)))
    }

    async fn get_submission_analysis(
        &self,
        request: Request<wire::GetSubmissionAnalysisRequest>,
    ) -> Answer<wire::SubmissionAnalysis> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "submissionAnalyses")?;
        let analysis = self.ai.get_submission_analysis(context, id).await?;
        Ok(Response::new(convert::analysis_to_proto(&analysis)))
    }

    async fn search_similar_submissions(
        &self,
        request: Request<wire::SearchSimilarSubmissionsRequest>,
    ) -> Answer<wire::SearchSimilarSubmissionsResponse> {
        let context = RequestContext::of(&request)?;
        let query = convert::similar_query(request.get_ref().clone())?;
        let found = self.ai.similar_submissions(context, query).await?;
        Ok(Response::new(convert::similar_to_proto(&found)))
    }
}
