//! Job queues on a real RabbitMQ: a job reaches a worker once it is due, also when it was sent
//! before any worker started; a job that keeps failing is retried and then dead-lettered, and
//! a message that is no job is dead-lettered at once without stopping the jobs after it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::amqp::{OutgoingMessage, Publisher};
use platform::context::TenantId;
use platform::jobs::{JobQueue, Wake, Wakes};
use platform::testing::{TestInfra, wait_until};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "jobs-test.rows";

/// A row that jobs wake; row 13 fails every time it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Row(u32);

impl std::fmt::Display for Row {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "row {}", self.0)
    }
}

impl Wakes for Row {
    const KIND: &'static str = "jobs-test.row";
}

/// Each job a worker was handed, and when.
type Handled = Arc<Mutex<Vec<(Wake<Row>, Instant)>>>;

struct Fixture {
    infra: TestInfra,
    queue: Arc<JobQueue<Wake<Row>>>,
    handled: Handled,
    stopped: CancellationToken,
}

impl Fixture {
    /// A queue with no worker yet.
    async fn idle() -> Fixture {
        let infra = TestInfra::new().await;
        Fixture {
            queue: Arc::new(JobQueue::new(&infra.amqp, "jobs-test", QUEUE)),
            infra,
            handled: Handled::default(),
            stopped: CancellationToken::new(),
        }
    }

    /// A queue with a worker on it.
    async fn start() -> Fixture {
        let fixture = Fixture::idle().await;
        fixture.start_worker();
        crate::wait_for_queue(&fixture.infra.amqp, &fixture.queue.names().work).await;
        fixture
    }

    fn start_worker(&self) {
        let worker = (
            Arc::clone(&self.queue),
            Arc::clone(&self.handled),
            self.stopped.clone(),
        );
        tokio::spawn(async move {
            let (queue, handled, stopped) = worker;
            let handle = |job: Wake<Row>| {
                handled.lock().unwrap().push((job, Instant::now()));
                async move {
                    match job.id {
                        Row(13) => Err(anyhow::anyhow!("row 13 is cursed")),
                        _ => Ok(()),
                    }
                }
            };
            queue.work(4, handle, stopped).await;
        });
    }

    fn handled(&self) -> Vec<Wake<Row>> {
        let handled = self.handled.lock().unwrap();
        handled.iter().map(|(job, _)| *job).collect()
    }

    async fn dead_letters(&self) -> u32 {
        let [_, (_, dead)] = self.queue.message_counts().await.unwrap();
        dead
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

fn wake(row: u32) -> Wake<Row> {
    Wake {
        tenant_id: TenantId::generate(),
        id: Row(row),
        wake_token: 7,
    }
}

#[tokio::test]
async fn a_job_comes_to_a_worker_once_it_is_due() {
    let fixture = Fixture::start().await;
    let (now, later) = (wake(1), wake(2));

    let sent = Instant::now();
    fixture.queue.send(&later, Duration::from_secs(2)).await;
    fixture.queue.send(&now, Duration::ZERO).await;
    wait_until(Duration::from_secs(20), "both jobs are handled", || async {
        fixture.handled().len() == 2
    })
    .await;

    assert_eq!(fixture.handled(), [now, later], "the due job first");
    let handled_later = fixture.handled.lock().unwrap()[1].1;
    assert!(
        handled_later - sent >= Duration::from_secs(1),
        "the delayed job waited in a delay queue ({:?})",
        handled_later - sent
    );
    assert_eq!(fixture.dead_letters().await, 0);
}

#[tokio::test]
async fn a_job_sent_before_any_worker_started_waits_for_one() {
    let fixture = Fixture::idle().await;
    let (now, later) = (wake(4), wake(5));
    fixture.queue.send(&now, Duration::ZERO).await;
    fixture.queue.send(&later, Duration::from_millis(200)).await;
    // The delayed job is back from its delay queue before anyone works on the queue.
    tokio::time::sleep(Duration::from_millis(600)).await;

    fixture.start_worker();
    wait_until(Duration::from_secs(20), "both jobs are handled", || async {
        fixture.handled().len() == 2
    })
    .await;
    assert_eq!(fixture.handled(), [now, later]);
    assert_eq!(fixture.dead_letters().await, 0);
}

#[tokio::test]
async fn a_message_for_a_queue_that_does_not_exist_is_refused_not_lost() {
    let infra = TestInfra::new().await;
    let publisher = Publisher::new(&infra.amqp, "jobs-test");
    let message = OutgoingMessage {
        message_id: "lost".into(),
        body: b"{}".to_vec(),
        ..OutgoingMessage::default()
    };
    let error = publisher
        .publish_to_queue(&format!("{}.nowhere", infra.amqp.amqp_prefix), &message)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("no queue"),
        "refused with {error:#}"
    );
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_retried_then_dead_lettered() {
    let fixture = Fixture::start().await;
    let cursed = wake(13);

    fixture.queue.send(&cursed, Duration::ZERO).await;
    wait_until(Duration::from_secs(30), "it is dead-lettered", || async {
        fixture.dead_letters().await == 1
    })
    .await;

    // Three attempts (AMQP_MAX_ATTEMPTS), then the dead-letter queue; none after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fixture.handled(), [cursed, cursed, cursed]);
}

#[tokio::test]
async fn a_message_that_is_no_job_is_dead_lettered_and_the_next_job_runs() {
    let fixture = Fixture::start().await;
    let publisher = Publisher::new(&fixture.infra.amqp, "jobs-test");
    publisher
        .publish_to_queue(
            &fixture.queue.names().work,
            &OutgoingMessage {
                message_id: "garbage".into(),
                body: br#"{"tenant_id": "not a job"}"#.to_vec(),
                ..OutgoingMessage::default()
            },
        )
        .await
        .unwrap();
    let fine = wake(3);
    fixture.queue.send(&fine, Duration::ZERO).await;

    wait_until(Duration::from_secs(20), "the job after it runs", || async {
        fixture.handled() == [fine]
    })
    .await;
    wait_until(
        Duration::from_secs(10),
        "the garbage is dead-lettered",
        || async { fixture.dead_letters().await == 1 },
    )
    .await;
}

#[test]
fn a_wake_job_is_named_by_its_row_and_token() {
    use platform::jobs::Job;
    let job = wake(5);
    assert_eq!(job.message_id(), "row 5.7");
    assert_eq!(<Wake<Row> as Job>::KIND, "jobs-test.row");
    let json: serde_json::Value = serde_json::to_value(job).unwrap();
    assert_eq!(json["id"], 5);
    assert_eq!(json["wake_token"], 7);
}
