//! What every service built on the service kit answers besides its own API: health,
//! reflection (v1 and v1alpha), gRPC-web from browsers, its schema with the platform's
//! conventions, and a graceful stop.

use std::time::Duration;

use clap::Parser;
use platform::testing::{TestInfra, TestKeys, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const API: &str = "formflow.forms.v1.FormService";

async fn start(infra: &TestInfra, keys: &TestKeys) -> TestServer {
    let mut config = svc_forms::Config::try_parse_from(["svc-forms"]).unwrap();
    config.infra = infra.config();
    config.auth = keys.auth_config();
    TestServer::start(|listeners| svc_forms::build(config, listeners)).await
}

#[tokio::test]
async fn health_reports_the_api_serving() {
    let (infra, keys) = (TestInfra::new().await, TestKeys::new());
    let server = start(&infra, &keys).await;
    let mut health = HealthClient::new(server.channel());
    for service in ["", API] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_exactly_what_is_served() {
    let (infra, keys) = (TestInfra::new().await, TestKeys::new());
    let server = start(&infra, &keys).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(server.channel())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = listed
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            API,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
    );
}

#[tokio::test]
async fn browsers_reach_it_over_grpc_web() {
    let (infra, keys) = (TestInfra::new().await, TestKeys::new());
    let server = start(&infra, &keys).await;
    // An empty HealthCheckRequest in one gRPC-web frame: flag 0, length 0.
    let mut request = b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\n\
        host: localhost\r\n\
        content-type: application/grpc-web+proto\r\n\
        x-grpc-web: 1\r\n\
        content-length: 5\r\n\
        connection: close\r\n\r\n"
        .to_vec();
    request.extend_from_slice(&[0, 0, 0, 0, 0]);
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("application/grpc-web"), "{response}");
    assert!(response.contains("grpc-status:0"), "{response}");
}

#[tokio::test]
async fn its_schema_has_the_platform_conventions_and_migrations_run_once() {
    let (infra, keys) = (TestInfra::new().await, TestKeys::new());
    start(&infra, &keys).await.stop().await;
    // A second start over the same database migrates nothing again.
    start(&infra, &keys).await.stop().await;

    let mut admin = infra.admin_connection().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'forms' ORDER BY tablename",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for table in [
        "_sqlx_migrations",
        "audit_log",
        "idempotency_keys",
        "outbox",
        "processed_events",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM forms._sqlx_migrations")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let expected = platform::db::with_platform_migrations(&svc_forms::app::SCHEMA.migrations)
        .iter()
        .count();
    assert_eq!(applied as usize, expected);
}

/// The health of `server`'s API.
async fn serving_status(server: &TestServer) -> i32 {
    HealthClient::new(server.channel())
        .check(HealthCheckRequest {
            service: API.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn a_replica_starting_during_a_svc_auth_outage_uses_the_cached_keys_or_waits_for_them() {
    use platform::testing::{TcpProxy, expect_code, wait_until};
    use proto::formflow::forms::v1::ListFormsRequest;
    use proto::formflow::forms::v1::form_service_client::FormServiceClient;

    let (infra, keys) = (TestInfra::new().await, TestKeys::new());
    let services = testkit::Services::start(&infra, &keys, testkit::Options::default()).await;
    let signed_up = services
        .sign_up("outage", "ada@outage.test", "correct horse battery staple")
        .await
        .unwrap();
    let token = signed_up.tokens.unwrap().access_token;
    let tenant: platform::context::TenantId = signed_up.tenant.unwrap().id.parse().unwrap();
    // svc-auth's own keys only: nothing pinned from a file.
    let auth = TcpProxy::start(services.auth_addr).await;
    let start = |infra: platform::config::InfraConfig| {
        let mut config = svc_forms::Config::try_parse_from(["svc-forms"]).unwrap();
        config.infra = infra;
        config.auth = platform::config::AuthConfig {
            auth_url: Some(format!("http://{}", auth.addr())),
            auth_jwks_file: None,
            ..keys.auth_config()
        };
        TestServer::start(|listeners| svc_forms::build(config, listeners))
    };
    let list = |server: &TestServer| {
        let metadata = platform::testing::CallMetadata::new(Some(&token), Some(tenant));
        let mut client = FormServiceClient::with_interceptor(server.channel(), metadata);
        async move { client.list_forms(ListFormsRequest::default()).await }
    };

    // svc-auth answers: the keys are fetched, and cached in Redis.
    let first = start(infra.config()).await;
    assert_eq!(serving_status(&first).await, ServingStatus::Serving as i32);
    list(&first).await.unwrap();

    // svc-auth unreachable: a new replica starts with the cached keys, ready at once.
    auth.cut();
    let second = start(infra.config()).await;
    assert_eq!(serving_status(&second).await, ServingStatus::Serving as i32);
    list(&second).await.unwrap();

    // Nothing cached (another deployment's Redis prefix): it starts anyway, not ready, and
    // refuses tokens; once svc-auth answers it fetches the keys and becomes ready.
    let mut uncached = infra.config();
    uncached.redis.redis_key_prefix = format!("ff-test-{}:", uuid::Uuid::now_v7());
    let third = start(uncached).await;
    assert_eq!(
        serving_status(&third).await,
        ServingStatus::NotServing as i32
    );
    let alive = HealthClient::new(third.channel())
        .check(HealthCheckRequest {
            service: platform::server::LIVENESS.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        alive,
        ServingStatus::Serving as i32,
        "alive, so not restarted"
    );
    expect_code(list(&third).await, tonic::Code::Unauthenticated);
    auth.restore();
    wait_until(
        Duration::from_secs(10),
        "the replica becoming ready",
        || async { serving_status(&third).await == ServingStatus::Serving as i32 },
    )
    .await;
    list(&third).await.unwrap();
}

#[tokio::test]
async fn the_health_subcommand_exits_0_only_while_the_service_serves() {
    let (infra, keys) = (TestInfra::new().await, TestKeys::new());
    let server = start(&infra, &keys).await;
    // Off the runtime: the server under test answers on it meanwhile.
    let health = |addr: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_svc-forms"))
                .arg("health")
                .env("FORMS_GRPC_ADDR", addr)
                .env_remove("DATABASE_URL")
                .output()
                .expect("running svc-forms health")
        })
    };
    let serving = health(server.addr().to_string()).await.unwrap();
    assert!(serving.status.success(), "{serving:?}");
    // On every interface, the check goes to the loopback.
    let everywhere = health(format!("0.0.0.0:{}", server.addr().port()))
        .await
        .unwrap();
    assert!(everywhere.status.success(), "{everywhere:?}");
    let addr = server.addr();
    server.stop().await;
    let stopped = health(addr.to_string()).await.unwrap();
    assert!(!stopped.status.success());
    assert!(
        String::from_utf8_lossy(&stopped.stderr).contains("nothing answers"),
        "{stopped:?}"
    );
}
