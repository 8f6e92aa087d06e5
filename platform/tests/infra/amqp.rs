//! The consumer's retry queues and dead-letter queue on a real RabbitMQ.

use std::time::Duration;

use lapin::options::BasicGetOptions;
use platform::amqp::{Consumer, Disposition, Outcome, OutgoingMessage, Publisher, retries_of};
use platform::testing::TestInfra;

async fn publish(publisher: &Publisher, message_id: &str) {
    publisher
        .publish_event(
            "thing.happened.v1",
            &OutgoingMessage {
                message_id: message_id.to_owned(),
                kind: "thing.happened".to_owned(),
                body: br#"{"hello":"world"}"#.to_vec(),
                ..OutgoingMessage::default()
            },
        )
        .await
        .expect("publishing with a confirm");
}

async fn next(consumer: &mut Consumer, outcome: Outcome) -> (Disposition, String, u32) {
    let mut seen = (String::new(), 0);
    let disposition = tokio::time::timeout(
        Duration::from_secs(20),
        consumer.process_next(|delivery| {
            seen = (
                delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                retries_of(delivery),
            );
            async { outcome }
        }),
    )
    .await
    .expect("a message arrives")
    .expect("the message is settled");
    (disposition, seen.0, seen.1)
}

async fn dead_lettered(infra: &TestInfra, consumer: &Consumer) -> Vec<String> {
    let connection = platform::amqp::connect(&infra.amqp, "test-dlq-reader")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut ids = Vec::new();
    while let Some(message) = channel
        .basic_get(
            consumer.names().dead_letter().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        ids.push(
            message
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        );
    }
    ids
}

#[tokio::test]
async fn failing_messages_are_retried_with_backoff_then_dead_lettered() {
    let infra = TestInfra::new().await;
    let mut consumer = Consumer::start(&infra.amqp, "test", "work", &["thing.#"], 10)
        .await
        .unwrap();
    let publisher = Publisher::new(&infra.amqp, "test");
    publish(&publisher, "m1").await;

    // Taken before the retry is parked (during `next`), so that the time the consumer takes to
    // settle it never makes the delay look shorter than it was.
    let parked_at = std::time::Instant::now();
    let first = next(&mut consumer, Outcome::Retry("downstream down".into())).await;
    assert_eq!(first, (Disposition::Retrying(1), "m1".into(), 0));
    let second = next(&mut consumer, Outcome::Retry("still down".into())).await;
    assert_eq!(second, (Disposition::Retrying(2), "m1".into(), 1));
    assert!(
        parked_at.elapsed() >= Duration::from_millis(200),
        "the retry waited for its delay"
    );
    let third = next(&mut consumer, Outcome::Retry("still down".into())).await;
    assert_eq!(third, (Disposition::DeadLettered, "m1".into(), 2));

    assert_eq!(dead_lettered(&infra, &consumer).await, ["m1"]);
}

#[tokio::test]
async fn rejected_messages_go_straight_to_the_dead_letter_queue() {
    let infra = TestInfra::new().await;
    let mut consumer = Consumer::start(&infra.amqp, "test", "work", &["thing.#"], 10)
        .await
        .unwrap();
    let publisher = Publisher::new(&infra.amqp, "test");
    publish(&publisher, "poison").await;
    publish(&publisher, "fine").await;

    let poison = next(&mut consumer, Outcome::Reject("malformed".into())).await;
    assert_eq!(poison, (Disposition::DeadLettered, "poison".into(), 0));
    let fine = next(&mut consumer, Outcome::Done).await;
    assert_eq!(fine, (Disposition::Acked, "fine".into(), 0));
    assert_eq!(dead_lettered(&infra, &consumer).await, ["poison"]);
}

#[tokio::test]
async fn a_message_whose_consumer_dies_before_acking_is_delivered_again() {
    let infra = TestInfra::new().await;
    let publisher = Publisher::new(&infra.amqp, "test");
    let mut doomed = Consumer::start(&infra.amqp, "test", "work", &["thing.#"], 1)
        .await
        .unwrap();
    publish(&publisher, "m1").await;
    // The handler never finishes: the consumer "crashes" mid-message.
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        doomed.process_next(|_| std::future::pending::<Outcome>()),
    )
    .await;
    drop(doomed);

    let mut survivor = Consumer::start(&infra.amqp, "test", "work", &["thing.#"], 1)
        .await
        .unwrap();
    let again = next(&mut survivor, Outcome::Done).await;
    assert_eq!(again, (Disposition::Acked, "m1".into(), 0));
}
