//! A real gRPC service for the gateway's tests and benchmark: an RPC for every transcoding
//! rule (see `protos/acme/echo/v1/echo.proto`), served by tonic with gRPC-web, like the
//! suite's services. Its package, `acme.echo.v1`, is not the suite's: the gateway learns it
//! from [`DESCRIPTOR_SET`] handed over as a file.

// Generated code.
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod pb {
    pub mod acme {
        pub mod echo {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/acme.echo.v1.rs"));
            }
        }
    }
    pub mod google {
        pub mod api {
            include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
        }
    }
    pub mod formflow {
        pub mod api {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/formflow.api.v1.rs"));
            }
        }
    }
}

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use pb::acme::echo::v1::echo_service_server::{EchoService, EchoServiceServer};
use pb::acme::echo::v1::*;
use pb::google::api::HttpBody;
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The service's descriptor set, imports included.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/echo_descriptor.bin"));

/// Its protobuf package.
pub const PACKAGE: &str = "acme.echo.v1";

/// The echo service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

/// Metadata never reported by `WhoAmI`: transport headers.
const TRANSPORT: [&str; 5] = [
    "content-type",
    "te",
    "user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
];

fn call_info<T>(request: &Request<T>) -> CallInfo {
    let metadata = request
        .metadata()
        .iter()
        .filter_map(|entry| match entry {
            tonic::metadata::KeyAndValueRef::Ascii(key, value)
                if !TRANSPORT.contains(&key.as_str()) =>
            {
                Some((key.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            }
            _ => None,
        })
        .collect();
    CallInfo { metadata }
}

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<Everything>) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn echo_query(
        &self,
        request: Request<Everything>,
    ) -> Result<Response<Everything>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let request = request.into_inner();
        if request.book <= 0 {
            return Err(Status::not_found(format!(
                "book {} not found",
                request.book
            )));
        }
        Ok(Response::new(Book {
            name: format!("shelves/{}/books/{}", request.shelf, request.book),
            title: format!("Book {} of {}", request.book, request.shelf),
            author: if request.with_author {
                "Ada".to_owned()
            } else {
                String::new()
            },
            publish_time: None,
            pages: request.book * 100,
            published: false,
        }))
    }

    async fn get_book_title(
        &self,
        request: Request<GetBookRequest>,
    ) -> Result<Response<Book>, Status> {
        self.get_book(request).await
    }

    async fn get_file(&self, request: Request<GetFileRequest>) -> Result<Response<File>, Status> {
        let request = request.into_inner();
        Ok(Response::new(File {
            name: request.name,
            version: request.version,
        }))
    }

    async fn get_nested(&self, request: Request<Nested>) -> Result<Response<Nested>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn publish_book(
        &self,
        request: Request<PublishBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let request = request.into_inner();
        Ok(Response::new(Book {
            name: request.name,
            publish_time: request.publish_time,
            published: true,
            ..Book::default()
        }))
    }

    async fn update_book(
        &self,
        request: Request<UpdateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let request = request.into_inner();
        let mut book = request.book.unwrap_or_default();
        // Reports the mask in the author field, so tests see what arrived.
        book.author = request
            .update_mask
            .map(|mask| mask.paths.join(","))
            .unwrap_or_default();
        Ok(Response::new(book))
    }

    async fn delete_book(
        &self,
        request: Request<DeleteBookRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        if !request.force {
            return Err(Status::failed_precondition(format!(
                "{} is not empty; set force",
                request.name
            )));
        }
        Ok(Response::new(()))
    }

    async fn upload(
        &self,
        request: Request<UploadRequest>,
    ) -> Result<Response<UploadResponse>, Status> {
        let request = request.into_inner();
        let file = request.file.unwrap_or_default();
        Ok(Response::new(UploadResponse {
            name: request.name,
            content_type: file.content_type,
            size: file.data.len() as i64,
            data: file.data,
        }))
    }

    async fn download(
        &self,
        request: Request<DownloadRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HttpBody {
            content_type: "text/csv".to_owned(),
            data: format!("name,size\n{name},3\n").into_bytes(),
            extensions: Vec::new(),
        }))
    }

    type DownloadChunksStream = Pin<Box<dyn Stream<Item = Result<HttpBody, Status>> + Send>>;

    async fn download_chunks(
        &self,
        request: Request<DownloadChunksRequest>,
    ) -> Result<Response<Self::DownloadChunksStream>, Status> {
        let request = request.into_inner();
        if request.fail_with != 0 && request.chunks == 0 {
            return Err(Status::new(
                tonic::Code::from_i32(request.fail_with),
                "no such download",
            ));
        }
        let name = request.name;
        Ok(Response::new(paced(
            request.chunks,
            move |n| HttpBody {
                content_type: "text/csv".to_owned(),
                data: format!("{name},{n}\n").into_bytes(),
                extensions: Vec::new(),
            },
            request.interval,
            request.fail_with,
            "the download failed",
        )))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        let code = tonic::Code::from_i32(request.code);
        let mut details = ErrorDetails::new();
        if !request.reason.is_empty() {
            details.set_error_info(
                request.reason.clone(),
                "acme.example",
                std::collections::HashMap::new(),
            );
        }
        let mut violations: Vec<_> = request.violations.into_iter().collect();
        violations.sort();
        for (field, description) in violations {
            details.add_bad_request_violation(field, description);
        }
        if let Some(delay) = request.retry_delay {
            let delay = Duration::try_from(delay)
                .map_err(|_| Status::invalid_argument("retry_delay must not be negative"))?;
            details.set_retry_info(Some(delay));
        }
        if !request.resource_name.is_empty() {
            details.set_resource_info("book", request.resource_name, "acme", "the book asked for");
        }
        if !request.help_url.is_empty() {
            details.add_help_link("what to do", request.help_url);
        }
        if !request.debug_detail.is_empty() {
            details.set_debug_info(vec!["at echo.rs:1".to_owned()], request.debug_detail);
        }
        if !request.precondition_subject.is_empty() {
            details.add_precondition_failure_violation(
                "STATE",
                request.precondition_subject,
                "is not ready",
            );
        }
        if !request.quota_subject.is_empty() {
            details.add_quota_failure_violation(request.quota_subject, "daily quota spent");
        }
        if !request.localized_message.is_empty() {
            details.set_localized_message("fr-FR", request.localized_message);
        }
        Err(Status::with_error_details(code, request.message, details))
    }

    async fn sleep(&self, request: Request<SleepRequest>) -> Result<Response<()>, Status> {
        let duration = request.into_inner().duration.unwrap_or_default();
        let duration = Duration::try_from(duration)
            .map_err(|_| Status::invalid_argument("duration must not be negative"))?;
        tokio::time::sleep(duration).await;
        Ok(Response::new(()))
    }

    type CountStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

    async fn count(
        &self,
        request: Request<CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        let request = request.into_inner();
        if request.count < 0 {
            return Err(Status::invalid_argument("count must not be negative"));
        }
        Ok(Response::new(paced(
            request.count,
            |n| Tick { n },
            request.interval,
            request.fail_with,
            "the count failed",
        )))
    }

    async fn who_am_i(&self, request: Request<()>) -> Result<Response<CallInfo>, Status> {
        Ok(Response::new(call_info(&request)))
    }

    async fn public_who_am_i(&self, request: Request<()>) -> Result<Response<CallInfo>, Status> {
        Ok(Response::new(call_info(&request)))
    }

    async fn global_who_am_i(&self, request: Request<()>) -> Result<Response<CallInfo>, Status> {
        Ok(Response::new(call_info(&request)))
    }

    async fn internal(&self, request: Request<()>) -> Result<Response<CallInfo>, Status> {
        Ok(Response::new(call_info(&request)))
    }
}

/// Serves the echo service (with gRPC-web and health) on `listener` until the process ends.
/// A stream of `item(1..=count)`, a pause of `interval` after each, then the gRPC code
/// `fail_with` with `failure` unless it is 0.
fn paced<T: Send + 'static>(
    count: i32,
    item: impl Fn(i32) -> T + Send + 'static,
    interval: Option<prost_types::Duration>,
    fail_with: i32,
    failure: &'static str,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>> {
    let interval = interval
        .and_then(|interval| Duration::try_from(interval).ok())
        .unwrap_or(Duration::ZERO);
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for n in 1..=count {
            if sender.send(Ok(item(n))).await.is_err() {
                return;
            }
            tokio::time::sleep(interval).await;
        }
        if fail_with != 0 {
            let _ = sender
                .send(Err(Status::new(tonic::Code::from_i32(fail_with), failure)))
                .await;
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

pub async fn serve(listener: TcpListener) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(EchoServiceServer::new(Echo))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
}

/// Binds a loopback port and serves the echo service there in the background.
pub async fn spawn() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("a bound listener");
    tokio::spawn(serve(listener));
    addr
}
