//! `action.notify` and `action.email` against a real svc-notify (with a local SMTP server) and
//! a real svc-auth for svc-workflow's service token: an in-app message to a user and an email
//! to an address, each notification sent once with the attempt's idempotency key as its
//! transaction id; a recipient that is none of the three kinds fails the node for good.

use std::time::Duration;

use clap::Parser;
use platform::config::ServiceClientConfig;
use platform::context::{Role, TenantId, UserId};
use platform::testing::{CallMetadata, SmtpServer, TestInfra, TestKeys, TestServer};
use proto::formflow::notify::v1 as notify;
use proto::formflow::notify::v1::notify_service_client::NotifyServiceClient;
use proto::formflow::workflow::v1::ExecutionState;
use secrecy::SecretString;
use serde_json::json;
use testkit::{Options, Services, WORKFLOW_CLIENT};

use crate::helpers::{
    TestApp, definition, edge, json_of, node, node_runs, run, wait_for, workflow,
};

#[tokio::test]
async fn notify_and_email_nodes_send_through_svc_notify_once_per_attempt() {
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let services = Services::start(&infra, &keys, Options::default()).await;
    let auth_url = format!("http://{}", services.auth_addr);
    let smtp = SmtpServer::start().await;
    let mut config = svc_notify::Config::try_parse_from(["svc-notify"]).unwrap();
    config.infra = infra.config();
    config.auth = keys.auth_config();
    config.auth.auth_url = Some(auth_url.clone());
    config.options.smtp_url = Some(SecretString::from(format!(
        "smtp://127.0.0.1:{}",
        smtp.port()
    )));
    config.options.email_from = "FormFlow Tests <tests@formflow.example>".to_owned();
    let notify_server = TestServer::start(|listeners| svc_notify::build(config, listeners)).await;
    let notify_url = format!("http://{}", notify_server.addr());
    let app = TestApp::spawn_with(|config| {
        config.auth.auth_url = Some(auth_url);
        config.options.notify_url = Some(notify_url);
        config.options.service_client =
            ServiceClientConfig::of(WORKFLOW_CLIENT.0, WORKFLOW_CLIENT.1);
    })
    .await;
    let tenant = TenantId::generate();
    let owner = UserId::generate();

    let flow = definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node(
                "tell",
                "action.notify",
                json!({
                    "recipients": ["users/{{ owner }}"],
                    "topic": "forms.submitted",
                    "subject": "New: {{ title }}",
                    "body": "{{ title }} came in",
                    "priority": "high",
                }),
            ),
            node(
                "mail",
                "action.email",
                json!({"to": ["{{ email }}"], "subject": "Thanks, {{ name }}", "text": "We got {{ title }}."}),
            ),
        ],
        vec![edge("start", "tell", ""), edge("start", "mail", "")],
    );
    let member = app.member(tenant);
    let name = app.create(tenant, workflow("Tell", flow)).await.name;
    let execution = run(
        &member,
        &name,
        json!({"owner": owner.to_string(), "title": "Ticket 7", "email": "ada@example.org", "name": "Ada"}),
    )
    .await;
    wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    let runs = node_runs(&member, &execution.name).await;
    let output = |node: &str| {
        json_of(
            runs.iter()
                .find(|run| run.node_id == node)
                .unwrap()
                .output
                .as_ref(),
        )
    };
    let (told, mailed) = (output("tell"), output("mail"));
    assert_eq!(told["duplicate"], false, "{told}");
    assert_eq!(
        told["deliveries"][0]["channel"], "DELIVERY_CHANNEL_IN_APP",
        "{told}"
    );
    assert_eq!(
        mailed["deliveries"][0]["channel"], "DELIVERY_CHANNEL_EMAIL",
        "{mailed}"
    );

    let mails = smtp.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mails[0].to, ["ada@example.org"]);
    assert_eq!(mails[0].subject, "Thanks, Ada");
    let text = mails[0].text.clone().unwrap_or_default();
    assert!(text.contains("We got Ticket 7."), "{text}");

    // The owner's in-app message, sent by svc-workflow under the attempt's key.
    let mut claims = keys.claims(&owner.to_string());
    claims.tid = Some(tenant.to_string());
    claims.role = Some(Role::Member.as_str().to_owned());
    let mut owner_client = NotifyServiceClient::with_interceptor(
        notify_server.channel(),
        CallMetadata::new(Some(&keys.sign(&claims)), None),
    );
    let inbox = owner_client
        .list_inbox_messages(notify::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].title, "New: Ticket 7");
    let mut admin = NotifyServiceClient::with_interceptor(
        notify_server.channel(),
        CallMetadata::new(Some(&keys.user_token(tenant, Role::Admin)), None),
    );
    let sent = admin
        .get_notification(notify::GetNotificationRequest {
            name: inbox[0].notification.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let execution_id = execution.name.rsplit('/').next().unwrap();
    assert!(
        sent.transaction_id
            .starts_with(&format!("{execution_id}.tell.")),
        "{}",
        sent.transaction_id
    );
    assert_eq!(sent.source.unwrap().principal, "services/svc-workflow");

    // A recipient that is neither a user, an endpoint nor an address: failed for good.
    let broken = definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node(
                "tell",
                "action.notify",
                json!({"recipients": ["{{ who }}"], "topic": "t", "subject": "s", "body": "b"}),
            ),
        ],
        vec![edge("start", "tell", "")],
    );
    let name = app.create(tenant, workflow("Broken", broken)).await.name;
    let execution = run(&member, &name, json!({"who": "nobody"})).await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    assert_eq!(failed.error.unwrap().code, "RECIPIENT_INVALID");
}
