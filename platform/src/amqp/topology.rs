//! The names of the exchanges and queues, and their declaration.

use std::time::Duration;

use anyhow::Context;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

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

    /// Where messages wait `bucket` (one of [`delay_bucket`]'s answers) before they return to
    /// the work queue.
    pub fn delay(&self, bucket: Duration) -> String {
        format!("{}.delay.{}ms", self.work, bucket.as_millis())
    }
}

/// Shortest delay a delay queue holds a message for; each longer one doubles it.
const SHORTEST_DELAY: Duration = Duration::from_millis(100);
/// Number of delay queues: the longest holds a message about 19 days.
const DELAY_QUEUES: u32 = 25;

/// The delay queue for a message due in `delay`: the longest of 100 ms × 2^k (up to about 19
/// days) not longer than `delay`, so the message comes back early, never late, and whoever
/// consumes it waits again for the rest; `None` when `delay` is shorter than 100 ms (send it
/// now). Every message of one delay queue waits as long, so none waits behind a longer one
/// (RabbitMQ expires messages from a queue's head only).
pub fn delay_bucket(delay: Duration) -> Option<Duration> {
    (0..DELAY_QUEUES)
        .rev()
        .map(|exponent| SHORTEST_DELAY * (1 << exponent))
        .find(|bucket| *bucket <= delay)
}

/// Declares the delay queue of `names` for `bucket`: messages wait there `bucket`, then go
/// back to the work queue. Idempotent.
pub async fn declare_delay_queue(
    channel: &Channel,
    names: &QueueNames,
    bucket: Duration,
) -> anyhow::Result<String> {
    let name = names.delay(bucket);
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX)),
    );
    arguments.insert("x-dead-letter-exchange".into(), long_string(""));
    arguments.insert("x-dead-letter-routing-key".into(), long_string(&names.work));
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .with_context(|| format!("declaring queue {name}"))?;
    Ok(name)
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
    declare_queues(channel, topology, &names, max_attempts).await?;
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
    Ok(names)
}

/// Declares the work queue of `names` (dead-lettered to `topology`'s dead-letter exchange),
/// its dead-letter queue and its `max_attempts - 1` retry queues. Idempotent; the exchanges
/// must exist.
pub async fn declare_queues(
    channel: &Channel,
    topology: &Topology,
    names: &QueueNames,
    max_attempts: u32,
) -> anyhow::Result<()> {
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
    Ok(())
}

fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let topology = Topology::new("ff");
        assert_eq!(topology.events_exchange(), "ff.events");
        assert_eq!(topology.dead_letter_exchange(), "ff.dlx");
        let names = topology.queue("gateway.tenants");
        assert_eq!(names.work, "ff.gateway.tenants");
        assert_eq!(names.dead_letter(), "ff.gateway.tenants.dlq");
        assert_eq!(names.retry(2), "ff.gateway.tenants.retry.2");
        assert_eq!(
            names.delay(Duration::from_millis(800)),
            "ff.gateway.tenants.delay.800ms"
        );
    }

    #[test]
    fn delays_go_to_the_longest_queue_not_longer() {
        let millis = |ms| Some(Duration::from_millis(ms));
        assert_eq!(delay_bucket(Duration::from_millis(99)), None);
        assert_eq!(delay_bucket(Duration::from_millis(100)), millis(100));
        assert_eq!(delay_bucket(Duration::from_millis(399)), millis(200));
        assert_eq!(delay_bucket(Duration::from_secs(60)), millis(51_200));
        let month = Duration::from_secs(30 * 86_400);
        assert_eq!(delay_bucket(month), millis(100 << 24));
    }
}
