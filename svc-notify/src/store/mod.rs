//! SQL of the notify schema: one function per query. Callers pass the transaction, which
//! decides whose rows row-level security shows (`Db::tenant_tx`); every query also names the
//! tenant. Stored rows were validated on the way in; a row that fails to become a domain type
//! is corrupt, an error.
//!
//! - this module: templates and notifications.
//! - [`deliveries`]: deliveries, their attempts and the worker's leases.
//! - [`endpoints`]: webhook endpoints and their sealed secrets.
//! - [`inbox`]: users' in-app messages.
//! - [`preferences`]: users' preferences and the tenant's defaults.

mod deliveries;
mod endpoints;
mod inbox;
mod preferences;

pub use deliveries::*;
pub use endpoints::*;
pub use inbox::*;
pub use preferences::*;

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    Content, DeliveryId, Notification, NotificationId, Priority, Rendered, Sealing, Source,
    Template, TemplateId, TemplateKey, Variable,
};

struct TemplateRow {
    id: Uuid,
    tenant_id: Uuid,
    key: String,
    display_name: String,
    variables: Value,
    email_subject: String,
    email_text: String,
    email_html: String,
    in_app_title: String,
    in_app_body: String,
    in_app_link: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<TemplateRow> for Template {
    type Error = anyhow::Error;

    fn try_from(row: TemplateRow) -> anyhow::Result<Template> {
        Ok(Template {
            id: TemplateId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            key: TemplateKey::parse(&row.key)
                .map_err(|error| anyhow::anyhow!("stored template key: {error}"))?,
            display_name: row.display_name,
            variables: variables_from_json(row.variables)?,
            content: Content {
                email_subject: row.email_subject,
                email_text: row.email_text,
                email_html: row.email_html,
                in_app_title: row.in_app_title,
                in_app_body: row.in_app_body,
                in_app_link: row.in_app_link,
            },
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn variables_to_json(variables: &[Variable]) -> Value {
    variables
        .iter()
        .map(|variable| {
            json!({
                "name": variable.name,
                "description": variable.description,
                "required": variable.required,
            })
        })
        .collect()
}

fn variables_from_json(stored: Value) -> anyhow::Result<Vec<Variable>> {
    let Value::Array(items) = stored else {
        anyhow::bail!("stored template variables are not an array");
    };
    items
        .into_iter()
        .map(|item| {
            let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
            Ok(Variable {
                name: text("name").context("stored template variable without a name")?,
                description: text("description").unwrap_or_default(),
                required: item.get("required").and_then(Value::as_bool) == Some(true),
            })
        })
        .collect()
}

/// Inserts a template; `false` when another template of the tenant has its key.
pub async fn insert_template(
    connection: &mut PgConnection,
    template: &Template,
) -> anyhow::Result<bool> {
    let content = &template.content;
    let inserted = sqlx::query!(
        "INSERT INTO notify.templates (id, tenant_id, key, display_name, variables, email_subject, \
             email_text, email_html, in_app_title, in_app_body, in_app_link, version, created_at, \
             updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (tenant_id, key) DO NOTHING",
        template.id.as_uuid(),
        template.tenant_id.as_uuid(),
        template.key.as_str(),
        template.display_name,
        variables_to_json(&template.variables),
        content.email_subject,
        content.email_text,
        content.email_html,
        content.in_app_title,
        content.in_app_body,
        content.in_app_link,
        template.version,
        template.created_at,
        template.updated_at,
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The template `id` of `tenant`, its row locked for update.
pub async fn lock_template(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: TemplateId,
) -> anyhow::Result<Option<Template>> {
    let row = sqlx::query_as!(
        TemplateRow,
        "SELECT id, tenant_id, key, display_name, variables, email_subject, email_text, \
             email_html, in_app_title, in_app_body, in_app_link, version, created_at, updated_at \
         FROM notify.templates WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Template::try_from).transpose()
}

/// The template of `tenant` with the id `id` or, when `id` is `None`, the key `key`.
pub async fn find_template(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: Option<TemplateId>,
    key: Option<&TemplateKey>,
) -> anyhow::Result<Option<Template>> {
    let row = sqlx::query_as!(
        TemplateRow,
        "SELECT id, tenant_id, key, display_name, variables, email_subject, email_text, \
             email_html, in_app_title, in_app_body, in_app_link, version, created_at, updated_at \
         FROM notify.templates \
         WHERE tenant_id = $1 AND (id = $2 OR ($2::uuid IS NULL AND key = $3))",
        tenant.as_uuid(),
        id.map(|id| id.as_uuid()),
        key.map(TemplateKey::as_str),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Template::try_from).transpose()
}

/// Up to `limit` templates of `tenant` by key, after the key `after`.
pub async fn list_templates(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Template>> {
    let rows = sqlx::query_as!(
        TemplateRow,
        "SELECT id, tenant_id, key, display_name, variables, email_subject, email_text, \
             email_html, in_app_title, in_app_body, in_app_link, version, created_at, updated_at \
         FROM notify.templates \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR key > $2) \
         ORDER BY key LIMIT $3",
        tenant.as_uuid(),
        after,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Template::try_from).collect()
}

/// Saves a changed template (locked by [`lock_template`]); answers its new version and time.
pub async fn update_template(
    connection: &mut PgConnection,
    template: &Template,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let content = &template.content;
    let row = sqlx::query!(
        "UPDATE notify.templates SET display_name = $3, variables = $4, email_subject = $5, \
             email_text = $6, email_html = $7, in_app_title = $8, in_app_body = $9, \
             in_app_link = $10, version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at",
        template.tenant_id.as_uuid(),
        template.id.as_uuid(),
        template.display_name,
        variables_to_json(&template.variables),
        content.email_subject,
        content.email_text,
        content.email_html,
        content.in_app_title,
        content.in_app_body,
        content.in_app_link,
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}

/// Deletes the template `id` of `tenant`; `false` when there was none.
pub async fn delete_template(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: TemplateId,
) -> anyhow::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM notify.templates WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

struct NotificationRow {
    id: Uuid,
    tenant_id: Uuid,
    topic: String,
    priority: String,
    template_id: Option<Uuid>,
    source_principal: String,
    source_event: String,
    transaction_id: Option<String>,
    dedup_key: Option<String>,
    email_subject: String,
    email_text: String,
    email_html: String,
    in_app_title: String,
    in_app_body: String,
    in_app_link: String,
    data: Value,
    created_at: DateTime<Utc>,
    sealed: bool,
    sealed_content: Option<Vec<u8>>,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = anyhow::Error;

    fn try_from(row: NotificationRow) -> anyhow::Result<Notification> {
        let Value::Object(data) = row.data else {
            anyhow::bail!("stored notification data is not an object");
        };
        Ok(Notification {
            id: NotificationId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            topic: row.topic,
            priority: Priority::parse(&row.priority).context("stored priority")?,
            template_id: row.template_id.map(TemplateId::from),
            source: Source {
                principal: row.source_principal,
                event: row.source_event,
            },
            transaction_id: row.transaction_id,
            dedup_key: row.dedup_key,
            content: Rendered {
                email_subject: row.email_subject,
                email_text: row.email_text,
                email_html: row.email_html,
                in_app_title: row.in_app_title,
                in_app_body: row.in_app_body,
                in_app_link: row.in_app_link,
            },
            data,
            created_at: row.created_at,
            sealing: match (row.sealed, row.sealed_content) {
                (false, _) => Sealing::Clear,
                (true, Some(sealed)) => Sealing::Sealed(sealed),
                (true, None) => Sealing::Erased,
            },
        })
    }
}

/// Inserts a notification; `false` when the tenant has one with its transaction id already.
pub async fn insert_notification(
    connection: &mut PgConnection,
    notification: &Notification,
) -> anyhow::Result<bool> {
    let content = &notification.content;
    let inserted = sqlx::query!(
        "INSERT INTO notify.notifications (id, tenant_id, topic, priority, template_id, \
             source_principal, source_event, transaction_id, dedup_key, email_subject, email_text, \
             email_html, in_app_title, in_app_body, in_app_link, data, created_at, sealed, \
             sealed_content) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19) \
         ON CONFLICT (tenant_id, transaction_id) DO NOTHING",
        notification.id.as_uuid(),
        notification.tenant_id.as_uuid(),
        notification.topic,
        notification.priority.as_str(),
        notification.template_id.map(|id| id.as_uuid()),
        notification.source.principal,
        notification.source.event,
        notification.transaction_id,
        notification.dedup_key,
        content.email_subject,
        content.email_text,
        content.email_html,
        content.in_app_title,
        content.in_app_body,
        content.in_app_link,
        Value::Object(notification.data.clone()),
        notification.created_at,
        notification.sealing != Sealing::Clear,
        match &notification.sealing {
            Sealing::Sealed(sealed) => Some(sealed.as_slice()),
            Sealing::Clear | Sealing::Erased => None,
        },
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The notification of `tenant` with the id `id` or, when `id` is `None`, the transaction id
/// `transaction_id`.
pub async fn find_notification(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: Option<NotificationId>,
    transaction_id: Option<&str>,
) -> anyhow::Result<Option<Notification>> {
    let row = sqlx::query_as!(
        NotificationRow,
        "SELECT id, tenant_id, topic, priority, template_id, source_principal, source_event, \
             transaction_id, dedup_key, email_subject, email_text, email_html, in_app_title, \
             in_app_body, in_app_link, data, created_at, sealed, sealed_content \
         FROM notify.notifications \
         WHERE tenant_id = $1 AND (id = $2 OR ($2::uuid IS NULL AND transaction_id = $3))",
        tenant.as_uuid(),
        id.map(|id| id.as_uuid()),
        transaction_id,
    )
    .fetch_optional(connection)
    .await?;
    row.map(Notification::try_from).transpose()
}

/// The notifications whose deliveries are batched into the digest `digest` of `tenant`, in the
/// order they came.
pub async fn batched_notifications(
    connection: &mut PgConnection,
    tenant: TenantId,
    digest: DeliveryId,
) -> anyhow::Result<Vec<Notification>> {
    let rows = sqlx::query_as!(
        NotificationRow,
        "SELECT n.id, n.tenant_id, n.topic, n.priority, n.template_id, n.source_principal, \
             n.source_event, n.transaction_id, n.dedup_key, n.email_subject, n.email_text, \
             n.email_html, n.in_app_title, n.in_app_body, n.in_app_link, n.data, n.created_at, \
             n.sealed, n.sealed_content \
         FROM notify.deliveries d \
         JOIN notify.notifications n ON n.tenant_id = d.tenant_id AND n.id = d.notification_id \
         WHERE d.tenant_id = $1 AND d.digest_id = $2 ORDER BY d.created_at, d.id",
        tenant.as_uuid(),
        digest.as_uuid(),
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Notification::try_from).collect()
}

/// Erases the sealed content of the notification `id` of `tenant` once none of its deliveries
/// may be sent (again): every one delivered, suppressed or cancelled.
pub async fn erase_sealed_content_when_done(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: NotificationId,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE notify.notifications SET sealed_content = NULL \
         WHERE tenant_id = $1 AND id = $2 AND sealed_content IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM notify.deliveries \
                           WHERE tenant_id = $1 AND notification_id = $2 \
                             AND state NOT IN ('delivered', 'suppressed', 'cancelled'))",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes up to `limit` notifications, across tenants, created before `before` and with no
/// delivery still to be sent (their deliveries, attempts and inbox messages go with them);
/// answers how many. Needs a platform transaction.
pub async fn delete_expired_notifications(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM notify.notifications WHERE id IN ( \
             SELECT n.id FROM notify.notifications n \
             WHERE n.created_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM notify.deliveries d \
                               WHERE d.tenant_id = n.tenant_id AND d.notification_id = n.id \
                                 AND d.state IN ('pending', 'deferred', 'batched')) \
             ORDER BY n.created_at LIMIT $2)",
        before,
        limit,
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}

/// Deletes the notifications of `tenant` with the transaction id `transaction_id` (their
/// deliveries and inbox messages go with them); answers how many.
pub async fn delete_notifications_of_transaction(
    connection: &mut PgConnection,
    tenant: TenantId,
    transaction_id: &str,
) -> anyhow::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM notify.notifications WHERE tenant_id = $1 AND transaction_id = $2",
        tenant.as_uuid(),
        transaction_id,
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}
