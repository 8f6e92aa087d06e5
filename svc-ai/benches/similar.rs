//! Similar-submission search of a real svc-ai (release build) over gRPC, as a tenant's analyses
//! grow: the exact scan's latency at 1,000 to 100,000 analyses, searching by an analyzed
//! submission (no inference) and by text (one embedding). The analyses past the first are
//! written straight into Postgres with random unit vectors: the scan's cost does not depend on
//! what they say. Run with `scripts/bench.sh ai-similar`; the figures are recorded in
//! docs/benchmarks.md.

use std::time::{Duration, Instant};

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::server::Listeners;
use platform::testing::{TestInfra, TestKeys, TestServer};
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::ai::v1::search_similar_submissions_request::Query;
use proto::formflow::ai::v1::{
    AnalyzeSubmissionRequest, SearchSimilarSubmissionsRequest, SubmissionText,
};
use svc_ai::Config;
use tonic::Request;
use tonic::transport::Channel;
use uuid::Uuid;

const SIZES: [usize; 4] = [1_000, 10_000, 20_000, 100_000];
const SEARCHES: usize = 40;
const DIMENSIONS: usize = 384;

/// A random unit vector as svc-ai stores embeddings (f32, little-endian), from a small
/// xorshift generator: reproducible, no extra crate.
fn random_embedding(state: &mut u64) -> Vec<u8> {
    let mut values: Vec<f32> = (0..DIMENSIONS)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    values.iter_mut().for_each(|value| *value /= norm);
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a header value"),
    );
    request
}

async fn time_searches(
    client: &mut AiServiceClient<Channel>,
    token: &str,
    query: &Query,
    expected_scan: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut latencies = Vec::with_capacity(SEARCHES);
    for _ in 0..SEARCHES {
        let request = authorized(
            SearchSimilarSubmissionsRequest {
                query: Some(query.clone()),
                ..SearchSimilarSubmissionsRequest::default()
            },
            token,
        );
        let started = Instant::now();
        let response = client
            .search_similar_submissions(request)
            .await?
            .into_inner();
        latencies.push(started.elapsed());
        anyhow::ensure!(
            response.scanned as usize == expected_scan && response.results.len() == 10,
            "scanned {} of {expected_scan}, {} results",
            response.scanned,
            response.results.len()
        );
    }
    latencies.sort();
    Ok((
        latencies[SEARCHES / 2],
        latencies[(SEARCHES - 1) * 95 / 100],
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let mut config = Config::try_parse_from(["svc-ai"])?;
    config.infra = infra.config();
    config.auth = keys.auth_config();
    config.options.similar_scan_limit = 1_000_000;
    let server = TestServer::run(svc_ai::build(config, Listeners::loopback().await?).await?).await;
    let mut client = AiServiceClient::new(server.channel());
    let tenant = TenantId::generate();
    let token = keys.user_token(tenant, Role::Member);

    // One real analysis: the query of the searches by submission, and the classification
    // the generated analyses point at.
    let form = format!("forms/{}", Uuid::now_v7());
    let first = client
        .analyze_submission(authorized(
            AnalyzeSubmissionRequest {
                submission: format!("{form}/submissions/{}", Uuid::now_v7()),
                answers: vec![SubmissionText {
                    field_id: "issue".to_owned(),
                    label: "Your issue".to_owned(),
                    text: "I was charged twice for my subscription this month".to_owned(),
                }],
                ..AnalyzeSubmissionRequest::default()
            },
            &token,
        ))
        .await?
        .into_inner();
    let mut admin = infra.admin_connection().await;
    let (classification, model): (Uuid, String) =
        sqlx::query_as("SELECT classification_id, embedding_model FROM ai.submission_analyses")
            .fetch_one(&mut admin)
            .await?;

    println!(
        "similar-submission search, exact scan, {SEARCHES} searches per size (p50 / p95 per call over gRPC)"
    );
    println!(
        "{:>9}  {:>22}  {:>22}",
        "analyses", "by submission", "by text (+1 embedding)"
    );
    let mut stored = 1;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for size in SIZES {
        while stored < size {
            let batch = (size - stored).min(5_000);
            let ids: Vec<Uuid> = (0..batch).map(|_| Uuid::now_v7()).collect();
            let embeddings: Vec<Vec<u8>> =
                (0..batch).map(|_| random_embedding(&mut state)).collect();
            sqlx::query(
                "INSERT INTO ai.submission_analyses (id, tenant_id, submission, form, \
                     classification_id, embedding_model, embedding) \
                 SELECT id, $1, $2 || '/submissions/' || id, $2, $3, $4, embedding \
                 FROM unnest($5::uuid[], $6::bytea[]) AS generated (id, embedding)",
            )
            .bind(tenant.as_uuid())
            .bind(&form)
            .bind(classification)
            .bind(&model)
            .bind(&ids)
            .bind(&embeddings)
            .execute(&mut admin)
            .await?;
            stored += batch;
        }
        sqlx::query("ANALYZE ai.submission_analyses")
            .execute(&mut admin)
            .await?;
        let by_submission = time_searches(
            &mut client,
            &token,
            &Query::Analysis(first.name.clone()),
            size,
        )
        .await?;
        let by_text = time_searches(
            &mut client,
            &token,
            &Query::Text("a double charge on my bill".to_owned()),
            size,
        )
        .await?;
        println!(
            "{size:>9}  {:>10.1?} / {:>9.1?}  {:>10.1?} / {:>9.1?}",
            by_submission.0, by_submission.1, by_text.0, by_text.1
        );
    }
    server.stop().await;
    Ok(())
}
