//! Webhooks: endpoints' CRUD with etags and secrets shown once; deliveries to a real HTTP
//! receiver on loopback, verified by an independent Standard Webhooks implementation (the
//! `standardwebhooks` crate) with the secret CreateWebhookEndpoint answered, both secrets
//! during a rotation's grace period; retries of 5xx answers under one `webhook-id`, a 4xx
//! failing at once; the SSRF guard when a URL is saved and when it is called; disabled
//! endpoints and topic filters suppressing; deletion cancelling what waits; other tenants'
//! endpoints not found; an ended svc-ai batch job telling its endpoint.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use platform::amqp::Publisher;
use platform::context::{Role, TenantId};
use platform::events::Envelope;
use platform::testing::{error_reason, expect_code, violated_fields, wait_until};
use proto::formflow::ai::v1 as ai;
use proto::formflow::events::v1 as events;
use proto::formflow::notify::v1 as wire;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{TestApp, client_of, email, object};
use crate::reactions::publish;

/// A request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether `secret` verifies the request, as any Standard Webhooks receiver checks it.
    fn verifies_with(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret)
            .expect("a Standard Webhooks secret")
            .verify(&self.body, &self.headers)
            .is_ok()
    }
}

#[derive(Debug, Default)]
struct Log {
    received: Vec<Received>,
    /// Answers to give, in order; 200 once they run out.
    script: VecDeque<(u16, String)>,
}

/// A webhook receiver on loopback: records every POST to `/hook`, answers as scripted.
#[derive(Debug, Clone)]
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    async fn start(script: Vec<(u16, String)>) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the receiver");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log {
            received: Vec::new(),
            script: script.into(),
        }));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, log }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        wait_until(
            Duration::from_secs(20),
            "the receiver got its requests",
            || {
                let got = self.received().len();
                async move { got >= count }
            },
        )
        .await;
        self.received()
    }
}

async fn receive(
    State(log): State<Arc<Mutex<Log>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut log = log.lock().unwrap();
    log.received.push(Received { headers, body });
    let (code, body) = log.script.pop_front().unwrap_or((200, String::new()));
    (StatusCode::from_u16(code).unwrap(), body)
}

/// An endpoint to create at `url`.
fn endpoint(url: &str) -> wire::WebhookEndpoint {
    wire::WebhookEndpoint {
        url: url.into(),
        description: "Tickets".into(),
        ..Default::default()
    }
}

/// Creates `endpoint` as an admin of `tenant`; answers it and its secret.
async fn create(
    app: &TestApp,
    tenant: TenantId,
    endpoint: wire::WebhookEndpoint,
) -> (wire::WebhookEndpoint, String) {
    let created = app
        .admin(tenant)
        .create_webhook_endpoint(wire::CreateWebhookEndpointRequest {
            webhook_endpoint: Some(endpoint),
        })
        .await
        .expect("creating an endpoint")
        .into_inner();
    (created.webhook_endpoint.unwrap(), created.secret)
}

/// A recipient naming the endpoint `name`.
fn to(name: &str) -> wire::Recipient {
    wire::Recipient {
        target: Some(wire::recipient::Target::WebhookEndpoint(name.into())),
    }
}

/// A notification of `topic` to `recipients`, with data.
fn ticket(recipients: Vec<wire::Recipient>, topic: &str) -> wire::SendNotificationRequest {
    wire::SendNotificationRequest {
        recipients,
        topic: topic.into(),
        content: Some(wire::InlineContent {
            subject: "Ticket {{ ticket.id }} assigned".into(),
            body: "Ticket {{ ticket.id }} is yours".into(),
            link: "/tickets/7".into(),
        }),
        data: Some(object(json!({"ticket": {"id": 7, "title": "Printer"}}))),
        priority: wire::NotificationPriority::High as i32,
        ..Default::default()
    }
}

/// Sends `request` as a member of `tenant`; answers the names of its deliveries.
async fn send(
    app: &TestApp,
    tenant: TenantId,
    request: wire::SendNotificationRequest,
) -> Vec<String> {
    app.send(tenant, request)
        .await
        .notification
        .unwrap()
        .deliveries
        .into_iter()
        .map(|delivery| delivery.name)
        .collect()
}

#[tokio::test]
async fn a_delivery_is_signed_so_an_independent_implementation_verifies_it() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(Vec::new()).await;
    let (created, secret) = create(&app, tenant, endpoint(&receiver.url())).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        platform::webhooks::secret_bytes(&secret).map(|key| key.len()),
        Some(32)
    );

    let sent = app
        .send(tenant, ticket(vec![to(&created.name)], "ticket.assigned"))
        .await
        .notification
        .unwrap();
    let delivery = &sent.deliveries[0];
    assert_eq!(delivery.channel, wire::DeliveryChannel::Webhook as i32);
    assert_eq!(delivery.recipient, Some(to(&created.name)));
    let delivered = app
        .wait_for_delivery(tenant, &delivery.name, wire::DeliveryState::Delivered)
        .await;
    assert_eq!(delivered.last_response_code, 200);
    assert_eq!(delivered.attempts.len(), 1);
    assert_eq!(delivered.attempts[0].response_code, 200);

    let received = receiver.wait_for(1).await.remove(0);
    assert!(received.verifies_with(&secret), "{received:?}");
    assert!(!received.verifies_with(&platform::webhooks::generate_secret()));
    assert_eq!(received.header("webhook-id"), delivery.id);
    assert_eq!(received.header("content-type"), "application/json");
    assert_eq!(received.header("webhook-signature").split(' ').count(), 1);
    let timestamp: i64 = received.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let body = received.json();
    assert_eq!(body["type"], "ticket.assigned");
    assert!(
        chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok(),
        "{body}"
    );
    assert_eq!(
        body["data"],
        json!({
            "notification": sent.name,
            "topic": "ticket.assigned",
            "priority": "high",
            "subject": "Ticket 7 assigned",
            "text": "Ticket 7 is yours",
            "link": "/tickets/7",
            "data": {"ticket": {"id": 7, "title": "Printer"}},
        })
    );

    // Listed by recipient like any delivery.
    let listed = app
        .admin(tenant)
        .list_deliveries(wire::ListDeliveriesRequest {
            recipient: Some(to(&created.name)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.deliveries.len(), 1);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_until_retired() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(Vec::new()).await;
    let (created, first) = create(&app, tenant, endpoint(&receiver.url())).await;

    // Default grace period: both secrets sign.
    let rotated = app
        .admin(tenant)
        .rotate_webhook_endpoint_secret(wire::RotateWebhookEndpointSecretRequest {
            name: created.name.clone(),
            grace_period: None,
        })
        .await
        .unwrap()
        .into_inner();
    let second = rotated.secret;
    let after_rotation = rotated.webhook_endpoint.unwrap();
    assert_ne!(second, first);
    assert_eq!(after_rotation.secret_prefix, second[..10]);
    assert!(after_rotation.secret_rotate_time.is_some());
    assert_ne!(after_rotation.etag, created.etag);
    let names = send(
        &app,
        tenant,
        ticket(vec![to(&created.name)], "ticket.assigned"),
    )
    .await;
    app.wait_for_delivery(tenant, &names[0], wire::DeliveryState::Delivered)
        .await;
    let during_grace = receiver.wait_for(1).await.remove(0);
    assert_eq!(
        during_grace.header("webhook-signature").split(' ').count(),
        2
    );
    assert!(during_grace.verifies_with(&second), "the new secret");
    assert!(during_grace.verifies_with(&first), "the old secret");

    // No grace: only the newest signs; both older ones are retired.
    let third = app
        .admin(tenant)
        .rotate_webhook_endpoint_secret(wire::RotateWebhookEndpointSecretRequest {
            name: created.name.clone(),
            grace_period: Some(pbjson_types::Duration {
                seconds: 0,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    let names = send(
        &app,
        tenant,
        ticket(vec![to(&created.name)], "ticket.assigned"),
    )
    .await;
    app.wait_for_delivery(tenant, &names[0], wire::DeliveryState::Delivered)
        .await;
    let after_grace = receiver.wait_for(2).await.remove(1);
    assert_eq!(
        after_grace.header("webhook-signature").split(' ').count(),
        1
    );
    assert!(after_grace.verifies_with(&third));
    assert!(!after_grace.verifies_with(&second));
    assert!(!after_grace.verifies_with(&first));

    // At most 7 days of grace.
    let status = expect_code(
        app.admin(tenant)
            .rotate_webhook_endpoint_secret(wire::RotateWebhookEndpointSecretRequest {
                name: created.name.clone(),
                grace_period: Some(pbjson_types::Duration {
                    seconds: 8 * 24 * 3600,
                    nanos: 0,
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["grace_period"]);
}

#[tokio::test]
async fn server_errors_are_retried_under_one_webhook_id_until_delivered() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(vec![
        (500, "boom".into()),
        (503, "later".into()),
        (200, String::new()),
    ])
    .await;
    let (created, secret) = create(&app, tenant, endpoint(&receiver.url())).await;
    let names = send(
        &app,
        tenant,
        ticket(vec![to(&created.name)], "ticket.assigned"),
    )
    .await;
    let delivered = app
        .wait_for_delivery(tenant, &names[0], wire::DeliveryState::Delivered)
        .await;
    assert_eq!(delivered.attempt_count, 3);
    let codes: Vec<i32> = delivered
        .attempts
        .iter()
        .map(|attempt| attempt.response_code)
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    assert!(delivered.attempts[0].error.contains("500"), "{delivered:?}");
    assert!(
        delivered.attempts[0].error.contains("boom"),
        "{delivered:?}"
    );
    assert!(delivered.attempts[2].delivered);
    assert!(delivered.last_error.is_empty());

    let received = receiver.wait_for(3).await;
    assert_eq!(received.len(), 3);
    let id = delivered.id.as_str();
    for request in &received {
        assert_eq!(request.header("webhook-id"), id, "one id across attempts");
        assert!(request.verifies_with(&secret));
        assert_eq!(request.body, received[0].body, "the same payload");
    }
}

#[tokio::test]
async fn a_client_error_fails_the_delivery_after_one_attempt() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let answer = format!("bad request {}", "x".repeat(5_000));
    let receiver = Receiver::start(vec![(400, answer)]).await;
    let (created, _) = create(&app, tenant, endpoint(&receiver.url())).await;
    let names = send(
        &app,
        tenant,
        ticket(vec![to(&created.name)], "ticket.assigned"),
    )
    .await;
    let failed = app
        .wait_for_delivery(tenant, &names[0], wire::DeliveryState::Failed)
        .await;
    assert_eq!(failed.attempt_count, 1, "a 4xx is not retried");
    assert_eq!(failed.last_response_code, 400);
    assert!(
        failed.last_error.contains("400") && failed.last_error.contains("bad request"),
        "{}",
        failed.last_error
    );
    assert!(failed.last_error.chars().count() <= 1_000);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn internal_addresses_are_refused_when_saved_and_when_called_unless_allowed() {
    // This replica serves the API only and allows loopback (the tests' receivers).
    let app = TestApp::spawn_with(|config| config.options.worker_concurrency = 0).await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(Vec::new()).await;
    let (created, _) = create(&app, tenant, endpoint(&receiver.url())).await;
    // A second one allows no internal network, and sends the deliveries.
    let strict = app
        .replica_with(|config| {
            config.options.worker_concurrency = 4;
            config.options.webhook_allowed_networks.clear();
        })
        .await;
    let mut strict_admin = client_of(
        &strict,
        Some(&app.keys.user_token(tenant, Role::Admin)),
        Some(tenant),
    );

    for refused in [
        receiver.url(),
        format!("https://{}/hook", receiver.addr),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://[::1]/hook".to_owned(),
        "https://localhost/hook".to_owned(),
        // Public, but plain http: only allowed networks take it.
        "http://93.184.215.14/hook".to_owned(),
    ] {
        let status = expect_code(
            strict_admin
                .create_webhook_endpoint(wire::CreateWebhookEndpointRequest {
                    webhook_endpoint: Some(endpoint(&refused)),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["webhook_endpoint.url"],
            "{refused}"
        );
    }
    let public = strict_admin
        .create_webhook_endpoint(wire::CreateWebhookEndpointRequest {
            webhook_endpoint: Some(endpoint("https://93.184.215.14/hook")),
        })
        .await;
    assert!(public.is_ok(), "{public:?}");
    let status = expect_code(
        strict_admin
            .update_webhook_endpoint(wire::UpdateWebhookEndpointRequest {
                webhook_endpoint: Some(wire::WebhookEndpoint {
                    name: created.name.clone(),
                    url: format!("https://{}/other", receiver.addr),
                    ..Default::default()
                }),
                update_mask: Some(pbjson_types::FieldMask {
                    paths: vec!["url".into()],
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["webhook_endpoint.url"]);

    // Saved where loopback was allowed, called where it is not: refused for good.
    let names = send(
        &app,
        tenant,
        ticket(vec![to(&created.name)], "ticket.assigned"),
    )
    .await;
    let failed = app
        .wait_for_delivery(tenant, &names[0], wire::DeliveryState::Failed)
        .await;
    assert_eq!(failed.attempt_count, 1);
    assert!(
        failed.last_error.contains("refused") && failed.last_error.contains("127.0.0.1"),
        "{}",
        failed.last_error
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn disabled_endpoints_and_unsubscribed_topics_suppress_their_deliveries() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(Vec::new()).await;
    let (disabled, _) = create(
        &app,
        tenant,
        wire::WebhookEndpoint {
            disabled: true,
            ..endpoint(&receiver.url())
        },
    )
    .await;
    let (closed_only, _) = create(
        &app,
        tenant,
        wire::WebhookEndpoint {
            topics: vec!["ticket.closed".into()],
            ..endpoint(&receiver.url())
        },
    )
    .await;
    let (assigned, _) = create(
        &app,
        tenant,
        wire::WebhookEndpoint {
            topics: vec!["ticket.closed".into(), "ticket.assigned".into()],
            ..endpoint(&receiver.url())
        },
    )
    .await;
    let sent = app
        .send(
            tenant,
            ticket(
                vec![
                    to(&disabled.name),
                    to(&closed_only.name),
                    to(&assigned.name),
                ],
                "ticket.assigned",
            ),
        )
        .await
        .notification
        .unwrap();
    let states: Vec<(i32, &str)> = sent
        .deliveries
        .iter()
        .map(|delivery| (delivery.state, delivery.suppression_reason.as_str()))
        .collect();
    let suppressed = wire::DeliveryState::Suppressed as i32;
    assert_eq!(
        states,
        [
            (suppressed, "ENDPOINT_DISABLED"),
            (suppressed, "TOPIC_FILTERED"),
            (wire::DeliveryState::Pending as i32, ""),
        ]
    );
    app.wait_for_delivery(
        tenant,
        &sent.deliveries[2].name,
        wire::DeliveryState::Delivered,
    )
    .await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn deleting_an_endpoint_cancels_its_waiting_deliveries() {
    let app =
        TestApp::spawn_with(|config| config.options.retry_base = Duration::from_secs(60)).await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(vec![(500, String::new())]).await;
    let (created, _) = create(&app, tenant, endpoint(&receiver.url())).await;
    let names = send(
        &app,
        tenant,
        ticket(vec![to(&created.name)], "ticket.assigned"),
    )
    .await;
    // The first attempt failed; the next waits a minute.
    let mut admin = app.admin(tenant);
    wait_until(Duration::from_secs(20), "the first attempt failed", || {
        let mut admin = admin.clone();
        let name = names[0].clone();
        async move {
            let delivery = admin
                .get_delivery(wire::GetDeliveryRequest { name })
                .await
                .unwrap()
                .into_inner();
            delivery.attempt_count == 1 && delivery.last_response_code == 500
        }
    })
    .await;

    admin
        .delete_webhook_endpoint(wire::DeleteWebhookEndpointRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    let cancelled = admin
        .get_delivery(wire::GetDeliveryRequest {
            name: names[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, wire::DeliveryState::Cancelled as i32);
    assert!(cancelled.next_attempt_time.is_none());
    let status = expect_code(
        admin
            .retry_delivery(wire::RetryDeliveryRequest {
                name: names[0].clone(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&status), "DELIVERY_NOT_FAILED");
    expect_code(
        admin
            .get_webhook_endpoint(wire::GetWebhookEndpointRequest {
                name: created.name.clone(),
            })
            .await,
        Code::NotFound,
    );
    let status = expect_code(
        app.member(tenant)
            .send_notification(ticket(vec![to(&created.name)], "ticket.assigned"))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["recipients[0].webhook_endpoint"]);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn endpoints_are_managed_with_etags_and_their_secrets_never_read_back() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut admin = app.admin(tenant);
    let (created, secret) = create(
        &app,
        tenant,
        wire::WebhookEndpoint {
            topics: vec!["ticket.assigned".into()],
            ..endpoint("https://93.184.215.14/formflow?token=abc")
        },
    )
    .await;
    assert!(created.name.starts_with("webhookEndpoints/"));
    assert_eq!(created.secret_prefix, secret[..10]);
    assert!(created.secret_rotate_time.is_none());
    assert!(!created.disabled);

    // Viewers read; the secret is never in what they read.
    let mut viewer = app.user(tenant, Role::Viewer);
    let read = viewer
        .get_webhook_endpoint(wire::GetWebhookEndpointRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);
    let key = &secret["whsec_".len()..];
    assert!(!format!("{read:?}").contains(key));
    for _ in 0..2 {
        create(&app, tenant, endpoint("https://93.184.215.14/other")).await;
    }
    let first_page = viewer
        .list_webhook_endpoints(wire::ListWebhookEndpointsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.webhook_endpoints.len(), 2);
    assert_eq!(first_page.webhook_endpoints[0], created, "oldest first");
    assert!(!format!("{first_page:?}").contains(key));
    let second_page = viewer
        .list_webhook_endpoints(wire::ListWebhookEndpointsRequest {
            page_size: 2,
            page_token: first_page.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.webhook_endpoints.len(), 1);
    assert!(second_page.next_page_token.is_empty());

    // Only admins and up manage endpoints.
    for (mut client, what) in [
        (viewer.clone(), "a viewer"),
        (app.member(tenant), "a member"),
    ] {
        expect_code(
            client
                .create_webhook_endpoint(wire::CreateWebhookEndpointRequest {
                    webhook_endpoint: Some(endpoint("https://93.184.215.14/x")),
                })
                .await,
            Code::PermissionDenied,
        );
        let status = client
            .rotate_webhook_endpoint_secret(wire::RotateWebhookEndpointSecretRequest {
                name: created.name.clone(),
                grace_period: None,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{what}");
    }

    // Every bad field at once.
    let status = expect_code(
        admin
            .create_webhook_endpoint(wire::CreateWebhookEndpointRequest {
                webhook_endpoint: Some(wire::WebhookEndpoint {
                    url: "ftp://hooks.example.com".into(),
                    description: "d".repeat(501),
                    topics: vec!["Tickets".into(), "a".into(), "a".into()],
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "webhook_endpoint.url",
            "webhook_endpoint.description",
            "webhook_endpoint.topics[0]",
            "webhook_endpoint.topics[2]",
        ]
    );

    // Updates check the etag.
    let update = |etag: &str, description: &str| wire::UpdateWebhookEndpointRequest {
        webhook_endpoint: Some(wire::WebhookEndpoint {
            name: created.name.clone(),
            description: description.into(),
            topics: Vec::new(),
            disabled: true,
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["description".into(), "topics".into(), "disabled".into()],
        }),
    };
    let updated = admin
        .update_webhook_endpoint(update(&created.etag, "All tickets"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "All tickets");
    assert!(updated.topics.is_empty() && updated.disabled);
    assert_eq!(updated.url, created.url, "not in the mask");
    assert_ne!(updated.etag, created.etag);
    let status = expect_code(
        admin
            .update_webhook_endpoint(update(&created.etag, "Stale"))
            .await,
        Code::Aborted,
    );
    assert!(!status.message().is_empty());
    let status = expect_code(
        admin
            .update_webhook_endpoint(wire::UpdateWebhookEndpointRequest {
                update_mask: Some(pbjson_types::FieldMask {
                    paths: vec!["secret_prefix".into()],
                }),
                ..update("", "x")
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);

    admin
        .delete_webhook_endpoint(wire::DeleteWebhookEndpointRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    for result in [
        admin
            .get_webhook_endpoint(wire::GetWebhookEndpointRequest {
                name: created.name.clone(),
            })
            .await
            .map(|_| ()),
        admin
            .delete_webhook_endpoint(wire::DeleteWebhookEndpointRequest {
                name: created.name.clone(),
            })
            .await
            .map(|_| ()),
    ] {
        let status = expect_code(result, Code::NotFound);
        assert_eq!(error_reason(&status), "WEBHOOK_ENDPOINT_NOT_FOUND");
    }
}

#[tokio::test]
async fn another_tenants_endpoints_are_not_found_on_every_rpc() {
    let app = TestApp::spawn().await;
    let acme = TenantId::generate();
    let globex = TenantId::generate();
    let receiver = Receiver::start(Vec::new()).await;
    let (created, _) = create(&app, acme, endpoint(&receiver.url())).await;
    let mut globex_owner = app.user(globex, Role::Owner);
    let name = created.name.clone();

    let results: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "GetWebhookEndpoint",
            globex_owner
                .get_webhook_endpoint(wire::GetWebhookEndpointRequest { name: name.clone() })
                .await
                .map(|_| ()),
        ),
        (
            "UpdateWebhookEndpoint",
            globex_owner
                .update_webhook_endpoint(wire::UpdateWebhookEndpointRequest {
                    webhook_endpoint: Some(wire::WebhookEndpoint {
                        name: name.clone(),
                        disabled: true,
                        ..Default::default()
                    }),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: vec!["disabled".into()],
                    }),
                })
                .await
                .map(|_| ()),
        ),
        (
            "RotateWebhookEndpointSecret",
            globex_owner
                .rotate_webhook_endpoint_secret(wire::RotateWebhookEndpointSecretRequest {
                    name: name.clone(),
                    grace_period: None,
                })
                .await
                .map(|_| ()),
        ),
        (
            "DeleteWebhookEndpoint",
            globex_owner
                .delete_webhook_endpoint(wire::DeleteWebhookEndpointRequest { name: name.clone() })
                .await
                .map(|_| ()),
        ),
    ];
    for (rpc, result) in results {
        let status = expect_code(result, Code::NotFound);
        assert_eq!(error_reason(&status), "WEBHOOK_ENDPOINT_NOT_FOUND", "{rpc}");
    }
    let listed = globex_owner
        .list_webhook_endpoints(wire::ListWebhookEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.webhook_endpoints.is_empty());
    // Naming it in a send is naming no endpoint.
    let status = expect_code(
        globex_owner
            .send_notification(ticket(
                vec![email("eve@globex.example"), to(&name)],
                "ticket.assigned",
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["recipients[1].webhook_endpoint"]);

    // Acme's endpoint is untouched and still receives.
    let still = app
        .admin(acme)
        .get_webhook_endpoint(wire::GetWebhookEndpointRequest { name: name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still, created);
    let names = send(&app, acme, ticket(vec![to(&name)], "ticket.assigned")).await;
    app.wait_for_delivery(acme, &names[0], wire::DeliveryState::Delivered)
        .await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn without_encryption_keys_the_webhook_channel_is_off() {
    let app = TestApp::spawn_with(|config| config.options.encryption_keys = None).await;
    let tenant = TenantId::generate();
    let status = expect_code(
        app.admin(tenant)
            .create_webhook_endpoint(wire::CreateWebhookEndpointRequest {
                webhook_endpoint: Some(endpoint("https://hooks.example.com/in")),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&status), "CHANNEL_NOT_CONFIGURED");
    let listed = app
        .admin(tenant)
        .list_webhook_endpoints(wire::ListWebhookEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.webhook_endpoints.is_empty());
}

fn batch_job_completed(
    tenant: TenantId,
    job: &str,
    endpoint: &str,
) -> Envelope<events::BatchJobCompleted> {
    Envelope::new(
        Some(tenant),
        events::BatchJobCompleted {
            batch_job: Some(ai::BatchJob {
                name: job.into(),
                state: ai::BatchJobState::Succeeded as i32,
                total_count: 3,
                processed_count: 3,
                failed_count: 1,
                webhook_endpoint: endpoint.into(),
                ..Default::default()
            }),
        },
    )
}

#[tokio::test]
async fn an_ended_batch_job_tells_its_webhook_endpoint_in_its_tenant_only() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let receiver = Receiver::start(Vec::new()).await;
    let (endpoint, secret) = create(&app, tenant, endpoint(&receiver.url())).await;
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let first = batch_job_completed(tenant, "batchJobs/first", &endpoint.name);
    // The reactions' queue exists once the service's consumer started: publish until heard.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while receiver.received().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never told");
        publish(&publisher, &first).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let told = &receiver.received()[0];
    assert!(told.verifies_with(&secret));
    let body = told.json();
    assert_eq!(body["type"], "ai.batch_job.completed", "{body}");
    assert_eq!(
        body["data"]["subject"],
        "Batch job batchJobs/first succeeded"
    );
    assert_eq!(body["data"]["text"], "3 of 3 items processed, 1 failed.");
    assert_eq!(body["data"]["data"]["failed_count"], 1, "{body}");

    // The same event again, and another tenant's job naming this endpoint: nothing; then a
    // second job of the tenant, heard once.
    publish(&publisher, &first).await;
    let elsewhere = batch_job_completed(TenantId::generate(), "batchJobs/other", &endpoint.name);
    publish(&publisher, &elsewhere).await;
    publish(
        &publisher,
        &batch_job_completed(tenant, "batchJobs/second", &endpoint.name),
    )
    .await;
    receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects: Vec<String> = receiver
        .received()
        .iter()
        .map(|received| {
            received.json()["data"]["subject"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        subjects,
        [
            "Batch job batchJobs/first succeeded",
            "Batch job batchJobs/second succeeded"
        ]
    );
}
