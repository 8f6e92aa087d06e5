//! svc-ai against its limit and against Python, in one run on the same machine: the raw engine
//! (svc-ai's model wrapper called in a loop on one thread: ONNX Runtime with the same model,
//! tokenizer and inference threads, no queue, no gRPC, no service), Python onnxruntime one text
//! at a time (`engine.py`, same model, tokenizer, threads and pooling), and a release svc-ai
//! over gRPC: ClassifyTicket and Embed from one caller and from 16 concurrent callers, with the
//! result cache off. The texts are the 330 held-out tickets of `svc-ai/eval/tickets.jsonl`.
//! Embed and Classify run the default model; ClassifyTicket runs it and the sentiment model
//! on every ticket, so its limit is the raw engine running both, one after the other.
//! Run with `scripts/bench.sh ai-engine` (which installs the Python packages); the figures are
//! recorded in docs/benchmarks.md.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::server::Listeners;
use platform::testing::{TestInfra, TestKeys, TestServer, process_cpu_time};
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::ai::v1::{
    ClassifyRequest, ClassifyTicketRequest, CreateLabelSetRequest, EmbedRequest, LabelSet,
    TicketField,
};
use svc_ai::Config;
use svc_ai::models::{self, Embedder};
use tonic::Request;
use tonic::transport::Channel;

/// How long each row runs.
const ROW: Duration = Duration::from_secs(10);
/// Inference threads everywhere (svc-ai's default).
const THREADS: u16 = 2;
/// Concurrent callers of the loaded rows.
const CALLERS: usize = 16;

#[derive(serde::Deserialize)]
struct Ticket {
    subject: String,
    body: String,
}

fn tickets_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/tickets.jsonl")
}

fn tickets() -> anyhow::Result<Vec<Ticket>> {
    std::fs::read_to_string(tickets_path())?
        .lines()
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// A row's figures: items per second and CPU milliseconds per item.
struct Figures {
    per_second: f64,
    cpu_ms: f64,
}

fn print_row(name: &str, figures: &Figures, limit: f64) {
    println!(
        "{name:<52} {:>7.1}/s  {:>5.1} CPU-ms each  {:>4.0} % of the raw engine",
        figures.per_second,
        figures.cpu_ms,
        100.0 * figures.per_second / limit
    );
}

/// The raw engine: texts embedded `batch` at a time (sorted by length within the batch, as the
/// pool does) by each of `embedders` in turn, for one row's time.
fn raw_engine(
    embedders: &mut [&mut Embedder],
    texts: &[String],
    batch: usize,
) -> anyhow::Result<Figures> {
    let cpu = process_cpu_time();
    let started = Instant::now();
    let mut embedded = 0;
    while started.elapsed() < ROW {
        let first = embedded % texts.len();
        for embedder in embedders.iter_mut() {
            let mut encodings = (0..batch)
                .map(|offset| embedder.tokenize(&texts[(first + offset) % texts.len()]))
                .collect::<anyhow::Result<Vec<_>>>()?;
            encodings.sort_by_key(|encoding| encoding.get_ids().len());
            let refs: Vec<&tokenizers::Encoding> = encodings.iter().collect();
            embedder.embed(&refs)?;
        }
        embedded += batch;
    }
    Ok(Figures {
        per_second: embedded as f64 / started.elapsed().as_secs_f64(),
        cpu_ms: (process_cpu_time() - cpu).as_secs_f64() * 1000.0 / embedded as f64,
    })
}

/// Python onnxruntime one text at a time, in its own process.
fn python(model_dir: &std::path::Path) -> anyhow::Result<(Figures, String)> {
    let interpreter = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(&interpreter)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/engine.py"))
        .arg(model_dir)
        .arg(THREADS.to_string())
        .arg(ROW.as_secs().to_string())
        .arg(tickets_path())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{interpreter} benches/engine.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    Ok((
        Figures {
            per_second: answer["texts_per_second"].as_f64().unwrap_or_default(),
            cpu_ms: answer["cpu_ms_per_text"].as_f64().unwrap_or_default(),
        },
        answer["onnxruntime"].as_str().unwrap_or("?").to_owned(),
    ))
}

/// What one call of a service row sends.
#[derive(Clone, Copy)]
enum Call {
    ClassifyTicket,
    /// Classify against the tenant's label set `label_set` (a copy of the shipped categories).
    Classify,
    Embed,
}

/// `callers` concurrent callers, each calling as soon as its previous call answered, for one
/// row's time: calls per second, CPU per call (the whole process: client, gRPC, service).
async fn service(
    client: &AiServiceClient<Channel>,
    token: &str,
    tickets: &[Ticket],
    (call, label_set): (Call, &str),
    callers: usize,
) -> anyhow::Result<Figures> {
    let cpu = process_cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let mut client = client.clone();
            let authorization = format!("Bearer {token}");
            let label_set = label_set.to_owned();
            let texts: Vec<(String, String)> = tickets
                .iter()
                .map(|ticket| (ticket.subject.clone(), ticket.body.clone()))
                .collect();
            tokio::spawn(async move {
                let mut calls = 0_usize;
                while started.elapsed() < ROW {
                    let (subject, body) = &texts[(caller * 37 + calls) % texts.len()];
                    let authorization = authorization.parse().expect("a header value");
                    match call {
                        Call::ClassifyTicket => {
                            let mut request = Request::new(ClassifyTicketRequest {
                                subject: subject.clone(),
                                body: body.clone(),
                                ..ClassifyTicketRequest::default()
                            });
                            request
                                .metadata_mut()
                                .insert("authorization", authorization);
                            client.classify_ticket(request).await?;
                        }
                        Call::Classify => {
                            let mut request = Request::new(ClassifyRequest {
                                texts: vec![format!("{}\n{body}", subject.trim())],
                                label_set: label_set.clone(),
                                ..ClassifyRequest::default()
                            });
                            request
                                .metadata_mut()
                                .insert("authorization", authorization);
                            client.classify(request).await?;
                        }
                        Call::Embed => {
                            let mut request = Request::new(EmbedRequest {
                                model: String::new(),
                                texts: vec![format!("{}\n{body}", subject.trim())],
                            });
                            request
                                .metadata_mut()
                                .insert("authorization", authorization);
                            client.embed(request).await?;
                        }
                    }
                    calls += 1;
                }
                anyhow::Ok(calls)
            })
        })
        .collect();
    let mut calls = 0;
    for task in tasks {
        calls += task.await??;
    }
    Ok(Figures {
        per_second: calls as f64 / started.elapsed().as_secs_f64(),
        cpu_ms: (process_cpu_time() - cpu).as_secs_f64() * 1000.0 / calls as f64,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tickets = tickets()?;
    let texts: Vec<String> = tickets
        .iter()
        .map(|ticket| format!("{}\n{}", ticket.subject.trim(), ticket.body))
        .collect();
    let mut config = Config::try_parse_from(["svc-ai"])?;
    let models_config = &mut config.options.models;
    models_config.models_dir = std::env::var("AI_MODELS_DIR")?.into();
    models_config.onnxruntime_library = std::env::var("AI_ONNXRUNTIME_LIBRARY")?.into();
    models_config.inference_threads = THREADS;
    models_config.queue_capacity = 1_024;
    let mut installed = models::discover(&models_config.models_dir)?;
    let (model_dir, manifest) = installed.remove(0);
    let sentiment_id = &config.options.ticket_sentiment_model;
    let (sentiment_dir, sentiment_manifest) = installed
        .into_iter()
        .find(|(_, manifest)| &manifest.id == sentiment_id)
        .ok_or_else(|| anyhow::anyhow!("the sentiment model {sentiment_id} is not installed"))?;
    println!(
        "{} (and {} for tickets' sentiment) on {} held-out tickets, {THREADS} inference threads, {} s per row, release build\n",
        manifest.display_name,
        sentiment_manifest.display_name,
        texts.len(),
        ROW.as_secs()
    );

    // The limits: the same ONNX Runtime environment the service then uses (one per process).
    let runtime = models::runtime(&models_config.onnxruntime_library, THREADS)?;
    let mut embedder = Embedder::load(runtime, &model_dir, manifest)?;
    let mut sentiment = Embedder::load(runtime, &sentiment_dir, sentiment_manifest)?;
    raw_engine(&mut [&mut embedder, &mut sentiment], &texts[..32], 32)?; // warm-up
    let one = raw_engine(&mut [&mut embedder], &texts, 1)?;
    let batched = raw_engine(&mut [&mut embedder], &texts, 32)?;
    let both = raw_engine(&mut [&mut embedder, &mut sentiment], &texts, 1)?;
    drop((embedder, sentiment));
    let limit = one.per_second.max(batched.per_second);
    let ticket_limit = both.per_second;
    print_row("raw engine, 1 text per run", &one, limit);
    print_row(
        "raw engine, 32 texts per run (sorted by length)",
        &batched,
        limit,
    );
    print_row(
        "raw engine, both models, 1 text per run (tickets)",
        &both,
        ticket_limit,
    );

    let (python_sentiment, _) = python(&sentiment_dir)?;
    let (python, version) = python(&model_dir)?;
    print_row(
        &format!("Python onnxruntime {version}, 1 text at a time"),
        &python,
        limit,
    );
    // Python triaging one ticket at a time would run both models one after the other.
    let python_both = Figures {
        per_second: 1.0 / (1.0 / python.per_second + 1.0 / python_sentiment.per_second),
        cpu_ms: python.cpu_ms + python_sentiment.cpu_ms,
    };
    print_row(
        "Python, both models, 1 text at a time (tickets)",
        &python_both,
        ticket_limit,
    );

    let keys = TestKeys::new();
    config.infra = TestInfra::new().await.config();
    config.auth = keys.auth_config();
    config.options.cache_ttl = Duration::ZERO;
    let server = TestServer::run(svc_ai::build(config, Listeners::loopback().await?).await?).await;
    let client = AiServiceClient::new(server.channel());
    let token = keys.user_token(TenantId::generate(), Role::Member);
    // A label set of the tenant: a copy of the shipped categories, with a linear head.
    let mut create = Request::new(CreateLabelSetRequest {
        label_set: Some(LabelSet {
            display_name: "Categories".to_owned(),
            ..LabelSet::default()
        }),
        from_default: TicketField::Category as i32,
    });
    create
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let label_set = client
        .clone()
        .create_label_set(create)
        .await?
        .into_inner()
        .name;
    // Warm-up: the first ticket builds the shipped defaults' prototypes and heads, the first
    // classification those of the label set.
    service(
        &client,
        &token,
        &tickets[..1],
        (Call::ClassifyTicket, ""),
        1,
    )
    .await?;
    service(
        &client,
        &token,
        &tickets[..1],
        (Call::Classify, &label_set),
        1,
    )
    .await?;
    let mut rows = Vec::new();
    for (name, call, callers) in [
        ("svc-ai Embed, 1 caller", Call::Embed, 1),
        ("svc-ai Embed, 16 callers", Call::Embed, CALLERS),
        ("svc-ai ClassifyTicket, 1 caller", Call::ClassifyTicket, 1),
        (
            "svc-ai ClassifyTicket, 16 callers",
            Call::ClassifyTicket,
            CALLERS,
        ),
        (
            "svc-ai Classify (label set), 16 callers",
            Call::Classify,
            CALLERS,
        ),
    ] {
        let figures = service(&client, &token, &tickets, (call, &label_set), callers).await?;
        let limit = match call {
            Call::ClassifyTicket => ticket_limit,
            Call::Classify | Call::Embed => limit,
        };
        print_row(name, &figures, limit);
        rows.push((name, figures));
    }
    server.stop().await;
    let (_, loaded) = &rows[3];
    println!(
        "\nClassifyTicket under load: {:.0} % of the raw engine running both models (target ≥ 90 %), {:.2}× Python one at a time (target ≥ 1.5×)",
        100.0 * loaded.per_second / ticket_limit,
        loaded.per_second / python_both.per_second
    );
    Ok(())
}
