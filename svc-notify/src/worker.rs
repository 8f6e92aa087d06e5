//! The delivery worker: sends each delivery on its channel, as a job on RabbitMQ, retried with
//! exponential backoff and jitter.
//!
//! How a delivery moves (the deliveries table is its own outbox):
//! 1. It is inserted pending and due now — or deferred, due when its recipient's quiet hours
//!    or the digest window it opened end, or batched into an open digest (sent with it, no
//!    job of its own); after the commit a job message naming it and its wake token goes to
//!    the work queue `{prefix}.svc-notify.deliveries` (through a delay queue until it is due).
//! 2. A worker takes the message and locks the row. A message whose wake token is not the
//!    row's is stale and dropped; one that comes before the delivery is due, or while another
//!    worker's lease holds it, waits in a delay queue for the rest.
//! 3. A digest reads what was batched into it once its attempt started (nothing joins it
//!    after) and sends them in one message, the tenant's `digest` template wording it.
//!    In-app: the inbox message and the delivered state are written in one transaction, so the
//!    message arrives exactly once. Email and webhook: the attempt is recorded with a lease (a
//!    token bumped on each take, fencing the holder's later write) and committed, the email
//!    sent or the endpoint called, then the outcome recorded if the lease still holds.
//! 4. A failed attempt is retried after `base × 2^(attempt-1)` (capped, up to 20 % jitter)
//!    until the attempts run out or the failure is permanent (an SMTP 5xx reply; an HTTP 4xx
//!    other than 408 and 429, a redirect, a refused address); then the delivery is FAILED —
//!    the dead letter RetryDelivery replays — and `notify.delivery.failed` is emitted in the
//!    same transaction.
//! 5. A sweeper sends the job again for any delivery due for longer than
//!    `NOTIFY_OVERDUE_AFTER` with no lease held: a message lost between a commit and its
//!    publish, or a worker that died, costs a delay, never the delivery. An email whose worker
//!    died after the server accepted it may arrive twice, with the same Message-ID.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use platform::config::AmqpConfig;
use platform::crypto::Sealer;
use platform::db::Db;
use platform::jobs::{JobQueue, Wake, Wakes, Workers};
use platform::outbox::Outbox;
use proto::formflow::events::v1 as events;
use tokio_util::sync::CancellationToken;

use crate::app::SERVICE_NAME;
use crate::clock::Clock;
use crate::directory::Directory;
use crate::domain::{
    Channel, Delivery, DeliveryId, DeliveryState, InboxMessage, InboxMessageId, Notification,
    Recipient, Rendered, Sealing, WebhookEndpoint, digest,
};
use crate::grpc::convert;
use crate::live::Inboxes;
use crate::mailer::{Mailer, SendFailure};
use crate::sealing;
use crate::store::{self, AttemptEnd, SealedSecrets};
use crate::webhooks::Webhooks;

/// Name of the work queue, under the deployment's prefix.
pub const WORK_QUEUE: &str = "svc-notify.deliveries";

/// How the worker runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Deliveries sent at once, how long a worker holds one, when one is overdue.
    pub workers: Workers,
    /// Attempts before a delivery fails.
    pub max_attempts: i32,
    /// Wait before the second attempt.
    pub retry_base: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// The time due dates are read by.
    pub clock: Clock,
}

/// The message that asks a worker to send a delivery.
pub type Job = Wake<DeliveryId>;

impl Wakes for DeliveryId {
    const KIND: &'static str = "notify.delivery";
}

/// What the deliveries are sent with; a channel left out is off in this deployment.
#[derive(Debug, Clone)]
pub struct Channels {
    /// The email channel (NOTIFY_SMTP_URL).
    pub mailer: Option<Mailer>,
    /// Users' email addresses (AUTH_CLIENT_ID): without it, users get no email.
    pub directory: Option<Directory>,
    /// The webhook channel (NOTIFY_ENCRYPTION_KEYS).
    pub webhooks: Option<Webhooks>,
    /// What seals secrets at rest (NOTIFY_ENCRYPTION_KEYS): webhook endpoints' (inside
    /// `webhooks`) and content holding a secret.
    pub sealer: Option<Arc<Sealer>>,
}

/// The delivery worker of one replica: sends jobs, and works on them.
#[derive(Debug, Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    outbox: Outbox,
    jobs: JobQueue<Job>,
    channels: Channels,
    inboxes: Inboxes,
    settings: WorkerSettings,
}

impl Worker {
    /// A worker over `db`, enqueuing events in `outbox`, with RabbitMQ at `amqp`, sending on
    /// `channels`, publishing new in-app messages to `inboxes`.
    pub fn new(
        db: Db,
        outbox: Outbox,
        amqp: &AmqpConfig,
        channels: Channels,
        inboxes: Inboxes,
        settings: WorkerSettings,
    ) -> Self {
        Worker {
            inner: Arc::new(Inner {
                db,
                outbox,
                jobs: JobQueue::new(amqp, SERVICE_NAME, WORK_QUEUE),
                channels,
                inboxes,
                settings,
            }),
        }
    }

    /// Whether `channel` can be sent on in this deployment.
    pub fn serves(&self, channel: Channel) -> bool {
        let channels = &self.inner.channels;
        match channel {
            Channel::InApp => true,
            Channel::Email => channels.mailer.is_some(),
            Channel::Webhook => channels.webhooks.is_some(),
        }
    }

    /// Whether users' email addresses can be read, so that users receive email.
    pub fn emails_users(&self) -> bool {
        self.inner.channels.directory.is_some()
    }

    /// The webhook channel, when this deployment has it (NOTIFY_ENCRYPTION_KEYS).
    pub fn webhooks(&self) -> Option<&Webhooks> {
        self.inner.channels.webhooks.as_ref()
    }

    /// What seals content holding a secret, when this deployment has it
    /// (NOTIFY_ENCRYPTION_KEYS).
    pub fn sealer(&self) -> Option<&Sealer> {
        self.inner.channels.sealer.as_deref()
    }

    /// What `notification` says: its content, opened when sealed. Sealed content that cannot
    /// be opened (the keys are gone) or was erased fails the delivery for good.
    fn readable(&self, notification: &Notification) -> Result<Rendered, SendFailure> {
        let unreadable = |error: String| SendFailure {
            error,
            code: 0,
            permanent: true,
        };
        match &notification.sealing {
            Sealing::Clear => Ok(notification.content.clone()),
            Sealing::Sealed(sealed) => {
                let sealer = self.sealer().ok_or_else(|| {
                    unreadable("sealed content needs NOTIFY_ENCRYPTION_KEYS".to_owned())
                })?;
                sealing::open(sealer, notification.tenant_id, notification.id, sealed).map_err(
                    |error| {
                        unreadable(format!(
                            "the sealed content does not open with NOTIFY_ENCRYPTION_KEYS: {error:#}"
                        ))
                    },
                )
            }
            Sealing::Erased => Err(unreadable(
                "the notification's sealed content was erased once it was sent".to_owned(),
            )),
        }
    }

    /// The queue of the jobs that wake deliverys.
    pub fn jobs(&self) -> &JobQueue<Job> {
        &self.inner.jobs
    }

    /// Works on the queue until `stopped`, reconnecting after broker failures; with a
    /// concurrency of 0, does nothing (a replica serving only the API).
    pub async fn work(self, stopped: CancellationToken) {
        let concurrency = self.inner.settings.workers.concurrency;
        self.inner
            .jobs
            .work(concurrency, |job| self.take(job), stopped)
            .await;
    }

    /// Sends the jobs of deliveries overdue with no worker again.
    pub async fn send_overdue(&self) -> anyhow::Result<()> {
        let mut transaction = self.inner.db.platform_tx().await?;
        let settings = &self.inner.settings;
        let overdue = store::take_overdue(
            &mut transaction,
            settings.clock.now(),
            settings.workers.overdue_after,
            500,
        )
        .await?;
        transaction.commit().await?;
        self.inner.jobs.send_again(overdue).await;
        Ok(())
    }

    /// Takes the delivery of `job` and attempts it, if it is still due under that job.
    async fn take(&self, job: Job) -> anyhow::Result<()> {
        let tenant = job.tenant_id;
        let mut transaction = self.inner.db.tenant_tx(tenant).await?;
        let Some((delivery, ledger)) =
            store::lock_delivery(&mut transaction, tenant, job.id).await?
        else {
            return Ok(());
        };
        let due = matches!(
            delivery.state,
            DeliveryState::Pending | DeliveryState::Deferred
        );
        if !due || ledger.wake_token != job.wake_token {
            return Ok(());
        }
        let clock = self.inner.settings.clock;
        let now = clock.now();
        let not_before = ledger
            .lease_until
            .into_iter()
            .chain(delivery.next_attempt_at)
            .filter(|at| *at > now)
            .max();
        if let Some(at) = not_before {
            transaction.rollback().await?;
            self.jobs()
                .wake(tenant, delivery.id, job.wake_token, clock.until(at))
                .await;
            return Ok(());
        }
        let notification = store::find_notification(
            &mut transaction,
            tenant,
            Some(delivery.notification_id),
            None,
        )
        .await?
        .context("a delivery without its notification")?;
        let lease_until = now + self.inner.settings.workers.lease;
        let lease =
            store::start_attempt(&mut transaction, tenant, delivery.id, now, lease_until).await?;
        let content = if delivery.digest {
            Ok(self
                .digest_content(&mut transaction, &delivery, &notification)
                .await?)
        } else {
            self.readable(&notification)
        };
        let attempt = delivery.attempt_count + 1;
        let mut arrived = None;
        let mut resolved = None;
        let result = match (content, &delivery.recipient, delivery.channel) {
            (Err(unreadable), _, _) => Err(unreadable),
            (Ok(content), Recipient::User(user), Channel::InApp) => {
                let message = InboxMessage {
                    id: InboxMessageId::generate(),
                    notification_id: notification.id,
                    topic: notification.topic.clone(),
                    title: content.in_app_title,
                    body: content.in_app_body,
                    link: content.in_app_link,
                    priority: notification.priority,
                    read_at: None,
                    archived_at: None,
                    created_at: now,
                };
                store::insert_inbox_message(&mut transaction, tenant, *user, delivery.id, &message)
                    .await?;
                arrived = Some((*user, message));
                Ok(0)
            }
            (Ok(content), _, Channel::Email) => {
                transaction.commit().await?;
                let sent = match self.address_of(&delivery).await {
                    Ok(address) => {
                        let sent = self.send_email(&delivery, &address, &content).await;
                        resolved = Some(address);
                        sent
                    }
                    Err(failure) => Err(failure),
                };
                transaction = self.inner.db.tenant_tx(tenant).await?;
                sent
            }
            (Ok(_), Recipient::WebhookEndpoint(endpoint), Channel::Webhook) => {
                let endpoint =
                    store::webhook_endpoint_with_secrets(&mut transaction, tenant, *endpoint)
                        .await?;
                transaction.commit().await?;
                let sent = self.send_webhook(&delivery, &notification, endpoint).await;
                transaction = self.inner.db.tenant_tx(tenant).await?;
                sent
            }
            (Ok(_), recipient, channel) => Err(SendFailure {
                error: format!(
                    "a {} recipient does not receive {} deliveries",
                    recipient.kind(),
                    channel.as_str()
                ),
                code: 0,
                permanent: true,
            }),
        };
        let end = self.outcome(attempt, result);
        if let Some(address) = resolved.filter(|address| *address != delivery.address) {
            store::set_delivery_address(&mut transaction, tenant, delivery.id, &address).await?;
        }
        let Some(wake_token) =
            store::end_attempt(&mut transaction, tenant, delivery.id, lease, &end).await?
        else {
            tracing::info!(delivery = %delivery.id, "the delivery's lease was lost; its outcome is dropped");
            return Ok(());
        };
        if end.state == DeliveryState::Delivered && delivery.digest {
            store::deliver_batched(&mut transaction, tenant, delivery.id, end.at).await?;
        }
        if end.state == DeliveryState::Delivered && notification.sealing != Sealing::Clear {
            store::erase_sealed_content_when_done(&mut transaction, tenant, notification.id)
                .await?;
        }
        if end.state == DeliveryState::Failed {
            let failed = store::get_delivery(&mut transaction, tenant, delivery.id)
                .await?
                .context("the delivery just ended")?;
            self.inner
                .outbox
                .enqueue(
                    &mut transaction,
                    Some(tenant),
                    events::DeliveryFailed {
                        delivery: Some(convert::delivery_to_proto(&failed, Vec::new())),
                        source: Some(convert::source_to_proto(&notification.source)),
                    },
                )
                .await?;
        }
        transaction.commit().await?;
        if end.state == DeliveryState::Failed {
            self.inner.outbox.notify();
        }
        if let Some((user, message)) = &arrived {
            self.inner.inboxes.publish(tenant, *user, Some(message));
        }
        let outcome = match end.state {
            DeliveryState::Delivered => "delivered",
            DeliveryState::Pending => "retrying",
            _ => "failed",
        };
        let seconds = (end.at - now).num_milliseconds() as f64 / 1_000.0;
        crate::metrics::attempt_ended(delivery.channel, outcome, seconds);
        if let Some(next) = end.next_attempt_at {
            self.jobs()
                .wake(tenant, delivery.id, wake_token, clock.until(next))
                .await;
        }
        Ok(())
    }

    /// Where the email `delivery` goes: its address, or its user's current one.
    async fn address_of(&self, delivery: &Delivery) -> Result<String, SendFailure> {
        match &delivery.recipient {
            Recipient::User(user) => {
                let Some(directory) = &self.inner.channels.directory else {
                    return Err(SendFailure {
                        error: "users' email addresses cannot be read (AUTH_CLIENT_ID)".to_owned(),
                        code: 0,
                        permanent: true,
                    });
                };
                directory.email_of(delivery.tenant_id, *user).await
            }
            Recipient::Email(_) | Recipient::WebhookEndpoint(_) => Ok(delivery.address.clone()),
        }
    }

    async fn send_email(
        &self,
        delivery: &Delivery,
        address: &str,
        content: &Rendered,
    ) -> Result<i32, SendFailure> {
        let Some(mailer) = &self.inner.channels.mailer else {
            return Err(SendFailure {
                error: "the email channel is not configured (NOTIFY_SMTP_URL)".to_owned(),
                code: 0,
                permanent: true,
            });
        };
        mailer.send(delivery.id, address, content).await
    }

    async fn send_webhook(
        &self,
        delivery: &Delivery,
        notification: &Notification,
        endpoint: Option<(WebhookEndpoint, SealedSecrets)>,
    ) -> Result<i32, SendFailure> {
        let Some(webhooks) = self.webhooks() else {
            return Err(SendFailure {
                error: "the webhook channel is not configured (NOTIFY_ENCRYPTION_KEYS)".to_owned(),
                code: 0,
                permanent: true,
            });
        };
        let Some((endpoint, secrets)) = endpoint else {
            return Err(SendFailure {
                error: "the webhook endpoint was deleted".to_owned(),
                code: 0,
                permanent: true,
            });
        };
        webhooks
            .send(delivery.id, notification, &endpoint, &secrets)
            .await
    }

    /// What the digest `delivery` of `notification` sends: the notification alone when
    /// nothing was batched into it, else all of them worded by the tenant's digest template or
    /// by default.
    async fn digest_content(
        &self,
        connection: &mut sqlx::PgConnection,
        delivery: &Delivery,
        notification: &Notification,
    ) -> anyhow::Result<Rendered> {
        let tenant = delivery.tenant_id;
        let mut all = vec![notification.clone()];
        all.extend(store::batched_notifications(&mut *connection, tenant, delivery.id).await?);
        for notification in &mut all {
            notification.content = self.readable(notification).unwrap_or_default();
        }
        if all.len() == 1 {
            return Ok(all.remove(0).content);
        }
        let custom =
            store::find_template(connection, tenant, None, Some(&digest::template_key())).await?;
        Ok(digest::render(
            &notification.topic,
            &all,
            custom
                .as_ref()
                .map(|template| (&template.content, template.variables.as_slice())),
        ))
    }

    /// How attempt number `attempt` ended, and what becomes of the delivery.
    fn outcome(&self, attempt: i32, result: Result<i32, SendFailure>) -> AttemptEnd {
        let at = self.inner.settings.clock.now();
        match result {
            Ok(code) => AttemptEnd {
                at,
                error: None,
                response_code: code,
                state: DeliveryState::Delivered,
                next_attempt_at: None,
            },
            Err(failure) => {
                let again = !failure.permanent && attempt < self.inner.settings.max_attempts;
                AttemptEnd {
                    at,
                    error: Some(truncate(&failure.error, 1_000)),
                    response_code: failure.code,
                    state: if again {
                        DeliveryState::Pending
                    } else {
                        DeliveryState::Failed
                    },
                    next_attempt_at: again.then(|| at + self.backoff(attempt)),
                }
            }
        }
    }

    /// Wait after failed attempt number `attempt`: the base doubled per attempt, capped, with
    /// up to 20 % jitter.
    fn backoff(&self, attempt: i32) -> chrono::Duration {
        let settings = &self.inner.settings;
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let wait = settings
            .retry_base
            .saturating_mul(1 << exponent)
            .min(settings.retry_max)
            .mul_f64(1.0 + rand::random_range(0.0..0.2));
        chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
    }
}

/// `text` cut to at most `max` characters.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
