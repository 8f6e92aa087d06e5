//! With RabbitMQ unreachable the API still commits; once it is back, every event arrives,
//! none lost and none duplicated.

use std::collections::HashSet;
use std::time::Duration;

use platform::testing::{EventObserver, TcpProxy, TestInfra, wait_until};
use secrecy::ExposeSecret;
use sqlx::Row;

use crate::helpers::TestApp;

#[tokio::test]
async fn events_written_while_the_broker_is_down_are_delivered_once_it_is_back() {
    // Arrange: the service reaches RabbitMQ through a proxy the test controls; the observer
    // reads straight from the broker.
    let infra = TestInfra::new().await;
    let broker = infra.broker_addr().await;
    let proxy = TcpProxy::start(broker).await;
    let proxied = infra.amqp_url_through(proxy.addr());
    let app = TestApp::spawn_with(infra, |config| {
        config.infra.amqp.amqp_url = Some(proxied.into());
    })
    .await;
    let mut observer = EventObserver::start(&app.infra.amqp, &["tenant.#"]).await;
    proxy.cut();

    // Act: every call succeeds although no event can leave.
    let mut slugs = Vec::new();
    for index in 0..5 {
        let slug = format!("offline-{index}");
        app.create_tenant(&slug).await;
        slugs.push(slug);
    }
    assert!(observer.nothing_more_arrives(Duration::from_secs(1)).await);
    let mut connection = app.infra.admin_connection().await;
    let pending: i64 = sqlx::query("SELECT count(*) FROM tenant.outbox WHERE published_at IS NULL")
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 5, "the events wait in the outbox");

    proxy.restore();

    // Assert: all five arrive, in order, once each.
    let events = observer.receive(5, Duration::from_secs(60)).await;
    let received_slugs: Vec<String> = events
        .iter()
        .map(|event| {
            event.body["data"]["tenant"]["slug"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(received_slugs, slugs);
    let ids: HashSet<&str> = events
        .iter()
        .map(|event| event.message_id.as_str())
        .collect();
    assert_eq!(ids.len(), 5);
    let pool = sqlx::PgPool::connect(app.infra.db.url().unwrap().expose_secret())
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "the outbox is marked published",
        || {
            let pool = pool.clone();
            async move {
                let pending: i64 =
                    sqlx::query("SELECT count(*) FROM tenant.outbox WHERE published_at IS NULL")
                        .fetch_one(&pool)
                        .await
                        .unwrap()
                        .get(0);
                pending == 0
            }
        },
    )
    .await;
    let rows: i64 = sqlx::query("SELECT count(*) FROM tenant.outbox")
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 5, "one outbox row per event, none duplicated");
    assert!(observer.nothing_more_arrives(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn a_service_restart_delivers_what_the_previous_run_left_in_the_outbox() {
    let infra = TestInfra::new().await;
    let broker = infra.broker_addr().await;
    let proxy = TcpProxy::start(broker).await;
    let proxied = infra.amqp_url_through(proxy.addr());
    let first_run = TestApp::spawn_with(infra.clone(), |config| {
        config.infra.amqp.amqp_url = Some(proxied.into());
    })
    .await;
    let mut observer = EventObserver::start(&infra.amqp, &["tenant.#"]).await;
    proxy.cut();
    first_run.create_tenant("before-restart").await;
    first_run.stop().await;

    // The next run reaches the broker directly and finds the event waiting.
    let _second_run = TestApp::spawn_with(infra, |_| {}).await;
    let events = observer.receive(1, Duration::from_secs(30)).await;
    assert_eq!(events[0].body["data"]["tenant"]["slug"], "before-restart");
    assert!(observer.nothing_more_arrives(Duration::from_secs(1)).await);
}
