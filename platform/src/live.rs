//! Live updates over Redis pub/sub, so that any replica can stream to a client what any other
//! replica did.
//!
//! A replica holds one pub/sub connection, shared by all its subscriptions: a channel is
//! subscribed in Redis while one subscription to it lives here. Pub/sub delivers at most once —
//! a message published while the connection was down is lost — so a subscriber is told
//! [`Notice::Resync`] whenever messages may have been missed, and re-reads the state it
//! streams from where that state is kept (Postgres). Messages are hints of what changed, never
//! the record.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::redis::Redis;

/// Messages a subscription holds for a slow reader before it is told to resync, and messages
/// waiting to be published before more are dropped.
const BACKLOG: usize = 256;
/// How long [`Live::subscribe`] waits for Redis to confirm a subscription.
const CONFIRMATION: Duration = Duration::from_secs(1);

/// What a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A message published to the channel.
    Message(Vec<u8>),
    /// Messages may have been missed (the connection to Redis was lost, or the reader fell
    /// behind): read the state again.
    Resync,
}

/// Publishes and subscribes to live channels under the deployment's key prefix. Cheap to
/// clone; the pub/sub connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct Live {
    redis: Redis,
    channels: Channels,
    commands: mpsc::UnboundedSender<Command>,
    outgoing: mpsc::Sender<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Live").finish_non_exhaustive()
    }
}

/// The channels subscribed here, each with the sender its subscriptions listen to.
type Channels = Arc<Mutex<HashMap<String, broadcast::Sender<Notice>>>>;

enum Command {
    Subscribe(String, oneshot::Sender<()>),
    Unsubscribe(String),
}

impl Live {
    /// Live channels over `redis`; the pub/sub connection is made in the background, and made
    /// again after it fails.
    pub fn new(redis: Redis) -> Live {
        let channels = Channels::default();
        let (commands, received) = mpsc::unbounded_channel();
        tokio::spawn(listen(redis.client().clone(), channels.clone(), received));
        let (outgoing, waiting) = mpsc::channel(BACKLOG);
        tokio::spawn(send(redis.clone(), waiting));
        Live {
            redis,
            channels,
            commands,
            outgoing,
        }
    }

    /// Publishes `payload` to `channel`, in the order of the calls, without waiting: the
    /// messages go out from a task of their own, so that no caller waits for Redis. Best
    /// effort: while Redis is slow or down, messages beyond [`BACKLOG`] waiting are dropped,
    /// and subscribers that missed them catch up when they resync.
    pub fn publish(&self, channel: &str, payload: Vec<u8>) {
        let key = self.redis.key(&format!("live:{channel}"));
        if self.outgoing.try_send((key, payload)).is_err() {
            tracing::debug!(
                channel,
                "a live update was dropped: too many wait to be published"
            );
        }
    }

    /// Subscribes to `channel`. Answers once Redis confirmed the subscription, so that what is
    /// read afterwards cannot miss a later message; when Redis does not confirm in time, the
    /// subscription is answered anyway and receives [`Notice::Resync`] once it is connected.
    pub async fn subscribe(&self, channel: &str) -> Subscription {
        let key = self.redis.key(&format!("live:{channel}"));
        let receiver = self
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe();
        let (confirm, confirmed) = oneshot::channel();
        if self
            .commands
            .send(Command::Subscribe(key.clone(), confirm))
            .is_ok()
        {
            let _ = tokio::time::timeout(CONFIRMATION, confirmed).await;
        }
        Subscription {
            key,
            receiver,
            channels: self.channels.clone(),
            commands: self.commands.clone(),
        }
    }
}

/// A subscription to one channel; unsubscribes when dropped.
#[derive(Debug)]
pub struct Subscription {
    key: String,
    receiver: broadcast::Receiver<Notice>,
    channels: Channels,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    /// The next notice.
    pub async fn next(&mut self) -> Notice {
        match self.receiver.recv().await {
            Ok(notice) => notice,
            Err(broadcast::error::RecvError::Lagged(_)) => Notice::Resync,
            // The sender lives while this subscription is in the map.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let last = channels
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() <= 1);
        if last {
            channels.remove(&self.key);
            let _ = self.commands.send(Command::Unsubscribe(self.key.clone()));
        }
    }
}

/// The stream a [`Watch`] feeds is over: the client left, or the watch ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended;

/// What keeps a client's live view of some state: reads it from where it is kept, and applies
/// the messages published about it. [`watch`] runs it.
pub trait Watch: Send + 'static {
    /// What the client is sent.
    type Item: Send + 'static;

    /// Where the client's items go.
    fn sender(&self) -> &mpsc::Sender<Self::Item>;

    /// Sends the state as it is when the stream starts; by default [`Watch::resync`].
    fn start(&mut self) -> impl Future<Output = Result<(), Ended>> + Send {
        self.resync()
    }

    /// Reads the state again and sends what the client was not sent.
    fn resync(&mut self) -> impl Future<Output = Result<(), Ended>> + Send;

    /// Sends what a published message says changed.
    fn apply(&mut self, payload: &[u8]) -> impl Future<Output = Result<(), Ended>> + Send;
}

/// Runs the watch `make` builds around its sender, on a task of its own: starts it, then
/// applies each message of `subscription` (taken before this is called, so nothing published
/// after the start is missed), and resyncs when told to and every `resync_every` whatever it
/// was told, until the client leaves or the watch ends the stream.
pub fn watch<W: Watch>(
    subscription: Subscription,
    resync_every: Duration,
    make: impl FnOnce(mpsc::Sender<W::Item>) -> W,
) -> mpsc::Receiver<W::Item> {
    let (sender, receiver) = mpsc::channel(64);
    let watcher = make(sender);
    tokio::spawn(run_watch(watcher, subscription, resync_every));
    receiver
}

async fn run_watch<W: Watch>(mut watcher: W, mut subscription: Subscription, every: Duration) {
    if watcher.start().await.is_err() {
        return;
    }
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A clone to watch for the client leaving while the watch itself is borrowed mutably.
    let sender = watcher.sender().clone();
    loop {
        let step = tokio::select! {
            () = sender.closed() => return,
            _ = resync.tick() => watcher.resync().await,
            notice = subscription.next() => match notice {
                Notice::Resync => watcher.resync().await,
                Notice::Message(payload) => watcher.apply(&payload).await,
            },
        };
        if step.is_err() {
            return;
        }
    }
}

/// Publishes what waits in `waiting`, in order, until every [`Live`] was dropped.
async fn send(redis: Redis, mut waiting: mpsc::Receiver<(String, Vec<u8>)>) {
    let mut connection = redis.connection();
    while let Some((key, payload)) = waiting.recv().await {
        let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&key)
            .arg(payload)
            .query_async(&mut connection)
            .await;
        if let Err(error) = published {
            tracing::debug!(channel = key, %error, "publishing a live update failed");
        }
    }
}

/// Keeps the pub/sub connection: subscribes what is wanted, hands messages to the
/// subscriptions, and connects again (telling every subscription to resync) after a failure.
async fn listen(
    client: redis::Client,
    channels: Channels,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::time::timeout(CONFIRMATION, client.get_async_pubsub()).await;
        let failure = match connected {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                match serve(pubsub, &channels, &mut commands).await {
                    Served::Stopped => return,
                    Served::Failed(failure) => failure,
                }
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "connecting timed out".to_owned(),
        };
        tracing::warn!(error = failure, retry_in = ?backoff, "the live updates connection to Redis failed");
        // Subscriptions asked for meanwhile are answered at once: they resync once connected.
        let retry = tokio::time::sleep(backoff);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                () = &mut retry => break,
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe(_, confirm)) => {
                        let _ = confirm.send(());
                    }
                    Some(Command::Unsubscribe(_)) => {}
                },
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum Served {
    /// Every [`Live`] was dropped.
    Stopped,
    /// The connection failed.
    Failed(String),
}

async fn serve(
    pubsub: redis::aio::PubSub,
    channels: &Channels,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Served {
    let (mut sink, mut messages) = pubsub.split();
    let wanted: Vec<String> = channels
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .keys()
        .cloned()
        .collect();
    let mut subscribed = HashSet::new();
    for key in wanted {
        if let Err(error) = sink.subscribe(&key).await {
            return Served::Failed(error.to_string());
        }
        subscribed.insert(key);
    }
    // Whatever was published while no connection listened is lost.
    for sender in channels
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
    {
        let _ = sender.send(Notice::Resync);
    }
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return Served::Stopped,
                Some(Command::Subscribe(key, confirm)) => {
                    if !subscribed.contains(&key) {
                        if let Err(error) = sink.subscribe(&key).await {
                            return Served::Failed(error.to_string());
                        }
                        subscribed.insert(key);
                    }
                    let _ = confirm.send(());
                }
                Some(Command::Unsubscribe(key)) => {
                    let wanted_again = channels
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains_key(&key);
                    if !wanted_again && subscribed.remove(&key)
                        && let Err(error) = sink.unsubscribe(&key).await
                    {
                        return Served::Failed(error.to_string());
                    }
                }
            },
            message = messages.next() => {
                let Some(message) = message else {
                    return Served::Failed("the connection closed".to_owned());
                };
                let channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(sender) = channels.get(message.get_channel_name()) {
                    let _ = sender.send(Notice::Message(message.get_payload_bytes().to_vec()));
                }
            }
        }
    }
}
