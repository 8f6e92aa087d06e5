//! Users' in-app messages. Every query names the user: an inbox is its owner's only.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::{TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{DeliveryId, InboxMessage, InboxMessageId, NotificationId, Priority};

struct MessageRow {
    id: Uuid,
    notification_id: Uuid,
    topic: String,
    title: String,
    body: String,
    link: String,
    priority: String,
    read_at: Option<DateTime<Utc>>,
    archived_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<MessageRow> for InboxMessage {
    type Error = anyhow::Error;

    fn try_from(row: MessageRow) -> anyhow::Result<InboxMessage> {
        Ok(InboxMessage {
            id: InboxMessageId::from(row.id),
            notification_id: NotificationId::from(row.notification_id),
            topic: row.topic,
            title: row.title,
            body: row.body,
            link: row.link,
            priority: Priority::parse(&row.priority).context("stored priority")?,
            read_at: row.read_at,
            archived_at: row.archived_at,
            created_at: row.created_at,
        })
    }
}

/// Puts `message` in the inbox of `user` as the delivery `delivery`; nothing when that
/// delivery put it there already.
pub async fn insert_inbox_message(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    delivery: DeliveryId,
    message: &InboxMessage,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO notify.inbox_messages (id, tenant_id, user_id, notification_id, delivery_id, \
             topic, title, body, link, priority, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (delivery_id) DO NOTHING",
        message.id.as_uuid(),
        tenant.as_uuid(),
        user.as_uuid(),
        message.notification_id.as_uuid(),
        delivery.as_uuid(),
        message.topic,
        message.title,
        message.body,
        message.link,
        message.priority.as_str(),
        message.created_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// What ListInboxMessages filters on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    /// Only unread messages.
    pub unread_only: bool,
    /// Only this topic's.
    pub topic: Option<String>,
    /// Archived messages too.
    pub show_archived: bool,
}

/// Up to `limit` messages of the inbox of `user`, newest first, after `after`.
pub async fn list_inbox(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    filter: &InboxFilter,
    after: Option<(DateTime<Utc>, InboxMessageId)>,
    limit: i64,
) -> anyhow::Result<Vec<InboxMessage>> {
    let rows = sqlx::query_as!(
        MessageRow,
        "SELECT id, notification_id, topic, title, body, link, priority, read_at, archived_at, \
             created_at \
         FROM notify.inbox_messages \
         WHERE tenant_id = $1 AND user_id = $2 \
           AND (NOT $3 OR read_at IS NULL) \
           AND ($4::text IS NULL OR topic = $4) \
           AND ($5 OR archived_at IS NULL) \
           AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7)) \
         ORDER BY created_at DESC, id DESC LIMIT $8",
        tenant.as_uuid(),
        user.as_uuid(),
        filter.unread_only,
        filter.topic,
        filter.show_archived,
        after.map(|(time, _)| time),
        after.map(|(_, id)| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(InboxMessage::try_from).collect()
}

/// Up to `limit` messages of the inbox of `user` that arrived after `after`, oldest first.
pub async fn inbox_arrivals(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    after: Option<(DateTime<Utc>, InboxMessageId)>,
    limit: i64,
) -> anyhow::Result<Vec<InboxMessage>> {
    let rows = sqlx::query_as!(
        MessageRow,
        "SELECT id, notification_id, topic, title, body, link, priority, read_at, archived_at, \
             created_at \
         FROM notify.inbox_messages \
         WHERE tenant_id = $1 AND user_id = $2 \
           AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4)) \
         ORDER BY created_at, id LIMIT $5",
        tenant.as_uuid(),
        user.as_uuid(),
        after.map(|(time, _)| time),
        after.map(|(_, id)| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(InboxMessage::try_from).collect()
}

/// Unread messages in the inbox of `user`, archived ones left out.
pub async fn unread_count(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
) -> anyhow::Result<i64> {
    let count = sqlx::query_scalar!(
        "SELECT count(*) AS \"count!\" FROM notify.inbox_messages \
         WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL AND archived_at IS NULL",
        tenant.as_uuid(),
        user.as_uuid(),
    )
    .fetch_one(connection)
    .await?;
    Ok(count)
}

/// The message `id` of the inbox of `user`.
pub async fn get_inbox_message(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    id: InboxMessageId,
) -> anyhow::Result<Option<InboxMessage>> {
    let row = sqlx::query_as!(
        MessageRow,
        "SELECT id, notification_id, topic, title, body, link, priority, read_at, archived_at, \
             created_at \
         FROM notify.inbox_messages WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
        tenant.as_uuid(),
        user.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(InboxMessage::try_from).transpose()
}

/// Marks the message `id` of the inbox of `user` read (keeping the first time) or archived
/// (likewise) at `now`; answers it, `None` when the inbox has no such message.
pub async fn mark_message(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    id: InboxMessageId,
    mark: Mark,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<InboxMessage>> {
    let row = sqlx::query_as!(
        MessageRow,
        "UPDATE notify.inbox_messages \
         SET read_at = CASE WHEN $4 THEN coalesce(read_at, $6) ELSE read_at END, \
             archived_at = CASE WHEN $5 THEN coalesce(archived_at, $6) ELSE archived_at END \
         WHERE tenant_id = $1 AND user_id = $2 AND id = $3 \
         RETURNING id, notification_id, topic, title, body, link, priority, read_at, archived_at, \
             created_at",
        tenant.as_uuid(),
        user.as_uuid(),
        id.as_uuid(),
        mark == Mark::Read,
        mark == Mark::Archived,
        now,
    )
    .fetch_optional(connection)
    .await?;
    row.map(InboxMessage::try_from).transpose()
}

/// What [`mark_message`] marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Read.
    Read,
    /// Archived.
    Archived,
}

/// Marks every unread message of the inbox of `user` that arrived before `before` (all when
/// `None`) read at `now`; answers how many.
pub async fn mark_all_read(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let marked = sqlx::query!(
        "UPDATE notify.inbox_messages SET read_at = $4 \
         WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL \
           AND ($3::timestamptz IS NULL OR created_at < $3)",
        tenant.as_uuid(),
        user.as_uuid(),
        before,
        now,
    )
    .execute(connection)
    .await?;
    Ok(marked.rows_affected())
}
