//! What a webhook-triggered execution costs (issue 12): a three-node workflow — `incoming`
//! (`trigger.webhook`, signed as Standard Webhooks) → `shape` (`transform.map`) → `record`
//! (`transform.map` building the record the execution keeps as its output) — triggered through
//! the gateway by callers that each send a signed webhook and wait until its execution's
//! `workflow.execution.succeeded` event arrives, then send the next. svc-auth, svc-tenant,
//! svc-workflow and the gateway run in this process on loopback (release build) against the
//! real Postgres, Redis and RabbitMQ.
//!
//! For each number of callers it prints executions completed per second, the time from each
//! webhook's receipt to its execution's end as Postgres recorded them (p50, p99), the time
//! the caller saw from sending to the event's arrival, the CPU the whole machine spent per
//! execution, by process (the load generator, on threads of its own, apart), and Postgres's
//! commits and rows written per execution. Then it checks that nothing was lost or doubled: one execution per
//! accepted webhook, every one succeeded with three node runs, one event each. Those checks
//! panic; nothing about time is asserted.
//!
//! Run with `scripts/bench.sh workflow`; the figures are recorded in docs/benchmarks.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use platform::config::AmqpConfig;
use platform::testing::{EventObserver, TestInfra, TestKeys};
use testkit::bench::{Http, concurrencies, http_client, percentile};
use testkit::cpu::{CpuSnapshot, LOAD_THREADS};
use testkit::{Options, Services};

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
/// Callers of each run, unless numbers given after `--` choose others
/// (`cargo bench -p svc-workflow --bench webhook -- 64`).
const CONCURRENCY: [usize; 3] = [64, 16, 1];
/// Longest wait for one execution's event before the run counts it lost.
const EVENT_WAIT: Duration = Duration::from_secs(120);

/// The executions whose succeeded event arrived, and who waits for which.
#[derive(Default)]
struct Completions {
    slots: Mutex<HashMap<String, Slot>>,
    duplicates: Mutex<u64>,
}

enum Slot {
    Waiting(oneshot::Sender<Instant>),
    Arrived(Instant),
}

impl Completions {
    /// Notes the events of ended executions as they arrive, in a task of their own.
    async fn observe(amqp: AmqpConfig) -> Arc<Completions> {
        let completions = Arc::new(Completions::default());
        // Not `started`: the load generator would spend its CPU on events it ignores.
        let mut observer = EventObserver::start(
            &amqp,
            &[
                "workflow.execution.succeeded.#",
                "workflow.execution.failed.#",
            ],
        )
        .await;
        let noted = completions.clone();
        tokio::spawn(async move {
            loop {
                for event in observer.receive(1, Duration::from_secs(24 * 3600)).await {
                    let arrived = Instant::now();
                    assert_eq!(
                        event.kind, "workflow.execution.succeeded",
                        "only successes: {}",
                        event.body
                    );
                    let name = event.body["data"]["execution"]["name"]
                        .as_str()
                        .expect("an execution name")
                        .to_owned();
                    noted.arrived(name, arrived);
                }
            }
        });
        completions
    }

    fn arrived(&self, name: String, at: Instant) {
        let mut slots = self.slots.lock().expect("not poisoned");
        match slots.insert(name, Slot::Arrived(at)) {
            Some(Slot::Waiting(waiter)) => {
                let _ = waiter.send(at);
            }
            Some(Slot::Arrived(_)) => *self.duplicates.lock().expect("not poisoned") += 1,
            None => {}
        }
    }

    /// When the event of execution `name` arrived, waiting for it if it has not.
    async fn of(&self, name: &str) -> Result<Instant, String> {
        let waiting = {
            let mut slots = self.slots.lock().expect("not poisoned");
            if let Some(Slot::Arrived(at)) = slots.get(name) {
                return Ok(*at);
            }
            let (sender, receiver) = oneshot::channel();
            slots.insert(name.to_owned(), Slot::Waiting(sender));
            receiver
        };
        match tokio::time::timeout(EVENT_WAIT, waiting).await {
            Ok(Ok(at)) => Ok(at),
            _ => Err(format!("no event for {name} after {EVENT_WAIT:?}")),
        }
    }
}

/// Sends signed webhooks to the workflow's published path through the gateway.
struct Sender {
    http: Http,
    url: String,
    webhook: standardwebhooks::Webhook,
    sequence: std::sync::atomic::AtomicU64,
}

impl Sender {
    /// Sends one order; answers the execution it queued.
    async fn send(&self) -> Result<String, String> {
        let sequence = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({
            "id": format!("ord_{sequence}"),
            "customer": {"email": format!("ada+{sequence}@example.org"), "name": "Ada Lovelace"},
            "items": [{"sku": "FF-PRO", "quantity": 1 + sequence % 5, "price": 49.0}],
            "total": 49.0 * (1 + sequence % 5) as f64,
        })
        .to_string();
        let id = format!("msg_{sequence}");
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        let signature = self
            .webhook
            .sign(&id, timestamp, body.as_bytes())
            .map_err(|error| error.to_string())?;
        let request = http::Request::post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        let response = self
            .http
            .request(request)
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).map_err(|error| error.to_string())?;
        if status != 202 || answer["duplicate"] == true {
            return Err(format!("{status} {answer}"));
        }
        answer["execution"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no execution in {answer}"))
    }
}

/// What one run's callers saw.
#[derive(Default)]
struct Tally {
    /// Executions whose event arrived in the measure window, with the wait the caller saw.
    completed: Vec<(String, Duration)>,
    /// Every execution queued, warm-up included.
    queued: Vec<String>,
    failures: u64,
    first_failure: Option<String>,
}

async fn run(concurrency: usize, sender: Arc<Sender>, completions: Arc<Completions>) -> Tally {
    let warm_up_until = Instant::now() + WARM_UP;
    let until = warm_up_until + MEASURE;
    let mut callers = Vec::new();
    for _ in 0..concurrency {
        let (sender, completions) = (sender.clone(), completions.clone());
        callers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < until {
                let started = Instant::now();
                let done = async {
                    let name = sender.send().await?;
                    tally.queued.push(name.clone());
                    let arrived = completions.of(&name).await?;
                    Ok::<_, String>((name, arrived))
                }
                .await;
                match done {
                    Ok((name, arrived)) if (warm_up_until..until).contains(&arrived) => {
                        tally.completed.push((name, arrived - started));
                    }
                    Ok(_) => {}
                    Err(why) => {
                        tally.failures += 1;
                        tally.first_failure.get_or_insert(why);
                    }
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for caller in callers {
        let mut one = caller.await.expect("a caller");
        tally.completed.append(&mut one.completed);
        tally.queued.append(&mut one.queued);
        tally.failures += one.failures;
        tally.first_failure = tally.first_failure.or(one.first_failure);
    }
    tally
}

/// Receipt to end of each of `names` as Postgres recorded them, sorted.
async fn recorded_latencies(infra: &TestInfra, names: &[String]) -> Vec<Duration> {
    let ids: Vec<uuid::Uuid> = names
        .iter()
        .map(|name| {
            name.trim_start_matches("executions/")
                .parse()
                .expect("an id")
        })
        .collect();
    let mut connection = infra.admin_connection().await;
    let micros: Vec<i64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM ended_at - created_at) * 1e6)::bigint \
         FROM workflow.executions WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut connection)
    .await
    .expect("reading the executions");
    assert_eq!(micros.len(), ids.len(), "every execution is recorded");
    let mut latencies: Vec<Duration> = micros
        .into_iter()
        .map(|micros| Duration::from_micros(u64::try_from(micros).expect("ended after created")))
        .collect();
    latencies.sort();
    latencies
}

/// Postgres's counters of the benchmark's database: commits and rows written. Backends report
/// them at most once a second, so a window's figures are about right, not exact.
#[derive(Debug, Clone, Copy)]
struct DatabaseActivity {
    commits: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
}

impl DatabaseActivity {
    async fn read(infra: &TestInfra) -> DatabaseActivity {
        let mut connection = infra.admin_connection().await;
        let (commits, inserted, updated, deleted) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database \
             WHERE datname = $1",
        )
        .bind(&infra.database_name)
        .fetch_one(&mut connection)
        .await
        .expect("reading pg_stat_database");
        DatabaseActivity {
            commits,
            inserted,
            updated,
            deleted,
        }
    }

    fn since(self, before: &DatabaseActivity) -> DatabaseActivity {
        DatabaseActivity {
            commits: self.commits - before.commits,
            inserted: self.inserted - before.inserted,
            updated: self.updated - before.updated,
            deleted: self.deleted - before.deleted,
        }
    }

    /// Per item, over `count` items.
    fn describe(&self, count: usize) -> String {
        let per = |total: i64| total as f64 / count.max(1) as f64;
        format!(
            "  Postgres per execution, about: {:.1} commits, {:.1} rows inserted, {:.1} updated, \
             {:.1} deleted",
            per(self.commits),
            per(self.inserted),
            per(self.updated),
            per(self.deleted),
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "svc-workflow webhook benchmark: {MEASURE:?} per run after a {WARM_UP:?} warm-up, release build\n"
    );
    let concurrencies = concurrencies(&CONCURRENCY);
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let services = Services::start_with_workflow(&infra, &keys, Options::default(), |_| {}).await;
    let callers = concurrencies.iter().copied().max().unwrap_or(1);
    let bench = services.bench_tenant(&infra, &keys, callers).await?;

    // The secret, the workflow and its activation, over REST by the owner.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let credential = bench
        .owner_post(
            "/api/v1/credentials",
            &json!({"displayName": "Shop webhooks", "type": "CREDENTIAL_TYPE_WEBHOOK_SECRET",
                "value": {"secret": secret}}),
        )
        .await;
    let definition = json!({
        "nodes": [
            {"id": "incoming", "type": "trigger.webhook",
             "config": {"credential": credential["name"]}},
            {"id": "shape", "type": "transform.map", "config": {"output": {
                "order": "{{ id }}", "email": "{{ customer.email }}",
                "quantity": "{{ sum(items[].quantity) }}", "total": "{{ total }}"}}},
            {"id": "record", "type": "transform.map", "config": {"output": {
                "kind": "order", "order": "{{ order }}", "contact": "{{ email }}",
                "large": "{{ total > `100` }}"}}},
        ],
        "edges": [{"from": "incoming", "to": "shape"}, {"from": "shape", "to": "record"}],
    });
    let workflow = bench
        .owner_post(
            "/api/v1/workflows",
            &json!({"displayName": "Record orders", "definition": definition}),
        )
        .await;
    let workflow_name = workflow["name"].as_str().expect("a name").to_owned();
    let activated = bench
        .owner_post(&format!("/api/v1/{workflow_name}:activate"), &json!({}))
        .await;
    let path = activated["webhooks"][0]["path"]
        .as_str()
        .expect("a webhook path")
        .to_owned();
    println!("workflow {workflow_name}: incoming → shape → record, webhook at {path}\n");

    // The load generator (the callers, their connections, the event observer) runs on threads
    // of its own, so that its CPU is counted apart from the system's.
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(LOAD_THREADS)
        .enable_all()
        .build()?;
    let completions = load.spawn(Completions::observe(infra.amqp.clone())).await?;
    let sender = Arc::new(Sender {
        http: http_client(callers),
        url: format!("http://{}{path}", bench.gateway),
        webhook: standardwebhooks::Webhook::new(secret)?,
        sequence: 0.into(),
    });
    let mut queued = Vec::new();
    for concurrency in concurrencies {
        let database_before = DatabaseActivity::read(&infra).await;
        let cpu_before = CpuSnapshot::take();
        let started = Instant::now();
        // The CPU window is the whole run, warm-up included: the executions of the warm-up
        // are the run's too. It is divided by every execution the run completed.
        let mut tally = load
            .spawn(run(concurrency, sender.clone(), completions.clone()))
            .await?;
        let cpu = CpuSnapshot::take().since(&cpu_before);
        let database = DatabaseActivity::read(&infra).await.since(&database_before);
        let elapsed = started.elapsed();
        let rate = tally.completed.len() as f64 / MEASURE.as_secs_f64();
        let mut waits: Vec<Duration> = tally.completed.iter().map(|(_, wait)| *wait).collect();
        waits.sort();
        let names: Vec<String> = tally
            .completed
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        let recorded = recorded_latencies(&infra, &names).await;
        println!(
            "c={concurrency:<3} {rate:>7.0} executions/s  receipt→end p50={:>9.3?} p99={:>9.3?}  \
             send→event p50={:>9.3?} p99={:>9.3?}  n={}  failed={}  ({elapsed:.1?})",
            percentile(&recorded, 0.5),
            percentile(&recorded, 0.99),
            percentile(&waits, 0.5),
            percentile(&waits, 0.99),
            names.len(),
            tally.failures,
        );
        if let Some(why) = &tally.first_failure {
            println!("  first failure: {why}");
        }
        println!("{}", cpu.describe(tally.queued.len(), "execution"));
        println!("{}", database.describe(tally.queued.len()));
        queued.append(&mut tally.queued);
    }

    // Nothing lost or doubled: one execution per accepted webhook, each succeeded once with
    // its three node runs, one event each.
    for name in &queued {
        completions
            .of(name)
            .await
            .unwrap_or_else(|why| panic!("{why}"));
    }
    let mut connection = infra.admin_connection().await;
    let (executions, succeeded, node_runs): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'), \
                (SELECT count(*) FROM workflow.node_executions) \
         FROM workflow.executions",
    )
    .fetch_one(&mut connection)
    .await?;
    let accepted = i64::try_from(queued.len())?;
    assert_eq!((executions, succeeded), (accepted, accepted));
    assert_eq!(node_runs, 3 * accepted, "three node runs per execution");
    let duplicates = *completions.duplicates.lock().expect("not poisoned");
    assert_eq!(duplicates, 0, "an execution's event arrived twice");
    load.shutdown_background();
    println!(
        "\n{accepted} webhooks accepted: {executions} executions, all succeeded, {node_runs} node \
         runs, one event each"
    );
    Ok(())
}
