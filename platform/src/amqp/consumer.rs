//! Consuming one queue: acknowledgement after the handler, delayed retries, dead-lettering.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection};

use super::publisher::publish_confirmed;
use super::{
    OutgoingMessage, QueueNames, RETRY_HEADER, Topology, connect, declare_exchanges, declare_queue,
};
use crate::config::AmqpConfig;

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
        self.settler().settle(&delivery, outcome).await
    }

    /// Runs `handler` on up to `limit` messages at once (set the prefetch to at least
    /// `limit`), settling each by its outcome and reporting each disposition to `settled`,
    /// until the broker fails (the error).
    pub async fn process_concurrently<F, Fut>(
        &mut self,
        limit: usize,
        handler: F,
        settled: impl Fn(Disposition),
    ) -> anyhow::Result<()>
    where
        F: Fn(Delivery) -> Fut,
        Fut: Future<Output = (Delivery, Outcome)>,
    {
        // Borrowed field by field: the deliveries are borrowed mutably beside them.
        let settler = Settler {
            channel: &self.channel,
            names: &self.names,
            retry_base: self.retry_base,
            max_attempts: self.max_attempts,
        };
        let (handler, settler, settled) = (&handler, &settler, &settled);
        (&mut self.deliveries)
            .map(|delivery| delivery.context("receiving a message"))
            .try_for_each_concurrent(limit, |delivery| async move {
                let (delivery, outcome) = handler(delivery).await;
                settled(settler.settle(&delivery, outcome).await?);
                Ok(())
            })
            .await?;
        anyhow::bail!("the consumer was cancelled")
    }

    fn settler(&self) -> Settler<'_> {
        Settler {
            channel: &self.channel,
            names: &self.names,
            retry_base: self.retry_base,
            max_attempts: self.max_attempts,
        }
    }
}

/// What settles a message once its handler ran.
struct Settler<'a> {
    channel: &'a Channel,
    names: &'a QueueNames,
    retry_base: Duration,
    max_attempts: u32,
}

impl Settler<'_> {
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
                    publish_confirmed(self.channel, "", &self.names.retry(retry), &message).await
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
}
