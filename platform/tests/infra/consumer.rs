//! The consumer kit on a real RabbitMQ and Postgres: an event published twice is handled once,
//! an event that keeps failing is retried and then dead-lettered, and a message that is no
//! event is dead-lettered at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::BasicGetOptions;
use platform::amqp::{Outcome, OutgoingMessage, Publisher, Topology};
use platform::consumer::{
    self, Audience, EventHandler, ProcessedEvents, ReceivedEvent, Subscription,
};
use platform::context::TenantId;
use platform::db::{Db, Schema};
use platform::events::{Envelope, Event};
use platform::testing::{TestInfra, wait_until};
use proto::formflow::events::v1::TenantSuspended;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

const SCHEMA: &str = "consumer_test";
const QUEUE: &str = "consumer-test.suspensions";

/// Counts every delivery, and records each suspension reason once, in one transaction with the
/// event's mark, unless the reason is "poison": that one always asks to be retried.
struct RecordSuspensions {
    db: Db,
    processed: ProcessedEvents,
    deliveries: Arc<Mutex<Vec<(String, u32)>>>,
    received: Arc<Mutex<Vec<ReceivedEvent>>>,
}

impl EventHandler for RecordSuspensions {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        let suspended = match event.decode::<TenantSuspended>() {
            Some(Ok(suspended)) => suspended,
            Some(Err(reason)) => return Outcome::Reject(reason),
            None => return Outcome::Done,
        };
        self.received.lock().unwrap().push(event.clone());
        self.deliveries
            .lock()
            .unwrap()
            .push((suspended.reason.clone(), event.retries));
        if suspended.reason == "poison" {
            return Outcome::Retry("the downstream is down".into());
        }
        let recorded = self
            .processed
            .once(&self.db, &event, async |transaction| {
                sqlx::query("INSERT INTO consumer_test.effects (reason) VALUES ($1)")
                    .bind(&suspended.reason)
                    .execute(transaction)
                    .await?;
                Ok(())
            })
            .await;
        match recorded {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::Retry(format!("{error:#}")),
        }
    }
}

struct Fixture {
    infra: TestInfra,
    db: Db,
    publisher: Publisher,
    deliveries: Arc<Mutex<Vec<(String, u32)>>>,
    received: Arc<Mutex<Vec<ReceivedEvent>>>,
    stopped: CancellationToken,
}

impl Fixture {
    /// A schema with the platform's tables and an `effects` table, and the handler consuming.
    async fn start() -> Fixture {
        let infra = TestInfra::new().await;
        let mut admin = infra.admin_connection().await;
        sqlx::query("CREATE SCHEMA consumer_test")
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE consumer_test.effects (reason text NOT NULL)")
            .execute(&mut admin)
            .await
            .unwrap();
        let schema = Schema {
            name: SCHEMA,
            migrations: Migrator::with_migrations(Vec::new()),
        };
        let db = Db::connect(&infra.db, &schema).await.unwrap();
        let deliveries = Arc::default();
        let received = Arc::default();
        let stopped = CancellationToken::new();
        let handler = RecordSuspensions {
            db: db.clone(),
            processed: ProcessedEvents::new(SCHEMA, QUEUE),
            deliveries: Arc::clone(&deliveries),
            received: Arc::clone(&received),
        };
        tokio::spawn(consumer::run(
            infra.amqp.clone(),
            "consumer-test",
            Subscription {
                audience: Audience::OneReplica(QUEUE),
                bindings: &["tenant.suspended.v1"],
                prefetch: 10,
            },
            handler,
            stopped.clone(),
        ));
        let publisher = Publisher::new(&infra.amqp, "consumer-test");
        let fixture = Fixture {
            infra,
            db,
            publisher,
            deliveries,
            received,
            stopped,
        };
        // The queue exists once the consumer declared it; publish only then.
        let names = Topology::new(fixture.infra.amqp.amqp_prefix.clone()).queue(QUEUE);
        crate::wait_for_queue(&fixture.infra.amqp, &names.work).await;
        fixture
    }

    async fn publish(&self, envelope: &Envelope<TenantSuspended>) {
        platform::testing::publish_envelope(&self.publisher, envelope).await;
    }

    fn deliveries(&self) -> Vec<(String, u32)> {
        self.deliveries.lock().unwrap().clone()
    }

    async fn effects(&self) -> Vec<String> {
        let mut admin = self.infra.admin_connection().await;
        sqlx::query_scalar("SELECT reason FROM consumer_test.effects ORDER BY reason")
            .fetch_all(&mut admin)
            .await
            .unwrap()
    }

    async fn dead_lettered(&self) -> Vec<Vec<u8>> {
        let names = Topology::new(self.infra.amqp.amqp_prefix.clone()).queue(QUEUE);
        let connection = platform::amqp::connect(&self.infra.amqp, "dlq-reader")
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut bodies = Vec::new();
        while let Some(message) = channel
            .basic_get(
                names.dead_letter().as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            bodies.push(message.delivery.data);
        }
        bodies
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

fn suspension(reason: &str) -> Envelope<TenantSuspended> {
    Envelope::new(
        Some(TenantId::generate()),
        TenantSuspended {
            tenant: None,
            reason: reason.to_owned(),
        },
    )
}

#[tokio::test]
async fn an_event_delivered_twice_changes_state_once() {
    let fixture = Fixture::start().await;
    let event = suspension("unpaid");

    // The relay published it twice (a crash between its publish and its mark).
    fixture.publish(&event).await;
    fixture.publish(&event).await;
    wait_until(
        Duration::from_secs(20),
        "both copies are handled",
        || async { fixture.deliveries().len() == 2 },
    )
    .await;

    assert_eq!(fixture.effects().await, ["unpaid"]);
    assert!(fixture.dead_lettered().await.is_empty());
    // The mark is the event's, for its tenant (row-level security hides it from others).
    let mut admin = fixture.infra.admin_connection().await;
    sqlx::query("SELECT set_config('app.platform', 'on', false)")
        .execute(&mut admin)
        .await
        .unwrap();
    let marked: (uuid::Uuid, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT event_id, tenant_id FROM consumer_test.processed_events WHERE consumer = $1",
    )
    .bind(QUEUE)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        marked,
        (
            event.event_id,
            event.tenant_id.map(|tenant| tenant.as_uuid())
        )
    );
}

#[tokio::test]
async fn a_handled_event_is_known_before_its_costly_work_runs_again() {
    let fixture = Fixture::start().await;
    let processed = ProcessedEvents::new(SCHEMA, QUEUE);
    // The poison event is received and never handled.
    fixture.publish(&suspension("poison")).await;
    fixture.publish(&suspension("late")).await;
    wait_until(
        Duration::from_secs(20),
        "both are received, one handled",
        || async {
            fixture.effects().await == ["late"]
                && fixture
                    .deliveries()
                    .iter()
                    .any(|(reason, _)| reason == "poison")
        },
    )
    .await;
    let received = fixture.received.lock().unwrap().clone();
    let event = |reason: &str| {
        let wanted = serde_json::json!(reason);
        received
            .iter()
            .find(|event| event.data()["reason"] == wanted)
            .expect("received")
            .clone()
    };
    assert!(
        processed
            .handled(&fixture.db, &event("late"))
            .await
            .unwrap()
    );
    assert!(
        !processed
            .handled(&fixture.db, &event("poison"))
            .await
            .unwrap()
    );
    // Another consumer's marks are not this one's; another tenant's are hidden.
    assert!(
        !ProcessedEvents::new(SCHEMA, "consumer-test.other")
            .handled(&fixture.db, &event("late"))
            .await
            .unwrap()
    );
    let mut elsewhere = event("late");
    elsewhere.tenant_id = Some(TenantId::generate());
    assert!(!processed.handled(&fixture.db, &elsewhere).await.unwrap());
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_retried_then_dead_lettered() {
    let fixture = Fixture::start().await;
    let poison = suspension("poison");

    fixture.publish(&poison).await;
    wait_until(
        Duration::from_secs(30),
        "the poison event reaches the dead-letter queue",
        || async { fixture.deliveries().len() == 3 },
    )
    .await;
    let dead = Mutex::new(Vec::new());
    wait_until(Duration::from_secs(10), "it is dead-lettered", || async {
        let bodies = fixture.dead_lettered().await;
        let mut dead = dead.lock().unwrap();
        dead.extend(bodies);
        !dead.is_empty()
    })
    .await;

    // Three attempts (AMQP_MAX_ATTEMPTS), each later one a retry of the one before, the same
    // event every time although retries come back under the queue's routing key.
    assert_eq!(
        fixture.deliveries(),
        [
            ("poison".into(), 0),
            ("poison".into(), 1),
            ("poison".into(), 2)
        ]
    );
    let dead = dead.into_inner().unwrap();
    let dead_event: Envelope<serde_json::Value> = serde_json::from_slice(&dead[0]).unwrap();
    assert_eq!(dead_event.event_id, poison.event_id);
    assert!(fixture.effects().await.is_empty());
}

#[tokio::test]
async fn a_message_that_is_no_event_is_dead_lettered_at_once() {
    let fixture = Fixture::start().await;
    fixture
        .publisher
        .publish_event(
            &TenantSuspended::routing_key(),
            &OutgoingMessage {
                message_id: "garbage".into(),
                body: b"not json".to_vec(),
                ..OutgoingMessage::default()
            },
        )
        .await
        .unwrap();
    let fine = suspension("fine");
    fixture.publish(&fine).await;

    wait_until(
        Duration::from_secs(20),
        "the event after it is handled",
        || async { fixture.effects().await == ["fine"] },
    )
    .await;
    let dead = Mutex::new(Vec::new());
    wait_until(
        Duration::from_secs(10),
        "the garbage is dead-lettered",
        || async {
            let bodies = fixture.dead_lettered().await;
            let mut dead = dead.lock().unwrap();
            dead.extend(bodies);
            !dead.is_empty()
        },
    )
    .await;
    assert_eq!(dead.into_inner().unwrap(), [b"not json".to_vec()]);
    assert_eq!(fixture.deliveries(), [("fine".into(), 0)]);
}
