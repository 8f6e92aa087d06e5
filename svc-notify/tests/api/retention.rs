//! Retention: a notification past NOTIFY_RETENTION_DAYS goes with its deliveries and inbox
//! messages, and its transaction id sends again; one with a delivery still to be sent stays.

use std::time::Duration;

use chrono::Utc;
use platform::context::{TenantId, UserId};
use platform::testing::wait_until;
use proto::formflow::notify::v1 as wire;
use svc_notify::clock::Clock;
use tonic::Code;

use crate::helpers::{TestApp, batch_topic, inline, user};

#[tokio::test]
async fn notifications_past_their_retention_are_deleted_unless_one_still_waits() {
    // The service stamps and decides by a clock three days behind.
    let app =
        TestApp::spawn_with_clock(Clock::reading(Utc::now() - chrono::Duration::days(3))).await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    batch_topic(&app, tenant, ada, "weekly.report", 86_400).await;
    let old = app
        .send(
            tenant,
            wire::SendNotificationRequest {
                transaction_id: "ticket-7".into(),
                ..inline(vec![user(ada)], "ticket.new", "Old", "Long ago")
            },
        )
        .await
        .notification
        .unwrap();
    app.wait_for_delivery(
        tenant,
        &old.deliveries[0].name,
        wire::DeliveryState::Delivered,
    )
    .await;
    let waiting = app
        .send(
            tenant,
            inline(vec![user(ada)], "weekly.report", "Report", "Waits a day"),
        )
        .await
        .notification
        .unwrap();
    assert_eq!(
        waiting.deliveries[0].state,
        wire::DeliveryState::Deferred as i32
    );

    // A replica on the system's clock keeps a day: the three-day-old notification goes.
    let _cleaner = app
        .replica_with(|config| {
            config.options.retention_days = 1;
            config.options.retention_interval = Duration::from_secs(1);
            config.options.worker_concurrency = 0;
        })
        .await;
    let mut admin = app.admin(tenant);
    wait_until(
        Duration::from_secs(20),
        "the old notification is deleted",
        || {
            let mut admin = admin.clone();
            let name = old.name.clone();
            async move {
                admin
                    .get_notification(wire::GetNotificationRequest { name })
                    .await
                    .is_err_and(|status| status.code() == Code::NotFound)
            }
        },
    )
    .await;
    let gone = admin
        .get_delivery(wire::GetDeliveryRequest {
            name: old.deliveries[0].name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let inbox = app
        .as_user(tenant, ada)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(inbox.messages.is_empty(), "{inbox:?}");
    let kept = admin
        .get_notification(wire::GetNotificationRequest {
            name: waiting.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        kept.deliveries[0].state,
        wire::DeliveryState::Deferred as i32,
        "still waiting: kept"
    );

    // Its transaction id is free again.
    let again = app
        .send(
            tenant,
            wire::SendNotificationRequest {
                transaction_id: "ticket-7".into(),
                ..inline(vec![user(ada)], "ticket.new", "Again", "Now")
            },
        )
        .await;
    assert!(!again.duplicate);
    assert_ne!(again.notification.unwrap().name, old.name);
}
