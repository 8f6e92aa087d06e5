//! Live updates over a real Redis: what one replica publishes reaches another replica's
//! subscribers of that channel only, and a subscriber whose connection was cut is told to
//! resync, then receives again.
//!
//! A publish may reach Redis before the subscription does, so these tests publish until their
//! message arrives instead of assuming one publish is enough.

use std::time::Duration;

use platform::live::{Live, Notice, Subscription};
use platform::redis::Redis;
use platform::testing::TestInfra;
use secrecy::ExposeSecret;

async fn replica(infra: &TestInfra) -> Live {
    Live::new(Redis::connect(&infra.redis).unwrap())
}

async fn admin(infra: &TestInfra) -> redis::aio::MultiplexedConnection {
    let url = infra.redis.url().unwrap();
    redis::Client::open(url.expose_secret())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Publishes `payload` on `channel` from `publisher` until `subscription` receives it; fails
/// after 10 s.
async fn deliver(publisher: &Live, channel: &str, payload: &[u8], subscription: &mut Subscription) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            publisher.publish(channel, payload.to_vec());
            let received = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match subscription.next().await {
                        Notice::Message(message) if message == payload => return,
                        // An earlier message, published more than once, or a resync.
                        Notice::Message(_) | Notice::Resync => {}
                    }
                }
            })
            .await;
            if received.is_ok() {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{payload:?} never arrived on {channel}"));
}

/// How many subscribers Redis counts on `channel` under `infra`'s prefix.
async fn subscribers(infra: &TestInfra, channel: &str) -> i64 {
    let key = format!("{}live:{channel}", infra.redis.redis_key_prefix);
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(&key)
        .query_async(&mut admin(infra).await)
        .await
        .unwrap();
    counts[0].1
}

#[tokio::test]
async fn a_message_reaches_the_subscribers_of_its_channel_on_every_replica_and_no_others() {
    let infra = TestInfra::new().await;
    let (one, two) = (replica(&infra).await, replica(&infra).await);
    let mut here = one.subscribe("orders.1").await;
    let mut there = two.subscribe("orders.1").await;
    let mut elsewhere = two.subscribe("orders.2").await;

    deliver(&one, "orders.1", b"shipped", &mut there).await;
    deliver(&two, "orders.1", b"paid", &mut here).await;

    // orders.2 received nothing but, at most, resyncs.
    let quiet = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            if let Notice::Message(message) = elsewhere.next().await {
                return message;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "orders.2 received {quiet:?}");
    // Another deployment (another prefix) does not hear this one.
    let other = TestInfra::new().await;
    let mut foreign = replica(&other).await.subscribe("orders.1").await;
    deliver(&one, "orders.1", b"again", &mut here).await;
    let heard = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            if let Notice::Message(message) = foreign.next().await {
                return message;
            }
        }
    })
    .await;
    assert!(heard.is_err(), "another prefix heard {heard:?}");
}

#[tokio::test]
async fn a_channel_is_unsubscribed_when_its_last_subscription_is_dropped() {
    let infra = TestInfra::new().await;
    let live = replica(&infra).await;
    let first = live.subscribe("forms.9").await;
    let second = live.subscribe("forms.9").await;
    assert_eq!(subscribers(&infra, "forms.9").await, 1, "one connection");

    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(subscribers(&infra, "forms.9").await, 1, "still wanted");
    drop(second);
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while subscribers(&infra, "forms.9").await != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the channel is still subscribed");
}

#[tokio::test]
async fn a_subscriber_whose_connection_was_cut_is_told_to_resync_and_hears_again() {
    let infra = TestInfra::new().await;
    let (publisher, listener) = (replica(&infra).await, replica(&infra).await);
    let mut subscription = listener.subscribe("runs.7").await;
    deliver(&publisher, "runs.7", b"before", &mut subscription).await;

    let killed = infra.cut_redis_pubsub_connections().await;
    assert!(killed >= 1, "no pub/sub connection to cut");

    let resynced = tokio::time::timeout(Duration::from_secs(10), async {
        while subscription.next().await != Notice::Resync {}
    })
    .await;
    assert!(
        resynced.is_ok(),
        "not told to resync after the connection was cut"
    );
    deliver(&publisher, "runs.7", b"after", &mut subscription).await;
    assert_eq!(subscribers(&infra, "runs.7").await, 1);
}
