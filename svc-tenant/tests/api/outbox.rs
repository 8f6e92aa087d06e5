//! With RabbitMQ unreachable the API still commits; once it is back, every event arrives,
//! none lost and none duplicated.

use std::collections::HashSet;
use std::time::Duration;

use platform::testing::{TcpProxy, TestInfra, wait_until};
use secrecy::ExposeSecret;
use sqlx::Row;

use crate::events::{nothing_more_arrives, observe_tenant_events, receive};
use crate::helpers::TestApp;

#[tokio::test]
async fn events_written_while_the_broker_is_down_are_delivered_once_it_is_back() {
    // Arrange: the service reaches RabbitMQ through a proxy the test controls; the observer
    // reads straight from the broker.
    let infra = TestInfra::new().await;
    let broker = broker_addr(&infra).await;
    let proxy = TcpProxy::start(broker).await;
    let proxied = proxied_url(&infra, proxy.addr());
    let app = TestApp::spawn_with(infra, |config| {
        config.infra.amqp.amqp_url = Some(proxied.into());
    })
    .await;
    let mut observer = observe_tenant_events(&app.infra.amqp).await;
    proxy.cut();

    // Act: every call succeeds although no event can leave.
    let mut slugs = Vec::new();
    for index in 0..5 {
        let slug = format!("offline-{index}");
        app.create_tenant(&slug).await;
        slugs.push(slug);
    }
    assert!(nothing_more_arrives(&mut observer, Duration::from_secs(1)).await);
    let mut connection = app.infra.admin_connection().await;
    let pending: i64 = sqlx::query("SELECT count(*) FROM tenant.outbox WHERE published_at IS NULL")
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 5, "the events wait in the outbox");

    proxy.restore();

    // Assert: all five arrive, in order, once each.
    let events = receive(&mut observer, 5, Duration::from_secs(60)).await;
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
    assert!(nothing_more_arrives(&mut observer, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn a_service_restart_delivers_what_the_previous_run_left_in_the_outbox() {
    let infra = TestInfra::new().await;
    let broker = broker_addr(&infra).await;
    let proxy = TcpProxy::start(broker).await;
    let proxied = proxied_url(&infra, proxy.addr());
    let first_run = TestApp::spawn_with(infra.clone(), |config| {
        config.infra.amqp.amqp_url = Some(proxied.into());
    })
    .await;
    let mut observer = observe_tenant_events(&infra.amqp).await;
    proxy.cut();
    first_run.create_tenant("before-restart").await;
    first_run.stop().await;

    // The next run reaches the broker directly and finds the event waiting.
    let _second_run = TestApp::spawn_with(infra, |_| {}).await;
    let events = receive(&mut observer, 1, Duration::from_secs(30)).await;
    assert_eq!(events[0].body["data"]["tenant"]["slug"], "before-restart");
    assert!(nothing_more_arrives(&mut observer, Duration::from_secs(1)).await);
}

async fn broker_addr(infra: &TestInfra) -> std::net::SocketAddr {
    let url = infra.amqp.url().unwrap();
    let url = url.expose_secret();
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
        .expect("AMQP_URL has a host");
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5672")
    };
    tokio::net::lookup_host(authority)
        .await
        .unwrap()
        .next()
        .expect("the broker's address")
}

fn proxied_url(infra: &TestInfra, proxy: std::net::SocketAddr) -> String {
    let url = infra.amqp.url().unwrap();
    let url = url.expose_secret();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let credentials = authority
        .rsplit_once('@')
        .map(|(credentials, _)| credentials);
    match credentials {
        Some(credentials) => format!("{scheme}://{credentials}@{proxy}/{path}"),
        None => format!("{scheme}://{proxy}/{path}"),
    }
}
