//! Tenant isolation: another tenant's templates, notifications, deliveries and inboxes are
//! NOT_FOUND on every RPC that names them, and invisible in every listing; a token of one
//! tenant routed to another is refused.

use platform::context::{Role, TenantId, UserId};
use proto::formflow::notify::v1 as wire;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, email, inline, object, user};

#[tokio::test]
async fn another_tenants_resources_are_not_found_on_every_rpc() {
    let app = TestApp::spawn().await;
    let acme = TenantId::generate();
    let globex = TenantId::generate();
    let ada = UserId::generate();
    let template = app
        .admin(acme)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "acme.secret".into(),
                email_subject: "Acme secret".into(),
                email_text: "Only for Acme".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let sent = app
        .send(
            acme,
            wire::SendNotificationRequest {
                recipients: vec![email("ada@acme.example"), user(ada)],
                topic: "acme.news".into(),
                template: "acme.secret".into(),
                transaction_id: "tx-1".into(),
                ..Default::default()
            },
        )
        .await
        .notification
        .unwrap();
    for delivery in &sent.deliveries {
        app.wait_for_delivery(acme, &delivery.name, wire::DeliveryState::Delivered)
            .await;
    }
    let message = app
        .as_user(acme, ada)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);

    let mut globex_admin = app.user(globex, Role::Owner);
    let not_found = |status: tonic::Status, what: &str| {
        assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
        assert!(!status.message().contains("Acme"), "{what}: {status:?}");
    };
    let template_name = template.name.clone();
    not_found(
        globex_admin
            .get_template(wire::GetTemplateRequest {
                name: template_name.clone(),
            })
            .await
            .unwrap_err(),
        "GetTemplate",
    );
    not_found(
        globex_admin
            .update_template(wire::UpdateTemplateRequest {
                template: Some(wire::Template {
                    name: template_name.clone(),
                    display_name: "mine".into(),
                    ..Default::default()
                }),
                update_mask: Some(pbjson_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
            })
            .await
            .unwrap_err(),
        "UpdateTemplate",
    );
    not_found(
        globex_admin
            .delete_template(wire::DeleteTemplateRequest {
                name: template_name.clone(),
            })
            .await
            .unwrap_err(),
        "DeleteTemplate",
    );
    not_found(
        globex_admin
            .preview_template(wire::PreviewTemplateRequest {
                source: Some(wire::preview_template_request::Source::Name(
                    template_name.clone(),
                )),
                data: None,
            })
            .await
            .unwrap_err(),
        "PreviewTemplate by name",
    );
    not_found(
        globex_admin
            .preview_template(wire::PreviewTemplateRequest {
                source: Some(wire::preview_template_request::Source::Name(
                    "acme.secret".into(),
                )),
                data: None,
            })
            .await
            .unwrap_err(),
        "PreviewTemplate by key",
    );
    let by_key = globex_admin
        .send_notification(wire::SendNotificationRequest {
            recipients: vec![email("eve@globex.example")],
            topic: "steal".into(),
            template: "acme.secret".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(by_key.code(), Code::InvalidArgument, "{by_key:?}");
    not_found(
        globex_admin
            .get_notification(wire::GetNotificationRequest {
                name: sent.name.clone(),
            })
            .await
            .unwrap_err(),
        "GetNotification",
    );
    for delivery in &sent.deliveries {
        not_found(
            globex_admin
                .get_delivery(wire::GetDeliveryRequest {
                    name: delivery.name.clone(),
                })
                .await
                .unwrap_err(),
            "GetDelivery",
        );
        not_found(
            globex_admin
                .retry_delivery(wire::RetryDeliveryRequest {
                    name: delivery.name.clone(),
                })
                .await
                .unwrap_err(),
            "RetryDelivery",
        );
    }
    // The same user id in another tenant has another inbox.
    let mut ada_in_globex = app.as_user(globex, ada);
    not_found(
        ada_in_globex
            .get_inbox_message(wire::GetInboxMessageRequest {
                name: message.name.clone(),
            })
            .await
            .unwrap_err(),
        "GetInboxMessage",
    );
    not_found(
        ada_in_globex
            .mark_read(wire::MarkReadRequest {
                name: message.name.clone(),
            })
            .await
            .unwrap_err(),
        "MarkRead",
    );
    not_found(
        ada_in_globex
            .archive_inbox_message(wire::ArchiveInboxMessageRequest {
                name: message.name.clone(),
            })
            .await
            .unwrap_err(),
        "ArchiveInboxMessage",
    );
    let marked = ada_in_globex
        .mark_all_read(wire::MarkAllReadRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.marked_count, 0);
    let inbox = ada_in_globex
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(inbox.messages.is_empty() && inbox.unread_count == 0);

    // Listings show nothing of Acme's; Acme's transaction id is free in Globex.
    let templates = globex_admin
        .list_templates(wire::ListTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(templates.templates.is_empty());
    let deliveries = globex_admin
        .list_deliveries(wire::ListDeliveriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(deliveries.deliveries.is_empty());
    let own = globex_admin
        .send_notification(wire::SendNotificationRequest {
            transaction_id: "tx-1".into(),
            ..inline(
                vec![email("eve@globex.example")],
                "globex.news",
                "Hi",
                "Globex",
            )
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!own.duplicate);
    assert_ne!(own.notification.unwrap().name, sent.name);

    // Acme's resources are untouched.
    let still = app
        .admin(acme)
        .get_template(wire::GetTemplateRequest {
            name: template_name,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still, template);
    let unread = app
        .as_user(acme, ada)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .unread_count;
    assert_eq!(unread, 1);
}

#[tokio::test]
async fn a_token_of_one_tenant_routed_to_another_is_denied_and_anonymous_callers_refused() {
    let app = TestApp::spawn().await;
    let acme = TenantId::generate();
    let globex = TenantId::generate();
    let token = app.keys.user_token(acme, Role::Owner);
    let mut crossed = app.client(Some(&token), Some(globex));
    let mut anonymous = app.client(None, Some(globex));
    for client in [&mut crossed, &mut anonymous] {
        let sent = client
            .send_notification(inline(
                vec![email("ada@example.com")],
                "x",
                "Subject",
                "Body",
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(sent.code(), Code::PermissionDenied | Code::Unauthenticated),
            "{sent:?}"
        );
        let listed = client
            .list_templates(wire::ListTemplatesRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                listed.code(),
                Code::PermissionDenied | Code::Unauthenticated
            ),
            "{listed:?}"
        );
        let inbox = client
            .list_inbox_messages(wire::ListInboxMessagesRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(inbox.code(), Code::PermissionDenied | Code::Unauthenticated),
            "{inbox:?}"
        );
    }
    // Viewers read; members send.
    let viewer_send = app
        .user(acme, Role::Viewer)
        .send_notification(wire::SendNotificationRequest {
            data: Some(object(json!({}))),
            ..inline(vec![email("ada@example.com")], "x", "S", "B")
        })
        .await
        .unwrap_err();
    assert_eq!(viewer_send.code(), Code::PermissionDenied, "members send");
    assert!(app.smtp.messages().is_empty());
}
