//! Publishing with publisher confirms, reconnecting after any failure.

use std::time::Duration;

use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use super::{Topology, connect, declare_exchanges};
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
