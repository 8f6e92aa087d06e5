//! The `WorkflowService` gRPC API: handlers of a few lines that parse the request
//! ([`convert`]), call [`Workflows`] with the call's context, and convert the answer back.

pub mod convert;

use platform::context::RequestContext;
use proto::formflow::workflow::v1 as wire;
use proto::formflow::workflow::v1::workflow_service_server::WorkflowService;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::domain::node_types::NODE_TYPES;
use crate::operations::Workflows;
use convert::{credential_to_proto, execution_to_proto, version_to_proto, workflow_to_proto};

/// The `WorkflowService` implementation.
#[derive(Debug, Clone)]
pub struct WorkflowApi {
    workflows: Workflows,
}

impl WorkflowApi {
    /// An API over `workflows`.
    pub fn new(workflows: Workflows) -> Self {
        Self { workflows }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl WorkflowService for WorkflowApi {
    type StreamExecutionStream = BoxStream<wire::StreamExecutionResponse>;

    async fn create_workflow(
        &self,
        request: Request<wire::CreateWorkflowRequest>,
    ) -> Answer<wire::Workflow> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_workflow(request.get_ref().clone())?;
        let workflow = self.workflows.create(context, new).await?;
        Ok(Response::new(workflow_to_proto(&workflow)))
    }

    async fn get_workflow(
        &self,
        request: Request<wire::GetWorkflowRequest>,
    ) -> Answer<wire::Workflow> {
        let context = RequestContext::of(&request)?;
        let id = convert::workflow_only(&request.get_ref().name)?;
        let workflow = self.workflows.get(context, id).await?;
        Ok(Response::new(workflow_to_proto(&workflow)))
    }

    async fn list_workflows(
        &self,
        request: Request<wire::ListWorkflowsRequest>,
    ) -> Answer<wire::ListWorkflowsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_workflows(request.get_ref())?;
        let page = self
            .workflows
            .list(
                context,
                listing.after,
                listing.filter.state,
                listing.filter.node_type.as_deref(),
                listing.size,
            )
            .await?;
        Ok(Response::new(wire::ListWorkflowsResponse {
            workflows: page.workflows.iter().map(workflow_to_proto).collect(),
            next_page_token: listing.next_page_token(page.next),
        }))
    }

    async fn update_workflow(
        &self,
        request: Request<wire::UpdateWorkflowRequest>,
    ) -> Answer<wire::Workflow> {
        let context = RequestContext::of(&request)?;
        let (id, changes) = convert::workflow_changes(request.get_ref().clone())?;
        let workflow = self.workflows.update(context, id, changes).await?;
        Ok(Response::new(workflow_to_proto(&workflow)))
    }

    async fn delete_workflow(
        &self,
        request: Request<wire::DeleteWorkflowRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let (id, expected_version) = convert::delete_workflow(request.get_ref())?;
        self.workflows.delete(context, id, expected_version).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn activate_workflow(
        &self,
        request: Request<wire::ActivateWorkflowRequest>,
    ) -> Answer<wire::Workflow> {
        let context = RequestContext::of(&request)?;
        let (id, version) = convert::activate(request.get_ref())?;
        let workflow = self.workflows.activate(context, id, version).await?;
        Ok(Response::new(workflow_to_proto(&workflow)))
    }

    async fn deactivate_workflow(
        &self,
        request: Request<wire::DeactivateWorkflowRequest>,
    ) -> Answer<wire::Workflow> {
        let context = RequestContext::of(&request)?;
        let id = convert::workflow_only(&request.get_ref().name)?;
        let workflow = self.workflows.deactivate(context, id).await?;
        Ok(Response::new(workflow_to_proto(&workflow)))
    }

    async fn list_workflow_versions(
        &self,
        request: Request<wire::ListWorkflowVersionsRequest>,
    ) -> Answer<wire::ListWorkflowVersionsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_versions(request.get_ref())?;
        let page = self
            .workflows
            .list_versions(context, listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(wire::ListWorkflowVersionsResponse {
            versions: page.versions.iter().map(version_to_proto).collect(),
            next_page_token: listing.next_page_token(page.next),
        }))
    }

    async fn get_workflow_version(
        &self,
        request: Request<wire::GetWorkflowVersionRequest>,
    ) -> Answer<wire::WorkflowVersion> {
        let context = RequestContext::of(&request)?;
        let (id, version) = convert::version_name(&request.get_ref().name)?;
        let version = self.workflows.get_version(context, id, version).await?;
        Ok(Response::new(version_to_proto(&version)))
    }

    async fn create_credential(
        &self,
        request: Request<wire::CreateCredentialRequest>,
    ) -> Answer<wire::Credential> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_credential(request.get_ref().clone())?;
        let credential = self.workflows.create_credential(context, new).await?;
        Ok(Response::new(credential_to_proto(&credential)))
    }

    async fn get_credential(
        &self,
        request: Request<wire::GetCredentialRequest>,
    ) -> Answer<wire::Credential> {
        let context = RequestContext::of(&request)?;
        let id = convert::credential_only(&request.get_ref().name)?;
        let credential = self.workflows.get_credential(context, id).await?;
        Ok(Response::new(credential_to_proto(&credential)))
    }

    async fn list_credentials(
        &self,
        request: Request<wire::ListCredentialsRequest>,
    ) -> Answer<wire::ListCredentialsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_credentials(request.get_ref())?;
        let page = self
            .workflows
            .list_credentials(context, listing.after.clone(), listing.filter, listing.size)
            .await?;
        Ok(Response::new(wire::ListCredentialsResponse {
            credentials: page.credentials.iter().map(credential_to_proto).collect(),
            next_page_token: convert::next_credentials_token(&listing, page.next),
        }))
    }

    async fn update_credential(
        &self,
        request: Request<wire::UpdateCredentialRequest>,
    ) -> Answer<wire::Credential> {
        let context = RequestContext::of(&request)?;
        let (id, changes) = convert::credential_changes(request.get_ref().clone())?;
        let credential = self
            .workflows
            .update_credential(context, id, changes)
            .await?;
        Ok(Response::new(credential_to_proto(&credential)))
    }

    async fn delete_credential(
        &self,
        request: Request<wire::DeleteCredentialRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let id = convert::credential_only(&request.get_ref().name)?;
        self.workflows.delete_credential(context, id).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn list_node_types(
        &self,
        request: Request<wire::ListNodeTypesRequest>,
    ) -> Answer<wire::ListNodeTypesResponse> {
        let context = RequestContext::of(&request)?;
        self.workflows.authorize_node_types(context)?;
        let (page_size, after, category) = convert::list_node_types(request.get_ref())?;
        let mut matching = NODE_TYPES
            .values()
            .filter(|node_type| category.is_none_or(|category| node_type.category == category))
            .filter(|node_type| after.as_deref().is_none_or(|after| node_type.name > after));
        let node_types: Vec<_> = matching.by_ref().take(page_size).collect();
        let next_page_token = match (matching.next(), node_types.last()) {
            (Some(_), Some(last)) => {
                convert::node_types_page_token(request.get_ref().category, last.name)
            }
            _ => String::new(),
        };
        Ok(Response::new(wire::ListNodeTypesResponse {
            node_types: node_types
                .into_iter()
                .map(convert::node_type_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    async fn run_workflow(
        &self,
        request: Request<wire::RunWorkflowRequest>,
    ) -> Answer<wire::Execution> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_run(request.get_ref())?;
        Ok(Response::new(self.workflows.run(context, new).await?))
    }

    async fn list_executions(
        &self,
        request: Request<wire::ListExecutionsRequest>,
    ) -> Answer<wire::ListExecutionsResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_executions(request.get_ref())?;
        let page = self
            .workflows
            .list_executions(context, &listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(wire::ListExecutionsResponse {
            executions: page
                .executions
                .iter()
                .map(|execution| execution_to_proto(execution, false))
                .collect(),
            next_page_token: listing.next_page_token(page.next),
        }))
    }

    async fn get_execution(
        &self,
        request: Request<wire::GetExecutionRequest>,
    ) -> Answer<wire::Execution> {
        let context = RequestContext::of(&request)?;
        let id = convert::execution_only("name", &request.get_ref().name)?;
        let execution = self.workflows.get_execution(context, id).await?;
        Ok(Response::new(execution_to_proto(&execution, true)))
    }

    async fn list_node_executions(
        &self,
        request: Request<wire::ListNodeExecutionsRequest>,
    ) -> Answer<wire::ListNodeExecutionsResponse> {
        let context = RequestContext::of(&request)?;
        let (id, node_id, after, page_size) = convert::list_node_runs(request.get_ref())?;
        let page = self
            .workflows
            .list_node_runs(context, id, node_id.as_deref(), after, page_size)
            .await?;
        Ok(Response::new(wire::ListNodeExecutionsResponse {
            node_executions: page
                .runs
                .iter()
                .map(|run| convert::node_run_to_proto(id, run))
                .collect(),
            next_page_token: convert::node_runs_page_token(
                &request.get_ref().parent,
                &request.get_ref().node_id,
                page.next,
            ),
        }))
    }

    async fn retry_execution(
        &self,
        request: Request<wire::RetryExecutionRequest>,
    ) -> Answer<wire::Execution> {
        let context = RequestContext::of(&request)?;
        let id = convert::execution_only("name", &request.get_ref().name)?;
        Ok(Response::new(
            self.workflows.retry_execution(context, id).await?,
        ))
    }

    async fn stream_execution(
        &self,
        request: Request<wire::StreamExecutionRequest>,
    ) -> Answer<Self::StreamExecutionStream> {
        let context = RequestContext::of(&request)?;
        let id = convert::execution_only("name", &request.get_ref().name)?;
        let updates = self.workflows.watch_execution(context, id).await?;
        let updates = ReceiverStream::new(updates).map(|update| update.map_err(Status::from));
        Ok(Response::new(Box::pin(updates)))
    }

    async fn cancel_execution(
        &self,
        request: Request<wire::CancelExecutionRequest>,
    ) -> Answer<wire::Execution> {
        let context = RequestContext::of(&request)?;
        let (id, reason) = convert::cancel_execution(request.get_ref())?;
        let execution = self
            .workflows
            .cancel_execution(context, id, &reason)
            .await?;
        Ok(Response::new(execution_to_proto(&execution, true)))
    }

    async fn list_dead_letters(
        &self,
        request: Request<wire::ListDeadLettersRequest>,
    ) -> Answer<wire::ListDeadLettersResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_dead_letters(request.get_ref())?;
        let page = self
            .workflows
            .list_dead_letters(
                context,
                listing.filter.replayed,
                listing.filter.workflow,
                listing.filter.queue.as_deref(),
                listing.after,
                listing.size,
            )
            .await?;
        Ok(Response::new(wire::ListDeadLettersResponse {
            dead_letters: page
                .dead_letters
                .iter()
                .map(convert::dead_letter_to_proto)
                .collect(),
            next_page_token: listing.next_page_token(page.next),
        }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<wire::ReplayDeadLetterRequest>,
    ) -> Answer<wire::DeadLetter> {
        let context = RequestContext::of(&request)?;
        let mut violations = platform::error::FieldViolations::new();
        let id = platform::wire::parse_resource_name(
            &mut violations,
            "name",
            &request.get_ref().name,
            "deadLetters",
        );
        violations.into_result()?;
        let id = id.expect("no violation means parsed");
        Ok(Response::new(
            self.workflows.replay_dead_letter(context, id).await?,
        ))
    }

    async fn trigger_webhook(
        &self,
        request: Request<wire::TriggerWebhookRequest>,
    ) -> Answer<wire::TriggerWebhookResponse> {
        let context = RequestContext::of(&request)?;
        let call = convert::webhook_call(request.metadata(), request.get_ref())?;
        let (execution, duplicate) = self.workflows.trigger_webhook(context, call).await?;
        Ok(Response::new(wire::TriggerWebhookResponse {
            execution: format!("executions/{execution}"),
            execution_id: execution.to_string(),
            duplicate,
        }))
    }
}
