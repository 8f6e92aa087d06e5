//! StreamInbox: a user's live inbox, fed over Redis pub/sub so that a notification sent and
//! delivered through one replica reaches a stream served by another.

use std::time::Duration;

use platform::context::{Role, TenantId, UserId};
use proto::formflow::notify::v1 as wire;
use tonic::{Code, Streaming};

use crate::helpers::{TestApp, client_of, inline, user};

/// The next message of `stream`; fails the test after 10 s.
async fn next(stream: &mut Streaming<wire::StreamInboxResponse>) -> wire::StreamInboxResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a stream message within 10 s")
        .expect("a healthy stream")
        .expect("an open stream")
}

#[tokio::test]
async fn a_notification_sent_through_one_replica_reaches_a_stream_served_by_another() {
    let app = TestApp::spawn().await;
    let other = app.replica().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    // One message before the stream opens: counted, not sent again.
    let before = app
        .send(tenant, inline(vec![user(ada)], "hello", "Before", "Body"))
        .await;
    app.wait_for_delivery(
        tenant,
        &before.notification.unwrap().deliveries[0].name,
        wire::DeliveryState::Delivered,
    )
    .await;

    let mut stream = app
        .as_user(tenant, ada)
        .stream_inbox(wire::StreamInboxRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    assert_eq!((first.message, first.unread_count), (None, 1));

    let member = app.keys.user_token(tenant, Role::Member);
    let sent = client_of(&other, Some(&member), Some(tenant))
        .send_notification(inline(vec![user(ada)], "ticket.new", "Live one", "Body"))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    let arrived = next(&mut stream).await;
    let message = arrived.message.expect("the new message");
    assert_eq!(message.title, "Live one");
    assert_eq!(message.notification, sent.name);
    assert_eq!(arrived.unread_count, 2);

    let mut inbox = client_of(&other, Some(&app.token_of(tenant, ada)), Some(tenant));
    inbox
        .mark_read(wire::MarkReadRequest {
            name: message.name.clone(),
        })
        .await
        .unwrap();
    let read = next(&mut stream).await;
    let changed = read.message.expect("the changed message");
    assert!(changed.read && changed.name == message.name);
    assert_eq!(read.unread_count, 1);

    inbox
        .mark_all_read(wire::MarkAllReadRequest::default())
        .await
        .unwrap();
    let all_read = next(&mut stream).await;
    assert_eq!((all_read.message, all_read.unread_count), (None, 0));
}

#[tokio::test]
async fn a_stream_shows_its_user_only_and_needs_a_signed_in_user() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let mut ada_stream = app
        .as_user(tenant, ada)
        .stream_inbox(wire::StreamInboxRequest {})
        .await
        .unwrap()
        .into_inner();
    // The same user id in another tenant is another inbox.
    let mut elsewhere = app
        .as_user(TenantId::generate(), ada)
        .stream_inbox(wire::StreamInboxRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut ada_stream).await.unread_count, 0);
    assert_eq!(next(&mut elsewhere).await.unread_count, 0);
    app.send(tenant, inline(vec![user(grace)], "x", "For Grace", "Body"))
        .await;
    app.send(tenant, inline(vec![user(ada)], "x", "For Ada", "Body"))
        .await;
    let arrived = next(&mut ada_stream).await;
    assert_eq!(arrived.message.unwrap().title, "For Ada");
    let nothing = tokio::time::timeout(Duration::from_secs(1), elsewhere.message()).await;
    assert!(
        nothing.is_err(),
        "another tenant's stream hears nothing: {nothing:?}"
    );

    let refused = app
        .client(None, Some(tenant))
        .stream_inbox(wire::StreamInboxRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let service = app.keys.service_token("svc-workflow", Some(tenant));
    let refused = app
        .client(Some(&service), Some(tenant))
        .stream_inbox(wire::StreamInboxRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "a service has no inbox"
    );
}
