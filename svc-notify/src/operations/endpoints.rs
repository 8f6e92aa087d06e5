//! Webhook endpoints: create, read, list, update, delete (cancelling what waits for them) and
//! secret rotation. A secret is generated here, sealed before it is stored, and answered only
//! by the call that made it.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use platform::context::{Permission, RequestContext};
use platform::error::{CommonError, FieldViolations};
use serde_json::{Value, json};

use super::Notify;
use crate::domain::WebhookEndpointId;
use crate::domain::endpoint::{self, WebhookEndpoint};
use crate::error::Error;
use crate::store;
use crate::webhooks::Webhooks;

/// An endpoint to create (its fields checked by `grpc::convert`).
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    /// Where deliveries go.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// Topics it receives; empty receives all.
    pub topics: Vec<String>,
    /// Whether deliveries to it are suppressed.
    pub disabled: bool,
}

/// Changes to an endpoint: each `Some` replaces the field.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointChanges {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New topics.
    pub topics: Option<Vec<String>>,
    /// Disabled or enabled.
    pub disabled: Option<bool>,
    /// The version the caller read (from its etag).
    pub expected_version: Option<i64>,
}

/// A page of endpoints.
#[derive(Debug)]
pub struct WebhookEndpointPage {
    /// The endpoints, oldest first.
    pub endpoints: Vec<WebhookEndpoint>,
    /// The endpoint the next page starts after, when there is one.
    pub next_after: Option<WebhookEndpointId>,
}

impl Notify {
    /// The webhook channel, or CHANNEL_NOT_CONFIGURED.
    fn webhooks(&self) -> Result<&Webhooks, Error> {
        self.worker.webhooks().ok_or(Error::ChannelOff("webhook"))
    }

    /// Refuses `url` unless the webhook channel may reach it: a violation of
    /// `webhook_endpoint.url`.
    async fn check_destination(&self, url: &str) -> Result<(), Error> {
        let webhooks = self.webhooks()?;
        let parsed = endpoint::check_url(url)
            .map_err(|reason| FieldViolations::single("webhook_endpoint.url", reason))?;
        webhooks
            .check_destination(&parsed)
            .await
            .map_err(|reason| FieldViolations::single("webhook_endpoint.url", reason))?;
        Ok(())
    }

    /// Creates an endpoint with a new secret; answers it and the secret (shown only here).
    pub async fn create_webhook_endpoint(
        &self,
        context: &RequestContext,
        new: NewWebhookEndpoint,
    ) -> Result<(WebhookEndpoint, String), Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        self.check_destination(&new.url).await?;
        let secret = platform::webhooks::generate_secret();
        let now = Utc::now().trunc_subsecs(6);
        let created = WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            tenant_id: tenant,
            url: new.url,
            description: new.description,
            topics: new.topics,
            disabled: new.disabled,
            secret_prefix: endpoint::secret_prefix(&secret),
            secret_rotated_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let sealed = self.webhooks()?.seal(tenant, created.id, &secret)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        store::insert_webhook_endpoint(&mut transaction, &created, &sealed).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "webhook_endpoint.create",
                name(created.id),
                json!({"host": host(&created.url)}),
            )
            .await?;
        transaction.commit().await?;
        Ok((created, secret))
    }

    /// An endpoint of the caller's tenant.
    pub async fn get_webhook_endpoint(
        &self,
        context: &RequestContext,
        id: WebhookEndpointId,
    ) -> Result<WebhookEndpoint, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let found = store::get_webhook_endpoint(&mut transaction, tenant, id).await?;
        transaction.commit().await?;
        found.ok_or_else(|| Error::WebhookEndpointNotFound(name(id)))
    }

    /// A page of the tenant's endpoints, oldest first, after `after`.
    pub async fn list_webhook_endpoints(
        &self,
        context: &RequestContext,
        after: Option<WebhookEndpointId>,
        page_size: usize,
    ) -> Result<WebhookEndpointPage, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_webhook_endpoints(
            &mut transaction,
            tenant,
            after,
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (endpoints, next_after) = platform::paging::split_page(rows, page_size, |last| last.id);
        Ok(WebhookEndpointPage {
            endpoints,
            next_after,
        })
    }

    /// Changes an endpoint; a new URL is checked as at creation.
    pub async fn update_webhook_endpoint(
        &self,
        context: &RequestContext,
        id: WebhookEndpointId,
        changes: WebhookEndpointChanges,
    ) -> Result<WebhookEndpoint, Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        if let Some(url) = &changes.url {
            // Before the row is locked: it may resolve a name.
            self.check_destination(url).await?;
        }
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut updated = store::lock_webhook_endpoint(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| Error::WebhookEndpointNotFound(name(id)))?;
        if changes
            .expected_version
            .is_some_and(|expected| expected != updated.version)
        {
            return Err(CommonError::EtagMismatch("webhook endpoint").into());
        }
        let mut changed: Vec<&str> = Vec::new();
        if let Some(url) = changes.url {
            updated.url = url;
            changed.push("url");
        }
        if let Some(description) = changes.description {
            updated.description = description;
            changed.push("description");
        }
        if let Some(topics) = changes.topics {
            updated.topics = topics;
            changed.push("topics");
        }
        if let Some(disabled) = changes.disabled {
            updated.disabled = disabled;
            changed.push("disabled");
        }
        let (version, updated_at) =
            store::update_webhook_endpoint(&mut transaction, &updated).await?;
        updated.version = version;
        updated.updated_at = updated_at;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "webhook_endpoint.update",
                name(id),
                json!({"fields": changed}),
            )
            .await?;
        transaction.commit().await?;
        Ok(updated)
    }

    /// Deletes an endpoint and cancels its deliveries waiting for an attempt.
    pub async fn delete_webhook_endpoint(
        &self,
        context: &RequestContext,
        id: WebhookEndpointId,
    ) -> Result<(), Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if store::lock_webhook_endpoint(&mut transaction, tenant, id)
            .await?
            .is_none()
        {
            return Err(Error::WebhookEndpointNotFound(name(id)));
        }
        let now = Utc::now().trunc_subsecs(6);
        let cancelled =
            store::cancel_endpoint_deliveries(&mut transaction, tenant, id, now).await?;
        store::delete_webhook_endpoint(&mut transaction, tenant, id).await?;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "webhook_endpoint.delete",
                name(id),
                json!({"cancelled_deliveries": cancelled}),
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Replaces an endpoint's secret; the old one keeps signing for `grace_period` (none when
    /// zero). Answers the endpoint and the new secret (shown only here).
    pub async fn rotate_webhook_secret(
        &self,
        context: &RequestContext,
        id: WebhookEndpointId,
        grace_period: Duration,
    ) -> Result<(WebhookEndpoint, String), Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        let webhooks = self.webhooks()?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut rotated = store::lock_webhook_endpoint(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| Error::WebhookEndpointNotFound(name(id)))?;
        let secret = platform::webhooks::generate_secret();
        let sealed = webhooks.seal(tenant, id, &secret)?;
        let now = Utc::now().trunc_subsecs(6);
        let previous_until = (!grace_period.is_zero())
            .then(|| now + chrono::Duration::from_std(grace_period).unwrap_or_default());
        rotated.secret_prefix = endpoint::secret_prefix(&secret);
        let (version, updated_at) = store::rotate_webhook_secret(
            &mut transaction,
            tenant,
            id,
            &sealed,
            &rotated.secret_prefix,
            previous_until,
            now,
        )
        .await?;
        rotated.secret_rotated_at = Some(now);
        rotated.version = version;
        rotated.updated_at = updated_at;
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "webhook_endpoint.rotate_secret",
                name(id),
                json!({"grace_period_seconds": grace_period.as_secs()}),
            )
            .await?;
        transaction.commit().await?;
        Ok((rotated, secret))
    }
}

/// The host of a saved URL, for the audit log (never its path or query, which may hold a
/// token).
fn host(url: &str) -> Value {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .map_or(Value::Null, Value::String)
}

/// An endpoint's resource name.
fn name(id: WebhookEndpointId) -> String {
    platform::wire::resource_name("webhookEndpoints", id)
}
