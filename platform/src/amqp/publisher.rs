//! Publishing with publisher confirms, reconnecting after any failure.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use super::{
    QueueNames, Topology, connect, declare_delay_queue, declare_exchanges, declare_queues,
    delay_bucket,
};
use crate::config::AmqpConfig;

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
    /// Job and delay queues declared by this process (they are durable, so a reconnection
    /// keeps them).
    declared: std::sync::Mutex<HashSet<String>>,
}

impl Publisher {
    /// A publisher for the broker and prefix of `config`. Nothing connects yet.
    pub fn new(config: &AmqpConfig, connection_name: &str) -> Self {
        Self {
            config: config.clone(),
            connection_name: connection_name.to_owned(),
            topology: Topology::new(config.amqp_prefix.clone()),
            state: Mutex::new(None),
            declared: std::sync::Mutex::default(),
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
        let channel = self.connected(&mut state).await?;
        let result = publish_confirmed(channel, exchange, routing_key, message).await;
        if result.is_err() {
            // Drop the connection; the next call starts afresh.
            *state = None;
        }
        result
    }

    /// Publishes `message` straight into queue `queue` (through the default exchange); fails
    /// when no queue is called `queue`.
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        message: &OutgoingMessage,
    ) -> anyhow::Result<()> {
        self.publish("", queue, message).await
    }

    /// Publishes `message` to come into the work queue of `names` after `delay`, through
    /// the delay queue [`delay_bucket`] picks, or at once below its shortest delay. The work
    /// queue (with its retry and dead-letter queues, as a consumer declares them) and the delay
    /// queue are declared on first use, so a job sent before any worker started waits for one.
    /// Answers the delay given, which may be shorter than `delay`: whoever consumes the
    /// message waits again for the rest.
    pub async fn publish_delayed(
        &self,
        names: &QueueNames,
        message: &OutgoingMessage,
        delay: Duration,
    ) -> anyhow::Result<Duration> {
        let bucket = delay_bucket(delay);
        let mut state = self.state.lock().await;
        let result = async {
            let channel = self.connected(&mut state).await?;
            if !self.was_declared(&names.work) {
                declare_queues(
                    channel,
                    &self.topology,
                    names,
                    self.config.amqp_max_attempts,
                )
                .await?;
                self.mark_declared(&names.work);
            }
            let queue = match bucket {
                None => names.work.clone(),
                Some(bucket) => {
                    let queue = names.delay(bucket);
                    if !self.was_declared(&queue) {
                        declare_delay_queue(channel, names, bucket).await?;
                        self.mark_declared(&queue);
                    }
                    queue
                }
            };
            publish_confirmed(channel, "", &queue, message).await
        }
        .await;
        if result.is_err() {
            *state = None;
        }
        result.map(|()| bucket.unwrap_or_default())
    }

    fn was_declared(&self, queue: &str) -> bool {
        self.declared
            .lock()
            .expect("never poisoned")
            .contains(queue)
    }

    fn mark_declared(&self, queue: &str) {
        self.declared
            .lock()
            .expect("never poisoned")
            .insert(queue.to_owned());
    }

    /// Publishes `events` (routing key, message) in order on the events exchange, then waits
    /// for all their confirms: one round trip for the batch, not one per event. Answers how
    /// many, from the first, the broker confirmed, and the failure that stopped the rest.
    pub async fn publish_events(
        &self,
        events: &[(String, OutgoingMessage)],
    ) -> (usize, Option<anyhow::Error>) {
        let mut state = self.state.lock().await;
        let exchange = self.topology.events_exchange();
        let result = async {
            let channel = self.connected(&mut state).await?;
            let mut confirms = Vec::with_capacity(events.len());
            for (routing_key, message) in events {
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        &message.body,
                        message.properties(),
                    )
                    .await
                    .context("publishing")?;
                confirms.push(confirm);
            }
            Ok::<_, anyhow::Error>(confirms)
        };
        let confirms = match tokio::time::timeout(PUBLISH_TIMEOUT, result).await {
            Ok(Ok(confirms)) => confirms,
            Ok(Err(error)) => {
                *state = None;
                return (0, Some(error));
            }
            Err(_) => {
                *state = None;
                return (
                    0,
                    Some(anyhow::anyhow!("timed out publishing to the broker")),
                );
            }
        };
        let waited = tokio::time::timeout(PUBLISH_TIMEOUT, async {
            let mut confirmed = 0;
            for (confirm, (_, message)) in confirms.into_iter().zip(events) {
                let confirmation = confirm.await.map_err(|error| {
                    let error = anyhow::Error::from(error);
                    (
                        confirmed,
                        error.context("waiting for the publisher confirm"),
                    )
                })?;
                match confirmation {
                    Confirmation::Ack(_) => confirmed += 1,
                    Confirmation::Nack(_) => {
                        return Err((
                            confirmed,
                            anyhow::anyhow!("the broker refused message {}", message.message_id),
                        ));
                    }
                    Confirmation::NotRequested => {
                        return Err((
                            confirmed,
                            anyhow::anyhow!("publisher confirms are not enabled on the channel"),
                        ));
                    }
                }
            }
            Ok(confirmed)
        })
        .await;
        match waited {
            Ok(Ok(confirmed)) => (confirmed, None),
            Ok(Err((confirmed, error))) => {
                *state = None;
                (confirmed, Some(error))
            }
            Err(_) => {
                *state = None;
                (0, Some(anyhow::anyhow!("timed out waiting for the broker")))
            }
        }
    }

    /// How many messages wait in each of `queues` to be delivered (not counting those
    /// delivered and not yet acknowledged); a queue not declared yet holds none.
    pub async fn message_counts(&self, queues: &[String]) -> anyhow::Result<Vec<u32>> {
        // A channel per queue: asking for a missing queue closes the channel it is asked on.
        let channels = {
            let mut state = self.state.lock().await;
            self.connected(&mut state).await?;
            let (connection, _) = state.as_ref().expect("connected above");
            let mut channels = Vec::with_capacity(queues.len());
            for _ in queues {
                channels.push(connection.create_channel().await?);
            }
            channels
        };
        let mut counts = Vec::with_capacity(queues.len());
        for (queue, channel) in queues.iter().zip(channels) {
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await;
            match declared {
                Ok(declared) => {
                    counts.push(declared.message_count());
                    channel.close(200, "OK".into()).await?;
                }
                Err(error) if is_not_found(&error) => counts.push(0),
                Err(error) => {
                    return Err(error).context(format!("counting the messages of {queue}"));
                }
            }
        }
        Ok(counts)
    }

    /// The channel of `state`, connected (again) when it is not.
    async fn connected<'s>(
        &self,
        state: &'s mut Option<(Connection, Channel)>,
    ) -> anyhow::Result<&'s Channel> {
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
        Ok(&state.as_ref().expect("connected above").1)
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(error)
            if *error.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}

/// Longest wait for a publish and its confirm; a broker that answers neither is treated as
/// down.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn publish_confirmed(
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
            BasicPublishOptions {
                // A message for a queue (the default exchange) that no queue takes comes back
                // instead of vanishing; an event nobody subscribes to is fine.
                mandatory: exchange.is_empty(),
                ..BasicPublishOptions::default()
            },
            &message.body,
            message.properties(),
        )
        .await
        .context("publishing")?
        .await
        .context("waiting for the publisher confirm")?;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => {
            anyhow::bail!("no queue {routing_key} took message {}", message.message_id)
        }
        Confirmation::Nack(_) => anyhow::bail!("the broker refused message {}", message.message_id),
        Confirmation::NotRequested => {
            anyhow::bail!("publisher confirms are not enabled on the channel")
        }
    }
}
