//! The `WorkflowService` gRPC API. Its RPCs answer UNIMPLEMENTED (the generated defaults of a
//! draft service, see `proto/build.rs`) until each is built here: a handler of a few lines
//! that parses the request, calls the operations and converts the answer.

use proto::formflow::workflow::v1::workflow_service_server::WorkflowService;

/// The `WorkflowService` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkflowApi;

impl WorkflowService for WorkflowApi {}
