//! Email to `users/{id}`: the address is the member's in svc-auth when the delivery is sent
//! (GetMember with svc-notify's service token for the tenant, against a real svc-auth); a user
//! who is not a member of the tenant — another tenant's included — fails for good; without
//! service credentials users get in-app messages only and an email to one is refused.

use std::time::Duration;

use platform::config::ServiceClientConfig;
use platform::context::{TenantId, UserId};
use platform::testing::{TestInfra, TestKeys};
use proto::formflow::notify::v1 as wire;
use testkit::{NOTIFY_CLIENT, Options, Services};
use tonic::Code;

use crate::helpers::{TestApp, inline, user};

#[tokio::test]
async fn an_email_to_a_user_goes_to_their_address_in_the_tenant_only() {
    let infra = TestInfra::new().await;
    let services = Services::start(&infra, &TestKeys::new(), Options::default()).await;
    let signed = services
        .sign_up("acme", "owner@acme.example", "correct horse battery staple")
        .await
        .unwrap();
    let tenant = TenantId::parse(&signed.tenant.unwrap().id).unwrap();
    let owner = UserId::parse(&signed.user.unwrap().id).unwrap();
    let auth_url = format!("http://{}", services.auth_addr);
    let app = TestApp::spawn_over(infra, |config| {
        config.auth.auth_url = Some(auth_url);
        config.options.service_client = ServiceClientConfig::of(NOTIFY_CLIENT.0, NOTIFY_CLIENT.1);
    })
    .await;

    // No channels named: in-app and email, the user's address read when it is sent.
    let sent = app
        .send(
            tenant,
            inline(vec![user(owner)], "ticket.new", "Ticket 7", "Printer jam"),
        )
        .await
        .notification
        .unwrap();
    let channels: Vec<i32> = sent.deliveries.iter().map(|d| d.channel).collect();
    assert_eq!(
        channels,
        [
            wire::DeliveryChannel::InApp as i32,
            wire::DeliveryChannel::Email as i32
        ]
    );
    let email = app
        .wait_for_delivery(
            tenant,
            &sent.deliveries[1].name,
            wire::DeliveryState::Delivered,
        )
        .await;
    assert_eq!(email.address, "owner@acme.example");
    let mails = app.smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, ["owner@acme.example"]);
    assert_eq!(mails[0].subject, "Ticket 7");

    // A stranger, and the owner named in another tenant: not members there, failed for good.
    let elsewhere = TenantId::generate();
    for (tenant, who) in [(tenant, UserId::generate()), (elsewhere, owner)] {
        let sent = app
            .send(
                tenant,
                wire::SendNotificationRequest {
                    channels: vec![wire::DeliveryChannel::Email as i32],
                    ..inline(vec![user(who)], "ticket.new", "Secret", "Not for you")
                },
            )
            .await
            .notification
            .unwrap();
        let failed = app
            .wait_for_delivery(
                tenant,
                &sent.deliveries[0].name,
                wire::DeliveryState::Failed,
            )
            .await;
        assert_eq!(failed.attempt_count, 1, "not retried: {failed:?}");
        assert!(
            failed.last_error.ends_with("is not a member of the tenant"),
            "{failed:?}"
        );
        assert!(failed.address.is_empty());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages().len(), 1, "nothing went to anyone else");
}

#[tokio::test]
async fn without_service_credentials_users_get_in_app_only() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    let sent = app
        .send(tenant, inline(vec![user(ada)], "ticket.new", "Hi", "There"))
        .await
        .notification
        .unwrap();
    assert_eq!(sent.deliveries.len(), 1);
    assert_eq!(
        sent.deliveries[0].channel,
        wire::DeliveryChannel::InApp as i32
    );
    let refused = app
        .member(tenant)
        .send_notification(wire::SendNotificationRequest {
            channels: vec![wire::DeliveryChannel::Email as i32],
            ..inline(vec![user(ada)], "ticket.new", "Hi", "There")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        "the user email channel is not configured in this deployment"
    );
}
