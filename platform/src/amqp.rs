//! RabbitMQ: the exchanges and queues every service agrees on, a publisher with confirms that
//! reconnects by itself, and a consumer with delayed retries and a dead-letter queue.
//!
//! Topology (names under the deployment's prefix, `formflow` by default):
//!
//! - `formflow.events`: topic exchange for domain events, routing key `{type}.v1`.
//! - `formflow.dlx`: topic exchange receiving what consumers reject for good.
//! - per consumer queue `formflow.{queue}`: bound to the events exchange; dead-letters to
//!   `formflow.dlx` with its own name as routing key, into `formflow.{queue}.dlq`.
//! - `formflow.{queue}.retry.{n}` for each retry `n`: a parking queue without consumers that
//!   dead-letters back to the work queue when a message's per-message TTL ends. The TTL is
//!   `base × 2^(n-1)` plus up to 20 % jitter; as RabbitMQ expires messages from the head only,
//!   a message may wait up to that jitter longer than its own TTL.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use lapin::Confirmation;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::AmqpConfig;

/// Header counting how many times a message has been retried.
pub const RETRY_HEADER: &str = "x-formflow-retries";

/// Names of the exchanges and queues under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// The topology under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The topic exchange of domain events.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// The exchange rejected messages are dead-lettered to.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// The names of consumer queue `name`.
    pub fn queue(&self, name: &str) -> QueueNames {
        QueueNames {
            work: format!("{}.{name}", self.prefix),
        }
    }
}

/// The queues that make up one consumer queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    /// The queue consumers read.
    pub work: String,
}

impl QueueNames {
    /// Where messages go after their last failed attempt.
    pub fn dead_letter(&self) -> String {
        format!("{}.dlq", self.work)
    }

    /// Where messages wait before retry `retry` (1-based).
    pub fn retry(&self, retry: u32) -> String {
        format!("{}.retry.{retry}", self.work)
    }
}

/// Opens a connection named after the service (visible in RabbitMQ's connection list).
pub async fn connect(config: &AmqpConfig, connection_name: &str) -> anyhow::Result<Connection> {
    let url = config.url()?;
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    Connection::connect(url.expose_secret(), properties)
        .await
        .context("connecting to RabbitMQ")
}

/// Declares the events and dead-letter exchanges (idempotent).
pub async fn declare_exchanges(channel: &Channel, topology: &Topology) -> anyhow::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    for exchange in [topology.events_exchange(), topology.dead_letter_exchange()] {
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("declaring exchange {exchange}"))?;
    }
    Ok(())
}

/// Declares consumer queue `name` with its dead-letter and retry queues, bound to the events
/// exchange with `bindings` (topic patterns such as `tenant.#`). Idempotent.
pub async fn declare_queue(
    channel: &Channel,
    topology: &Topology,
    name: &str,
    bindings: &[&str],
    max_attempts: u32,
) -> anyhow::Result<QueueNames> {
    declare_exchanges(channel, topology).await?;
    let names = topology.queue(name);
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };

    let mut work_arguments = FieldTable::default();
    work_arguments.insert(
        "x-dead-letter-exchange".into(),
        long_string(&topology.dead_letter_exchange()),
    );
    work_arguments.insert("x-dead-letter-routing-key".into(), long_string(&names.work));
    channel
        .queue_declare(names.work.as_str().into(), durable, work_arguments)
        .await
        .with_context(|| format!("declaring queue {}", names.work))?;
    for binding in bindings {
        channel
            .queue_bind(
                names.work.as_str().into(),
                topology.events_exchange().into(),
                (*binding).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("binding queue {} to {binding}", names.work))?;
    }

    channel
        .queue_declare(names.dead_letter().into(), durable, FieldTable::default())
        .await
        .with_context(|| format!("declaring queue {}", names.dead_letter()))?;
    channel
        .queue_bind(
            names.dead_letter().into(),
            topology.dead_letter_exchange().into(),
            names.work.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    for retry in 1..max_attempts {
        let mut retry_arguments = FieldTable::default();
        retry_arguments.insert("x-dead-letter-exchange".into(), long_string(""));
        retry_arguments.insert("x-dead-letter-routing-key".into(), long_string(&names.work));
        channel
            .queue_declare(names.retry(retry).into(), durable, retry_arguments)
            .await
            .with_context(|| format!("declaring queue {}", names.retry(retry)))?;
    }
    Ok(names)
}

fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

/// A message to publish.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    /// Unique id; consumers use it to process a message once.
    pub message_id: String,
    /// Message type, e.g. the event type `tenant.created`.
    pub kind: String,
    /// Body, JSON for events.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: FieldTable,
    /// Per-message TTL (used for delayed retries).
    pub expiration: Option<Duration>,
}

impl OutgoingMessage {
    fn properties(&self) -> BasicProperties {
        let mut properties = BasicProperties::default()
            .with_message_id(self.message_id.as_str().into())
            .with_type(self.kind.as_str().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2) // persistent
            .with_timestamp(
                chrono::Utc::now()
                    .timestamp()
                    .try_into()
                    .unwrap_or_default(),
            )
            .with_headers(self.headers.clone());
        if let Some(expiration) = self.expiration {
            properties = properties.with_expiration(expiration.as_millis().to_string().into());
        }
        properties
    }
}

/// Publishes with publisher confirms: `publish` returns only once the broker has taken
/// responsibility for the message. Connects lazily and, after any failure, reconnects on the
/// next call, so a broker restart costs the caller a retry, never a message.
#[derive(Debug)]
pub struct Publisher {
    config: AmqpConfig,
    connection_name: String,
    topology: Topology,
    state: Mutex<Option<(Connection, Channel)>>,
}

impl Publisher {
    /// A publisher for the broker and prefix of `config`. Nothing connects yet.
    pub fn new(config: &AmqpConfig, connection_name: &str) -> Self {
        Self {
            config: config.clone(),
            connection_name: connection_name.to_owned(),
            topology: Topology::new(config.amqp_prefix.clone()),
            state: Mutex::new(None),
        }
    }

    /// The topology this publisher publishes into.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Publishes `message` to the events exchange with `routing_key`.
    pub async fn publish_event(
        &self,
        routing_key: &str,
        message: &OutgoingMessage,
    ) -> anyhow::Result<()> {
        self.publish(&self.topology.events_exchange(), routing_key, message)
            .await
    }

    /// Publishes `message` to `exchange` and waits for the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &OutgoingMessage,
    ) -> anyhow::Result<()> {
        let mut state = self.state.lock().await;
        if state.as_ref().is_none_or(|(connection, channel)| {
            !connection.status().connected() || !channel.status().connected()
        }) {
            *state = None;
            let connection = connect(&self.config, &self.connection_name).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            declare_exchanges(&channel, &self.topology).await?;
            *state = Some((connection, channel));
        }
        let (_, channel) = state.as_ref().expect("connected above");
        let result = publish_confirmed(channel, exchange, routing_key, message).await;
        if result.is_err() {
            // Drop the connection; the next call starts afresh.
            *state = None;
        }
        result
    }
}

/// Longest wait for a publish and its confirm; a broker that answers neither is treated as
/// down.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    message: &OutgoingMessage,
) -> anyhow::Result<()> {
    tokio::time::timeout(
        PUBLISH_TIMEOUT,
        publish_and_confirm(channel, exchange, routing_key, message),
    )
    .await
    .context("timed out waiting for the broker")?
}

async fn publish_and_confirm(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    message: &OutgoingMessage,
) -> anyhow::Result<()> {
    let confirmation = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            &message.body,
            message.properties(),
        )
        .await
        .context("publishing")?
        .await
        .context("waiting for the publisher confirm")?;
    match confirmation {
        Confirmation::Ack(_) => Ok(()),
        Confirmation::Nack(_) => anyhow::bail!("the broker refused message {}", message.message_id),
        Confirmation::NotRequested => {
            anyhow::bail!("publisher confirms are not enabled on the channel")
        }
    }
}

/// What a handler decided about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed (or already processed before): acknowledge.
    Done,
    /// Failed for a reason that may pass (a service down, a lock held): retry later, then
    /// dead-letter once the attempts run out.
    Retry(String),
    /// Can never succeed (malformed payload): dead-letter now.
    Reject(String),
}

/// What happened to a message after its handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Acknowledged.
    Acked,
    /// Parked in retry queue `n` (1-based).
    Retrying(u32),
    /// Sent to the dead-letter queue.
    DeadLettered,
}

/// Consumes one queue. Each message is acknowledged only after its handler finished, so a
/// crash redelivers it; handlers must therefore be idempotent (record the message id).
pub struct Consumer {
    _connection: Connection,
    channel: Channel,
    deliveries: lapin::Consumer,
    names: QueueNames,
    retry_base: Duration,
    max_attempts: u32,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Consumer")
            .field("queue", &self.names.work)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Declares queue `name` (see [`declare_queue`]) and starts consuming it, with at most
    /// `prefetch` unacknowledged messages in flight.
    pub async fn start(
        config: &AmqpConfig,
        connection_name: &str,
        name: &str,
        bindings: &[&str],
        prefetch: u16,
    ) -> anyhow::Result<Consumer> {
        let topology = Topology::new(config.amqp_prefix.clone());
        let connection = connect(config, connection_name).await?;
        let channel = connection.create_channel().await?;
        let names = declare_queue(
            &channel,
            &topology,
            name,
            bindings,
            config.amqp_max_attempts,
        )
        .await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let deliveries = channel
            .basic_consume(
                names.work.as_str().into(),
                ShortString::from(format!("{connection_name}-{}", uuid::Uuid::new_v4())),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Consumer {
            _connection: connection,
            channel,
            deliveries,
            names,
            retry_base: config.amqp_retry_base,
            max_attempts: config.amqp_max_attempts,
        })
    }

    /// Consumes every event matching `bindings` into a queue of this process alone (exclusive,
    /// deleted when the connection closes): each replica of a service sees each event, as
    /// cache invalidation needs. No retries or dead-lettering: such handlers only forget.
    pub async fn start_broadcast(
        config: &AmqpConfig,
        connection_name: &str,
        bindings: &[&str],
    ) -> anyhow::Result<Consumer> {
        let topology = Topology::new(config.amqp_prefix.clone());
        let connection = connect(config, connection_name).await?;
        let channel = connection.create_channel().await?;
        declare_exchanges(&channel, &topology).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declaring a broadcast queue")?;
        let name = queue.name().to_string();
        for binding in bindings {
            channel
                .queue_bind(
                    name.as_str().into(),
                    topology.events_exchange().into(),
                    (*binding).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let deliveries = channel
            .basic_consume(
                name.as_str().into(),
                ShortString::from(format!("{connection_name}-{}", uuid::Uuid::new_v4())),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Consumer {
            _connection: connection,
            channel,
            deliveries,
            names: QueueNames { work: name },
            retry_base: config.amqp_retry_base,
            max_attempts: 1,
        })
    }

    /// The queue's names.
    pub fn names(&self) -> &QueueNames {
        &self.names
    }

    /// Waits for the next message, runs `handler` on it, and acknowledges, parks or
    /// dead-letters it according to the outcome.
    pub async fn process_next<F, Fut>(&mut self, handler: F) -> anyhow::Result<Disposition>
    where
        F: FnOnce(&Delivery) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let delivery = self
            .deliveries
            .next()
            .await
            .context("the consumer was cancelled")?
            .context("receiving a message")?;
        let outcome = handler(&delivery).await;
        self.settle(&delivery, outcome).await
    }

    async fn settle(&self, delivery: &Delivery, outcome: Outcome) -> anyhow::Result<Disposition> {
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        match outcome {
            Outcome::Done => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
                Ok(Disposition::Acked)
            }
            Outcome::Reject(reason) => {
                tracing::warn!(queue = %self.names.work, %message_id, %reason, "message dead-lettered");
                self.dead_letter(delivery).await
            }
            Outcome::Retry(reason) => {
                let retries_so_far = retries_of(delivery);
                let retry = retries_so_far + 1;
                if retry >= self.max_attempts {
                    tracing::warn!(queue = %self.names.work, %message_id, %reason, attempts = retry, "message dead-lettered after its last attempt");
                    return self.dead_letter(delivery).await;
                }
                tracing::info!(queue = %self.names.work, %message_id, %reason, retry, "message parked for retry");
                let mut headers = delivery.properties.headers().clone().unwrap_or_default();
                headers.insert(RETRY_HEADER.into(), AMQPValue::LongUInt(retry));
                let message = OutgoingMessage {
                    message_id: message_id.clone(),
                    kind: delivery
                        .properties
                        .kind()
                        .as_ref()
                        .map(|kind| kind.to_string())
                        .unwrap_or_default(),
                    body: delivery.data.clone(),
                    headers,
                    expiration: Some(retry_delay(self.retry_base, retry)),
                };
                // Park a copy first and acknowledge the original after the broker confirmed
                // the copy: a crash in between duplicates the message, never loses it.
                if let Err(error) =
                    publish_confirmed(&self.channel, "", &self.names.retry(retry), &message).await
                {
                    delivery
                        .acker
                        .reject(BasicRejectOptions { requeue: true })
                        .await?;
                    return Err(error.context("parking a message for retry"));
                }
                delivery.acker.ack(BasicAckOptions::default()).await?;
                Ok(Disposition::Retrying(retry))
            }
        }
    }

    async fn dead_letter(&self, delivery: &Delivery) -> anyhow::Result<Disposition> {
        delivery
            .acker
            .reject(BasicRejectOptions { requeue: false })
            .await?;
        Ok(Disposition::DeadLettered)
    }
}

/// How many times the message was retried already (0 on its first delivery).
pub fn retries_of(delivery: &Delivery) -> u32 {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(RETRY_HEADER))
        .and_then(|value| match value {
            AMQPValue::LongUInt(count) => Some(*count),
            AMQPValue::LongLongInt(count) => u32::try_from(*count).ok(),
            AMQPValue::LongInt(count) => u32::try_from(*count).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Delay before retry `retry` (1-based): `base × 2^(retry-1)`, capped at one hour, plus up to
/// 20 % jitter so that messages failing together do not come back together.
pub fn retry_delay(base: Duration, retry: u32) -> Duration {
    let exponential = base.saturating_mul(1 << retry.saturating_sub(1).min(16));
    let capped = exponential.min(Duration::from_secs(3600));
    capped.mul_f64(1.0 + rand::random_range(0.0..0.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_bounded_jitter() {
        let base = Duration::from_secs(10);
        for (retry, expected) in [(1, 10), (2, 20), (3, 40)] {
            let delay = retry_delay(base, retry);
            let expected = Duration::from_secs(expected);
            assert!(
                delay >= expected && delay <= expected.mul_f64(1.2),
                "{delay:?}"
            );
        }
        assert!(retry_delay(base, 30) <= Duration::from_secs(3600).mul_f64(1.2));
    }

    #[test]
    fn names_follow_the_prefix() {
        let topology = Topology::new("ff");
        assert_eq!(topology.events_exchange(), "ff.events");
        assert_eq!(topology.dead_letter_exchange(), "ff.dlx");
        let names = topology.queue("gateway.tenants");
        assert_eq!(names.work, "ff.gateway.tenants");
        assert_eq!(names.dead_letter(), "ff.gateway.tenants.dlq");
        assert_eq!(names.retry(2), "ff.gateway.tenants.retry.2");
    }
}
