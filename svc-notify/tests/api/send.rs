//! Sending: email to a real SMTP server and in-app messages end to end, the inbox, transaction
//! ids, dedup keys and idempotency keys.

use std::time::Duration;

use platform::context::{TenantId, UserId};
use proto::formflow::notify::v1 as wire;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, email, inline, object, user};

#[tokio::test]
async fn an_email_and_an_in_app_message_arrive_rendered_from_a_template() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    let template = app
        .admin(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "ticket.assigned".into(),
                display_name: "Ticket assigned".into(),
                email_subject: "Ticket {{ ticket }} is yours".into(),
                email_text: "Hello {{ name }}, ticket {{ ticket }} was assigned to you.".into(),
                email_html: "<p>Hello {{ name }}, ticket <b>{{ ticket }}</b> is yours.</p>".into(),
                in_app_link: "/tickets/{{ ticket }}".into(),
                variables: vec![
                    wire::TemplateVariable {
                        name: "ticket".into(),
                        required: true,
                        ..Default::default()
                    },
                    wire::TemplateVariable {
                        name: "name".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let sent = app
        .send(
            tenant,
            wire::SendNotificationRequest {
                recipients: vec![email("grace@example.com"), user(ada)],
                topic: "ticket.assigned".into(),
                template: "ticket.assigned".into(),
                data: Some(object(json!({"ticket": "T-42", "name": "<Grace>"}))),
                ..Default::default()
            },
        )
        .await;
    assert!(!sent.duplicate);
    let notification = sent.notification.unwrap();
    assert_eq!(notification.template, template.name);
    assert_eq!(notification.subject, "Ticket T-42 is yours");
    assert!(notification.source.unwrap().principal.starts_with("users/"));
    let channels: Vec<i32> = notification.deliveries.iter().map(|d| d.channel).collect();
    assert_eq!(
        channels,
        [
            wire::DeliveryChannel::Email as i32,
            wire::DeliveryChannel::InApp as i32
        ]
    );
    for delivery in &notification.deliveries {
        assert_eq!(delivery.state, wire::DeliveryState::Pending as i32);
    }

    let mails = app.smtp.wait_for(1, Duration::from_secs(20)).await;
    let mail = &mails[0];
    assert_eq!(mail.to, ["grace@example.com"]);
    assert_eq!(mail.from, "tests@formflow.example");
    assert_eq!(
        mail.header("From"),
        Some("\"FormFlow Tests\" <tests@formflow.example>")
    );
    assert_eq!(mail.subject, "Ticket T-42 is yours");
    let email_delivery = &notification.deliveries[0];
    assert_eq!(mail.message_id, format!("<{}@formflow>", email_delivery.id));
    assert_eq!(
        mail.text.as_deref().map(str::trim_end),
        Some("Hello <Grace>, ticket T-42 was assigned to you.")
    );
    assert_eq!(
        mail.html.as_deref().map(str::trim_end),
        Some("<p>Hello &lt;Grace&gt;, ticket <b>T-42</b> is yours.</p>")
    );
    let delivered = app
        .wait_for_delivery(tenant, &email_delivery.name, wire::DeliveryState::Delivered)
        .await;
    assert_eq!(delivered.attempt_count, 1);
    assert_eq!(delivered.last_response_code, 250);
    assert_eq!(delivered.attempts.len(), 1);
    assert!(delivered.attempts[0].delivered && delivered.attempts[0].end_time.is_some());

    app.wait_for_delivery(
        tenant,
        &notification.deliveries[1].name,
        wire::DeliveryState::Delivered,
    )
    .await;
    let mut inbox = app.as_user(tenant, ada);
    let listed = inbox
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.unread_count, 1);
    let message = &listed.messages[0];
    assert_eq!(message.title, "Ticket T-42 is yours");
    assert_eq!(
        message.body,
        "Hello <Grace>, ticket T-42 was assigned to you."
    );
    assert_eq!(message.link, "/tickets/T-42");
    assert_eq!(message.notification, notification.name);
    assert!(!message.read);

    // Only the email went out: one message, however long we wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 1);
}

#[tokio::test]
async fn the_inbox_is_read_marked_and_archived_by_its_owner() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    // Messages are ordered by arrival: each is sent once the one before arrived.
    for n in 1..=3 {
        let sent = app
            .send(
                tenant,
                inline(
                    vec![user(ada)],
                    "digest.daily",
                    &format!("Note {n}"),
                    "Body",
                ),
            )
            .await;
        let name = &sent.notification.unwrap().deliveries[0].name;
        app.wait_for_delivery(tenant, name, wire::DeliveryState::Delivered)
            .await;
    }
    let mut inbox = app.as_user(tenant, ada);
    let page = inbox
        .list_inbox_messages(wire::ListInboxMessagesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let titles: Vec<&str> = page.messages.iter().map(|m| m.title.as_str()).collect();
    assert_eq!(titles, ["Note 3", "Note 2"]);
    assert_eq!(page.unread_count, 3);
    let rest = inbox
        .list_inbox_messages(wire::ListInboxMessagesRequest {
            page_size: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.messages.len(), 1);
    assert_eq!(rest.messages[0].title, "Note 1");
    assert!(rest.next_page_token.is_empty());

    let newest = page.messages[0].name.clone();
    let read = inbox
        .mark_read(wire::MarkReadRequest {
            name: newest.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(read.read && read.read_time.is_some());
    let again = inbox
        .mark_read(wire::MarkReadRequest {
            name: newest.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.read_time, read.read_time,
        "read once, when first read"
    );

    let archived = inbox
        .archive_inbox_message(wire::ArchiveInboxMessageRequest {
            name: page.messages[1].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archived);
    let listed = inbox
        .list_inbox_messages(wire::ListInboxMessagesRequest {
            unread_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let titles: Vec<&str> = listed.messages.iter().map(|m| m.title.as_str()).collect();
    assert_eq!(titles, ["Note 1"], "read and archived ones left out");
    assert_eq!(listed.unread_count, 1);
    let fetched = inbox
        .get_inbox_message(wire::GetInboxMessageRequest {
            name: page.messages[1].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        fetched.archived,
        "an archived message stays readable by name"
    );

    let marked = inbox
        .mark_all_read(wire::MarkAllReadRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.marked_count, 2, "the archived unread one and Note 1");
    let after = inbox
        .list_inbox_messages(wire::ListInboxMessagesRequest {
            show_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.messages.len(), 3);
    assert_eq!(after.unread_count, 0);

    // Another user of the tenant has an inbox of their own, and cannot touch this one.
    let mut other = app.as_user(tenant, UserId::generate());
    let theirs = other
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.messages.is_empty());
    let status = other
        .mark_read(wire::MarkReadRequest { name: newest })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_transaction_id_sends_once_and_answers_the_first_notification() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let request = wire::SendNotificationRequest {
        transaction_id: "order-1001-shipped".into(),
        ..inline(
            vec![email("ada@example.com")],
            "order.shipped",
            "Shipped",
            "Your order {{ order }} shipped.",
        )
    };
    let first = app.send(tenant, request.clone()).await;
    let again = app
        .send(
            tenant,
            wire::SendNotificationRequest {
                data: Some(object(json!({"order": "changed"}))),
                ..request.clone()
            },
        )
        .await;
    assert!(!first.duplicate && again.duplicate);
    let (first, again) = (first.notification.unwrap(), again.notification.unwrap());
    assert_eq!(again.name, first.name);
    assert_eq!(again.deliveries[0].name, first.deliveries[0].name);
    app.smtp.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.smtp.messages().len(), 1);
    assert_eq!(
        app.smtp.messages()[0].text.as_deref().map(str::trim_end),
        Some("Your order  shipped."),
        "the first notification's content, its missing variable empty"
    );
    // The same transaction id in another tenant is another notification.
    let other = app.send(TenantId::generate(), request).await;
    assert!(!other.duplicate);
}

#[tokio::test]
async fn a_dedup_key_suppresses_repeats_to_the_same_recipient_within_its_window() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let dedup = |recipients| wire::SendNotificationRequest {
        dedup_key: "disk-full:db-1".into(),
        dedup_window: Some(pbjson_types::Duration {
            seconds: 2,
            nanos: 0,
        }),
        ..inline(recipients, "alert.disk", "Disk full", "db-1 is full")
    };
    let first = app
        .send(tenant, dedup(vec![email("ops@example.com")]))
        .await;
    let second = app
        .send(
            tenant,
            dedup(vec![email("ops@example.com"), email("oncall@example.com")]),
        )
        .await;
    let states: Vec<(i32, String)> = second
        .notification
        .unwrap()
        .deliveries
        .iter()
        .map(|d| (d.state, d.suppression_reason.clone()))
        .collect();
    assert_eq!(
        states,
        [
            (
                wire::DeliveryState::Suppressed as i32,
                "DUPLICATE".to_owned()
            ),
            (wire::DeliveryState::Pending as i32, String::new()),
        ]
    );
    assert_eq!(
        first.notification.unwrap().deliveries[0].state,
        wire::DeliveryState::Pending as i32
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let later = app
        .send(tenant, dedup(vec![email("ops@example.com")]))
        .await;
    assert_eq!(
        later.notification.unwrap().deliveries[0].state,
        wire::DeliveryState::Pending as i32,
        "past the window"
    );
    let mails = app.smtp.wait_for(3, Duration::from_secs(20)).await;
    let mut to: Vec<String> = mails.iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    assert_eq!(
        to,
        ["oncall@example.com", "ops@example.com", "ops@example.com"]
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let request = inline(vec![email("ada@example.com")], "hello", "Hi", "Hello");
    let send = |key: &str, request: wire::SendNotificationRequest| {
        let mut request = tonic::Request::new(request);
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
        let mut client = app.member(tenant);
        async move { client.send_notification(request).await }
    };
    let first = send("key-1", request.clone()).await.unwrap().into_inner();
    let replay = send("key-1", request.clone()).await.unwrap().into_inner();
    assert_eq!(replay, first);
    let reused = send(
        "key-1",
        inline(vec![email("eve@example.com")], "hello", "Hi", "Hello"),
    )
    .await
    .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    app.smtp.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.smtp.messages().len(), 1);
}
