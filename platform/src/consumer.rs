//! Reacting to events: what svc-workflow's triggers and svc-notify's deliveries are built on.
//!
//! - [`ReceivedEvent`]: an event as it arrives, decoded into its typed message by its type
//!   ([`ReceivedEvent::decode`]).
//! - [`EventHandler`]: what a service implements: one event in, an [`Outcome`] out.
//! - [`run`]: consumes a durable queue bound to the events exchange until shutdown,
//!   reconnecting with backoff after broker failures; failed events are retried with delays,
//!   then dead-lettered (see [`crate::amqp`]).
//! - [`work`]: the same for a service's own job queue (svc-workflow's executions, svc-notify's
//!   deliveries), whose messages are jobs, not events.
//! - [`ProcessedEvents`]: the `processed_events` table every schema has, so a redelivered
//!   event (a crash before the ack, a relay that published twice) is handled once.
//!
//! A handler that changes state does it in one transaction with the event's mark:
//!
//! ```ignore
//! let done = processed.once(&db, &event, async |transaction| {
//!     store::insert_execution(transaction, ...).await?;
//!     Ok(())
//! }).await;
//! ```

use std::time::Duration;

use lapin::message::Delivery;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::amqp::{Consumer, Outcome};
use crate::config::AmqpConfig;
use crate::context::TenantId;
use crate::db::Db;
use crate::events::{Envelope, Event};

/// An event as a consumer receives it: the envelope's fields, its data not decoded yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The event's id (also the AMQP message id).
    pub event_id: Uuid,
    /// The tenant it belongs to; `None` for platform events.
    pub tenant_id: Option<TenantId>,
    /// Its type, e.g. `forms.submission.created`.
    pub event_type: String,
    /// How many times it was retried before this delivery.
    pub retries: u32,
    data: serde_json::Value,
}

impl ReceivedEvent {
    /// Reads the envelope of a delivery; an error says why it is not one (such a message can
    /// never be handled, so it is dead-lettered).
    pub fn parse(delivery: &Delivery) -> Result<ReceivedEvent, String> {
        let envelope: Envelope<serde_json::Value> = serde_json::from_slice(&delivery.data)
            .map_err(|error| format!("not an event envelope: {error}"))?;
        Ok(ReceivedEvent {
            event_id: envelope.event_id,
            tenant_id: envelope.tenant_id,
            event_type: envelope.event_type,
            retries: crate::amqp::retries_of(delivery),
            data: envelope.data,
        })
    }

    /// The event's data, as JSON.
    pub fn data(&self) -> &serde_json::Value {
        &self.data
    }

    /// The event's message when it is of type `T`; `None` for events of other types, an error
    /// when its data does not decode as `T` (dead-letter it). The type in the envelope decides,
    /// not the AMQP routing key, which a retry replaces with the queue's name.
    pub fn decode<T: Event + DeserializeOwned>(&self) -> Option<Result<T, String>> {
        (self.event_type == T::TYPE).then(|| {
            serde_json::from_value(self.data.clone())
                .map_err(|error| format!("{} does not decode: {error}", T::TYPE))
        })
    }
}

/// What a service does with the events of one queue.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event. It must be idempotent: an event may arrive again after a crash
    /// ([`ProcessedEvents::once`] makes a state change idempotent).
    fn handle(&self, event: ReceivedEvent) -> impl Future<Output = Outcome> + Send;
}

/// What a service's consumer receives, and into which queue.
#[derive(Debug, Clone, Copy)]
pub struct Subscription {
    /// Who handles each event.
    pub audience: Audience,
    /// Topic patterns of the routing keys it receives: `forms.submission.created.v1`.
    pub bindings: &'static [&'static str],
    /// Events handled at once by each replica.
    pub prefetch: u16,
}

/// Who handles each event of a subscription.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    /// One replica: the replicas share the durable queue of this name under the deployment's
    /// prefix (`svc-workflow.form-triggers`), with retries and a dead-letter queue.
    OneReplica(&'static str),
    /// Every replica, each from a queue of its own that lives as long as its connection, with
    /// neither retries nor dead-lettering: for forgetting cached state.
    EveryReplica,
}

impl Audience {
    /// The queue's name in metrics and logs; `every-replica` for the per-process queues,
    /// whose names the broker makes up.
    fn label(&self) -> &'static str {
        match self {
            Audience::OneReplica(queue) => queue,
            Audience::EveryReplica => "every-replica",
        }
    }
}

/// Consumes `subscription` with `handler` until `stopped`: acknowledges what the handler
/// finished, parks what it asks to retry (with exponential delays) and dead-letters what it
/// rejects or what failed its last attempt. After a broker failure it connects again with a
/// growing backoff; unacknowledged events are redelivered meanwhile.
pub async fn run<H: EventHandler>(
    config: AmqpConfig,
    connection_name: &'static str,
    subscription: Subscription,
    handler: H,
    stopped: CancellationToken,
) {
    let handler = &handler;
    consume(
        &config,
        connection_name,
        subscription.audience,
        subscription.bindings,
        subscription.prefetch,
        |delivery| async move {
            let outcome = match ReceivedEvent::parse(&delivery) {
                Ok(event) => handler.handle(event).await,
                Err(reason) => Outcome::Reject(reason),
            };
            (delivery, outcome)
        },
        stopped,
    )
    .await;
}

/// Works on the job queue `queue` (durable, under the deployment's prefix, with retries and a
/// dead-letter queue; bound to nothing: jobs are published to it directly) until `stopped`,
/// `concurrency` jobs at once, settling each by what `handle` answers; reconnects after
/// broker failures as [`run`] does. A concurrency of 0 works on nothing (a replica that only
/// serves its API).
pub async fn work<F, Fut>(
    config: &AmqpConfig,
    connection_name: &'static str,
    queue: &'static str,
    concurrency: u16,
    handle: F,
    stopped: CancellationToken,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = (Delivery, Outcome)>,
{
    if concurrency == 0 {
        return;
    }
    consume(
        config,
        connection_name,
        Audience::OneReplica(queue),
        &[],
        concurrency,
        handle,
        stopped,
    )
    .await;
}

/// The consuming loop of [`run`] and [`work`].
async fn consume<F, Fut>(
    config: &AmqpConfig,
    connection_name: &'static str,
    audience: Audience,
    bindings: &'static [&'static str],
    prefetch: u16,
    handler: F,
    stopped: CancellationToken,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = (Delivery, Outcome)>,
{
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let consumed = async {
            let mut consumer = match audience {
                Audience::OneReplica(queue) => {
                    Consumer::start(config, connection_name, queue, bindings, prefetch).await?
                }
                Audience::EveryReplica => {
                    Consumer::start_broadcast(config, connection_name, bindings).await?
                }
            };
            backoff = INITIAL_BACKOFF;
            let label = audience.label();
            consumer
                .process_concurrently(usize::from(prefetch.max(1)), &handler, |disposition| {
                    crate::metrics::event_consumed(label, disposition)
                })
                .await
        };
        let failed: anyhow::Result<()> = tokio::select! {
            () = stopped.cancelled() => return,
            failed = consumed => failed,
        };
        if let Err(error) = failed {
            tracing::warn!(queue = audience.label(), error = format!("{error:#}"), retry_in = ?backoff, "consumer disconnected");
        }
        tokio::select! {
            () = stopped.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The events each consumer of a service has handled, in the service's
/// `<schema>.processed_events` (created by the platform's migrations).
#[derive(Debug, Clone)]
pub struct ProcessedEvents {
    table: std::sync::Arc<str>,
    consumer: &'static str,
}

impl ProcessedEvents {
    /// The events `consumer` (a queue name) handled, in `<schema>.processed_events`.
    pub fn new(schema: &str, consumer: &'static str) -> Self {
        Self {
            table: format!("{schema}.processed_events").into(),
            consumer,
        }
    }

    /// Records `event` as handled inside the caller's transaction; `false` when it was
    /// handled before (the caller then changes nothing).
    pub async fn mark(
        &self,
        transaction: &mut PgConnection,
        event: &ReceivedEvent,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (consumer, event_id, tenant_id) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            self.table
        )))
        .bind(self.consumer)
        .bind(event.event_id)
        .bind(event.tenant_id.map(|tenant| tenant.as_uuid()))
        .execute(transaction)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Whether `event` was handled already: a cheap look before costly work done outside the
    /// transaction (an inference, a call), so that a redelivered event does not pay for it
    /// again. [`ProcessedEvents::once`] still decides: two copies may both look before either
    /// commits.
    pub async fn handled(&self, db: &Db, event: &ReceivedEvent) -> anyhow::Result<bool> {
        let mut transaction = match event.tenant_id {
            Some(tenant) => db.tenant_tx(tenant).await?,
            None => db.platform_tx().await?,
        };
        let handled: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE consumer = $1 AND event_id = $2)",
            self.table
        )))
        .bind(self.consumer)
        .bind(event.event_id)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(handled)
    }

    /// Runs `work` and marks `event` handled in one transaction (scoped to the event's tenant),
    /// unless it was handled before: then nothing runs and the answer is `None`. A crash before
    /// the commit leaves neither, so the redelivered event is handled then.
    pub async fn once<T>(
        &self,
        db: &Db,
        event: &ReceivedEvent,
        work: impl AsyncFnOnce(&mut PgConnection) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        let mut transaction = match event.tenant_id {
            Some(tenant) => db.tenant_tx(tenant).await?,
            None => db.platform_tx().await?,
        };
        if !self.mark(&mut transaction, event).await? {
            return Ok(None);
        }
        let value = work(&mut transaction).await?;
        transaction.commit().await?;
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use proto::formflow::events::v1 as events;

    use super::*;

    fn received<T: Event>(tenant: TenantId, data: T) -> ReceivedEvent {
        let envelope = Envelope::new(Some(tenant), data);
        ReceivedEvent {
            event_id: envelope.event_id,
            tenant_id: envelope.tenant_id,
            event_type: envelope.event_type,
            retries: 0,
            data: serde_json::to_value(&envelope.data).unwrap(),
        }
    }

    #[test]
    fn events_decode_into_the_message_of_their_type_only() {
        let event = received(
            TenantId::generate(),
            events::TenantSuspended {
                tenant: None,
                reason: "unpaid".into(),
            },
        );
        let suspended = event.decode::<events::TenantSuspended>().unwrap().unwrap();
        assert_eq!(suspended.reason, "unpaid");
        assert!(event.decode::<events::TenantCreated>().is_none());
    }

    #[test]
    fn data_that_does_not_fit_its_type_is_an_error() {
        let mut event = received(TenantId::generate(), events::TenantCreated { tenant: None });
        event.data = serde_json::json!({"tenant": "not a tenant"});
        let error = event
            .decode::<events::TenantCreated>()
            .unwrap()
            .unwrap_err();
        assert!(
            error.starts_with("tenant.created does not decode"),
            "{error}"
        );
    }
}
