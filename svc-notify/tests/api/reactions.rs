//! svc-notify's reactions to other services' events, published on RabbitMQ as those services
//! publish them: a submission emails its form's recipients (once however often the event
//! arrives, in the tenant's wording when it has a template), an erased submission takes its
//! notifications with it (a digest one of them opened sends the rest alone), a failed
//! execution tells its workflow's owner in-app, invitations and password resets are emailed
//! with their links while no token stays at rest.

use std::time::Duration;

use platform::amqp::Publisher;
use platform::context::{TenantId, UserId};
use platform::events::{Envelope, Event};
use proto::formflow::auth::v1 as auth;
use proto::formflow::events::v1 as events;
use proto::formflow::forms::v1 as forms;
use proto::formflow::notify::v1 as wire;
use proto::formflow::workflow::v1 as workflow;
use serde_json::json;
use tonic::Code;

use crate::helpers::TestApp;

pub(crate) use platform::testing::publish_envelope as publish;

fn submission_created(
    tenant: TenantId,
    recipients: &[&str],
) -> Envelope<events::SubmissionCreated> {
    let id = uuid::Uuid::now_v7();
    let form = "forms/0190d6c1-0000-7000-8000-000000000001";
    Envelope::new(
        Some(tenant),
        events::SubmissionCreated {
            submission: Some(forms::Submission {
                name: format!("{form}/submissions/{id}"),
                id: id.to_string(),
                ..Default::default()
            }),
            form: form.into(),
            form_title: "Report a problem".into(),
            answers: vec![
                events::SubmittedAnswer {
                    field_id: "subject".into(),
                    label: "Subject".into(),
                    r#type: forms::FieldType::Text as i32,
                    value: Some(serde_json::from_value(json!("Printer on fire")).unwrap()),
                },
                events::SubmittedAnswer {
                    field_id: "rooms".into(),
                    label: "Rooms".into(),
                    r#type: forms::FieldType::MultiSelect as i32,
                    value: Some(serde_json::from_value(json!(["A1", "B2"])).unwrap()),
                },
            ],
            notification_recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            form_slug: "report".into(),
            analysis: None,
        },
    )
}

/// The notifications of `topic` in `tenant`, by their deliveries.
async fn notifications(app: &TestApp, tenant: TenantId, topic: &str) -> Vec<String> {
    let mut names: Vec<String> = app
        .admin(tenant)
        .list_deliveries(wire::ListDeliveriesRequest {
            topic: topic.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
        .into_iter()
        .map(|delivery| delivery.notification)
        .collect();
    names.dedup();
    names
}

/// Publishes `envelope` until the reaction shows in `topic`'s deliveries (the reactions'
/// queue is declared when the service's consumer starts; a republished event is the same
/// event, which the reaction handles once). Answers the notifications then.
async fn publish_until_seen<T: Event>(
    app: &TestApp,
    publisher: &Publisher,
    envelope: &Envelope<T>,
    tenant: TenantId,
    topic: &str,
    expected: usize,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        publish(publisher, envelope).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let seen = notifications(app, tenant, topic).await;
        if seen.len() >= expected {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reaction to {}",
            T::TYPE
        );
    }
}

#[tokio::test]
async fn a_submission_emails_its_forms_recipients_once_and_erasure_takes_the_notification() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let first = submission_created(tenant, &["ops@example.com", "not an address"]);
    let seen = publish_until_seen(&app, &publisher, &first, tenant, "forms.submission", 1).await;
    publish(&publisher, &first).await; // delivered again: nothing more
    let mails = app.smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, ["ops@example.com"]);
    assert_eq!(mails[0].subject, "New submission to Report a problem");
    let text = mails[0].text.clone().unwrap();
    assert!(text.contains("Subject: Printer on fire"), "{text}");
    assert!(text.contains("Rooms: A1, B2"), "{text}");
    let notification = app
        .admin(tenant)
        .get_notification(wire::GetNotificationRequest {
            name: seen[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let source = notification.source.unwrap();
    assert_eq!(source.principal, "services/svc-forms");
    assert_eq!(
        source.event,
        format!("forms.submission.created/{}", first.event_id)
    );

    // The tenant rewords it with a template of the reaction's key.
    app.admin(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "forms.submission".into(),
                email_subject: "[{{ form_slug }}] {{ answers[0].value }}".into(),
                email_text: "See {{ submission }}".into(),
                variables: ["form_slug", "answers", "submission"]
                    .iter()
                    .map(|name| wire::TemplateVariable {
                        name: (*name).into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let second = submission_created(tenant, &["ops@example.com"]);
    publish_until_seen(&app, &publisher, &second, tenant, "forms.submission", 2).await;
    let mails = app.smtp.wait_for(2, Duration::from_secs(20)).await;
    let reworded = mails
        .iter()
        .find(|mail| mail.subject == "[report] Printer on fire")
        .expect("the tenant's wording");
    assert!(reworded.text.as_deref().unwrap().starts_with("See forms/"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 2, "one email per submission");

    // Erasing the first submission takes its notification; the second stays.
    let submission = first.data.submission.as_ref().unwrap().name.clone();
    let deleted = Envelope::new(
        Some(tenant),
        events::SubmissionDeleted {
            submission,
            form: first.data.form.clone(),
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        publish(&publisher, &deleted).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if notifications(&app, tenant, "forms.submission").await.len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the erasure never reached svc-notify"
        );
    }
    let gone = app
        .admin(tenant)
        .get_notification(wire::GetNotificationRequest {
            name: seen[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn a_failed_execution_tells_its_workflows_owner_in_app() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let failed = |owner: String| {
        let id = uuid::Uuid::now_v7();
        Envelope::new(
            Some(tenant),
            events::ExecutionFailed {
                execution: Some(workflow::Execution {
                    name: format!("executions/{id}"),
                    id: id.to_string(),
                    error: Some(workflow::ExecutionError {
                        code: "NODE_FAILED".into(),
                        message: "the endpoint answered 500".into(),
                        node_id: "notify_crm".into(),
                    }),
                    ..Default::default()
                }),
                workflow: Some(events::ExecutionWorkflow {
                    name: "workflows/0190d6c1-0000-7000-8000-000000000002".into(),
                    display_name: "Triage".into(),
                    owner,
                }),
            },
        )
    };
    // A workflow an API key owns tells no one; one a user owns tells that user.
    publish(
        &publisher,
        &failed("apiKeys/0190d6c1-0000-7000-8000-000000000003".into()),
    )
    .await;
    let told = failed(format!("users/{ada}"));
    publish_until_seen(
        &app,
        &publisher,
        &told,
        tenant,
        "workflow.execution_failed",
        1,
    )
    .await;
    let execution = told.data.execution.as_ref().unwrap().name.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let inbox = loop {
        let inbox = app
            .as_user(tenant, ada)
            .list_inbox_messages(wire::ListInboxMessagesRequest::default())
            .await
            .unwrap()
            .into_inner();
        if !inbox.messages.is_empty() {
            break inbox;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message for the owner"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(inbox.messages.len(), 1);
    let message = &inbox.messages[0];
    assert_eq!(message.title, "Workflow Triage failed");
    assert_eq!(message.body, "Node notify_crm: the endpoint answered 500");
    assert_eq!(message.link, format!("/{execution}"));
    assert_eq!(message.priority, wire::NotificationPriority::High as i32);
    assert_eq!(
        notifications(&app, tenant, "workflow.execution_failed")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn erasing_the_notification_that_opened_a_digest_sends_what_it_batched_alone() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let ada = UserId::generate();
    crate::helpers::batch_topic(&app, tenant, ada, "ticket.new", 600).await;
    let submission = "forms/0190c6a6-8a61-7000-8000-000000000001/submissions/0190c6a6-8a61-7000-8000-000000000002";
    let mut deliveries = Vec::new();
    for (title, transaction_id) in [
        (
            "About the submission",
            format!("forms.submission.created:{submission}"),
        ),
        ("Unrelated", String::new()),
    ] {
        let sent = app
            .send(
                tenant,
                wire::SendNotificationRequest {
                    transaction_id,
                    ..crate::helpers::inline(
                        vec![crate::helpers::user(ada)],
                        "ticket.new",
                        title,
                        "Body",
                    )
                },
            )
            .await;
        deliveries.push(sent.notification.unwrap().deliveries.remove(0));
    }
    assert!(deliveries[0].digest);
    assert_eq!(deliveries[1].state, wire::DeliveryState::Batched as i32);

    let publisher = Publisher::new(&app.infra.amqp, "test");
    let deleted = Envelope::new(
        Some(tenant),
        events::SubmissionDeleted {
            submission: submission.into(),
            form: "forms/0190c6a6-8a61-7000-8000-000000000001".into(),
        },
    );
    let mut admin = app.admin(tenant);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        publish(&publisher, &deleted).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let gone = admin
            .get_delivery(wire::GetDeliveryRequest {
                name: deliveries[0].name.clone(),
            })
            .await;
        if gone.is_err_and(|status| status.code() == Code::NotFound) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the erasure never reached svc-notify"
        );
    }
    // Long before the window would have ended, the batched one goes out on its own.
    let alone = app
        .wait_for_delivery(tenant, &deliveries[1].name, wire::DeliveryState::Delivered)
        .await;
    assert!(alone.digest_delivery.is_empty());
    let inbox = app
        .as_user(tenant, ada)
        .list_inbox_messages(wire::ListInboxMessagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .messages;
    let titles: Vec<&str> = inbox.iter().map(|message| message.title.as_str()).collect();
    assert_eq!(titles, ["Unrelated"]);
}

fn invitation(tenant: TenantId, token: &str) -> Envelope<events::InvitationCreated> {
    Envelope::new(
        Some(tenant),
        events::InvitationCreated {
            invitation: Some(auth::Invitation {
                name: "invitations/0190c6a6-8a61-7000-8000-0000000000a1".into(),
                email: "grace@example.com".into(),
                role: auth::Role::Admin as i32,
                message: "Welcome aboard".into(),
                expire_time: Some(pbjson_types::Timestamp {
                    seconds: 1_796_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            token: token.into(),
            tenant_slug: "acme".into(),
            tenant_display_name: "Acme".into(),
            inviter_display_name: "Ada".into(),
        },
    )
}

fn reset_requested(tenant: TenantId, token: &str) -> Envelope<events::PasswordResetRequested> {
    Envelope::new(
        Some(tenant),
        events::PasswordResetRequested {
            user_id: UserId::generate().to_string(),
            email: "ada@example.com".into(),
            display_name: "Ada".into(),
            token: token.into(),
            expire_time: Some(pbjson_types::Timestamp {
                seconds: 1_796_000_000,
                nanos: 0,
            }),
            tenant_slug: "acme".into(),
            tenant_display_name: "Acme".into(),
            ip_address: "203.0.113.7".into(),
        },
    )
}

#[tokio::test]
async fn invitations_and_password_resets_are_emailed_with_their_links_and_no_token_stays_at_rest() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let (invitation_token, reset_token) = ("ffi_invitation_secret_42", "ffp_reset_secret_42");
    let invited = invitation(tenant, invitation_token);
    let seen = publish_until_seen(&app, &publisher, &invited, tenant, "auth.invitation", 1).await;
    publish(&publisher, &invited).await; // delivered again: nothing more
    let requested = reset_requested(tenant, reset_token);
    let reset = publish_until_seen(
        &app,
        &publisher,
        &requested,
        tenant,
        "auth.password_reset",
        1,
    )
    .await;

    let mails = app.smtp.wait_for(2, Duration::from_secs(20)).await;
    let mail = |to: &str| mails.iter().find(|mail| mail.to == [to]).unwrap();
    let invitation_mail = mail("grace@example.com");
    assert_eq!(invitation_mail.subject, "Ada invited you to Acme");
    let text = invitation_mail.text.as_deref().unwrap();
    assert!(
        text.contains(&format!(
            "Accept the invitation: https://app.formflow.example/invitations/accept?tenant=acme&token={invitation_token}"
        )),
        "{text}"
    );
    assert!(
        text.contains("as admin") && text.contains("\"Welcome aboard\""),
        "{text}"
    );
    assert!(text.contains("It expires 2026-11-30 "), "{text}");
    let html = invitation_mail.html.as_deref().unwrap();
    assert!(
        // HTML-escaped (`/` as `&#x2f;` too), as every value of an HTML part.
        html.contains("accept?tenant=acme&amp;token=ffi_invitation_secret_42\">Accept"),
        "{html}"
    );
    let reset_mail = mail("ada@example.com");
    assert_eq!(reset_mail.subject, "Reset your Acme password");
    let text = reset_mail.text.as_deref().unwrap();
    assert!(
        text.contains(&format!(
            "https://app.formflow.example/password-reset?tenant=acme&token={reset_token}"
        )) && text.contains("(from 203.0.113.7)"),
        "{text}"
    );

    // Shown sealed; once sent, nothing at rest holds a token, the sealed content included.
    for name in [&seen[0], &reset[0]] {
        let notification = app
            .admin(tenant)
            .get_notification(wire::GetNotificationRequest { name: name.clone() })
            .await
            .unwrap()
            .into_inner();
        assert!(notification.sealed && notification.subject.is_empty());
        assert_eq!(notification.source.unwrap().principal, "services/svc-auth");
        app.wait_for_delivery(
            tenant,
            &notification.deliveries[0].name,
            wire::DeliveryState::Delivered,
        )
        .await;
    }
    let mut admin = app.infra.admin_connection().await;
    let erased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notify.notifications WHERE sealed AND sealed_content IS NULL",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(erased, 2, "the sealed content is erased once sent");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'notify' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM notify.{table} t"
        )))
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for row in rows {
            assert!(
                !row.contains("secret_42"),
                "notify.{table} holds a token: {row}"
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 2, "one email per event");
}

#[tokio::test]
async fn without_an_app_url_or_sealing_keys_no_auth_email_goes_out() {
    for (unset_app_url, unset_keys) in [(true, false), (false, true)] {
        let app = TestApp::spawn_with(|config| {
            if unset_app_url {
                config.options.app_url = None;
            }
            if unset_keys {
                config.options.encryption_keys = None;
            }
        })
        .await;
        let tenant = TenantId::generate();
        let publisher = Publisher::new(&app.infra.amqp, "test");
        // A reaction that goes through shows the queue is there; the auth events published
        // next are handled (dead-lettered) by the time a second one went through, and a
        // moment more.
        let first = submission_created(tenant, &["ops@example.com"]);
        publish_until_seen(&app, &publisher, &first, tenant, "forms.submission", 1).await;
        publish(&publisher, &invitation(tenant, "ffi_x")).await;
        publish(&publisher, &reset_requested(tenant, "ffp_x")).await;
        let second = submission_created(tenant, &["ops@example.com"]);
        publish_until_seen(&app, &publisher, &second, tenant, "forms.submission", 2).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for topic in ["auth.invitation", "auth.password_reset"] {
            assert!(
                notifications(&app, tenant, topic).await.is_empty(),
                "{topic} (app url unset: {unset_app_url}, keys unset: {unset_keys})"
            );
        }
    }
}

#[tokio::test]
async fn a_sealed_email_a_worker_cannot_open_fails_for_good() {
    // This replica accepts and seals, and sends nothing; the other sends without the keys.
    let app = TestApp::spawn_with(|config| config.options.worker_concurrency = 0).await;
    let _keyless = app
        .replica_with(|config| {
            config.options.worker_concurrency = 16;
            config.options.encryption_keys = None;
        })
        .await;
    let tenant = TenantId::generate();
    let publisher = Publisher::new(&app.infra.amqp, "test");
    // The keyless replica refuses the event when it takes it; the other accepts it.
    let seen = publish_until_seen(
        &app,
        &publisher,
        &reset_requested(tenant, "ffp_sealed"),
        tenant,
        "auth.password_reset",
        1,
    )
    .await;
    let notification = app
        .admin(tenant)
        .get_notification(wire::GetNotificationRequest {
            name: seen[0].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let failed = app
        .wait_for_delivery(
            tenant,
            &notification.deliveries[0].name,
            wire::DeliveryState::Failed,
        )
        .await;
    assert_eq!(failed.attempt_count, 1, "not retried: {failed:?}");
    assert_eq!(
        failed.last_error,
        "sealed content needs NOTIFY_ENCRYPTION_KEYS"
    );
    assert!(app.smtp.messages().is_empty());
}
