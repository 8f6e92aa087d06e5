//! The `AiService` gRPC API. Embed and ListModels serve from the inference pool; the
//! classification, label set and batch job RPCs answer UNIMPLEMENTED until they land.

use std::sync::Arc;

use platform::context::{Permission, RequestContext};
use platform::error::{FieldViolations, internal, status_with_reason};
use platform::paging;
use proto::formflow::ai::v1 as wire;
use proto::formflow::ai::v1::ai_service_server::AiService;
use tonic::{Code, Request, Response, Status};

use crate::models::{Manifest, Task};
use crate::pool::{InferenceError, InferencePool, LoadedModel};

/// Most texts in one Embed call.
pub const MAX_TEXTS: usize = 64;
/// Longest text, in characters.
pub const MAX_TEXT_CHARS: usize = 32_000;

/// The `AiService` implementation.
#[derive(Debug, Clone)]
pub struct AiApi {
    pool: Arc<InferencePool>,
}

impl AiApi {
    /// An API serving the models of `pool`.
    pub fn new(pool: Arc<InferencePool>) -> Self {
        Self { pool }
    }

    /// The model `name` (`models/{id}`) names, or the default one for `task` when it is empty.
    fn model(
        &self,
        violations: &mut FieldViolations,
        name: &str,
        task: Task,
    ) -> Result<Option<&LoadedModel>, Status> {
        if name.is_empty() {
            return Ok(self.pool.default_for(task));
        }
        let Some(id) = name.strip_prefix("models/").filter(|id| !id.is_empty()) else {
            violations.add("model", "must be `models/{id}`");
            return Ok(None);
        };
        let model = self
            .pool
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no model {name}")))?;
        if !model.manifest().tasks.contains(&task) {
            violations.add("model", format!("{name} does not serve {task:?}"));
            return Ok(None);
        }
        Ok(Some(model))
    }

    fn describe(&self, manifest: &Manifest) -> wire::Model {
        let tasks = |tasks: &mut dyn Iterator<Item = Task>| -> Vec<i32> {
            tasks.map(|task| wire_task(task) as i32).collect()
        };
        wire::Model {
            name: format!("models/{}", manifest.id),
            id: manifest.id.clone(),
            display_name: manifest.display_name.clone(),
            tasks: tasks(&mut manifest.tasks.iter().copied()),
            default_for: tasks(&mut manifest.tasks.iter().copied().filter(|&task| {
                self.pool
                    .default_for(task)
                    .is_some_and(|model| model.manifest().id == manifest.id)
            })),
            dimensions: i32::try_from(manifest.dimensions).unwrap_or(i32::MAX),
            max_input_tokens: i32::try_from(manifest.max_input_tokens).unwrap_or(i32::MAX),
            quantization: manifest.quantization.clone(),
            languages: manifest.languages.clone(),
            // Only models that loaded are in the pool: a model that fails stops the start.
            state: wire::ModelState::Ready as i32,
        }
    }
}

fn wire_task(task: Task) -> wire::ModelTask {
    match task {
        Task::Embedding => wire::ModelTask::Embedding,
    }
}

fn inference_status(error: InferenceError) -> Status {
    match error {
        InferenceError::Busy => status_with_reason(
            Code::ResourceExhausted,
            "MODEL_BUSY",
            "the model's queue is full: retry later",
        ),
        InferenceError::Expired => status_with_reason(
            Code::Unavailable,
            "MODEL_BUSY",
            "the request waited too long for the model: retry later",
        ),
        InferenceError::Stopped => Status::unavailable("the service is stopping"),
        InferenceError::Failed(error) => internal(error),
    }
}

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("formflow.ai.v1.AiService.{rpc} is not built yet"))
}

#[tonic::async_trait]
impl AiService for AiApi {
    async fn embed(
        &self,
        request: Request<wire::EmbedRequest>,
    ) -> Result<Response<wire::EmbedResponse>, Status> {
        RequestContext::of(&request)?.authorize(Permission::AiUse)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let model = self.model(&mut violations, &request.model, Task::Embedding)?;
        if request.texts.is_empty() || request.texts.len() > MAX_TEXTS {
            violations.add("texts", format!("must hold 1 to {MAX_TEXTS} texts"));
        }
        for (index, text) in request.texts.iter().enumerate() {
            let characters = text.chars().count();
            if characters == 0 || characters > MAX_TEXT_CHARS {
                violations.add(
                    format!("texts[{index}]"),
                    format!("must be 1 to {MAX_TEXT_CHARS} characters"),
                );
            }
        }
        violations.into_result()?;
        let model =
            model.ok_or_else(|| Status::failed_precondition("no embedding model is installed"))?;
        let embedded = model.embed(request.texts).await.map_err(inference_status)?;
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

    async fn list_models(
        &self,
        request: Request<wire::ListModelsRequest>,
    ) -> Result<Response<wire::ListModelsResponse>, Status> {
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
            .pool
            .models()
            .iter()
            .map(LoadedModel::manifest)
            .filter(|manifest| {
                after
                    .as_deref()
                    .is_none_or(|after| manifest.id.as_str() > after)
            })
            .filter(|manifest| {
                task.is_none_or(|task| manifest.tasks.iter().any(|&t| wire_task(t) == task))
            })
            .take(page_size + 1)
            .map(|manifest| self.describe(manifest))
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

    async fn classify(
        &self,
        _: Request<wire::ClassifyRequest>,
    ) -> Result<Response<wire::Classification>, Status> {
        Err(not_yet("Classify"))
    }

    async fn classify_ticket(
        &self,
        _: Request<wire::ClassifyTicketRequest>,
    ) -> Result<Response<wire::Classification>, Status> {
        Err(not_yet("ClassifyTicket"))
    }

    async fn get_classification(
        &self,
        _: Request<wire::GetClassificationRequest>,
    ) -> Result<Response<wire::Classification>, Status> {
        Err(not_yet("GetClassification"))
    }

    async fn create_label_set(
        &self,
        _: Request<wire::CreateLabelSetRequest>,
    ) -> Result<Response<wire::LabelSet>, Status> {
        Err(not_yet("CreateLabelSet"))
    }

    async fn get_label_set(
        &self,
        _: Request<wire::GetLabelSetRequest>,
    ) -> Result<Response<wire::LabelSet>, Status> {
        Err(not_yet("GetLabelSet"))
    }

    async fn list_label_sets(
        &self,
        _: Request<wire::ListLabelSetsRequest>,
    ) -> Result<Response<wire::ListLabelSetsResponse>, Status> {
        Err(not_yet("ListLabelSets"))
    }

    async fn update_label_set(
        &self,
        _: Request<wire::UpdateLabelSetRequest>,
    ) -> Result<Response<wire::LabelSet>, Status> {
        Err(not_yet("UpdateLabelSet"))
    }

    async fn delete_label_set(
        &self,
        _: Request<wire::DeleteLabelSetRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        Err(not_yet("DeleteLabelSet"))
    }

    async fn create_batch_job(
        &self,
        _: Request<wire::CreateBatchJobRequest>,
    ) -> Result<Response<wire::BatchJob>, Status> {
        Err(not_yet("CreateBatchJob"))
    }

    async fn get_batch_job(
        &self,
        _: Request<wire::GetBatchJobRequest>,
    ) -> Result<Response<wire::BatchJob>, Status> {
        Err(not_yet("GetBatchJob"))
    }
}
