//! What an anonymous submission costs (issue 11): a published form of ten fields of mixed
//! types, submitted anonymously as REST/JSON through the gateway (tenant resolved and cached,
//! the per-address and per-tenant rate limits checked in Redis, JSON transcoded to protobuf)
//! and, for comparison, straight to svc-forms over gRPC, from a fixed number of concurrent
//! callers. svc-auth, svc-tenant, svc-forms and the gateway run in this process on loopback
//! (release build) against the real Postgres, Redis and RabbitMQ.
//!
//! For each run it prints submissions per second, latency (mean, p50, p99), failures, the lag
//! from each answer to the arrival of its `forms.submission.created` event at a queue of its
//! own, and the CPU spent per submission by the whole machine (every process: this one, with
//! the client, the gateway and the services, plus Postgres, Redis and RabbitMQ, and whatever
//! else runs), with a breakdown by process. Then it checks that every submission was committed
//! before its answer: each answered submission of a verification round is looked up on
//! another connection as soon as it is answered, and the table holds exactly as many rows as
//! there were successful answers. Those checks panic; nothing about time is asserted.
//!
//! Run with `scripts/bench.sh forms`; the figures are recorded in docs/benchmarks.md.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use uuid::Uuid;

use platform::context::TenantId;
use platform::testing::{CallMetadata, TestInfra, TestKeys};
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::form_service_client::FormServiceClient;
use testkit::bench::{Http, concurrencies, percentile};
use testkit::cpu::{CpuSnapshot, CpuUse};
use testkit::{Options, Services};

use crate::events::{Arrivals, EVENT_WAIT};

mod events;

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
/// Callers of each run, through the gateway and then straight over gRPC, unless numbers given
/// after `--` choose others (`cargo bench -p svc-forms --bench submit -- 32`, to profile one).
const CONCURRENCY: [usize; 3] = [32, 64, 1];
/// The verification round: callers, and submissions each looks up after its answer.
const VERIFY_CALLERS: usize = 8;
const VERIFY_EACH: usize = 50;

/// What one call answered: the submission's name, or why it failed.
type Answer = Result<String, String>;

/// A way of submitting: the answers numbered `sequence`, then the answer.
type Submit = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// The ten fields: one of each type the issue lists.
fn form_definition() -> Value {
    let option = |value: &str| json!({"value": value, "label": value.to_uppercase()});
    json!({
        "title": "Bench order form",
        "fields": [
            {"id": "full_name", "type": "FIELD_TYPE_TEXT", "label": "Full name", "required": true,
             "validation": {"max_length": 200}},
            {"id": "email", "type": "FIELD_TYPE_EMAIL", "label": "Email", "required": true},
            {"id": "budget", "type": "FIELD_TYPE_NUMBER", "label": "Budget",
             "validation": {"min": 0, "max": 1_000_000}},
            {"id": "seats", "type": "FIELD_TYPE_INTEGER", "label": "Seats",
             "validation": {"min": 1, "max": 10_000}},
            {"id": "plan", "type": "FIELD_TYPE_SELECT", "label": "Plan", "required": true,
             "options": [option("free"), option("pro"), option("enterprise")]},
            {"id": "topics", "type": "FIELD_TYPE_MULTI_SELECT", "label": "Topics",
             "options": [option("billing"), option("api"), option("security"), option("other")],
             "validation": {"max_selected": 3}},
            {"id": "consent", "type": "FIELD_TYPE_CHECKBOX", "label": "I agree", "required": true},
            {"id": "start_date", "type": "FIELD_TYPE_DATE", "label": "Start date"},
            {"id": "satisfaction", "type": "FIELD_TYPE_RATING", "label": "Satisfaction",
             "validation": {"max": 5}},
            {"id": "message", "type": "FIELD_TYPE_TEXTAREA", "label": "Message",
             "validation": {"max_length": 2000}},
        ],
        "settings": {"public_submissions": true},
    })
}

/// Answers to every field, varied by `sequence` as different submitters' would be.
fn answers(sequence: u64) -> Value {
    let plans = ["free", "pro", "enterprise"];
    let topics = [
        vec!["billing"],
        vec!["api", "security"],
        vec!["other", "api", "billing"],
    ];
    let pick = usize::try_from(sequence % 3).expect("below 3");
    json!({
        "full_name": format!("Ada Lovelace {sequence}"),
        "email": format!("ada+{sequence}@example.org"),
        "budget": 1250.5 + (sequence % 1000) as f64,
        "seats": 1 + sequence % 500,
        "plan": plans[pick],
        "topics": topics[pick],
        "consent": true,
        "start_date": format!("2027-0{}-1{}", 1 + sequence % 9, sequence % 10),
        "satisfaction": 1 + sequence % 5,
        "message": format!(
            "Submission {sequence}: we would like to move our onboarding questionnaire to \
             FormFlow and route the answers to the sales team. Please call back in the morning."
        ),
    })
}

/// What a run's callers saw.
#[derive(Debug, Default)]
struct Tally {
    /// Latency of every call started in the measure window.
    latencies: Vec<Duration>,
    /// Each submission answered in the measure window, and when its answer arrived.
    answered: Vec<(String, Instant)>,
    /// Submissions answered during the warm-up.
    warm_up_answered: Vec<String>,
    /// Calls of the measure window that failed, and why the first of the run failed.
    failures: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn absorb(&mut self, mut other: Tally) {
        self.latencies.append(&mut other.latencies);
        self.answered.append(&mut other.answered);
        self.warm_up_answered.append(&mut other.warm_up_answered);
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// One run's figures.
#[derive(Debug)]
struct Measured {
    label: &'static str,
    concurrency: usize,
    /// What the callers saw, latencies sorted.
    tally: Tally,
    /// CPU used during the measure window (from the first instant to the second), and the
    /// submissions answered in it.
    cpu: CpuUse,
    window: Range<Instant>,
    answered_in_cpu_window: usize,
}

/// Numbers the submissions, so that each sends different answers.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Runs `call` from `concurrency` tasks for `MEASURE` after a warm-up.
async fn measure(label: &'static str, concurrency: usize, call: Submit) -> Measured {
    let warm_up_until = Instant::now() + WARM_UP;
    let until = warm_up_until + MEASURE;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                let answer = call(SEQUENCE.fetch_add(1, Ordering::Relaxed)).await;
                let answered_at = Instant::now();
                let measured = started >= warm_up_until;
                if measured {
                    tally.latencies.push(answered_at - started);
                }
                match (measured, answer) {
                    (true, Ok(name)) => tally.answered.push((name, answered_at)),
                    (false, Ok(name)) => tally.warm_up_answered.push(name),
                    (measured, Err(why)) => {
                        tally.failures += u64::from(measured);
                        tally.first_failure.get_or_insert(why);
                    }
                }
            }
            tally
        }));
    }
    tokio::time::sleep_until(warm_up_until.into()).await;
    let cpu_before = CpuSnapshot::take();
    let cpu_from = Instant::now();
    tokio::time::sleep_until(until.into()).await;
    let cpu_after = CpuSnapshot::take();
    let cpu_to = Instant::now();

    let mut tally = Tally::default();
    for worker in workers {
        tally.absorb(worker.await.expect("a worker"));
    }
    tally.latencies.sort();
    let answered_in_cpu_window = tally
        .answered
        .iter()
        .filter(|(_, at)| (cpu_from..cpu_to).contains(at))
        .count();
    Measured {
        label,
        concurrency,
        tally,
        cpu: cpu_after.since(&cpu_before),
        window: cpu_from..cpu_to,
        answered_in_cpu_window,
    }
}

/// Prints a run's throughput, latency, failures and CPU.
fn report(measured: &Measured) {
    let count = measured.tally.latencies.len();
    let rate = (measured.tally.answered.len() as f64) / MEASURE.as_secs_f64();
    let mean =
        measured.tally.latencies.iter().sum::<Duration>() / u32::try_from(count.max(1)).unwrap();
    println!(
        "{:<38} c={:<3} {rate:>7.0} submissions/s  mean={mean:>9.3?}  p50={:>9.3?}  p99={:>9.3?}  n={count}  failed={}",
        measured.label,
        measured.concurrency,
        percentile(&measured.tally.latencies, 0.5),
        percentile(&measured.tally.latencies, 0.99),
        measured.tally.failures,
    );
    if let Some(why) = &measured.tally.first_failure {
        println!("  first failure: {why}");
    }
    println!(
        "{}",
        measured
            .cpu
            .describe(measured.answered_in_cpu_window, "submission")
    );
}

/// Prints the lag from each answer to its event's arrival (negative when the event arrived
/// first); panics when an answered submission's event never came.
async fn report_lag(measured: &Measured, arrivals: &mut Arrivals) {
    let names = measured
        .tally
        .answered
        .iter()
        .map(|(name, _)| name)
        .chain(measured.tally.warm_up_answered.iter());
    let missing = arrivals.wait_for(names).await;
    assert_eq!(
        missing, 0,
        "{} c={}: {missing} answered submissions had no event after {EVENT_WAIT:?}",
        measured.label, measured.concurrency
    );
    let lags = arrivals.lags_ms(&measured.tally.answered);
    // Events per second while the callers ran, and afterwards while the backlog drained.
    let window = &measured.window;
    let relayed =
        arrivals.arrived_within(window) as f64 / (window.end - window.start).as_secs_f64();
    let last = arrivals.last_arrival().unwrap_or(window.end);
    let drained = match last.checked_duration_since(window.end) {
        Some(draining) if draining > Duration::from_millis(100) => {
            let count = arrivals.arrived_within(&(window.end..last));
            format!(
                ", {:.0}/s after, draining for {draining:.1?}",
                count as f64 / draining.as_secs_f64()
            )
        }
        _ => String::new(),
    };
    let first = lags.iter().filter(|lag| **lag < 0.0).count();
    println!(
        "  answer -> event: p50={:.2} ms  p99={:.2} ms  max={:.2} ms  (event first for {:.1} %)\n  events arrived at {relayed:.0}/s during the window{drained}",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or_default(),
        100.0 * first as f64 / lags.len().max(1) as f64,
    );
}

/// Submits anonymously as REST/JSON through the gateway, as a browser would.
fn rest_submit(http: Http, url: Arc<str>, tenant: Arc<str>) -> Submit {
    Arc::new(move |sequence| {
        let body = serde_json::to_vec(&json!({ "data": answers(sequence) })).expect("JSON");
        let request = http::Request::post(url.as_ref())
            .header("x-tenant-id", tenant.as_ref())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        let http = http.clone();
        Box::pin(async move {
            let response = http
                .request(request)
                .await
                .map_err(|error| error.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| error.to_string())?
                .to_bytes();
            if status != 200 {
                return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
            }
            submission_name(&body)
        })
    })
}

/// Submits anonymously straight to svc-forms over gRPC, with the metadata the gateway adds.
fn grpc_submit(
    client: FormServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallMetadata>,
    >,
    form_name: Arc<str>,
) -> Submit {
    Arc::new(move |sequence| {
        let request = wire::SubmitFormRequest {
            parent: form_name.to_string(),
            submission: Some(wire::Submission {
                data: Some(serde_json::from_value(answers(sequence)).expect("a JSON object")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut client = client.clone();
        Box::pin(async move {
            client
                .submit_form(request)
                .await
                .map(|response| response.into_inner().name)
                .map_err(|status| format!("{:?} {}", status.code(), status.message()))
        })
    })
}

fn submission_name(body: &[u8]) -> Answer {
    let answer: Value = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    answer["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no name in {answer}"))
}

/// Submits from `VERIFY_CALLERS` callers, each looking its submission up on a connection of
/// its own as soon as the answer arrives: an answered submission must be committed already.
/// Returns their names.
async fn verify_committed_before_answer(infra: &TestInfra, call: Submit) -> Vec<String> {
    let mut callers = Vec::new();
    for _ in 0..VERIFY_CALLERS {
        let call = call.clone();
        let mut connection = infra.admin_connection().await;
        callers.push(tokio::spawn(async move {
            let mut names = Vec::new();
            for _ in 0..VERIFY_EACH {
                let name = call(SEQUENCE.fetch_add(1, Ordering::Relaxed))
                    .await
                    .expect("a verification submission is accepted");
                let id: Uuid = name
                    .rsplit('/')
                    .next()
                    .and_then(|id| id.parse().ok())
                    .expect("a submission name ends with its id");
                let found: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM forms.submissions WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut connection)
                        .await
                        .expect("looking the submission up");
                assert_eq!(found, 1, "{name} was answered before it was committed");
                names.push(name);
            }
            names
        }));
    }
    let mut names = Vec::new();
    for caller in callers {
        names.append(&mut caller.await.expect("a verifying caller"));
    }
    names
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "svc-forms submission benchmark: {MEASURE:?} per run after a {WARM_UP:?} warm-up, release build\n"
    );
    let concurrencies = concurrencies(&CONCURRENCY);
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let services = Services::start_with_forms(&infra, &keys, Options::default()).await;
    let forms_addr = services.forms_addr.expect("svc-forms runs");

    let callers = concurrencies.iter().copied().max().unwrap_or(1);
    let bench = services.bench_tenant(&infra, &keys, callers).await?;
    let (http, gateway_addr, tenant_id) = (bench.http.clone(), bench.gateway, &bench.tenant_id);

    // The form, made and published over REST by its owner.
    let form = bench.owner_post("/api/v1/forms", &form_definition()).await;
    let form_name = form["name"].as_str().expect("a form name").to_owned();
    let published = bench
        .owner_post(&format!("/api/v1/{form_name}:publish"), &json!({}))
        .await;
    assert_eq!(published["publishedVersion"], 1, "{published}");
    println!("form {form_name}: 10 fields, published, public submissions\n");

    let mut arrivals = Arrivals::observe(&infra.amqp).await;

    let through_gateway = rest_submit(
        http.clone(),
        format!("http://{gateway_addr}/api/v1/{form_name}/submissions").into(),
        tenant_id.as_str().into(),
    );
    let tenant = TenantId::parse(tenant_id).expect("a tenant id");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{forms_addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let direct = grpc_submit(
        FormServiceClient::with_interceptor(channel, CallMetadata::new(None, Some(tenant))),
        form_name.as_str().into(),
    );

    let mut accepted = 0_usize;
    for concurrency in concurrencies {
        for (label, call) in [
            ("REST through the gateway", through_gateway.clone()),
            ("direct gRPC to svc-forms", direct.clone()),
        ] {
            let measured = measure(label, concurrency, call).await;
            report(&measured);
            report_lag(&measured, &mut arrivals).await;
            accepted += measured.tally.answered.len() + measured.tally.warm_up_answered.len();
        }
        println!();
    }
    let verified = verify_committed_before_answer(&infra, through_gateway).await;
    accepted += verified.len();
    let missing = arrivals.wait_for(verified.iter()).await;
    assert_eq!(missing, 0, "{missing} verified submissions had no event");

    let mut connection = infra.admin_connection().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM forms.submissions")
        .fetch_one(&mut connection)
        .await?;
    assert_eq!(
        usize::try_from(stored)?,
        accepted,
        "every answered submission, and nothing else, is stored"
    );
    let durability: Vec<String> = sqlx::query_scalar(
        "SELECT name || '=' || setting FROM pg_settings \
         WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method') ORDER BY name",
    )
    .fetch_all(&mut connection)
    .await?;
    println!(
        "committed before answered: {} submissions looked up on another connection as soon as \
         answered, all found; {stored} rows for {accepted} successful answers; {} duplicate \
         events; Postgres {}",
        verified.len(),
        arrivals.duplicates(),
        durability.join(", ")
    );
    Ok(())
}
