//! Deliveries, their attempts, and the leases of the workers that send them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use platform::jobs::Wake;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Attempt, Channel, Delivery, DeliveryId, DeliveryState, NotificationId, Priority, Recipient,
};

struct DeliveryRow {
    id: Uuid,
    tenant_id: Uuid,
    notification_id: Uuid,
    position: i32,
    channel: String,
    recipient_kind: String,
    recipient: String,
    address: String,
    state: String,
    suppression_reason: String,
    topic: String,
    priority: String,
    attempt_count: i32,
    last_error: String,
    last_response_code: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    digest: bool,
    digest_id: Option<Uuid>,
    // the worker's ledger, left out of the domain's view
    wake_token: i64,
    lease_until: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = anyhow::Error;

    fn try_from(row: DeliveryRow) -> anyhow::Result<Delivery> {
        Ok(Delivery {
            id: DeliveryId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            notification_id: NotificationId::from(row.notification_id),
            position: row.position,
            channel: Channel::parse(&row.channel).context("stored channel")?,
            recipient: Recipient::from_stored(&row.recipient_kind, &row.recipient)
                .context("stored recipient")?,
            address: row.address,
            state: DeliveryState::parse(&row.state).context("stored delivery state")?,
            suppression_reason: row.suppression_reason,
            topic: row.topic,
            priority: Priority::parse(&row.priority).context("stored priority")?,
            attempt_count: row.attempt_count,
            last_error: row.last_error,
            last_response_code: row.last_response_code,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            digest: row.digest,
            digest_id: row.digest_id.map(DeliveryId::from),
        })
    }
}

/// Inserts a delivery, under the notification's `dedup_key`.
pub async fn insert_delivery(
    connection: &mut PgConnection,
    delivery: &Delivery,
    dedup_key: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO notify.deliveries (id, tenant_id, notification_id, position, channel, \
             recipient_kind, recipient, address, state, suppression_reason, topic, priority, \
             dedup_key, next_attempt_at, created_at, updated_at, digest, digest_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17)",
        delivery.id.as_uuid(),
        delivery.tenant_id.as_uuid(),
        delivery.notification_id.as_uuid(),
        delivery.position,
        delivery.channel.as_str(),
        delivery.recipient.kind(),
        delivery.recipient.value(),
        delivery.address,
        delivery.state.as_str(),
        delivery.suppression_reason,
        delivery.topic,
        delivery.priority.as_str(),
        dedup_key,
        delivery.next_attempt_at,
        delivery.created_at,
        delivery.digest,
        delivery.digest_id.map(|id| id.as_uuid()),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Serialises the senders to each of `windows` (recipient, channel, topic) until the
/// transaction ends, so that one digest window opens at a time for each; takes the locks in
/// one order, so that two senders never wait for each other.
pub async fn lock_digest_windows(
    connection: &mut PgConnection,
    tenant: TenantId,
    windows: &[(&Recipient, Channel, &str)],
) -> anyhow::Result<()> {
    let mut keys: Vec<String> = windows
        .iter()
        .map(|(recipient, channel, topic)| {
            format!(
                "notify.digest/{tenant}/{}/{}/{topic}",
                recipient.value(),
                channel.as_str()
            )
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The open digest of `recipient`'s `topic` on `channel` at `now`, locked: the delivery that
/// opened it, still waiting for its window to end (hold [`lock_digest_windows`] first). A
/// digest whose attempt started is closed: its worker read what it carries.
pub async fn lock_open_digest(
    connection: &mut PgConnection,
    tenant: TenantId,
    recipient: &Recipient,
    channel: Channel,
    topic: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<DeliveryId>> {
    let recipient = recipient.value();
    let open = sqlx::query_scalar!(
        "SELECT id FROM notify.deliveries \
         WHERE tenant_id = $1 AND recipient = $2 AND channel = $3 AND topic = $4 AND digest \
           AND state IN ('pending', 'deferred') AND attempt_count = 0 AND lease_until IS NULL \
           AND next_attempt_at > $5 \
         ORDER BY created_at LIMIT 1 FOR UPDATE",
        tenant.as_uuid(),
        recipient,
        channel.as_str(),
        topic,
        now,
    )
    .fetch_optional(connection)
    .await?;
    Ok(open.map(DeliveryId::from))
}

/// Records where the email delivery `id` of `tenant` went (its user's address then).
pub async fn set_delivery_address(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
    address: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE notify.deliveries SET address = $3 WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
        address,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Marks the deliveries batched into the digest `digest` delivered at `at`.
pub async fn deliver_batched(
    connection: &mut PgConnection,
    tenant: TenantId,
    digest: DeliveryId,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE notify.deliveries SET state = 'delivered', delivered_at = $3, updated_at = $3 \
         WHERE tenant_id = $1 AND digest_id = $2 AND state = 'batched'",
        tenant.as_uuid(),
        digest.as_uuid(),
        at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Queues on their own, due now, the batched deliveries of `tenant` whose digest was deleted
/// with its notification; answers them with their new wake tokens.
pub async fn release_orphaned_batches(
    connection: &mut PgConnection,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(DeliveryId, i64)>> {
    let rows = sqlx::query!(
        "UPDATE notify.deliveries SET state = 'pending', next_attempt_at = $2, \
             wake_token = wake_token + 1, updated_at = $2 \
         WHERE tenant_id = $1 AND state = 'batched' AND digest_id IS NULL \
         RETURNING id, wake_token",
        tenant.as_uuid(),
        now,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (DeliveryId::from(row.id), row.wake_token))
        .collect())
}

/// Whether a delivery under `dedup_key` went to `recipient` on `channel` since `since`
/// (suppressed ones do not count: they went nowhere).
pub async fn sent_under_dedup_key(
    connection: &mut PgConnection,
    tenant: TenantId,
    dedup_key: &str,
    recipient: &Recipient,
    channel: Channel,
    since: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let found = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM notify.deliveries \
             WHERE tenant_id = $1 AND dedup_key = $2 AND recipient = $3 AND channel = $4 \
               AND created_at >= $5 AND state <> 'suppressed') AS \"found!\"",
        tenant.as_uuid(),
        dedup_key,
        recipient.value(),
        channel.as_str(),
        since,
    )
    .fetch_one(connection)
    .await?;
    Ok(found)
}

/// The deliveries of a notification of `tenant`, in order.
pub async fn deliveries_of(
    connection: &mut PgConnection,
    tenant: TenantId,
    notification: NotificationId,
) -> anyhow::Result<Vec<Delivery>> {
    let rows = sqlx::query_as!(
        DeliveryRow,
        "SELECT id, tenant_id, notification_id, position, channel, recipient_kind, recipient, \
             address, state, suppression_reason, topic, priority, attempt_count, last_error, \
             last_response_code, next_attempt_at, created_at, delivered_at, digest, digest_id, wake_token, \
             lease_until \
         FROM notify.deliveries WHERE tenant_id = $1 AND notification_id = $2 ORDER BY position",
        tenant.as_uuid(),
        notification.as_uuid(),
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Delivery::try_from).collect()
}

/// The delivery `id` of `tenant`.
pub async fn get_delivery(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
) -> anyhow::Result<Option<Delivery>> {
    let row = sqlx::query_as!(
        DeliveryRow,
        "SELECT id, tenant_id, notification_id, position, channel, recipient_kind, recipient, \
             address, state, suppression_reason, topic, priority, attempt_count, last_error, \
             last_response_code, next_attempt_at, created_at, delivered_at, digest, digest_id, wake_token, \
             lease_until \
         FROM notify.deliveries WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Delivery::try_from).transpose()
}

/// What ListDeliveries filters on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    /// Only this notification's.
    pub notification: Option<NotificationId>,
    /// Only on this channel.
    pub channel: Option<Channel>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// Only to this recipient.
    pub recipient: Option<Recipient>,
    /// Only of this topic.
    pub topic: Option<String>,
    /// Only created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Only created before.
    pub until: Option<DateTime<Utc>>,
}

/// Up to `limit` deliveries of `tenant` matching `filter`, newest first, after `after`.
pub async fn list_deliveries(
    connection: &mut PgConnection,
    tenant: TenantId,
    filter: &DeliveryFilter,
    after: Option<(DateTime<Utc>, DeliveryId)>,
    limit: i64,
) -> anyhow::Result<Vec<Delivery>> {
    let rows = sqlx::query_as!(
        DeliveryRow,
        "SELECT id, tenant_id, notification_id, position, channel, recipient_kind, recipient, \
             address, state, suppression_reason, topic, priority, attempt_count, last_error, \
             last_response_code, next_attempt_at, created_at, delivered_at, digest, digest_id, wake_token, \
             lease_until \
         FROM notify.deliveries \
         WHERE tenant_id = $1 \
           AND ($2::uuid IS NULL OR notification_id = $2) \
           AND ($3::text IS NULL OR channel = $3) \
           AND ($4::text IS NULL OR state = $4) \
           AND ($5::text IS NULL OR (recipient_kind = $5 AND recipient = $6)) \
           AND ($7::text IS NULL OR topic = $7) \
           AND ($8::timestamptz IS NULL OR created_at >= $8) \
           AND ($9::timestamptz IS NULL OR created_at < $9) \
           AND ($10::timestamptz IS NULL OR (created_at, id) < ($10, $11)) \
         ORDER BY created_at DESC, id DESC LIMIT $12",
        tenant.as_uuid(),
        filter.notification.map(|id| id.as_uuid()),
        filter.channel.map(Channel::as_str),
        filter.state.map(DeliveryState::as_str),
        filter.recipient.as_ref().map(Recipient::kind),
        filter.recipient.as_ref().map(Recipient::value),
        filter.topic,
        filter.from,
        filter.until,
        after.map(|(time, _)| time),
        after.map(|(_, id)| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Delivery::try_from).collect()
}

/// The attempts of the delivery `id` of `tenant`, oldest first.
pub async fn attempts_of(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
) -> anyhow::Result<Vec<Attempt>> {
    let rows = sqlx::query!(
        "SELECT number, started_at, ended_at, delivered, error, response_code \
         FROM notify.delivery_attempts WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY seq",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Attempt {
            number: row.number,
            started_at: row.started_at,
            ended_at: row.ended_at,
            delivered: row.delivered,
            error: row.error,
            response_code: row.response_code,
        })
        .collect())
}

/// What a worker needs of a delivery beyond the domain's view.
#[derive(Debug, Clone, Copy)]
pub struct Ledger {
    /// The wake token its current job message carries.
    pub wake_token: i64,
    /// Until when a worker holds it.
    pub lease_until: Option<DateTime<Utc>>,
}

/// The delivery `id` of `tenant`, locked for update, with its ledger.
pub async fn lock_delivery(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
) -> anyhow::Result<Option<(Delivery, Ledger)>> {
    let row = sqlx::query_as!(
        DeliveryRow,
        "SELECT id, tenant_id, notification_id, position, channel, recipient_kind, recipient, \
             address, state, suppression_reason, topic, priority, attempt_count, last_error, \
             last_response_code, next_attempt_at, created_at, delivered_at, digest, digest_id, wake_token, lease_until \
         FROM notify.deliveries WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let ledger = Ledger {
        wake_token: row.wake_token,
        lease_until: row.lease_until,
    };
    Ok(Some((Delivery::try_from(row)?, ledger)))
}

/// Starts an attempt of a locked delivery: counts it, records its start and takes a lease
/// until `until`; answers the lease's fencing token.
pub async fn start_attempt(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let row = sqlx::query!(
        "UPDATE notify.deliveries SET state = 'pending', attempt_count = attempt_count + 1, \
             lease_until = $3, lease_token = lease_token + 1, updated_at = $4 \
         WHERE tenant_id = $1 AND id = $2 RETURNING attempt_count, lease_token",
        tenant.as_uuid(),
        id.as_uuid(),
        until,
        now,
    )
    .fetch_one(&mut *connection)
    .await?;
    sqlx::query!(
        "INSERT INTO notify.delivery_attempts (tenant_id, delivery_id, seq, number, started_at) \
         VALUES ($1, $2, \
             (SELECT coalesce(max(seq), 0) + 1 FROM notify.delivery_attempts \
              WHERE tenant_id = $1 AND delivery_id = $2), \
             $3, $4)",
        tenant.as_uuid(),
        id.as_uuid(),
        row.attempt_count,
        now,
    )
    .execute(connection)
    .await?;
    Ok(row.lease_token)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEnd {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// `None` when it delivered, else why it failed.
    pub error: Option<String>,
    /// SMTP reply code or HTTP status; 0 if none.
    pub response_code: i32,
    /// The state the delivery moves to: delivered, pending (again) or failed.
    pub state: DeliveryState,
    /// When the next attempt is due, for a pending delivery.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Ends the running attempt of the delivery `id` if the lease `lease_token` still holds it;
/// answers the new wake token (the next attempt's job carries it), `None` when the lease was
/// lost.
pub async fn end_attempt(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
    lease_token: i64,
    end: &AttemptEnd,
) -> anyhow::Result<Option<i64>> {
    let error = end.error.clone().unwrap_or_default();
    let row = sqlx::query!(
        "UPDATE notify.deliveries SET state = $4, last_error = $5, last_response_code = $6, \
             next_attempt_at = $7, lease_until = NULL, wake_token = wake_token + 1, \
             delivered_at = CASE WHEN $4 = 'delivered' THEN $8 ELSE delivered_at END, \
             updated_at = $8 \
         WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'pending' \
         RETURNING wake_token",
        tenant.as_uuid(),
        id.as_uuid(),
        lease_token,
        end.state.as_str(),
        error,
        end.response_code,
        end.next_attempt_at,
        end.at,
    )
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    sqlx::query!(
        "UPDATE notify.delivery_attempts SET ended_at = $3, delivered = $4, error = $5, \
             response_code = $6 \
         WHERE tenant_id = $1 AND delivery_id = $2 AND seq = \
             (SELECT max(seq) FROM notify.delivery_attempts WHERE tenant_id = $1 AND delivery_id = $2)",
        tenant.as_uuid(),
        id.as_uuid(),
        end.at,
        end.error.is_none(),
        error,
        end.response_code,
    )
    .execute(connection)
    .await?;
    Ok(Some(row.wake_token))
}

/// Queues a failed delivery again with a fresh attempt count, due now; answers its new wake
/// token, `None` unless it was failed.
pub async fn requeue_failed(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: DeliveryId,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let token = sqlx::query_scalar!(
        "UPDATE notify.deliveries SET state = 'pending', attempt_count = 0, next_attempt_at = $3, \
             wake_token = wake_token + 1, updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND state = 'failed' RETURNING wake_token",
        tenant.as_uuid(),
        id.as_uuid(),
        now,
    )
    .fetch_optional(connection)
    .await?;
    Ok(token)
}

/// Up to `limit` pending or deferred deliveries, across tenants, due for longer than
/// `overdue_after` at `now` with no lease held. Needs a platform transaction.
pub async fn take_overdue(
    connection: &mut PgConnection,
    now: DateTime<Utc>,
    overdue_after: std::time::Duration,
    limit: i64,
) -> anyhow::Result<Vec<Wake<DeliveryId>>> {
    let before = now - chrono::Duration::from_std(overdue_after)?;
    let rows = sqlx::query!(
        "SELECT tenant_id, id, wake_token FROM notify.deliveries \
         WHERE state IN ('pending', 'deferred') AND next_attempt_at < $1 \
           AND (lease_until IS NULL OR lease_until < $2) \
         ORDER BY next_attempt_at LIMIT $3",
        before,
        now,
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Wake {
            tenant_id: TenantId::from(row.tenant_id),
            id: DeliveryId::from(row.id),
            wake_token: row.wake_token,
        })
        .collect())
}
