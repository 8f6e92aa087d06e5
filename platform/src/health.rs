//! The `health` subcommand of every binary: a gRPC health check of the server this host runs
//! on the configured address, for container health checks (the images have no shell and no
//! gRPC client of their own).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest the check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where a server listening on `listen` (perhaps every interface) is reached from this host.
pub fn local_target(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, listen.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, listen.port()).into(),
        _ => listen,
    }
}

/// Succeeds when the gRPC server listening on `listen` reports SERVING for the whole server;
/// otherwise says what it reported, or why it did not answer.
pub async fn check_grpc(listen: SocketAddr) -> anyhow::Result<()> {
    let target = local_target(listen);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{target}"))?
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("nothing answers on {target}"))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .with_context(|| format!("the health check of {target} failed"))?
        .into_inner()
        .status;
    anyhow::ensure!(
        status == ServingStatus::Serving as i32,
        "{target} is {}",
        ServingStatus::try_from(status)
            .map_or("in an unknown state", |status| status.as_str_name())
    );
    Ok(())
}

/// Succeeds when the HTTP server listening on `listen` answers `path` with 200 (the gateway's
/// `/healthz`).
pub async fn check_http(listen: SocketAddr, path: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = local_target(listen);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target)
            .await
            .with_context(|| format!("nothing answers on {target}"))?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut head = [0_u8; 64];
        let read = stream.read(&mut head).await?;
        anyhow::Ok(String::from_utf8_lossy(&head[..read]).into_owned())
    };
    let answer = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("{target} did not answer in time"))??;
    let status = answer.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status.starts_with("HTTP/1.1 200"),
        "{target}{path} answered {status:?}"
    );
    Ok(())
}

/// What to do instead of serving, for every service.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum HealthCommand {
    /// Checks the health of the server this host runs on the configured gRPC address (HTTP
    /// address for the gateway) and exits with 0 when it serves, 1 otherwise: the container
    /// health check.
    Health,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_checked_on_the_loopback() {
        assert_eq!(
            local_target("0.0.0.0:50053".parse().unwrap()),
            "127.0.0.1:50053".parse().unwrap()
        );
        assert_eq!(
            local_target("[::]:50053".parse().unwrap()),
            "[::1]:50053".parse().unwrap()
        );
        assert_eq!(
            local_target("10.0.0.7:50053".parse().unwrap()),
            "10.0.0.7:50053".parse().unwrap()
        );
    }

    /// An HTTP server on the loopback answering every request with `status_line`.
    async fn answering(status_line: &'static str) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0_u8; 1024];
                let _ = stream.read(&mut request).await;
                let response = format!("{status_line}\r\ncontent-length: 0\r\n\r\n");
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_checks_pass_on_200_only() {
        check_http(answering("HTTP/1.1 200 OK").await, "/healthz")
            .await
            .unwrap();
        let error = check_http(
            answering("HTTP/1.1 503 Service Unavailable").await,
            "/healthz",
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("503"), "{error:#}");
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = check_grpc(closed).await.unwrap_err();
        assert!(
            format!("{error:#}").contains("nothing answers"),
            "{error:#}"
        );
    }
}
