//! The `FormService` gRPC API. Its RPCs answer UNIMPLEMENTED (the generated defaults of a
//! draft service, see `proto/build.rs`) until each is built here: a handler of a few lines
//! that parses the request, calls the operations and converts the answer.

use proto::formflow::forms::v1::form_service_server::FormService;

/// The `FormService` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormsApi;

impl FormService for FormsApi {}
