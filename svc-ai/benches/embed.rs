//! Embedding latency, throughput and CPU per text of a real svc-ai (release build, the model
//! `scripts/setup.sh` installs) over gRPC, with and without micro-batching. Run with
//! `scripts/bench.sh ai`; the figures are recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::server::Listeners;
use platform::testing::{TestInfra, TestKeys, TestServer, process_cpu_time};
use proto::formflow::ai::v1::EmbedRequest;
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use svc_ai::{Config, ModelsConfig};
use tonic::Request;
use tonic::transport::Channel;

/// Support-ticket-like texts of 4 to 60 words.
fn texts() -> Vec<String> {
    let openings = [
        "I was charged twice for my subscription this month",
        "The website is down and every page shows a 502 error",
        "How do I reset my password? The link in the email has expired",
        "Please add a dark mode to the dashboard",
        "Thanks a lot, the support team was fast and friendly",
        "Our whole team cannot log in since this morning",
        "Can I export all submissions of a form to CSV",
        "The webhook to our CRM fails with a timeout",
    ];
    let details = [
        "",
        " and I would like a refund as soon as possible",
        " although nothing changed on our side since last week, and we already cleared the caches, tried another browser and restarted the integration twice without any success",
        " - this blocks the launch of our new onboarding form, which several hundred customers are waiting for; could someone from engineering please look into it today?",
    ];
    openings
        .iter()
        .flat_map(|opening| {
            details
                .iter()
                .map(move |detail| format!("{opening}{detail}."))
        })
        .collect()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

type Client = AiServiceClient<Channel>;

fn request(token: &str, texts: &[String]) -> Request<EmbedRequest> {
    let mut request = Request::new(EmbedRequest {
        model: String::new(),
        texts: texts.to_vec(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// `callers` concurrent callers, each sending `per_request` texts per call, `calls` calls each.
async fn run(
    name: &str,
    client: &Client,
    token: &str,
    callers: usize,
    per_request: usize,
    calls: usize,
) {
    let texts = texts();
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let mut client = client.clone();
            let token = token.to_owned();
            let texts = texts.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(calls);
                for call in 0..calls {
                    let first = (caller * 7 + call * per_request) % texts.len();
                    let batch: Vec<String> = (0..per_request)
                        .map(|offset| texts[(first + offset) % texts.len()].clone())
                        .collect();
                    let sent = Instant::now();
                    let response = client.embed(request(&token, &batch)).await.expect("embed");
                    assert_eq!(response.into_inner().embeddings.len(), per_request);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let wall = started.elapsed();
    let cpu = process_cpu_time() - cpu_before;
    latencies.sort();
    let embedded = (callers * per_request * calls) as f64;
    println!(
        "{name:<40} {:>7.0} texts/s  call p50={:>8.1?} p99={:>8.1?}  CPU {:>5.2} ms/text",
        embedded / wall.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        cpu.as_secs_f64() * 1000.0 / embedded,
    );
}

/// A release svc-ai (its defaults, with these models and batch size, over a fresh database) and
/// how long its start took (models loaded and checked, schema migrated).
async fn start(keys: &TestKeys, max_batch: u16) -> anyhow::Result<(TestServer, Duration)> {
    let mut config = Config::try_parse_from(["svc-ai"])?;
    config.infra = TestInfra::new().await.config();
    config.options.models = ModelsConfig {
        models_dir: std::env::var("AI_MODELS_DIR")?.into(),
        onnxruntime_library: std::env::var("AI_ONNXRUNTIME_LIBRARY")?.into(),
        queue_capacity: 1024,
        max_batch,
        queue_timeout: Duration::from_secs(60),
        ..config.options.models
    };
    config.auth = keys.auth_config();
    let started = Instant::now();
    let runtime = svc_ai::build(config, Listeners::loopback().await?).await?;
    let load = started.elapsed();
    Ok((TestServer::run(runtime).await, load))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "svc-ai benchmark: all-MiniLM-L6-v2 int8 weights, 2 inference threads, {} ticket-like texts of 4-60 words, release build\n",
        texts().len()
    );
    let keys = TestKeys::new();
    let token = keys.user_token(TenantId::generate(), Role::Member);

    for max_batch in [32, 1] {
        let (server, load) = start(&keys, max_batch).await?;
        let client = AiServiceClient::new(server.channel());
        println!("AI_MAX_BATCH={max_batch} (started in {load:.0?})");
        // Warm up: first runs allocate ONNX Runtime's buffers.
        run("  warm-up", &client, &token, 4, 1, 10).await;
        run("  1 caller, 1 text per call", &client, &token, 1, 1, 200).await;
        run("  1 caller, 32 texts per call", &client, &token, 1, 32, 10).await;
        run("  8 callers, 1 text per call", &client, &token, 8, 1, 50).await;
        run("  32 callers, 1 text per call", &client, &token, 32, 1, 20).await;
        server.stop().await;
        println!();
    }
    Ok(())
}
