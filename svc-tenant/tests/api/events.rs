//! Every change reaches RabbitMQ as a `tenant.*` event, read back from a real queue.

use std::time::Duration;

use platform::events::Envelope;
use platform::testing::EventObserver;
use proto::formflow::events::v1::{TenantCreated, TenantDeleted, TenantSuspended, TenantUpdated};
use proto::formflow::tenant::v1::{
    DeleteTenantRequest, ReactivateTenantRequest, SuspendTenantRequest, Tenant, TenantStatus,
    UpdateTenantRequest,
};

use crate::helpers::TestApp;

#[tokio::test]
async fn each_change_publishes_its_event() {
    let app = TestApp::spawn().await;
    let mut observer = EventObserver::start(&app.infra.amqp, &["tenant.#"]).await;

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

    let events = observer.receive(5, Duration::from_secs(20)).await;
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

    assert!(
        observer
            .nothing_more_arrives(Duration::from_millis(500))
            .await
    );
}

#[tokio::test]
async fn refused_requests_publish_nothing() {
    let app = TestApp::spawn().await;
    let mut observer = EventObserver::start(&app.infra.amqp, &["tenant.#"]).await;
    let tenant = app.create_tenant("acme").await;
    observer.receive(1, Duration::from_secs(20)).await;

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
    assert!(observer.nothing_more_arrives(Duration::from_secs(2)).await);
}
