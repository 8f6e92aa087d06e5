//! A real svc-notify on a loopback port, over its own database, sending email to a real SMTP
//! server on loopback (aiosmtpd), with clients for each kind of caller.

use std::time::Duration;

use clap::Parser;
use platform::context::{Role, TenantId, UserId};
use platform::testing::{CallMetadata, SmtpServer, TestInfra, TestKeys, TestServer};
use proto::formflow::notify::v1 as wire;
use proto::formflow::notify::v1::notify_service_client::NotifyServiceClient;
use secrecy::SecretString;
use serde_json::Value;
use svc_notify::clock::Clock;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) type Client = NotifyServiceClient<InterceptedService<Channel, CallMetadata>>;

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    pub(crate) smtp: SmtpServer,
    config: svc_notify::Config,
    server: TestServer,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// The service with its configuration changed by `configure` first.
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut svc_notify::Config)) -> TestApp {
        Self::spawn_full(TestInfra::new().await, configure, Clock::system()).await
    }

    /// The service over `infra` (made by the test, e.g. to reach the broker through a proxy).
    pub(crate) async fn spawn_over(
        infra: TestInfra,
        configure: impl FnOnce(&mut svc_notify::Config),
    ) -> TestApp {
        Self::spawn_full(infra, configure, Clock::system()).await
    }

    /// The service deciding by `clock`.
    pub(crate) async fn spawn_with_clock(clock: Clock) -> TestApp {
        Self::spawn_full(TestInfra::new().await, |_| {}, clock).await
    }

    async fn spawn_full(
        infra: TestInfra,
        configure: impl FnOnce(&mut svc_notify::Config),
        clock: Clock,
    ) -> TestApp {
        let keys = TestKeys::new();
        let smtp = SmtpServer::start().await;
        let mut config = svc_notify::Config::try_parse_from(["svc-notify"]).unwrap();
        config.infra = infra.config();
        config.auth = keys.auth_config();
        config.options.smtp_url = Some(SecretString::from(format!(
            "smtp://127.0.0.1:{}",
            smtp.port()
        )));
        config.options.email_from = "FormFlow Tests <tests@formflow.example>".to_owned();
        config.options.retry_base = Duration::from_millis(300);
        config.options.send_timeout = Duration::from_secs(5);
        // As in production, a lease outlasts the longest send (a send is not renewed): with a
        // shorter one, a send slowed by a loaded machine lost its lease, and its attempt was
        // left open while another worker made the next ones.
        config.options.lease = Duration::from_secs(10);
        config.options.overdue_after = Duration::from_secs(2);
        config.options.encryption_keys = Some(SecretString::from(
            platform::crypto::Sealer::generate_key_entry("test"),
        ));
        // The tests' webhook receivers listen on loopback.
        config.options.webhook_allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        config.options.webhook_timeout = Duration::from_secs(5);
        config.options.app_url = Some("https://app.formflow.example/".parse().unwrap());
        configure(&mut config);
        let server = TestServer::start({
            let config = config.clone();
            move |listeners| svc_notify::app::build_with_clock(config, listeners, clock)
        })
        .await;
        TestApp {
            infra,
            keys,
            smtp,
            config,
            server,
        }
    }

    /// Another replica of the service, over the same database, queues and Redis.
    pub(crate) async fn replica(&self) -> TestServer {
        let config = self.config.clone();
        TestServer::start(|listeners| svc_notify::build(config, listeners)).await
    }

    /// Another replica as [`TestApp::replica`], its configuration changed by `configure`.
    pub(crate) async fn replica_with(
        &self,
        configure: impl FnOnce(&mut svc_notify::Config),
    ) -> TestServer {
        let mut config = self.config.clone();
        configure(&mut config);
        TestServer::start(|listeners| svc_notify::build(config, listeners)).await
    }

    /// A client sending `token` (none: anonymous), routed to `tenant` as the gateway would.
    pub(crate) fn client(&self, token: Option<&str>, routed: Option<TenantId>) -> Client {
        client_of(&self.server, token, routed)
    }

    /// A user with `role` in `tenant`, routed there.
    pub(crate) fn user(&self, tenant: TenantId, role: Role) -> Client {
        self.client(Some(&self.keys.user_token(tenant, role)), Some(tenant))
    }

    /// The user `user` (a member) of `tenant`, routed there: the owner of an inbox.
    pub(crate) fn as_user(&self, tenant: TenantId, user: UserId) -> Client {
        self.client(Some(&self.token_of(tenant, user)), Some(tenant))
    }

    /// A token of the user `user`, a member of `tenant`.
    pub(crate) fn token_of(&self, tenant: TenantId, user: UserId) -> String {
        let mut claims = self.keys.claims(&user.to_string());
        claims.tid = Some(tenant.to_string());
        claims.role = Some(Role::Member.as_str().to_owned());
        self.keys.sign(&claims)
    }

    /// A member of `tenant`.
    pub(crate) fn member(&self, tenant: TenantId) -> Client {
        self.user(tenant, Role::Member)
    }

    /// An admin of `tenant`.
    pub(crate) fn admin(&self, tenant: TenantId) -> Client {
        self.user(tenant, Role::Admin)
    }

    /// Sends `request` as a member of `tenant`.
    pub(crate) async fn send(
        &self,
        tenant: TenantId,
        request: wire::SendNotificationRequest,
    ) -> wire::SendNotificationResponse {
        self.member(tenant)
            .send_notification(request)
            .await
            .expect("sending a notification")
            .into_inner()
    }

    /// Waits until the delivery `name` of `tenant` is in `state`, and answers it with its
    /// attempts.
    pub(crate) async fn wait_for_delivery(
        &self,
        tenant: TenantId,
        name: &str,
        state: wire::DeliveryState,
    ) -> wire::Delivery {
        let mut client = self.admin(tenant);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let delivery = client
                .get_delivery(wire::GetDeliveryRequest { name: name.into() })
                .await
                .expect("reading a delivery")
                .into_inner();
            if delivery.state == state as i32 {
                return delivery;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never became {state:?}: {delivery:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A client of `server` sending `token`, routed to `tenant`.
pub(crate) fn client_of(
    server: &TestServer,
    token: Option<&str>,
    routed: Option<TenantId>,
) -> Client {
    NotifyServiceClient::with_interceptor(server.channel(), CallMetadata::new(token, routed))
}

/// A user recipient.
pub(crate) fn user(user: UserId) -> wire::Recipient {
    wire::Recipient {
        target: Some(wire::recipient::Target::User(format!("users/{user}"))),
    }
}

/// An email recipient.
pub(crate) fn email(address: &str) -> wire::Recipient {
    wire::Recipient {
        target: Some(wire::recipient::Target::Email(address.into())),
    }
}

/// A send of inline content to `recipients` on `topic`.
pub(crate) fn inline(
    recipients: Vec<wire::Recipient>,
    topic: &str,
    subject: &str,
    body: &str,
) -> wire::SendNotificationRequest {
    wire::SendNotificationRequest {
        recipients,
        topic: topic.into(),
        content: Some(wire::InlineContent {
            subject: subject.into(),
            body: body.into(),
            link: String::new(),
        }),
        ..Default::default()
    }
}

/// `value` (a JSON object) as a Struct.
pub(crate) fn object(value: Value) -> pbjson_types::Struct {
    serde_json::from_value(value).expect("a JSON object")
}

/// Gives `topic` a digest window of `seconds` (in-app only) in `who`'s preferences in `tenant`.
pub(crate) async fn batch_topic(
    app: &TestApp,
    tenant: TenantId,
    who: UserId,
    topic: &str,
    seconds: i64,
) {
    app.as_user(tenant, who)
        .update_preferences(wire::UpdatePreferencesRequest {
            preferences: Some(wire::NotificationPreferences {
                topics: vec![wire::TopicPreference {
                    topic: topic.into(),
                    channels: vec![wire::DeliveryChannel::InApp as i32],
                    digest_window: Some(pbjson_types::Duration { seconds, nanos: 0 }),
                }],
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["topics".into()],
            }),
        })
        .await
        .expect("setting a digest window");
}
