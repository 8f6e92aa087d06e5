//! The gRPC server: gRPC-web over HTTP/1.1 for browsers, request ids, metrics, shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use platform::server::{GrpcServer, Listeners};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Sends a raw HTTP/1.1 request and returns the whole response as text.
async fn http1(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the server answers and closes")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn browsers_reach_services_over_grpc_web_and_metrics_are_served() {
    let listeners = Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let grpc_addr = listeners.grpc_addr();
    let metrics_addr = listeners.metrics_addr().unwrap();
    let server = GrpcServer::new("test", listeners);
    platform::metrics::install();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.serve(shutdown.clone()));

    // An empty HealthCheckRequest in one gRPC-web frame: flag 0, length 0.
    let mut request = b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\n\
        host: localhost\r\n\
        content-type: application/grpc-web+proto\r\n\
        x-grpc-web: 1\r\n\
        x-request-id: browser-42\r\n\
        content-length: 5\r\n\
        connection: close\r\n\r\n"
        .to_vec();
    request.extend_from_slice(&[0, 0, 0, 0, 0]);
    let response = http1(grpc_addr, &request).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("application/grpc-web"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-request-id: browser-42"),
        "{response}"
    );
    assert!(response.contains("grpc-status:0"), "{response}");

    let metrics = http1(
        metrics_addr,
        b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("grpc_server_handled_total{grpc_service=\"test\",grpc_method=\"/grpc.health.v1.Health/Check\",grpc_code=\"Ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("grpc_server_handling_seconds_bucket"),
        "{metrics}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server stops when asked")
        .unwrap()
        .unwrap();
}
