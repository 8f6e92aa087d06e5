//! Preferences: a user's own over the tenant's defaults, checked whole; what they decide for a
//! send (suppressed, or held through the recipient's quiet hours and sent when they end, in
//! the recipient's time zone); URGENT goes through.

use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use platform::testing::violated_fields;
use proto::formflow::notify::v1 as wire;
use svc_notify::clock::Clock;
use tonic::Code;

use crate::helpers::{TestApp, inline, user};

fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

fn quiet(channel: wire::DeliveryChannel, start: &str, end: &str, zone: &str) -> wire::QuietHours {
    wire::QuietHours {
        channel: channel as i32,
        start_time: start.into(),
        end_time: end.into(),
        time_zone: zone.into(),
    }
}

#[tokio::test]
async fn a_users_preferences_override_the_tenants_defaults_and_are_checked_whole() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    let mut mine = app.as_user(tenant, ada);
    let fresh = mine
        .get_preferences(wire::GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.name, format!("users/{ada}/notificationPreferences"));
    assert!(fresh.disabled_channels.is_empty() && fresh.quiet_hours.is_empty());
    assert_eq!(fresh.etag, "0");

    let member_denied = app
        .member(tenant)
        .update_tenant_preferences(wire::UpdateTenantPreferencesRequest {
            preferences: Some(wire::NotificationPreferences::default()),
            update_mask: mask(&["disabled_channels"]),
        })
        .await
        .unwrap_err();
    assert_eq!(
        member_denied.code(),
        Code::PermissionDenied,
        "admins set defaults"
    );
    let defaults = app
        .admin(tenant)
        .update_tenant_preferences(wire::UpdateTenantPreferencesRequest {
            preferences: Some(wire::NotificationPreferences {
                disabled_channels: vec![wire::DeliveryChannel::Email as i32],
                quiet_hours: vec![quiet(wire::DeliveryChannel::InApp, "22:00", "07:00", "UTC")],
                ..Default::default()
            }),
            update_mask: mask(&["disabledChannels", "quiet_hours"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(defaults.name, "notificationPreferences");
    let read = app
        .user(tenant, Role::Viewer)
        .get_tenant_preferences(wire::GetTenantPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, defaults);

    let inherited = mine
        .get_preferences(wire::GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inherited.disabled_channels, defaults.disabled_channels);
    assert_eq!(inherited.quiet_hours, defaults.quiet_hours);
    let own = mine
        .update_preferences(wire::UpdatePreferencesRequest {
            preferences: Some(wire::NotificationPreferences {
                etag: inherited.etag.clone(),
                quiet_hours: Vec::new(),
                ..Default::default()
            }),
            update_mask: mask(&["quiet_hours"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(own.quiet_hours.is_empty(), "the user's own (none) wins");
    assert_eq!(
        own.disabled_channels, defaults.disabled_channels,
        "still the tenant's"
    );
    assert_eq!(own.etag, "1");
    let stale = mine
        .update_preferences(wire::UpdatePreferencesRequest {
            preferences: Some(wire::NotificationPreferences {
                etag: inherited.etag,
                ..Default::default()
            }),
            update_mask: mask(&["topics"]),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let bad = mine
        .update_preferences(wire::UpdatePreferencesRequest {
            preferences: Some(wire::NotificationPreferences {
                disabled_channels: vec![wire::DeliveryChannel::Webhook as i32],
                topics: vec![
                    wire::TopicPreference {
                        topic: "billing".into(),
                        ..Default::default()
                    },
                    wire::TopicPreference {
                        topic: "billing".into(),
                        ..Default::default()
                    },
                ],
                quiet_hours: vec![quiet(
                    wire::DeliveryChannel::Email,
                    "7:00",
                    "25:00",
                    "Mars/Olympus",
                )],
                ..Default::default()
            }),
            update_mask: mask(&["disabled_channels", "topics", "quiet_hours", "name"]),
        })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&bad);
    fields.sort();
    assert_eq!(
        fields,
        [
            "preferences.disabled_channels[0]",
            "preferences.quiet_hours[0].end_time",
            "preferences.quiet_hours[0].start_time",
            "preferences.quiet_hours[0].time_zone",
            "update_mask",
        ],
        "{bad:?}"
    );
    for (seconds, nanos) in [(2, 0), (86_401, 0), (60, 500_000_000), (-60, 0)] {
        let topics = vec![
            wire::TopicPreference {
                topic: "billing".into(),
                digest_window: Some(pbjson_types::Duration { seconds, nanos }),
                ..Default::default()
            },
            wire::TopicPreference {
                topic: "billing".into(),
                ..Default::default()
            },
        ];
        let refused = mine
            .update_preferences(wire::UpdatePreferencesRequest {
                preferences: Some(wire::NotificationPreferences {
                    topics,
                    ..Default::default()
                }),
                update_mask: mask(&["topics"]),
            })
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&refused),
            [
                "preferences.topics[0].digest_window",
                "preferences.topics[1].topic"
            ],
            "{seconds} s {nanos} ns"
        );
    }

    // Another tenant's defaults and the same user id there are another's.
    let elsewhere = app
        .as_user(TenantId::generate(), ada)
        .get_preferences(wire::GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.disabled_channels.is_empty() && elsewhere.quiet_hours.is_empty());
    let service = app.keys.service_token("svc-workflow", Some(tenant));
    let refused = app
        .client(Some(&service), Some(tenant))
        .get_preferences(wire::GetPreferencesRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "a service has none"
    );
}

#[tokio::test]
async fn muted_topics_are_suppressed_and_urgent_goes_through() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    app.as_user(tenant, ada)
        .update_preferences(wire::UpdatePreferencesRequest {
            preferences: Some(wire::NotificationPreferences {
                topics: vec![wire::TopicPreference {
                    topic: "marketing".into(),
                    channels: Vec::new(),
                    digest_window: None,
                }],
                ..Default::default()
            }),
            update_mask: mask(&["topics"]),
        })
        .await
        .unwrap();
    let muted = app
        .send(tenant, inline(vec![user(ada)], "marketing", "Sale", "Now"))
        .await
        .notification
        .unwrap();
    assert_eq!(
        muted.deliveries[0].state,
        wire::DeliveryState::Suppressed as i32
    );
    assert_eq!(muted.deliveries[0].suppression_reason, "PREFERENCES");
    let urgent = app
        .send(
            tenant,
            wire::SendNotificationRequest {
                priority: wire::NotificationPriority::Urgent as i32,
                ..inline(vec![user(ada)], "marketing", "Recall", "Now")
            },
        )
        .await
        .notification
        .unwrap();
    app.wait_for_delivery(
        tenant,
        &urgent.deliveries[0].name,
        wire::DeliveryState::Delivered,
    )
    .await;
    let other = app
        .send(
            tenant,
            inline(vec![user(ada)], "ticket.new", "Ticket", "New"),
        )
        .await
        .notification
        .unwrap();
    app.wait_for_delivery(
        tenant,
        &other.deliveries[0].name,
        wire::DeliveryState::Delivered,
    )
    .await;
    let inbox = app
        .as_user(tenant, ada)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut titles: Vec<&str> = inbox.messages.iter().map(|m| m.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Recall", "Ticket"]);
}

#[tokio::test]
async fn quiet_hours_hold_a_delivery_until_they_end_in_the_recipients_time_zone() {
    // The clock reads 21:59:55 UTC: 06:59:55 in Tokyo (inside 22:00–07:00 there, five seconds
    // before its end) and 16:59:55 in New York (outside the same local window).
    let start: DateTime<Utc> = "2026-12-07T21:59:55Z".parse().unwrap();
    let app = TestApp::spawn_with_clock(Clock::reading(start)).await;
    let tenant = TenantId::generate();
    let (tokyo, new_york) = (UserId::generate(), UserId::generate());
    for (who, zone) in [(tokyo, "Asia/Tokyo"), (new_york, "America/New_York")] {
        app.as_user(tenant, who)
            .update_preferences(wire::UpdatePreferencesRequest {
                preferences: Some(wire::NotificationPreferences {
                    quiet_hours: vec![quiet(wire::DeliveryChannel::InApp, "22:00", "07:00", zone)],
                    ..Default::default()
                }),
                update_mask: mask(&["quiet_hours"]),
            })
            .await
            .unwrap();
    }
    let sent = app
        .send(
            tenant,
            inline(
                vec![user(tokyo), user(new_york)],
                "report.ready",
                "Report",
                "Ready",
            ),
        )
        .await
        .notification
        .unwrap();
    let (held, now) = (&sent.deliveries[0], &sent.deliveries[1]);
    assert_eq!(held.state, wire::DeliveryState::Deferred as i32);
    let end: DateTime<Utc> = "2026-12-07T22:00:00Z".parse().unwrap();
    assert_eq!(
        held.next_attempt_time,
        Some(platform::wire::timestamp(end)),
        "07:00 in Tokyo"
    );
    assert_eq!(now.state, wire::DeliveryState::Pending as i32);
    app.wait_for_delivery(tenant, &now.name, wire::DeliveryState::Delivered)
        .await;
    let still = app
        .admin(tenant)
        .get_delivery(wire::GetDeliveryRequest {
            name: held.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        still.state,
        wire::DeliveryState::Deferred as i32,
        "held, not dropped"
    );
    let delivered = app
        .wait_for_delivery(tenant, &held.name, wire::DeliveryState::Delivered)
        .await;
    let at = delivered.deliver_time.unwrap();
    assert!(
        at.seconds >= end.timestamp(),
        "not before the window ended: {at:?}"
    );
    let inbox = app
        .as_user(tenant, tokyo)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.messages.len(), 1);
}
