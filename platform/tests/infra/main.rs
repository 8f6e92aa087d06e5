//! The platform's infrastructure pieces against the real servers.

mod amqp;
mod balance;
mod consumer;
mod jobs;
mod least_privilege;
mod live;
mod outbox;
mod server;
mod smtp;
mod testing;
mod tls;

/// Waits until `queue` is declared (by a consumer starting): a message published to it
/// before would go nowhere.
async fn wait_for_queue(amqp: &platform::config::AmqpConfig, queue: &str) {
    let what = format!("queue {queue} is declared");
    platform::testing::wait_until(std::time::Duration::from_secs(10), &what, || async {
        let connection = platform::amqp::connect(amqp, "probe").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .is_ok()
    })
    .await;
}
