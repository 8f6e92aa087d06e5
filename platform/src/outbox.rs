//! The transactional outbox: an event is written in the same Postgres transaction as the state
//! change it announces, and a relay publishes it to RabbitMQ with publisher confirms before
//! marking it sent. An acknowledged API call therefore never loses its event, whatever dies in
//! between; a crash between publish and mark re-publishes it, which consumers absorb by
//! recording event ids.
//!
//! Each service has its own `<schema>.outbox` table, created by its migrations:
//!
//! ```sql
//! CREATE TABLE <schema>.outbox (
//!     id           uuid PRIMARY KEY,          -- the event id (UUIDv7, so ordered)
//!     tenant_id    uuid,
//!     event_type   text NOT NULL,
//!     routing_key  text NOT NULL,
//!     payload      jsonb NOT NULL,            -- the whole envelope, or its redacted form
//!     created_at   timestamptz NOT NULL DEFAULT now(),
//!     published_at timestamptz,
//!     sealed       bytea                      -- the envelope of a sealed event, until published
//! );
//! CREATE INDEX outbox_pending ON <schema>.outbox (id) WHERE published_at IS NULL;
//! ```
//!
//! An event that carries a usable secret (a one-time token svc-notify mails) is never stored
//! in clear: [`Outbox::enqueue_sealed`] keeps its redacted form in `payload`, for operators, and
//! the whole envelope encrypted under the service's key ([`EventSealer`]) in `sealed`, which the
//! relay opens to publish and erases once RabbitMQ has confirmed it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::amqp::{OutgoingMessage, Publisher};
use crate::context::TenantId;
use crate::events::{Envelope, Event};

/// Published rows are kept this long, for operators, then deleted.
const RETENTION: &str = "7 days";
/// How often, at most, the relay counts the events waiting (`outbox_backlog_events`).
const BACKLOG_COUNT_EVERY: Duration = Duration::from_secs(1);

/// Encrypts the events that carry a secret while they wait in the outbox, bound to `context`
/// (the outbox row): implemented by the service with its own keys.
pub trait EventSealer: Send + Sync + 'static {
    /// Encrypts `plaintext` for `context`.
    fn seal(&self, context: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>>;
    /// Decrypts what [`EventSealer::seal`] encrypted for `context`.
    fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>>;
}

/// An event about to be enqueued, of any type: [`Outbox::enqueue_all`] writes several in one
/// statement.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    id: Uuid,
    tenant_id: Option<Uuid>,
    event_type: &'static str,
    routing_key: String,
    payload: serde_json::Value,
    sealed: Option<Vec<u8>>,
}

impl PendingEvent {
    /// `event` of `tenant_id` in a new envelope.
    pub fn new<T: Event>(tenant_id: Option<TenantId>, event: T) -> anyhow::Result<Self> {
        Self::of(&Envelope::new(tenant_id, event))
    }

    fn of<T: Event>(envelope: &Envelope<T>) -> anyhow::Result<Self> {
        Ok(PendingEvent {
            id: envelope.event_id,
            tenant_id: envelope.tenant_id.map(|tenant| tenant.as_uuid()),
            event_type: T::TYPE,
            routing_key: T::routing_key(),
            payload: serde_json::to_value(envelope).context("serialising an event")?,
            sealed: None,
        })
    }
}

/// A service's outbox: where events are enqueued, and the bell that wakes its relay.
#[derive(Clone)]
pub struct Outbox {
    table: Arc<str>,
    wake: Arc<Notify>,
    sealer: Option<Arc<dyn EventSealer>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Outbox")
            .field("table", &self.table)
            .field("seals", &self.sealer.is_some())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The outbox in `<schema>.outbox`.
    pub fn new(schema: &str) -> Self {
        Self {
            table: format!("{schema}.outbox").into(),
            wake: Arc::new(Notify::new()),
            sealer: None,
        }
    }

    /// This outbox, sealing events enqueued with [`Outbox::enqueue_sealed`] with `sealer`.
    #[must_use]
    pub fn with_sealer(mut self, sealer: Arc<dyn EventSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Adds `event` to the outbox inside the caller's transaction and returns its id. Call
    /// [`Outbox::notify`] after the commit for prompt delivery.
    pub async fn enqueue<T: Event>(
        &self,
        transaction: &mut PgConnection,
        tenant_id: Option<TenantId>,
        event: T,
    ) -> anyhow::Result<Uuid> {
        let pending = PendingEvent::new(tenant_id, event)?;
        let id = pending.id;
        self.enqueue_all(transaction, &[pending]).await?;
        Ok(id)
    }

    /// Adds `events`, in their order, with one statement (none: nothing).
    pub async fn enqueue_all(
        &self,
        transaction: &mut PgConnection,
        events: &[PendingEvent],
    ) -> anyhow::Result<()> {
        let ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
        let tenants: Vec<Option<Uuid>> = events.iter().map(|event| event.tenant_id).collect();
        let types: Vec<&str> = events.iter().map(|event| event.event_type).collect();
        let keys: Vec<&str> = events
            .iter()
            .map(|event| event.routing_key.as_str())
            .collect();
        let payloads: Vec<&serde_json::Value> = events.iter().map(|event| &event.payload).collect();
        let sealed: Vec<Option<&[u8]>> =
            events.iter().map(|event| event.sealed.as_deref()).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (id, tenant_id, event_type, routing_key, payload, sealed) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], \
                                  $6::bytea[])",
            self.table
        )))
        .bind(&ids)
        .bind(&tenants)
        .bind(&types)
        .bind(&keys)
        .bind(&payloads)
        .bind(&sealed)
        .execute(transaction)
        .await
        .context("writing to the outbox")?;
        Ok(())
    }

    /// Adds `event`, which carries a secret, sealed: the row keeps the envelope with `redact`
    /// applied to the event in clear, and the whole envelope only encrypted, until published.
    /// Fails unless the outbox has a sealer ([`Outbox::with_sealer`]).
    pub async fn enqueue_sealed<T: Event>(
        &self,
        transaction: &mut PgConnection,
        tenant_id: Option<TenantId>,
        event: T,
        redact: impl FnOnce(&mut T),
    ) -> anyhow::Result<Uuid> {
        let sealer = self
            .sealer
            .as_ref()
            .context("this outbox has no sealer for events that carry secrets")?;
        let mut envelope = Envelope::new(tenant_id, event);
        let whole = serde_json::to_vec(&envelope).context("serialising an event")?;
        let sealed = sealer.seal(&self.seal_context(envelope.event_id), &whole)?;
        redact(&mut envelope.data);
        let pending = PendingEvent {
            sealed: Some(sealed),
            ..PendingEvent::of(&envelope)?
        };
        self.enqueue_all(transaction, &[pending]).await?;
        Ok(envelope.event_id)
    }

    /// What a sealed envelope is bound to: its row, so a sealed value copied elsewhere does
    /// not open.
    fn seal_context(&self, event_id: Uuid) -> String {
        format!("{}:{event_id}", self.table)
    }

    /// The body to publish for an outbox row: its sealed envelope opened, or its payload.
    fn body(
        &self,
        id: Uuid,
        payload: &serde_json::Value,
        sealed: Option<&[u8]>,
    ) -> anyhow::Result<Vec<u8>> {
        match sealed {
            None => Ok(serde_json::to_vec(payload)?),
            Some(sealed) => self
                .sealer
                .as_ref()
                .context("a sealed event waits in the outbox, but this service has no sealer")?
                .open(&self.seal_context(id), sealed)
                .with_context(|| format!("opening the sealed event {id}")),
        }
    }

    /// Wakes the relay (after a commit that enqueued events).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// A relay publishing this outbox through `publisher`.
    pub fn relay(&self, pool: PgPool, publisher: Publisher) -> OutboxRelay {
        OutboxRelay {
            outbox: self.clone(),
            pool,
            publisher,
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Publishes pending outbox rows in id order.
#[derive(Debug)]
pub struct OutboxRelay {
    outbox: Outbox,
    pool: PgPool,
    publisher: Publisher,
    batch_size: i64,
    poll_interval: Duration,
}

impl OutboxRelay {
    /// Publishes up to one batch of pending events and returns how many were published. Stops
    /// at the first failure, so events leave in order; what is left waits for the next call.
    /// Concurrent relays (replicas) skip each other's locked rows.
    pub async fn relay_batch(&self) -> anyhow::Result<usize> {
        let table = &self.outbox.table;
        let mut transaction = self.pool.begin().await?;
        #[allow(clippy::type_complexity)]
        let pending: Vec<(Uuid, String, String, serde_json::Value, Option<Vec<u8>>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, event_type, routing_key, payload, sealed FROM {table} \
                 WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            )))
            .bind(self.batch_size)
            .fetch_all(&mut *transaction)
            .await
            .context("reading the outbox")?;

        // A row whose body cannot be made (a sealed event whose key is gone) stops the batch
        // there, like a failed publish: the rows before it still go out.
        let mut events = Vec::with_capacity(pending.len());
        let mut unready = None;
        for (id, event_type, routing_key, payload, sealed) in &pending {
            let body = match self.outbox.body(*id, payload, sealed.as_deref()) {
                Ok(body) => body,
                Err(error) => {
                    unready = Some(error);
                    break;
                }
            };
            let message = OutgoingMessage {
                message_id: id.to_string(),
                kind: event_type.clone(),
                body,
                ..OutgoingMessage::default()
            };
            events.push((routing_key.clone(), message));
        }
        // The whole batch goes out before its confirms are awaited; only the confirmed prefix
        // is marked, the rest is sent again (with the same ids) on the next call.
        let (confirmed, failure) = self.publisher.publish_events(&events).await;
        let failure = failure.or(unready);
        let published: Vec<Uuid> = pending[..confirmed].iter().map(|row| row.0).collect();
        if !published.is_empty() {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET published_at = now(), sealed = NULL WHERE id = ANY($1)"
            )))
            .bind(&published)
            .execute(&mut *transaction)
            .await
            .context("marking outbox rows published")?;
        }
        transaction.commit().await?;
        crate::metrics::outbox_published(table, published.len());
        match failure {
            Some(error) => Err(error.context(format!(
                "publishing outbox events ({} published before the failure)",
                published.len()
            ))),
            None => Ok(published.len()),
        }
    }

    /// Number of events waiting to be published.
    pub async fn backlog(&self) -> anyhow::Result<i64> {
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {} WHERE published_at IS NULL",
            self.outbox.table
        )))
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    async fn delete_old_published(&self) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE published_at < now() - interval '{RETENTION}'",
            self.outbox.table
        )))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Relays until `shutdown`: on every wake-up and every poll interval, publishes batches
    /// until the outbox is empty; after a failure, waits with exponential backoff (up to 30 s).
    pub async fn run(self, shutdown: CancellationToken) {
        let table = self.outbox.table.to_string();
        let mut backoff = Duration::from_millis(200);
        let mut last_cleanup: Option<tokio::time::Instant> = None;
        let mut last_count: Option<tokio::time::Instant> = None;
        loop {
            let result = loop {
                match self.relay_batch().await {
                    Ok(count) if count as i64 == self.batch_size => continue,
                    other => break other,
                }
            };
            let healthy = result.is_ok();
            let wait = match result {
                Ok(_) => {
                    backoff = Duration::from_millis(200);
                    self.poll_interval
                }
                Err(error) => {
                    tracing::warn!(%table, error = format!("{error:#}"), retry_in = ?backoff, "outbox relay failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            // Counted at most once a second: under load the relay wakes for every commit.
            if last_count.is_none_or(|at| at.elapsed() >= BACKLOG_COUNT_EVERY) {
                last_count = Some(tokio::time::Instant::now());
                if let Ok(backlog) = self.backlog().await {
                    crate::metrics::outbox_backlog(&table, backlog);
                }
            }
            if last_cleanup.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                last_cleanup = Some(tokio::time::Instant::now());
                if let Err(error) = self.delete_old_published().await {
                    tracing::warn!(%table, error = format!("{error:#}"), "outbox cleanup failed");
                }
            }
            // While the broker is failing, new events wait for the backoff like the old ones.
            let wake = async {
                if healthy {
                    self.outbox.wake.notified().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!(%table, "outbox relay stopped");
    }
}
