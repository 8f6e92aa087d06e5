//! Job queues: work a service asks of itself, through a durable RabbitMQ queue of its own.
//!
//! The record of the work is a row in the service's schema (the table is its own outbox); a job
//! message only says "look at that row". So a message may be lost or come twice: the worker
//! reads the row, under a lock, to learn whether there is anything to do, and a sweeper of the
//! service sends the message again for rows left due with no worker ([`JobQueue::send_again`]).
//! Sending is therefore never an error the caller handles: a failure is logged and left to the
//! sweeper.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::amqp::{Outcome, OutgoingMessage, Publisher, QueueNames, Topology};
use crate::config::AmqpConfig;
use crate::context::TenantId;

/// A job message: what a worker is asked to look at.
pub trait Job: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The message's type (`notify.delivery`), also naming the job in logs.
    const KIND: &'static str;

    /// What the job is about (the row's id), for logs.
    fn subject(&self) -> impl Display;

    /// The message's id: two messages of one job under the same id are the same message.
    fn message_id(&self) -> String;
}

/// The job that wakes a row: "look at row `id` of `tenant`". The row keeps the token of the
/// latest message sent for it, so a message carrying an older one is stale and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wake<I> {
    /// The row's tenant.
    pub tenant_id: TenantId,
    /// The row.
    pub id: I,
    /// The wake token the message was sent under.
    pub wake_token: i64,
}

/// The id of a row that [`Wake`] jobs are sent for.
pub trait Wakes: Clone + Display + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The jobs' message type ([`Job::KIND`]).
    const KIND: &'static str;
}

impl<I: Wakes> Job for Wake<I> {
    const KIND: &'static str = I::KIND;

    fn subject(&self) -> impl Display {
        &self.id
    }

    fn message_id(&self) -> String {
        format!("{}.{}", self.id, self.wake_token)
    }
}

/// How a replica works on its job queue.
#[derive(Debug, Clone, Copy)]
pub struct Workers {
    /// Jobs worked on at once by this replica; 0 for a replica that only serves its API.
    pub concurrency: u16,
    /// How long a worker holds the row of a job it took, unless it renews its lease.
    pub lease: Duration,
    /// How long a row may stay due with no worker before the sweeper sends its job again.
    pub overdue_after: Duration,
}

/// A service's queue of jobs `J`: `{prefix}.{name}`, with its retries and dead-letter queue.
#[derive(Debug)]
pub struct JobQueue<J> {
    amqp: AmqpConfig,
    service: &'static str,
    name: &'static str,
    publisher: Publisher,
    names: QueueNames,
    job: PhantomData<fn() -> J>,
}

impl<J: Job> JobQueue<J> {
    /// The queue `name` (under the deployment's prefix) of `service`, on RabbitMQ at `amqp`.
    pub fn new(amqp: &AmqpConfig, service: &'static str, name: &'static str) -> Self {
        JobQueue {
            amqp: amqp.clone(),
            service,
            name,
            publisher: Publisher::new(amqp, service),
            names: Topology::new(amqp.amqp_prefix.clone()).queue(name),
            job: PhantomData,
        }
    }

    /// The queue's names: work, retries, dead letters.
    pub fn names(&self) -> &QueueNames {
        &self.names
    }

    /// How many messages wait in the work queue and in its dead-letter queue.
    pub async fn message_counts(&self) -> anyhow::Result<[(String, u32); 2]> {
        let queues = [self.names.work.clone(), self.names.dead_letter()];
        let counts = self.publisher.message_counts(&queues).await?;
        let [work, dead] = queues;
        Ok([(work, counts[0]), (dead, counts[1])])
    }

    /// Sends `job`, to come to a worker after `delay`. A failure is only logged: the sweeper
    /// sends it again.
    pub async fn send(&self, job: &J, delay: Duration) {
        let message = OutgoingMessage {
            message_id: job.message_id(),
            kind: J::KIND.to_owned(),
            body: serde_json::to_vec(job).expect("a job serialises"),
            ..OutgoingMessage::default()
        };
        let sent = self
            .publisher
            .publish_delayed(&self.names, &message, delay)
            .await;
        if let Err(error) = sent {
            tracing::warn!(job = J::KIND, subject = %job.subject(), error = format!("{error:#}"), "sending a job failed; the sweeper sends it again");
        }
    }

    /// Sends `jobs` again at once: the sweeper's jobs, due with no worker.
    pub async fn send_again(&self, jobs: impl IntoIterator<Item = J>) {
        for job in jobs {
            tracing::info!(job = J::KIND, subject = %job.subject(), "sending an overdue job again");
            self.send(&job, Duration::ZERO).await;
        }
    }

    /// Works on the queue until `stopped`, `concurrency` jobs at once, reconnecting after
    /// broker failures; with a concurrency of 0, does nothing (a replica serving only its
    /// API). A message that is not a job goes to the dead-letter queue; a job `handle` fails
    /// is retried, and dead-lettered once its retries are spent.
    pub async fn work<F, Fut>(&self, concurrency: u16, handle: F, stopped: CancellationToken)
    where
        F: Fn(J) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let handle = &handle;
        crate::consumer::work(
            &self.amqp,
            self.service,
            self.name,
            concurrency,
            |delivery| async move {
                let outcome = match serde_json::from_slice::<J>(&delivery.data) {
                    Err(error) => Outcome::Reject(format!("not a {} job: {error}", J::KIND)),
                    Ok(job) => match handle(job.clone()).await {
                        Ok(()) => Outcome::Done,
                        Err(error) => {
                            tracing::warn!(
                                job = J::KIND,
                                subject = %job.subject(),
                                error = format!("{error:#}"),
                                "a job failed; retrying"
                            );
                            Outcome::Retry(format!("{error:#}"))
                        }
                    },
                };
                (delivery, outcome)
            },
            stopped,
        )
        .await;
    }
}

impl<I: Wakes> JobQueue<Wake<I>> {
    /// Sends the wake job of row `id` of `tenant` under `wake_token`, due after `delay`. A
    /// failure is only logged: the sweeper sends it again.
    pub async fn wake(&self, tenant: TenantId, id: I, wake_token: i64, delay: Duration) {
        let job = Wake {
            tenant_id: tenant,
            id,
            wake_token,
        };
        self.send(&job, delay).await;
    }
}
