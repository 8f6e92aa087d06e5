//! The balanced channel against real gRPC servers: calls spread over every address the name
//! resolves to, continue when a replica is gone (still listed or not), reach replicas added
//! later, and a call that reached a replica is never sent to another.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::client::balance::{BalanceOptions, Balanced, Resolve};
use platform::testing::wait_until;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The name of the service the replicas report serving, and a marker the black hole looks for.
const MARKER: &str = "only-once-marker";

/// A name server whose answer the test sets, as a headless Service's DNS follows its pods.
#[derive(Default)]
struct Answers(Mutex<Vec<SocketAddr>>);

impl Answers {
    fn set(&self, addrs: &[SocketAddr]) {
        *self.0.lock().unwrap() = addrs.to_vec();
    }
}

impl Resolve for Answers {
    fn resolve(
        &self,
        _host: &str,
        _port: u16,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
    {
        let addrs = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(addrs) })
    }
}

/// A gRPC server (the health service) that counts the calls it answers.
struct Replica {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Replica {
    async fn start(ip: &str) -> Replica {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(MARKER, tonic_health::ServingStatus::Serving)
            .await;
        let counted = tonic::service::interceptor::InterceptedService::new(
            health,
            move |request: tonic::Request<()>| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(request)
            },
        );
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(counted)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Replica {
            addr,
            calls,
            stop,
            task,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Stops the server as a terminated pod stops: its listener closes and its connections end.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap();
    }
}

fn balanced(answers: &Arc<Answers>) -> Balanced {
    Balanced::new(
        "http://replicas.formflow.test:50051",
        "TEST_URL",
        BalanceOptions {
            refresh: Duration::from_millis(50),
            resolver: answers.clone(),
            ..BalanceOptions::new(Duration::from_secs(1))
        },
    )
    .unwrap()
}

async fn check(client: &mut HealthClient<Balanced>) -> Result<(), tonic::Status> {
    client
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn calls_spread_over_every_replica_and_go_on_when_one_is_gone_or_added() {
    let (first, second) = (
        Replica::start("127.0.0.1").await,
        Replica::start("127.0.0.1").await,
    );
    let answers = Arc::new(Answers::default());
    answers.set(&[first.addr, second.addr]);
    let channel = balanced(&answers);
    let mut client = HealthClient::new(channel.clone());

    for _ in 0..20 {
        check(&mut client).await.unwrap();
    }
    assert_eq!((first.calls(), second.calls()), (10, 10), "round-robin");

    // A replica goes away while DNS still lists it: no call fails, the other takes them all.
    let second_addr = second.addr;
    second.stop().await;
    for _ in 0..20 {
        check(&mut client).await.unwrap();
    }
    assert_eq!(first.calls(), 30);

    // A replica is added (a scale-up): once DNS lists it, it receives its share.
    let third = Replica::start("127.0.0.1").await;
    let third_addr = third.addr;
    answers.set(&[first.addr, third_addr]);
    wait_until(
        Duration::from_secs(5),
        "the new replica is resolved",
        || {
            let addresses = channel.addresses();
            async move { addresses.contains(&third_addr) && !addresses.contains(&second_addr) }
        },
    )
    .await;
    for _ in 0..20 {
        check(&mut client).await.unwrap();
    }
    assert_eq!((first.calls(), third.calls()), (40, 10));

    // With every replica gone the call fails as unavailable, after trying each once.
    first.stop().await;
    third.stop().await;
    let error = check(&mut client).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
}

/// Accepts one connection, reads until `marker` (a part of the request's message) arrived, then
/// drops the connection without answering: a replica that dies while serving the call.
async fn black_hole(listener: TcpListener, marker: &[u8]) -> usize {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !received
        .windows(marker.len())
        .any(|window| window == marker)
    {
        let read = socket.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection ended before the message arrived");
        received.extend_from_slice(&buffer[..read]);
    }
    received.len()
}

#[tokio::test]
async fn a_call_that_reached_a_replica_is_not_sent_to_another() {
    let healthy = Replica::start("127.0.0.1").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = listener.local_addr().unwrap();
    let hole_task = tokio::spawn(black_hole(listener, MARKER.as_bytes()));
    let answers = Arc::new(Answers::default());
    answers.set(&[healthy.addr, hole]);
    let mut client = HealthClient::new(balanced(&answers));

    // Two calls: the round-robin sends one of them to the black hole first.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let request = HealthCheckRequest {
            service: MARKER.to_owned(),
        };
        outcomes.push(client.check(request).await.map(|_| ()));
    }
    assert!(hole_task.await.unwrap() > MARKER.len());
    let failures = outcomes.iter().filter(|outcome| outcome.is_err()).count();
    assert_eq!(failures, 1, "{outcomes:?}");
    assert_eq!(
        healthy.calls(),
        1,
        "the call the black hole swallowed was not sent again"
    );
    healthy.stop().await;
}

#[tokio::test]
async fn a_name_is_resolved_by_the_system_resolver() {
    let replica = Replica::start("127.0.0.1").await;
    let channel = Balanced::new(
        &format!("http://localhost:{}", replica.addr.port()),
        "TEST_URL",
        BalanceOptions::new(Duration::from_secs(1)),
    )
    .unwrap();
    let mut client = HealthClient::new(channel.clone());
    for _ in 0..3 {
        check(&mut client).await.unwrap();
    }
    assert_eq!(replica.calls(), 3);
    assert!(channel.addresses().contains(&replica.addr));
    replica.stop().await;
}
