//! Digests: a topic with a digest window batches a user's notifications on a channel into one
//! message when the window ends; the tenant's `digest` template words it; a window that caught
//! one notification sends it as it is; URGENT and other topics skip the window; erasing the
//! notification that opened a window sends what it batched on its own.

use platform::context::{TenantId, UserId};
use proto::formflow::notify::v1 as wire;

use crate::helpers::{TestApp, batch_topic, inline, user};

const WINDOW_SECONDS: i64 = 5;

async fn ticket(app: &TestApp, tenant: TenantId, who: UserId, title: &str) -> wire::Delivery {
    let mut request = inline(vec![user(who)], "ticket.new", title, "A new ticket");
    request.content.as_mut().unwrap().link = format!("/tickets/{}", title.replace(' ', "-"));
    let sent = app.send(tenant, request).await.notification.unwrap();
    sent.deliveries.into_iter().next().unwrap()
}

async fn inbox(app: &TestApp, tenant: TenantId, who: UserId) -> Vec<wire::InboxMessage> {
    let mut messages = app
        .as_user(tenant, who)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .messages;
    messages.reverse();
    messages
}

#[tokio::test]
async fn a_window_batches_a_topics_notifications_into_one_message_when_it_ends() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    batch_topic(&app, tenant, ada, "ticket.new", WINDOW_SECONDS).await;

    let opening = ticket(&app, tenant, ada, "Ticket 1").await;
    assert_eq!(opening.state, wire::DeliveryState::Deferred as i32);
    assert!(opening.digest && opening.digest_delivery.is_empty());
    let opened = opening.create_time.unwrap().seconds;
    let due = opening.next_attempt_time.unwrap().seconds;
    assert!(
        (WINDOW_SECONDS..=WINDOW_SECONDS + 1).contains(&(due - opened)),
        "due when the window ends: {opening:?}"
    );
    let mut batched = Vec::new();
    for title in ["Ticket 2", "Ticket 3"] {
        let delivery = ticket(&app, tenant, ada, title).await;
        assert_eq!(delivery.state, wire::DeliveryState::Batched as i32);
        assert_eq!(delivery.digest_delivery, opening.name);
        assert!(!delivery.digest && delivery.next_attempt_time.is_none());
        batched.push(delivery);
    }
    // Another topic and an URGENT ticket do not wait.
    let other = app
        .send(
            tenant,
            inline(vec![user(ada)], "report.ready", "Report", "Ready"),
        )
        .await
        .notification
        .unwrap();
    let urgent = app
        .send(
            tenant,
            wire::SendNotificationRequest {
                priority: wire::NotificationPriority::Urgent as i32,
                ..inline(vec![user(ada)], "ticket.new", "Outage", "Down")
            },
        )
        .await
        .notification
        .unwrap();
    for sent in [&other, &urgent] {
        let delivery = &sent.deliveries[0];
        assert_eq!(delivery.state, wire::DeliveryState::Pending as i32);
        app.wait_for_delivery(tenant, &delivery.name, wire::DeliveryState::Delivered)
            .await;
    }
    let before: Vec<String> = inbox(&app, tenant, ada)
        .await
        .into_iter()
        .map(|message| message.title)
        .collect();
    assert_eq!(before.len(), 2, "the tickets wait: {before:?}");

    let digest = app
        .wait_for_delivery(tenant, &opening.name, wire::DeliveryState::Delivered)
        .await;
    assert!(
        digest.deliver_time.as_ref().unwrap().seconds >= due,
        "not before the window ended"
    );
    for delivery in &batched {
        let now = app
            .wait_for_delivery(tenant, &delivery.name, wire::DeliveryState::Delivered)
            .await;
        assert_eq!(now.deliver_time, digest.deliver_time);
        assert_eq!(now.digest_delivery, opening.name);
    }
    let messages = inbox(&app, tenant, ada).await;
    assert_eq!(
        messages.len(),
        3,
        "one message for three tickets: {messages:?}"
    );
    let message = &messages[2];
    assert_eq!(message.title, "3 notifications: ticket.new");
    assert_eq!(message.body, "- Ticket 1\n- Ticket 2\n- Ticket 3\n");
    assert_eq!(message.link, "/tickets/Ticket-3");
    assert_eq!(message.notification, opening.notification);

    // The window closed: the next ticket opens another, which catches it alone and sends it
    // as it is.
    let alone = ticket(&app, tenant, ada, "Ticket 4").await;
    assert!(alone.digest);
    assert_ne!(alone.name, opening.name);
    app.wait_for_delivery(tenant, &alone.name, wire::DeliveryState::Delivered)
        .await;
    let messages = inbox(&app, tenant, ada).await;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[3].title, "Ticket 4");
    assert_eq!(messages[3].body, "A new ticket");
}

#[tokio::test]
async fn the_tenants_digest_template_words_the_digest_of_its_users_only() {
    let app = TestApp::spawn().await;
    let (tenant, other_tenant) = (TenantId::generate(), TenantId::generate());
    let (ada, bob) = (UserId::generate(), UserId::generate());
    batch_topic(&app, tenant, ada, "ticket.new", WINDOW_SECONDS).await;
    batch_topic(&app, other_tenant, bob, "ticket.new", WINDOW_SECONDS).await;
    app.admin(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "digest".into(),
                email_subject: "{{ count }} new {{ topic }}".into(),
                email_text: "{% for n in notifications %}{{ n.subject }}; {% endfor %}".into(),
                variables: ["count", "topic", "notifications"]
                    .into_iter()
                    .map(|name| wire::TemplateVariable {
                        name: name.into(),
                        required: true,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut openings = Vec::new();
    for (tenant, who) in [(tenant, ada), (other_tenant, bob)] {
        openings.push(ticket(&app, tenant, who, "Printer").await);
        ticket(&app, tenant, who, "Scanner").await;
    }
    for (opening, (tenant, who)) in openings.iter().zip([(tenant, ada), (other_tenant, bob)]) {
        app.wait_for_delivery(tenant, &opening.name, wire::DeliveryState::Delivered)
            .await;
        let messages = inbox(&app, tenant, who).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        let expected = if who == ada {
            ("2 new ticket.new", "Printer; Scanner; ")
        } else {
            ("2 notifications: ticket.new", "- Printer\n- Scanner\n")
        };
        assert_eq!(
            (messages[0].title.as_str(), messages[0].body.as_str()),
            expected
        );
    }
}
