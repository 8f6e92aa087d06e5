//! `trigger.form`: a `forms.submission.created` event on RabbitMQ starts an execution of each
//! active workflow listening to the form, once however often the event is delivered, and
//! never one of another tenant or an inactive workflow.

use std::time::Duration;

use platform::amqp::Publisher;
use platform::context::TenantId;
use platform::events::Envelope;
use platform::testing::{publish_envelope, wait_until};
use proto::formflow::events::v1 as events;
use proto::formflow::forms::v1 as forms;
use proto::formflow::workflow::v1 as wire;
use serde_json::json;

use crate::helpers::{
    Client, TestApp, definition, edge, json_of, node, object, wait_for, workflow,
};

/// trigger.form on `form` → map of the submission's answers.
fn on_submission(form: &str) -> wire::WorkflowDefinition {
    definition(
        vec![
            node("submitted", "trigger.form", json!({"form": form})),
            node(
                "ticket",
                "transform.map",
                json!({"output": {"subject": "{{ answers.subject }}", "from": "{{ form_title }}", "label": "{{ labels.subject }}"}}),
            ),
        ],
        vec![edge("submitted", "ticket", "")],
    )
}

async fn activate(client: &Client, name: &str) {
    client
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: name.to_owned(),
            version: 0,
        })
        .await
        .expect("activating");
}

fn submission_created(tenant: TenantId, form: &str) -> Envelope<events::SubmissionCreated> {
    let submission_id = uuid::Uuid::now_v7();
    Envelope::new(
        Some(tenant),
        events::SubmissionCreated {
            submission: Some(forms::Submission {
                name: format!("{form}/submissions/{submission_id}"),
                id: submission_id.to_string(),
                form_version: 1,
                data: Some(object(json!({"subject": "Printer on fire", "count": 2}))),
                submitter: String::new(),
                create_time: Some(platform::wire::timestamp(chrono::Utc::now())),
            }),
            form: form.to_owned(),
            form_title: "Report a problem".into(),
            answers: vec![events::SubmittedAnswer {
                field_id: "subject".into(),
                label: "Subject".into(),
                r#type: forms::FieldType::Text as i32,
                value: Some(serde_json::from_value(json!("Printer on fire")).unwrap()),
            }],
            notification_recipients: Vec::new(),
            form_slug: "report".into(),
            analysis: None,
        },
    )
}

async fn executions(client: &Client) -> Vec<wire::Execution> {
    client
        .clone()
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .executions
}

#[tokio::test]
async fn each_submission_runs_the_active_workflows_of_its_form_once() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let form = format!("forms/{}", uuid::Uuid::now_v7());
    let member = app.member(acme);
    let listening = app
        .create(acme, workflow("Tickets", on_submission(&form)))
        .await;
    activate(&member, &listening.name).await;
    // Not started: an inactive workflow, one listening to another form, another tenant's.
    app.create(acme, workflow("Draft", on_submission(&form)))
        .await;
    let other_form = app
        .create(
            acme,
            workflow(
                "Other",
                on_submission(&format!("forms/{}", uuid::Uuid::now_v7())),
            ),
        )
        .await;
    activate(&member, &other_form.name).await;
    let foreign = app
        .create(globex, workflow("Globex", on_submission(&form)))
        .await;
    activate(&app.member(globex), &foreign.name).await;

    let publisher = Publisher::new(&app.infra.amqp, "test");
    let event = submission_created(acme, &form);
    // The service's queue is declared when its consumer connects: until an execution shows,
    // the event is sent again, as a relay that crashed before marking it sent would.
    wait_until(
        Duration::from_secs(15),
        "an execution is queued",
        || async {
            publish_envelope(&publisher, &event).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            !executions(&member).await.is_empty()
        },
    )
    .await;
    publish_envelope(&publisher, &event).await; // one more redelivery
    let started = executions(&member).await;
    let execution = wait_for(&member, &started[0].name, wire::ExecutionState::Succeeded).await;
    assert_eq!(execution.workflow, listening.name);
    assert_eq!(execution.trigger_kind(), wire::TriggerKind::Form);
    assert_eq!(execution.trigger_node, "submitted");
    assert_eq!(
        execution.trigger_ref,
        event.data.submission.as_ref().unwrap().name
    );
    assert_eq!(execution.triggered_by, "");
    assert_eq!(
        json_of(execution.output.as_ref()),
        json!({"subject": "Printer on fire", "from": "Report a problem", "label": "Subject"})
    );
    let input = serde_json::to_value(execution.input.as_ref().unwrap()).unwrap();
    assert_eq!(input["form"], form.as_str());
    assert_eq!(input["form_slug"], "report");

    // The duplicate and the other tenant start nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(executions(&member).await.len(), 1);
    assert!(executions(&app.member(globex)).await.is_empty());
}
