//! What the gateway costs: the same calls made directly over gRPC and as REST/JSON through the
//! gateway (tenant cached, a valid JWT, rate limits and the revocation check on), at a fixed
//! concurrency, against real services on loopback (release build, real Postgres, Redis and
//! RabbitMQ). Run with `scripts/bench.sh gateway`; the figures are recorded in
//! docs/benchmarks.md.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use echo_service::pb::acme::echo::v1::GetBookRequest;
use echo_service::pb::acme::echo::v1::echo_service_client::EchoServiceClient;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use platform::testing::{TestInfra, TestKeys, process_cpu_time};
use proto::formflow::tenant::v1::GetTenantRequest;
use proto::formflow::tenant::v1::tenant_service_client::TenantServiceClient;
use testkit::{Options, Services};
use tonic::Request;

const CONCURRENCY: usize = 32;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(10);
const PASSWORD: &str = "violet-Kettle-drums-9-orbit";

/// A gRPC request with the caller's token and tenant, as the gateway would send it.
fn grpc_request<T>(message: T, authorization: &str, tenant_id: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
        .metadata_mut()
        .insert("x-tenant-id", tenant_id.parse().unwrap());
    request
}

/// Runs `call` from `concurrency` tasks for `MEASURE` after a warm-up; prints the figures,
/// with the CPU the whole process (callers, gateway and services) spent per call, and answers
/// the throughput and that CPU.
async fn measure<F, Fut>(name: &str, concurrency: usize, call: F) -> (f64, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let warm_up_until = Instant::now() + WARM_UP;
    let until = warm_up_until + MEASURE;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(warm_up_until.into()).await;
        let before = process_cpu_time();
        tokio::time::sleep_until(until.into()).await;
        process_cpu_time() - before
    });
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failures = 0_u64;
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                let ok = call().await;
                if started >= warm_up_until {
                    samples.push(started.elapsed());
                    failures += u64::from(!ok);
                }
            }
            (samples, failures)
        }));
    }
    let mut samples = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mut some, failed) = worker.await.expect("a worker");
        samples.append(&mut some);
        failures += failed;
    }
    samples.sort();
    let rate = samples.len() as f64 / MEASURE.as_secs_f64();
    let cpu_per_call = cpu.await.expect("the CPU probe") / samples.len().max(1) as u32;
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    println!(
        "{name:<52} c={concurrency:<3} {rate:>8.0} req/s  p50={:>9.3?}  p99={:>9.3?}  cpu/call={:>7.1?}  n={}  failed={failures}",
        at(0.5),
        at(0.99),
        cpu_per_call,
        samples.len(),
    );
    assert_eq!(failures, 0, "{name}: calls failed");
    (rate, cpu_per_call)
}

/// Prints what the gateway keeps of the direct throughput and the CPU it adds per call.
fn compare((direct, direct_cpu): (f64, Duration), (through, through_cpu): (f64, Duration)) {
    println!(
        "  gateway keeps {:.0}% of the direct throughput and adds {:.1?} of CPU per call\n",
        100.0 * through / direct,
        through_cpu.saturating_sub(direct_cpu),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "gateway benchmark: {CONCURRENCY} concurrent callers, {MEASURE:?} per measurement, release build\n"
    );
    let infra = TestInfra::new().await;
    // svc-tenant trusts the bench's key too, for the platform administrator's call below.
    let keys = TestKeys::new();
    let services = Services::start(
        &infra,
        &keys,
        Options {
            security: testkit::owasp_security(),
            base_domain: None,
        },
    )
    .await;
    let tenant_addr = services.tenant_addr;
    let echo_addr = echo_service::spawn().await;

    let descriptor_file =
        std::env::temp_dir().join(format!("ff-bench-echo-{}.binpb", uuid::Uuid::new_v4()));
    std::fs::write(&descriptor_file, echo_service::DESCRIPTOR_SET)?;
    let mut config = services.gateway_config(&infra, &keys);
    config.upstreams.descriptor_sets = vec![descriptor_file.clone()];
    config.upstreams.package_routes = vec![format!("{}=http://{echo_addr}", echo_service::PACKAGE)];
    config.edge.caller_rate = 10_000_000;
    config.edge.caller_burst = 1_000_000;
    let gateway = gateway::App::build(config).await?;
    let gateway_addr = gateway.http_addr();
    tokio::spawn(gateway.run_until_stopped(std::future::pending()));

    // An owner of a tenant, logged in.
    let signed_up = services
        .sign_up("bench", "bench@example.com", PASSWORD)
        .await?;
    let tenant_id = signed_up.tenant.expect("a tenant").id;
    let token = signed_up.tokens.expect("tokens").access_token;
    // The free plan's 600 requests a minute would refuse nearly all of the run.
    services.lift_rate_limits(&keys, &tenant_id).await?;
    let authorization: Arc<str> = format!("Bearer {token}").into();

    // As curl and browsers do.
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY)
        .build::<_, Full<Bytes>>(connector);
    let rest = {
        let http = http.clone();
        let authorization = authorization.clone();
        let tenant_id = tenant_id.clone();
        move |path: String| {
            let http = http.clone();
            let request = http::Request::get(format!("http://{gateway_addr}{path}"))
                .header("authorization", authorization.as_ref())
                .header("x-tenant-id", &tenant_id)
                .body(Full::new(Bytes::new()))
                .unwrap();
            async move {
                match http.request(request).await {
                    Ok(response) => {
                        let ok = response.status() == 200;
                        ok && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        }
    };

    // 1. A call that does nothing: the gateway's own cost.
    let echo = EchoServiceClient::connect(format!("http://{echo_addr}")).await?;
    let direct_echo = {
        let (authorization, tenant_id) = (authorization.clone(), tenant_id.clone());
        move || {
            let request = grpc_request(
                GetBookRequest {
                    shelf: "s".into(),
                    book: 1,
                    with_author: true,
                },
                &authorization,
                &tenant_id,
            );
            let mut echo = echo.clone();
            async move { echo.get_book(request).await.is_ok() }
        }
    };
    let rest_echo = {
        let rest = rest.clone();
        move || rest("/v1/shelves/s/books/1?with_author=true".to_owned())
    };
    // 2. A real service call: svc-tenant verifies the token and reads the tenant (cached).
    let tenants = TenantServiceClient::connect(format!("http://{tenant_addr}")).await?;
    let name = format!("tenants/{tenant_id}");
    let direct_tenant = {
        let (authorization, tenant_id, name) =
            (authorization.clone(), tenant_id.clone(), name.clone());
        move || {
            let request = grpc_request(
                GetTenantRequest { name: name.clone() },
                &authorization,
                &tenant_id,
            );
            let mut tenants = tenants.clone();
            async move { tenants.get_tenant(request).await.is_ok() }
        }
    };
    let rest_tenant = move || rest(format!("/api/v1/{name}"));

    for concurrency in [CONCURRENCY, 1] {
        let direct = measure(
            "echo GetBook, direct gRPC",
            concurrency,
            direct_echo.clone(),
        )
        .await;
        let through = measure(
            "echo GetBook, REST/JSON through the gateway",
            concurrency,
            rest_echo.clone(),
        )
        .await;
        compare(direct, through);
        let direct = measure(
            "svc-tenant GetTenant, direct gRPC",
            concurrency,
            direct_tenant.clone(),
        )
        .await;
        let through = measure(
            "svc-tenant GetTenant, REST/JSON through the gateway",
            concurrency,
            rest_tenant.clone(),
        )
        .await;
        compare(direct, through);
    }

    std::fs::remove_file(descriptor_file).ok();
    Ok(())
}
