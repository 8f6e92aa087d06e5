//! Live inboxes: what the worker and the inbox operations publish after each change they
//! commit, and the stream StreamInbox serves from it — the `live` channel.
//!
//! Changes go out over Redis pub/sub ([`platform::live`]) on a channel per user and tenant, so
//! any replica serves any user's stream: the payload is the new or changed `InboxMessage`, or
//! empty when only the unread count changed (MarkAllRead). A stream subscribes before its
//! first read, so it misses nothing published after it. Pub/sub may still lose a message
//! (Redis restarted, a publish failed): a stream then reads the messages that arrived after the
//! newest it knows from Postgres when told to resync, and every [`RESYNC_EVERY`] in any case.
//! Every response carries the unread count as Postgres has it when it is sent.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::context::{TenantId, UserId};
use platform::db::Db;
use platform::live::{Ended, Live, Subscription, Watch};
use proto::formflow::notify::v1 as wire;
use proto::prost::Message;
use tokio::sync::mpsc;

use crate::domain::{InboxMessage, InboxMessageId};
use crate::error::Error;
use crate::grpc::convert::inbox_message_to_proto;
use crate::store::{self, InboxFilter};

/// How often a stream reads the inbox again, whatever it was told.
const RESYNC_EVERY: Duration = Duration::from_secs(10);
/// Messages read at most per resync (the newest are what matters to a live view).
const RESYNC_LIMIT: i64 = 100;

/// Publishes inbox changes and subscribes to them.
#[derive(Debug, Clone)]
pub struct Inboxes {
    live: Live,
}

impl Inboxes {
    /// Inboxes over `live`.
    pub fn new(live: Live) -> Self {
        Self { live }
    }

    /// Publishes a change of the inbox of `user`: `message` new or changed, or (`None`) only
    /// its unread count.
    pub fn publish(&self, tenant: TenantId, user: UserId, message: Option<&InboxMessage>) {
        let payload = message
            .map(|message| inbox_message_to_proto(message).encode_to_vec())
            .unwrap_or_default();
        self.live.publish(&channel(tenant, user), payload);
    }

    /// Subscribes to the changes of the inbox of `user`.
    pub async fn subscribe(&self, tenant: TenantId, user: UserId) -> Subscription {
        self.live.subscribe(&channel(tenant, user)).await
    }
}

fn channel(tenant: TenantId, user: UserId) -> String {
    format!("notify.inbox.{tenant}.{user}")
}

/// Streams the inbox of `user`: first its unread count, then each new or changed message with
/// the count, until the client leaves. `subscription` must have been taken before this is
/// called.
pub fn watch(
    db: Db,
    tenant: TenantId,
    user: UserId,
    subscription: Subscription,
) -> mpsc::Receiver<Result<wire::StreamInboxResponse, Error>> {
    platform::live::watch(subscription, RESYNC_EVERY, |sender| Watcher {
        db,
        tenant,
        user,
        sender,
        newest: None,
        arrived: HashSet::new(),
        unread: None,
    })
}

struct Watcher {
    db: Db,
    tenant: TenantId,
    user: UserId,
    sender: mpsc::Sender<Result<wire::StreamInboxResponse, Error>>,
    /// The newest message known, by arrival.
    newest: Option<(DateTime<Utc>, InboxMessageId)>,
    /// New messages sent live that no resync has read yet (a resync does not send them again).
    arrived: HashSet<String>,
    /// The unread count last sent.
    unread: Option<i64>,
}

impl Watch for Watcher {
    type Item = Result<wire::StreamInboxResponse, Error>;

    fn sender(&self) -> &mpsc::Sender<Self::Item> {
        &self.sender
    }

    /// Sends the unread count and remembers the newest message.
    async fn start(&mut self) -> Result<(), Ended> {
        let read = async {
            let mut transaction = self.db.tenant_tx(self.tenant).await?;
            let newest = store::list_inbox(
                &mut transaction,
                self.tenant,
                self.user,
                &InboxFilter {
                    show_archived: true,
                    ..InboxFilter::default()
                },
                None,
                1,
            )
            .await?;
            let unread = store::unread_count(&mut transaction, self.tenant, self.user).await?;
            transaction.commit().await?;
            anyhow::Ok((newest, unread))
        };
        match read.await {
            Ok((newest, unread)) => {
                self.newest = newest
                    .first()
                    .map(|message| (message.created_at, message.id));
                self.send(None, unread).await
            }
            Err(error) => {
                let _ = self.sender.send(Err(Error::from(error))).await;
                Err(Ended)
            }
        }
    }

    /// Sends the message a published change carries (or only the count) with the count.
    async fn apply(&mut self, payload: &[u8]) -> Result<(), Ended> {
        let message = if payload.is_empty() {
            None
        } else {
            match wire::InboxMessage::decode(payload) {
                Ok(message) => Some(message),
                Err(_) => {
                    tracing::warn!("an undecodable inbox update; reading the inbox again");
                    return self.resync().await;
                }
            }
        };
        if let Some(message) = &message
            && !message.read
            && !message.archived
            && !self.arrived.insert(message.id.clone())
        {
            return Ok(()); // sent already
        }
        let Some(unread) = self.unread().await else {
            return Ok(());
        };
        self.send(message, unread).await
    }

    /// Sends the messages that arrived after the newest known and were not sent live, then
    /// the count when it changed unseen.
    async fn resync(&mut self) -> Result<(), Ended> {
        let read = async {
            let mut transaction = self.db.tenant_tx(self.tenant).await?;
            let arrived = store::inbox_arrivals(
                &mut transaction,
                self.tenant,
                self.user,
                self.newest,
                RESYNC_LIMIT,
            )
            .await?;
            let unread = store::unread_count(&mut transaction, self.tenant, self.user).await?;
            transaction.commit().await?;
            anyhow::Ok((arrived, unread))
        };
        let (arrived, unread) = match read.await {
            Ok(read) => read,
            Err(error) => {
                // The next resync tries again.
                tracing::warn!(
                    error = format!("{error:#}"),
                    "reading an inbox to stream failed"
                );
                return Ok(());
            }
        };
        for message in &arrived {
            self.newest = Some((message.created_at, message.id));
            if !self.arrived.remove(&message.id.to_string()) {
                self.send(Some(inbox_message_to_proto(message)), unread)
                    .await?;
            }
        }
        if self.unread != Some(unread) {
            self.send(None, unread).await?;
        }
        Ok(())
    }
}

impl Watcher {
    async fn unread(&self) -> Option<i64> {
        let read = async {
            let mut transaction = self.db.tenant_tx(self.tenant).await?;
            let unread = store::unread_count(&mut transaction, self.tenant, self.user).await?;
            transaction.commit().await?;
            anyhow::Ok(unread)
        };
        match read.await {
            Ok(unread) => Some(unread),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "counting an inbox's unread messages failed"
                );
                None
            }
        }
    }

    async fn send(
        &mut self,
        message: Option<wire::InboxMessage>,
        unread: i64,
    ) -> Result<(), Ended> {
        self.unread = Some(unread);
        let response = wire::StreamInboxResponse {
            message,
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
        };
        self.sender.send(Ok(response)).await.map_err(|_| Ended)
    }
}
