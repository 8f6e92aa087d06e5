//! Traces leave through OTLP when an endpoint is configured, continuing the caller's trace.
//! (Its own test binary: it installs the process-wide subscriber.)

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use platform::server::{GrpcServer, Listeners};
use platform::telemetry::{LogFormat, TelemetryConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_reach_the_collector_in_the_callers_trace() {
    let (exported, mut received) = mpsc::unbounded_channel();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = collector.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(exported)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(collector)),
    );

    let guard = platform::telemetry::init(
        "telemetry-test",
        &TelemetryConfig {
            log_format: LogFormat::Json,
            log_filter: "info".to_owned(),
            otlp_endpoint: Some(format!("http://{collector_addr}")),
        },
    )
    .unwrap();

    let server = GrpcServer::new("telemetry-test", Listeners::loopback().await.unwrap());
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(shutdown.clone()));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    health.check(request).await.unwrap();

    // Dropping the guard flushes the batch of spans.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let export = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("the spans are exported")
        .unwrap();
    let spans: Vec<_> = export
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .collect();
    let rpc_span = spans
        .iter()
        .find(|span| span.name == "rpc")
        .expect("the rpc span is exported");
    let trace_id: String = rpc_span
        .trace_id
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(trace_id, TRACE_ID, "the span continues the caller's trace");
    let service_name = export.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| attribute.value.as_ref())
        .map(|value| format!("{value:?}"))
        .unwrap_or_default();
    assert!(service_name.contains("telemetry-test"), "{service_name}");
    shutdown.cancel();
}
