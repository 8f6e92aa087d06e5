//! The `NotifyService` gRPC API. Its RPCs answer UNIMPLEMENTED (the generated defaults of a
//! draft service, see `proto/build.rs`) until each is built here: a handler of a few lines
//! that parses the request, calls the operations and converts the answer.

use proto::formflow::notify::v1::notify_service_server::NotifyService;

/// The `NotifyService` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyApi;

impl NotifyService for NotifyApi {}
