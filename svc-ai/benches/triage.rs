//! The evaluation of ticket triage: every ticket of the held-out set `svc-ai/eval/tickets.jsonl`
//! (written for the project, kept apart from the shipped examples) through ClassifyTicket of a
//! real svc-ai with the shipped defaults, and the accuracy and confusion matrix of each field.
//! Run with `scripts/bench.sh ai-eval`; the figures are recorded in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::server::Listeners;
use platform::testing::{TestInfra, TestKeys, TestServer};
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::ai::v1::classification::Outcome;
use proto::formflow::ai::v1::{ClassifyTicketRequest, Sentiment, TicketPriority};
use svc_ai::Config;
use tonic::Request;

#[derive(serde::Deserialize)]
struct Ticket {
    subject: String,
    body: String,
    category: String,
    priority: String,
    sentiment: String,
}

/// Accuracy and confusion matrix of one field.
#[derive(Default)]
struct Tally {
    /// (expected, predicted) → count.
    counts: BTreeMap<(String, String), usize>,
}

impl Tally {
    fn add(&mut self, expected: &str, predicted: &str) {
        *self
            .counts
            .entry((expected.to_owned(), predicted.to_owned()))
            .or_default() += 1;
    }

    fn print(&self, field: &str, labels: &[&str]) {
        let total: usize = self.counts.values().sum();
        let right: usize = self
            .counts
            .iter()
            .filter(|((expected, predicted), _)| expected == predicted)
            .map(|(_, count)| count)
            .sum();
        println!(
            "\n{field}: {right}/{total} = {:.1} % (rows: expected, columns: predicted)",
            100.0 * right as f64 / total as f64
        );
        print!("{:>16}", "");
        for label in labels {
            print!("{label:>16}");
        }
        println!("{:>10}", "recall");
        for expected in labels {
            print!("{expected:>16}");
            let mut row = 0;
            for predicted in labels {
                let count = self
                    .counts
                    .get(&((*expected).to_owned(), (*predicted).to_owned()))
                    .copied()
                    .unwrap_or(0);
                row += count;
                print!("{count:>16}");
            }
            let hits = self
                .counts
                .get(&((*expected).to_owned(), (*expected).to_owned()))
                .copied()
                .unwrap_or(0);
            println!("{:>9.0} %", 100.0 * hits as f64 / row.max(1) as f64);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tickets: Vec<Ticket> = include_str!("../eval/tickets.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    println!(
        "svc-ai ticket triage on {} held-out tickets (svc-ai/eval/tickets.jsonl), shipped default label sets, result cache off",
        tickets.len()
    );
    let keys = TestKeys::new();
    let mut config = Config::try_parse_from(["svc-ai"])?;
    config.infra = TestInfra::new().await.config();
    config.options.models.models_dir = std::env::var("AI_MODELS_DIR")?.into();
    config.options.models.onnxruntime_library = std::env::var("AI_ONNXRUNTIME_LIBRARY")?.into();
    config.options.cache_ttl = Duration::ZERO;
    config.auth = keys.auth_config();
    let server = TestServer::run(svc_ai::build(config, Listeners::loopback().await?).await?).await;
    let mut client = AiServiceClient::new(server.channel());
    let token = keys.user_token(TenantId::generate(), Role::Member);

    let (mut category, mut priority, mut sentiment) =
        (Tally::default(), Tally::default(), Tally::default());
    let mut latencies = Vec::with_capacity(tickets.len());
    let started = Instant::now();
    for ticket in &tickets {
        let mut request = Request::new(ClassifyTicketRequest {
            subject: ticket.subject.clone(),
            body: ticket.body.clone(),
            ..ClassifyTicketRequest::default()
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let call = Instant::now();
        let answer = client.classify_ticket(request).await?.into_inner();
        latencies.push(call.elapsed());
        let Some(Outcome::Ticket(triage)) = answer.outcome else {
            anyhow::bail!("not a ticket result: {answer:?}");
        };
        category.add(
            &ticket.category,
            triage
                .category
                .as_ref()
                .map_or("?", |score| score.label.as_str()),
        );
        let predicted_priority = match triage.priority() {
            TicketPriority::Low => "low",
            TicketPriority::Medium => "medium",
            TicketPriority::High => "high",
            TicketPriority::Urgent => "urgent",
            TicketPriority::Unspecified => "?",
        };
        priority.add(&ticket.priority, predicted_priority);
        let predicted_sentiment = match triage.sentiment() {
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
            Sentiment::Positive => "positive",
            Sentiment::Unspecified => "?",
        };
        sentiment.add(&ticket.sentiment, predicted_sentiment);
    }
    let wall = started.elapsed();
    latencies.sort();
    category.print(
        "category",
        &["billing", "bug", "account", "feature_request", "other"],
    );
    priority.print("priority", &["low", "medium", "high", "urgent"]);
    sentiment.print("sentiment", &["negative", "neutral", "positive"]);
    println!(
        "\n{} tickets one at a time in {wall:.1?}: p50 {:.1?}, p99 {:.1?} per ClassifyTicket (first call builds the default prototypes)",
        tickets.len(),
        latencies[latencies.len() / 2],
        latencies[(latencies.len() - 1) * 99 / 100],
    );
    server.stop().await;
    Ok(())
}
