//! Accepting a notification: rendering its content once, one delivery per recipient and
//! channel, the recipients' preferences (suppressed, or deferred past quiet hours),
//! deduplication; reading a notification with its deliveries.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::context::{Permission, RequestContext, TenantId, UserId};
use platform::error::FieldViolations;
use platform::idempotency::{IdempotencyKey, canonical_json};
use proto::formflow::notify::v1 as wire;
use serde_json::{Map, Value, json};

use super::Notify;
use super::templates::{TemplateRef, find};
use crate::domain::preferences::{Decision, Preferences};
use crate::domain::template;
use crate::domain::{
    Channel, Content, Delivery, DeliveryId, DeliveryState, Notification, NotificationId, Priority,
    Recipient, Rendered, Sealing, Source, TemplateKey, WebhookEndpoint, WebhookEndpointId,
};
use crate::error::Error;
use crate::grpc::convert;
use crate::{sealing, store};

/// What a notification says: a template, or content given inline.
#[derive(Debug, Clone)]
pub enum Body {
    /// A saved template.
    Template(TemplateRef),
    /// Subject, body and link given by the sender.
    Inline(Content),
    /// The tenant's template with this key, or else this default (inline) content: what
    /// svc-notify's own reactions to events send, which tenants may reword.
    KeyedOrDefault(TemplateKey, Content),
}

/// A notification to accept.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Its recipients, distinct.
    pub recipients: Vec<Recipient>,
    /// The channels asked for; empty means each recipient's own.
    pub channels: Vec<Channel>,
    /// Its topic.
    pub topic: String,
    /// What it says.
    pub body: Body,
    /// Variables and webhook payload.
    pub data: Map<String, Value>,
    /// Its urgency.
    pub priority: Priority,
    /// The sender's transaction id.
    pub transaction_id: Option<String>,
    /// Deduplication key and window.
    pub dedup: Option<(String, Duration)>,
    /// Whether its content holds a secret: sealed at rest, erased once sent, its data not
    /// kept (svc-notify's own reactions to auth events; needs NOTIFY_ENCRYPTION_KEYS).
    pub sealed: bool,
}

impl Notify {
    /// Accepts a notification and queues its deliveries; answers it with them, or the first
    /// notification of its transaction id (`duplicate`), or what the same idempotency key
    /// answered before.
    pub async fn send(
        &self,
        context: &RequestContext,
        new: NewNotification,
    ) -> Result<wire::SendNotificationResponse, Error> {
        let tenant = context.authorize(Permission::NotificationsSend)?;
        let source = Source {
            principal: context.principal_name(),
            event: String::new(),
        };
        self.accept(tenant, source, new, context.idempotency_key.as_ref())
            .await
    }

    /// Accepts a notification from `source` in `tenant` and queues its deliveries (see
    /// [`Notify::send`]); `idempotency_key` binds the answer as the header does.
    pub(crate) async fn accept(
        &self,
        tenant: TenantId,
        source: Source,
        new: NewNotification,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<wire::SendNotificationResponse, Error> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let scope = "SendNotification";
        let request = canonical_json(&request_json(&new));
        let call = self
            .idempotency
            .call(tenant, scope, idempotency_key, &request);
        if let Some(answer) = call.replay(&mut transaction).await? {
            transaction.commit().await?;
            return Ok(answer);
        }
        if let Some(transaction_id) = &new.transaction_id
            && let Some(first) =
                store::find_notification(&mut transaction, tenant, None, Some(transaction_id))
                    .await?
        {
            let deliveries = store::deliveries_of(&mut transaction, tenant, first.id).await?;
            transaction.commit().await?;
            return Ok(answer(&first, &deliveries, true));
        }
        let (template_id, content) = match &new.body {
            Body::Template(reference) => {
                let template = find(&mut transaction, tenant, reference)
                    .await?
                    .ok_or_else(|| {
                        FieldViolations::single(
                            "template",
                            format!("no template {reference} in this tenant"),
                        )
                    })?;
                let rendered = template::render(&template.content, &template.variables, &new.data)?;
                (Some(template.id), rendered)
            }
            Body::Inline(content) => (None, template::render_inline(content, &new.data)?),
            Body::KeyedOrDefault(key, default) => {
                match find(&mut transaction, tenant, &TemplateRef::Key(key.clone())).await? {
                    Some(template) => (
                        Some(template.id),
                        template::render(&template.content, &template.variables, &new.data)?,
                    ),
                    None => (None, template::render_inline(default, &new.data)?),
                }
            }
        };
        let now = self.clock.now();
        let mut notification = Notification {
            id: NotificationId::generate(),
            tenant_id: tenant,
            topic: new.topic.clone(),
            priority: new.priority,
            template_id,
            source,
            transaction_id: new.transaction_id.clone(),
            dedup_key: new.dedup.as_ref().map(|(key, _)| key.clone()),
            content,
            sealing: Sealing::Clear,
            data: new.data.clone(),
            created_at: now,
        };
        let targets = self.targets(&new, &notification.content)?;
        if new.sealed {
            let sealer = self.worker.sealer().ok_or(Error::SealingOff)?;
            let sealed = sealing::seal(sealer, tenant, notification.id, &notification.content)?;
            notification.sealing = Sealing::Sealed(sealed);
            notification.content = Rendered::default();
            notification.data = Map::new();
        }
        let endpoints = endpoints_named(&mut transaction, tenant, &new.recipients).await?;
        if !store::insert_notification(&mut transaction, &notification).await? {
            // Another call with the same transaction id won the race: answer its notification.
            transaction.rollback().await?;
            let mut transaction = self.db.tenant_tx(tenant).await?;
            let first = store::find_notification(
                &mut transaction,
                tenant,
                None,
                notification.transaction_id.as_deref(),
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("a transaction id taken by no notification"))?;
            let deliveries = store::deliveries_of(&mut transaction, tenant, first.id).await?;
            transaction.commit().await?;
            return Ok(answer(&first, &deliveries, true));
        }
        let preferences = Recipients::preferences(&mut transaction, tenant, &targets).await?;
        let decisions: Vec<Decision> = targets
            .iter()
            .map(|(recipient, channel)| match recipient {
                Recipient::User(user) => preferences.decide(*user, *channel, &notification, now),
                Recipient::Email(_) | Recipient::WebhookEndpoint(_) => Decision::Send,
            })
            .collect();
        let windows: Vec<(&Recipient, Channel, &str)> = targets
            .iter()
            .zip(&decisions)
            .filter(|(_, decision)| matches!(decision, Decision::Digest(_)))
            .map(|((recipient, channel), _)| (recipient, *channel, notification.topic.as_str()))
            .collect();
        store::lock_digest_windows(&mut transaction, tenant, &windows).await?;
        let mut deliveries = Vec::with_capacity(targets.len());
        for (position, ((recipient, channel), decision)) in
            targets.into_iter().zip(decisions).enumerate()
        {
            let unwanted = match &recipient {
                Recipient::WebhookEndpoint(id) => endpoints
                    .get(id)
                    .and_then(|endpoint| endpoint.suppression(&notification.topic)),
                Recipient::User(_) | Recipient::Email(_) => {
                    (decision == Decision::Suppress).then_some("PREFERENCES")
                }
            };
            let duplicate = match &new.dedup {
                Some(_) if unwanted.is_some() => false,
                Some((key, window)) => {
                    let since = now - chrono::Duration::from_std(*window).unwrap_or_default();
                    store::sent_under_dedup_key(
                        &mut transaction,
                        tenant,
                        key,
                        &recipient,
                        channel,
                        since,
                    )
                    .await?
                }
                None => false,
            };
            let suppression = unwanted.or(duplicate.then_some("DUPLICATE"));
            let digest_id = match decision {
                Decision::Digest(_) if suppression.is_none() => {
                    store::lock_open_digest(
                        &mut transaction,
                        tenant,
                        &recipient,
                        channel,
                        &notification.topic,
                        now,
                    )
                    .await?
                }
                _ => None,
            };
            let delivery = Delivery {
                id: DeliveryId::generate(),
                tenant_id: tenant,
                notification_id: notification.id,
                position: i32::try_from(position).unwrap_or(i32::MAX),
                channel,
                address: match &recipient {
                    Recipient::Email(address) => address.clone(),
                    Recipient::User(_) | Recipient::WebhookEndpoint(_) => String::new(),
                },
                recipient,
                state: match (suppression, decision) {
                    (Some(_), _) => DeliveryState::Suppressed,
                    (None, _) if digest_id.is_some() => DeliveryState::Batched,
                    (None, Decision::Defer(_) | Decision::Digest(_)) => DeliveryState::Deferred,
                    (None, _) => DeliveryState::Pending,
                },
                suppression_reason: suppression.unwrap_or_default().to_owned(),
                topic: notification.topic.clone(),
                priority: notification.priority,
                attempt_count: 0,
                last_error: String::new(),
                last_response_code: 0,
                next_attempt_at: match decision {
                    _ if suppression.is_some() || digest_id.is_some() => None,
                    Decision::Defer(until) | Decision::Digest(until) => Some(until),
                    Decision::Send | Decision::Suppress => Some(now),
                },
                created_at: now,
                delivered_at: None,
                digest: suppression.is_none()
                    && digest_id.is_none()
                    && matches!(decision, Decision::Digest(_)),
                digest_id,
            };
            store::insert_delivery(
                &mut transaction,
                &delivery,
                notification.dedup_key.as_deref(),
            )
            .await?;
            if let Some(reason) = suppression {
                crate::metrics::suppressed(channel, reason);
            }
            deliveries.push(delivery);
        }
        let response = answer(&notification, &deliveries, false);
        call.complete(&mut transaction, &response).await?;
        transaction.commit().await?;
        crate::metrics::notification_accepted();
        for delivery in &deliveries {
            if let (DeliveryState::Pending | DeliveryState::Deferred, Some(due)) =
                (delivery.state, delivery.next_attempt_at)
            {
                self.worker
                    .jobs()
                    .wake(tenant, delivery.id, 1, self.clock.until(due))
                    .await;
            }
        }
        Ok(response)
    }

    /// Each recipient with each channel it gets: the channels asked for that it takes, or its
    /// own when none were asked for. A recipient that takes none of those asked for, a repeated
    /// recipient, or a channel the deployment or the content cannot serve is refused.
    fn targets(
        &self,
        new: &NewNotification,
        content: &Rendered,
    ) -> Result<Vec<(Recipient, Channel)>, Error> {
        let mut violations = FieldViolations::new();
        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        for (index, recipient) in new.recipients.iter().enumerate() {
            if !seen.insert(recipient) {
                violations.add(format!("recipients[{index}]"), "is named twice");
                continue;
            }
            let channels: Vec<Channel> = if new.channels.is_empty() {
                let users_get_email =
                    self.worker.serves(Channel::Email) && self.worker.emails_users();
                recipient.default_channels(users_get_email).to_vec()
            } else {
                new.channels
                    .iter()
                    .copied()
                    .filter(|channel| recipient.takes(*channel))
                    .collect()
            };
            if channels.is_empty() {
                violations.add(
                    format!("recipients[{index}]"),
                    match recipient {
                        Recipient::User(_) => {
                            "a user receives in-app messages and email, which the channels asked for leave out"
                        }
                        Recipient::Email(_) => {
                            "an email address receives email, which the channels asked for leave out"
                        }
                        Recipient::WebhookEndpoint(_) => {
                            "a webhook endpoint receives webhooks, which the channels asked for leave out"
                        }
                    },
                );
            }
            targets.extend(
                channels
                    .into_iter()
                    .map(|channel| (recipient.clone(), channel)),
            );
        }
        let uses = |wanted: Channel| targets.iter().any(|(_, channel)| *channel == wanted);
        if uses(Channel::Email) && !content.has_email() {
            violations.add(
                "template",
                "has no email content (email_subject and email_text), which email deliveries need",
            );
        }
        if uses(Channel::InApp) && !content.has_in_app() {
            violations.add(
                "template",
                "has no in-app content, which in-app deliveries need",
            );
        }
        violations.into_result()?;
        for channel in [Channel::Email, Channel::InApp, Channel::Webhook] {
            if uses(channel) && !self.worker.serves(channel) {
                return Err(Error::ChannelOff(channel.as_str()));
            }
        }
        let emails_a_user = targets
            .iter()
            .any(|target| matches!(target, (Recipient::User(_), Channel::Email)));
        if emails_a_user && !self.worker.emails_users() {
            return Err(Error::ChannelOff("user email"));
        }
        Ok(targets)
    }

    /// Deletes the notifications of `tenant` under `transaction_id`, with their deliveries and
    /// inbox messages (what svc-notify kept of an erased submission).
    pub(crate) async fn forget_transaction(
        &self,
        tenant: TenantId,
        transaction_id: &str,
    ) -> anyhow::Result<()> {
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let deleted =
            store::delete_notifications_of_transaction(&mut transaction, tenant, transaction_id)
                .await?;
        // A digest opened by one of them goes with it; what was batched into it goes alone.
        let released =
            store::release_orphaned_batches(&mut transaction, tenant, self.clock.now()).await?;
        transaction.commit().await?;
        if deleted > 0 {
            tracing::info!(%tenant, transaction_id, "deleted the notifications of an erased resource");
        }
        for (delivery, wake_token) in released {
            self.worker
                .jobs()
                .wake(tenant, delivery, wake_token, Duration::ZERO)
                .await;
        }
        Ok(())
    }

    /// A notification of the caller's tenant with its deliveries.
    pub async fn get_notification(
        &self,
        context: &RequestContext,
        id: NotificationId,
    ) -> Result<(Notification, Vec<Delivery>), Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let notification = store::find_notification(&mut transaction, tenant, Some(id), None)
            .await?
            .ok_or_else(|| {
                Error::NotificationNotFound(platform::wire::resource_name("notifications", id))
            })?;
        let deliveries = store::deliveries_of(&mut transaction, tenant, id).await?;
        transaction.commit().await?;
        Ok((notification, deliveries))
    }
}

/// The webhook endpoints among `recipients`, by id; a violation for each that `tenant` does
/// not have.
async fn endpoints_named(
    connection: &mut sqlx::PgConnection,
    tenant: TenantId,
    recipients: &[Recipient],
) -> Result<HashMap<WebhookEndpointId, WebhookEndpoint>, Error> {
    let named: Vec<(usize, WebhookEndpointId)> = recipients
        .iter()
        .enumerate()
        .filter_map(|(index, recipient)| match recipient {
            Recipient::WebhookEndpoint(id) => Some((index, *id)),
            Recipient::User(_) | Recipient::Email(_) => None,
        })
        .collect();
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<WebhookEndpointId> = named.iter().map(|(_, id)| *id).collect();
    let found: HashMap<WebhookEndpointId, WebhookEndpoint> =
        store::webhook_endpoints_among(connection, tenant, &ids)
            .await?
            .into_iter()
            .map(|endpoint| (endpoint.id, endpoint))
            .collect();
    let mut violations = FieldViolations::new();
    for (index, id) in named {
        if !found.contains_key(&id) {
            violations.add(
                format!("recipients[{index}].webhook_endpoint"),
                format!("no webhook endpoint webhookEndpoints/{id} in this tenant"),
            );
        }
    }
    violations.into_result()?;
    Ok(found)
}

/// The response of a send.
fn answer(
    notification: &Notification,
    deliveries: &[Delivery],
    duplicate: bool,
) -> wire::SendNotificationResponse {
    wire::SendNotificationResponse {
        notification: Some(convert::notification_to_proto(notification, deliveries)),
        duplicate,
    }
}

/// What an idempotency key binds: the request as the service understood it.
fn request_json(new: &NewNotification) -> Value {
    let body = match &new.body {
        Body::Template(reference) => json!({"template": reference.to_string()}),
        Body::Inline(content) => json!({
            "subject": content.email_subject,
            "body": content.email_text,
            "link": content.in_app_link,
        }),
        Body::KeyedOrDefault(key, _) => json!({"template_or_default": key.as_str()}),
    };
    json!({
        "recipients": new.recipients.iter().map(|r| format!("{}:{}", r.kind(), r.value())).collect::<Vec<_>>(),
        "channels": new.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "topic": new.topic,
        "body": body,
        "data": new.data,
        "priority": new.priority.as_str(),
        "transaction_id": new.transaction_id,
        "dedup": new.dedup.as_ref().map(|(key, window)| json!([key, window.as_secs_f64()])),
    })
}

/// The preferences of a notification's user recipients: each user's own over the tenant's
/// defaults.
struct Recipients {
    defaults: Preferences,
    own: HashMap<UserId, Preferences>,
}

impl Recipients {
    /// The preferences of the users among `targets`.
    async fn preferences(
        connection: &mut sqlx::PgConnection,
        tenant: TenantId,
        targets: &[(Recipient, Channel)],
    ) -> Result<Recipients, Error> {
        let users: Vec<UserId> = targets
            .iter()
            .filter_map(|(recipient, _)| match recipient {
                Recipient::User(user) => Some(*user),
                Recipient::Email(_) | Recipient::WebhookEndpoint(_) => None,
            })
            .collect();
        if users.is_empty() {
            return Ok(Recipients {
                defaults: Preferences::default(),
                own: HashMap::new(),
            });
        }
        let (defaults, own) = store::preferences_of(connection, tenant, &users).await?;
        Ok(Recipients {
            defaults,
            own: own.into_iter().collect(),
        })
    }

    /// What `user`'s preferences decide for `notification` on `channel` at `now`.
    fn decide(
        &self,
        user: UserId,
        channel: Channel,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Decision {
        let own = self.own.get(&user).cloned().unwrap_or_default();
        own.over(&self.defaults)
            .decide(channel, &notification.topic, notification.priority, now)
    }
}
