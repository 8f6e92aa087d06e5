//! Delivery: the SMTP server down → attempts with backoff → FAILED with its event → replayed
//! by RetryDelivery once the server is back, the email delivered once; listing and filters.

use std::time::Duration;

use platform::context::TenantId;
use platform::testing::EventObserver;
use proto::formflow::notify::v1 as wire;
use tonic::Code;

use crate::helpers::{TestApp, email, inline};

#[tokio::test]
async fn a_delivery_that_fails_every_attempt_is_replayed_when_the_server_is_back() {
    let mut app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut events = EventObserver::start(&app.infra.amqp, &["notify.delivery.failed.#"]).await;
    app.smtp.stop().await;
    let sent = app
        .send(
            tenant,
            inline(
                vec![email("ada@example.com")],
                "report.ready",
                "Ready",
                "Your report",
            ),
        )
        .await;
    let name = sent.notification.unwrap().deliveries[0].name.clone();
    let failed = app
        .wait_for_delivery(tenant, &name, wire::DeliveryState::Failed)
        .await;
    assert_eq!(
        failed.attempt_count, 3,
        "NOTIFY_MAX_ATTEMPTS is 3 by default"
    );
    assert_eq!(failed.attempts.len(), 3);
    for (index, attempt) in failed.attempts.iter().enumerate() {
        assert_eq!(attempt.number, i32::try_from(index + 1).unwrap());
        assert!(
            !attempt.delivered && !attempt.error.is_empty(),
            "{attempt:?}"
        );
        assert!(attempt.end_time.is_some());
    }
    assert!(!failed.last_error.is_empty());
    assert!(failed.next_attempt_time.is_none());
    // Backoff: each wait at least the base (300 ms) doubled per attempt.
    let starts: Vec<i64> = failed
        .attempts
        .iter()
        .map(|a| {
            let time = a.start_time.as_ref().unwrap();
            time.seconds * 1_000 + i64::from(time.nanos / 1_000_000)
        })
        .collect();
    assert!(starts[1] - starts[0] >= 300, "{starts:?}");
    assert!(starts[2] - starts[1] >= 600, "{starts:?}");

    let event = events.receive(1, Duration::from_secs(10)).await.remove(0);
    assert_eq!(event.routing_key, "notify.delivery.failed.v1");
    assert_eq!(event.body["tenant_id"], tenant.to_string());
    assert_eq!(event.body["data"]["delivery"]["name"], name.as_str());
    assert!(
        event.body["data"]["source"]["principal"]
            .as_str()
            .unwrap()
            .starts_with("users/")
    );

    let status = app
        .member(tenant)
        .retry_delivery(wire::RetryDeliveryRequest { name: name.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "admins retry");
    app.smtp.restart().await;
    let retried = app
        .admin(tenant)
        .retry_delivery(wire::RetryDeliveryRequest { name: name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.state, wire::DeliveryState::Pending as i32);
    assert_eq!(retried.attempt_count, 0);
    let delivered = app
        .wait_for_delivery(tenant, &name, wire::DeliveryState::Delivered)
        .await;
    assert_eq!(delivered.attempts.len(), 4);
    assert_eq!(delivered.attempts[3].number, 1, "counting restarts");
    assert!(delivered.attempts[3].delivered);
    let mails = app.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject, "Ready");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.smtp.messages().len(), 1, "delivered once");

    let again = app
        .admin(tenant)
        .retry_delivery(wire::RetryDeliveryRequest { name })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("delivered"), "{again:?}");
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_filters() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let first = app
        .send(
            tenant,
            inline(
                vec![email("a@example.com")],
                "billing.invoice",
                "Invoice",
                "Due",
            ),
        )
        .await
        .notification
        .unwrap();
    let second = app
        .send(
            tenant,
            inline(
                vec![email("b@example.com"), email("a@example.com")],
                "ticket.new",
                "New",
                "Ticket",
            ),
        )
        .await
        .notification
        .unwrap();
    let mut viewer = app.user(tenant, platform::context::Role::Viewer);
    let list = |request: wire::ListDeliveriesRequest| {
        let mut viewer = viewer.clone();
        async move {
            viewer
                .list_deliveries(request)
                .await
                .unwrap()
                .into_inner()
                .deliveries
                .into_iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
        }
    };
    let all = list(wire::ListDeliveriesRequest::default()).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[2], first.deliveries[0].name, "oldest last");
    let to_a = list(wire::ListDeliveriesRequest {
        recipient: Some(email("a@example.com")),
        ..Default::default()
    })
    .await;
    assert_eq!(
        to_a,
        [
            second.deliveries[1].name.clone(),
            first.deliveries[0].name.clone()
        ]
    );
    let of_topic = list(wire::ListDeliveriesRequest {
        topic: "billing.invoice".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(of_topic, [first.deliveries[0].name.clone()]);
    let of_notification = list(wire::ListDeliveriesRequest {
        notification: second.name.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(of_notification.len(), 2);
    let page = viewer
        .list_deliveries(wire::ListDeliveriesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.deliveries.len(), 2);
    let rest = viewer
        .list_deliveries(wire::ListDeliveriesRequest {
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.deliveries.len(), 1);
    let mismatched = viewer
        .list_deliveries(wire::ListDeliveriesRequest {
            page_size: 2,
            page_token: page.next_page_token,
            topic: "ticket.new".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        mismatched.code(),
        Code::InvalidArgument,
        "a token is bound to its filter"
    );

    let got = app
        .admin(tenant)
        .get_notification(wire::GetNotificationRequest {
            name: second.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.deliveries.len(), 2);
    assert_eq!(got.subject, "New");
}

#[tokio::test]
async fn metrics_count_attempts_by_channel_and_outcome_and_suppressions_by_reason() {
    let mut app = TestApp::spawn_with(|config| config.options.max_attempts = 1).await;
    let tenant = TenantId::generate();
    let user = platform::context::UserId::generate();
    let delivered = app
        .send(
            tenant,
            inline(
                vec![crate::helpers::user(user)],
                "metrics",
                "In-app",
                "Body",
            ),
        )
        .await;
    app.wait_for_delivery(
        tenant,
        &delivered.notification.unwrap().deliveries[0].name,
        wire::DeliveryState::Delivered,
    )
    .await;
    app.smtp.stop().await;
    let failed = app
        .send(
            tenant,
            inline(vec![email("ada@example.com")], "metrics", "Email", "Body"),
        )
        .await;
    app.wait_for_delivery(
        tenant,
        &failed.notification.unwrap().deliveries[0].name,
        wire::DeliveryState::Failed,
    )
    .await;
    let repeat = || wire::SendNotificationRequest {
        dedup_key: "once".into(),
        ..inline(vec![crate::helpers::user(user)], "metrics", "Once", "Body")
    };
    app.send(tenant, repeat()).await;
    app.send(tenant, repeat()).await;
    let expected = [
        "notify_notifications_total 4",
        "notify_delivery_attempts_total{channel=\"in_app\",outcome=\"delivered\"} 2",
        "notify_delivery_attempts_total{channel=\"email\",outcome=\"failed\"} 1",
        "notify_deliveries_suppressed_total{channel=\"in_app\",reason=\"DUPLICATE\"} 1",
    ];
    platform::testing::wait_until(Duration::from_secs(20), "the metrics", || async {
        let rendered = platform::metrics::render();
        expected
            .iter()
            .all(|line| rendered.lines().any(|shown| shown == *line))
    })
    .await;
}

#[tokio::test]
async fn a_job_lost_while_the_broker_is_cut_is_sent_again_by_the_sweeper() {
    // The service reaches RabbitMQ through a proxy the test cuts: the send is acknowledged
    // (the delivery is in Postgres) but its job never reaches the queue.
    let infra = platform::testing::TestInfra::new().await;
    let proxy = platform::testing::TcpProxy::start(infra.broker_addr().await).await;
    let proxied = infra.amqp_url_through(proxy.addr());
    let app = TestApp::spawn_over(infra, |config| {
        config.infra.amqp.amqp_url = Some(proxied.into());
    })
    .await;
    let tenant = TenantId::generate();
    proxy.cut();
    let sent = app
        .send(
            tenant,
            inline(
                vec![email("ada@example.com")],
                "lost.job",
                "Lost job",
                "Body",
            ),
        )
        .await;
    let name = sent.notification.unwrap().deliveries[0].name.clone();
    proxy.restore();
    // The sweeper sends the job again once the delivery is overdue (NOTIFY_OVERDUE_AFTER 2 s).
    app.wait_for_delivery(tenant, &name, wire::DeliveryState::Delivered)
        .await;
    let mails = app.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject, "Lost job");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.smtp.messages().len(), 1, "delivered once");
}
