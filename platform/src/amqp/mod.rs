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
//! - `formflow.{queue}.delay.{ms}ms`: parking queues for work due later (a workflow's
//!   `logic.delay`, a node's next attempt), each holding every message the same time
//!   (100 ms × 2^k), then dead-lettering it back to the work queue
//!   ([`Publisher::publish_delayed`]).

//!
//! - [`topology`]: the names, and their declaration.
//! - [`publisher`]: publishing with confirms.
//! - [`consumer`]: consuming one queue, with retries and the dead-letter queue.

mod consumer;
mod publisher;
mod topology;

use anyhow::Context;
use lapin::tcp::OwnedTLSConfig;
use lapin::{Connection, ConnectionProperties};
use secrecy::ExposeSecret;

pub use consumer::{Consumer, Disposition, Outcome, retries_of, retry_delay};
pub use publisher::{OutgoingMessage, Publisher};
pub use topology::{
    QueueNames, RETRY_HEADER, Topology, declare_delay_queue, declare_exchanges, declare_queue,
    declare_queues, delay_bucket,
};

use crate::config::AmqpConfig;

/// Opens a connection named after the service (visible in RabbitMQ's connection list).
pub async fn connect(config: &AmqpConfig, connection_name: &str) -> anyhow::Result<Connection> {
    let url = config.url()?;
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    let tls = OwnedTLSConfig {
        identity: None,
        cert_chain: config
            .amqp_ca_file
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading AMQP_CA_FILE {}", path.display()))
            })
            .transpose()?,
    };
    Connection::connect_with_config(
        url.expose_secret(),
        properties,
        tls,
        lapin::runtime::default_runtime()?,
    )
    .await
    .context("connecting to RabbitMQ")
}
