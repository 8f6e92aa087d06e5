//! Every change reaches RabbitMQ as a `tenant.*` event, read back from a real queue.

use std::time::Duration;

use platform::amqp::{Consumer, Outcome};
use platform::config::AmqpConfig;
use platform::events::Envelope;
use proto::formflow::events::v1::{TenantCreated, TenantDeleted, TenantSuspended, TenantUpdated};
use proto::formflow::tenant::v1::{
    DeleteTenantRequest, ReactivateTenantRequest, SuspendTenantRequest, Tenant, TenantStatus,
    UpdateTenantRequest,
};

use crate::helpers::TestApp;

/// A message as received: routing key, AMQP message id and type, and the body.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) routing_key: String,
    pub(crate) message_id: String,
    pub(crate) kind: String,
    pub(crate) body: serde_json::Value,
}

/// A queue bound to every tenant event, declared before anything is published.
pub(crate) async fn observe_tenant_events(amqp: &AmqpConfig) -> Consumer {
    Consumer::start(
        amqp,
        "test-observer",
        "test.tenant-events",
        &["tenant.#"],
        50,
    )
    .await
    .expect("starting the observer")
}

/// The next `count` messages, acknowledged; fails the test after `timeout`.
pub(crate) async fn receive(
    consumer: &mut Consumer,
    count: usize,
    timeout: Duration,
) -> Vec<Received> {
    let mut received = Vec::new();
    tokio::time::timeout(timeout, async {
        while received.len() < count {
            consumer
                .process_next(|delivery| {
                    received.push(Received {
                        routing_key: delivery.routing_key.to_string(),
                        message_id: delivery
                            .properties
                            .message_id()
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        kind: delivery
                            .properties
                            .kind()
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        body: serde_json::from_slice(&delivery.data).expect("a JSON body"),
                    });
                    async { Outcome::Done }
                })
                .await
                .expect("receiving an event");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} events arrived", received.len()));
    received
}

/// Whether another message arrives within `window`.
pub(crate) async fn nothing_more_arrives(consumer: &mut Consumer, window: Duration) -> bool {
    tokio::time::timeout(window, consumer.process_next(|_| async { Outcome::Done }))
        .await
        .is_err()
}

#[tokio::test]
async fn each_change_publishes_its_event() {
    let app = TestApp::spawn().await;
    let mut observer = observe_tenant_events(&app.infra.amqp).await;

    let tenant = app.create_tenant("acme").await;
    let admin = app.platform_admin();
    admin
        .clone()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                display_name: "Acme Renamed".into(),
                domains: vec!["forms.acme.com".into()],
                ..Tenant::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["display_name".into(), "domains".into()],
            }),
        })
        .await
        .unwrap();
    admin
        .clone()
        .suspend_tenant(SuspendTenantRequest {
            name: tenant.name.clone(),
            reason: "unpaid".into(),
        })
        .await
        .unwrap();
    admin
        .clone()
        .reactivate_tenant(ReactivateTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap();
    admin
        .clone()
        .delete_tenant(DeleteTenantRequest {
            name: tenant.name.clone(),
        })
        .await
        .unwrap();

    let events = receive(&mut observer, 5, Duration::from_secs(20)).await;
    let routing_keys: Vec<&str> = events
        .iter()
        .map(|event| event.routing_key.as_str())
        .collect();
    assert_eq!(
        routing_keys,
        [
            "tenant.created.v1",
            "tenant.updated.v1",
            "tenant.suspended.v1",
            "tenant.updated.v1",
            "tenant.deleted.v1"
        ]
    );
    for event in &events {
        assert_eq!(event.body["tenant_id"], tenant.id.as_str());
        assert_eq!(event.body["event_id"], event.message_id.as_str());
        assert_eq!(format!("{}.v1", event.kind), event.routing_key);
    }

    let created: Envelope<TenantCreated> = serde_json::from_value(events[0].body.clone()).unwrap();
    assert_eq!(created.data.tenant.unwrap().slug, "acme");
    let updated: Envelope<TenantUpdated> = serde_json::from_value(events[1].body.clone()).unwrap();
    assert_eq!(updated.data.changed_fields, ["display_name", "domains"]);
    assert_eq!(updated.data.tenant.unwrap().domains, ["forms.acme.com"]);
    let suspended: Envelope<TenantSuspended> =
        serde_json::from_value(events[2].body.clone()).unwrap();
    assert_eq!(suspended.data.reason, "unpaid");
    let reactivated: Envelope<TenantUpdated> =
        serde_json::from_value(events[3].body.clone()).unwrap();
    assert_eq!(reactivated.data.changed_fields, ["status"]);
    assert_eq!(reactivated.data.previous_domains, ["forms.acme.com"]);
    let deleted: Envelope<TenantDeleted> = serde_json::from_value(events[4].body.clone()).unwrap();
    assert_eq!(deleted.data.tenant.unwrap().status(), TenantStatus::Deleted);

    assert!(nothing_more_arrives(&mut observer, Duration::from_millis(500)).await);
}

#[tokio::test]
async fn refused_requests_publish_nothing() {
    let app = TestApp::spawn().await;
    let mut observer = observe_tenant_events(&app.infra.amqp).await;
    let tenant = app.create_tenant("acme").await;
    receive(&mut observer, 1, Duration::from_secs(20)).await;

    // A duplicate slug and a lost update both fail: no event may escape either.
    let duplicate = app
        .platform_admin()
        .create_tenant(proto::formflow::tenant::v1::CreateTenantRequest {
            tenant: Some(Tenant {
                slug: "acme".into(),
                display_name: "Again".into(),
                ..Tenant::default()
            }),
        })
        .await;
    assert!(duplicate.is_err());
    let stale = app
        .platform_admin()
        .update_tenant(UpdateTenantRequest {
            tenant: Some(Tenant {
                name: tenant.name.clone(),
                display_name: "Stale".into(),
                etag: "42".into(),
                ..Tenant::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await;
    assert!(stale.is_err());
    assert!(nothing_more_arrives(&mut observer, Duration::from_secs(2)).await);
}
