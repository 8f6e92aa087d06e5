//! Definitions are validated when saved, each problem listed at its path; node types publish
//! the JSON Schema their configs are checked against.

use platform::context::TenantId;
use platform::testing::{expect_code, violated_fields};
use proto::formflow::workflow::v1 as wire;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{TestApp, definition, edge, manual_flow, node, workflow};

async fn refused_fields(
    app: &TestApp,
    tenant: TenantId,
    definition: wire::WorkflowDefinition,
) -> Vec<String> {
    let refused = expect_code(
        app.member(tenant)
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow("Refused", definition)),
            })
            .await,
        Code::InvalidArgument,
    );
    violated_fields(&refused)
}

#[tokio::test]
async fn saving_lists_every_problem_of_a_definition_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let broken = definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("Bad Id", "transform.map", json!({"output": 1})),
            node("magic", "transform.magic", json!({})),
            node(
                "check",
                "logic.if",
                json!({"condition": "amount > `10`", "extra": true}),
            ),
            node("loop-a", "transform.map", json!({"output": "{{ a }}"})),
            node("loop-b", "transform.map", json!({"output": "{{ b }}"})),
            node("island", "transform.map", json!({"output": "{{ c"})),
            node("start", "trigger.manual", json!({})),
        ],
        vec![
            edge("start", "check", ""),
            edge("check", "loop-a", "maybe"),
            edge("check", "loop-a", "true"),
            edge("loop-a", "loop-b", ""),
            edge("loop-b", "loop-a", ""),
            edge("check", "start", "false"),
            edge("ghost", "magic", ""),
        ],
    );
    let fields = refused_fields(&app, tenant, broken).await;
    assert_eq!(
        fields,
        [
            "workflow.definition.nodes[1].id",
            "workflow.definition.nodes[2].type",
            "workflow.definition.nodes[3].config",
            "workflow.definition.nodes[6].config.output",
            "workflow.definition.nodes[7].id",
            "workflow.definition.edges[1].when",
            "workflow.definition.edges[5].to",
            "workflow.definition.edges[6].from",
            "workflow.definition.edges[4]",
            "workflow.definition.nodes[1]",
            "workflow.definition.nodes[2]",
            "workflow.definition.nodes[6]",
        ]
    );
    let listed = app
        .member(tenant)
        .list_workflows(wire::ListWorkflowsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.workflows.is_empty(),
        "a refused definition is never saved"
    );
}

#[tokio::test]
async fn each_node_type_checks_its_config() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    // (type, config, the path of its problem under the node's config; `None`: accepted)
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "trigger.form",
            json!({"form": "forms/0193a0c8-0000-7000-8000-000000000001"}),
            None,
        ),
        ("trigger.form", json!({"form": "contact"}), Some(".form")),
        ("trigger.schedule", json!({"cron": "*/5 * * * *"}), None),
        (
            "trigger.schedule",
            json!({"cron": "every day"}),
            Some(".cron"),
        ),
        (
            "trigger.schedule",
            json!({"cron": "0 9 * * *", "time_zone": "Moon/Base"}),
            Some(".time_zone"),
        ),
        ("transform.map", json!({}), Some("")),
        (
            "transform.filter",
            json!({"items": "answers", "condition": "score >= `5`"}),
            None,
        ),
        (
            "transform.filter",
            json!({"condition": "score >= "}),
            Some(".condition"),
        ),
        (
            "transform.aggregate",
            json!({"operation": "median"}),
            Some(".operation"),
        ),
        (
            "transform.aggregate",
            json!({"operation": "sum", "value": "price", "group_by": "kind"}),
            None,
        ),
        (
            "logic.switch",
            json!({"value": "kind", "cases": []}),
            Some(".cases"),
        ),
        (
            "logic.foreach",
            json!({"items": "lines", "max_items": 0}),
            Some(".max_items"),
        ),
        ("logic.delay", json!({"seconds": 60}), None),
        (
            "logic.delay",
            json!({"seconds": 60, "until": "{{ due }}"}),
            Some(""),
        ),
        (
            "action.http",
            json!({"url": "https://example.com", "headers": {"Bad Header": "x"}}),
            Some(".headers"),
        ),
        (
            "action.http",
            json!({"url": "https://example.com", "timeout_seconds": 301}),
            Some(".timeout_seconds"),
        ),
        (
            "action.http",
            json!({"url": "https://example.com/{{ id }}", "body": {"n": "{{ name }}"}}),
            None,
        ),
        (
            "action.ai_classify",
            json!({"text": "{{ message }}", "label_set": "labelSets/0193a0c8-0000-7000-8000-000000000002"}),
            None,
        ),
        (
            "action.ai_classify",
            json!({"text": "{{ message }}"}),
            Some(""),
        ),
        (
            "action.notify",
            json!({"recipients": [], "topic": "forms", "body": "hi"}),
            Some(".recipients"),
        ),
        (
            "action.notify",
            json!({"recipients": ["users/{{ owner }}"], "topic": "forms.submitted", "subject": "New", "body": "New: {{ title }}"}),
            None,
        ),
        (
            "action.email",
            json!({"to": ["{{ email }}"], "subject": "Thanks", "text": "We got it {{ name"}),
            Some(".text"),
        ),
    ];
    for (node_type, config, problem) in cases {
        let mut tested = manual_flow();
        tested.nodes.push(node("tested", node_type, config.clone()));
        if !node_type.starts_with("trigger.") {
            tested.edges.push(edge("start", "tested", ""));
        }
        let result = app
            .member(tenant)
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow(node_type, tested)),
            })
            .await;
        match (result, problem) {
            (Ok(_), None) => {}
            (Err(status), Some(path)) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{node_type} {config}");
                assert_eq!(
                    violated_fields(&status),
                    [format!("workflow.definition.nodes[2].config{path}")],
                    "{node_type} {config}: {}",
                    status.message()
                );
            }
            (result, expected) => {
                panic!("{node_type} {config}: expected {expected:?}, got {result:?}")
            }
        }
    }
}

#[tokio::test]
async fn retry_policies_and_timeouts_are_typed_and_bounded() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let seconds = |seconds| Some(pbjson_types::Duration { seconds, nanos: 0 });
    let mut tuned = manual_flow();
    tuned.nodes[1].retry = Some(wire::RetryPolicy {
        max_attempts: 5,
        initial_backoff: Some(pbjson_types::Duration {
            seconds: 0,
            nanos: 250_000_000,
        }),
        max_backoff: seconds(30),
    });
    tuned.nodes[1].timeout = seconds(10);
    tuned.settings = Some(wire::WorkflowSettings {
        lock_key: "{{ customer.id }}".into(),
        timeout: seconds(86_400),
    });
    let created = app.create(tenant, workflow("Tuned", tuned)).await;
    let saved = created.definition.unwrap();
    let retry = saved.nodes[1].retry.unwrap();
    assert_eq!(retry.max_attempts, 5);
    assert_eq!(retry.initial_backoff.unwrap().nanos, 250_000_000);
    assert_eq!(retry.max_backoff.unwrap().seconds, 30);
    assert_eq!(saved.nodes[1].timeout.unwrap().seconds, 10);
    assert_eq!(saved.settings.unwrap().lock_key, "{{ customer.id }}");

    let mut out_of_bounds = manual_flow();
    out_of_bounds.nodes[1].retry = Some(wire::RetryPolicy {
        max_attempts: 11,
        initial_backoff: seconds(10),
        max_backoff: seconds(5),
    });
    out_of_bounds.nodes[1].timeout = seconds(0);
    out_of_bounds.settings = Some(wire::WorkflowSettings {
        lock_key: "{{ id".into(),
        timeout: seconds(31 * 86_400),
    });
    assert_eq!(
        refused_fields(&app, tenant, out_of_bounds).await,
        [
            "workflow.definition.nodes[1].retry.max_attempts",
            "workflow.definition.nodes[1].retry.max_backoff",
            "workflow.definition.nodes[1].timeout",
            "workflow.definition.settings.lock_key",
            "workflow.definition.settings.timeout",
        ]
    );
}

#[tokio::test]
async fn node_types_publish_the_schemas_configs_are_checked_against() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, platform::context::Role::Viewer);
    let all = client
        .list_node_types(wire::ListNodeTypesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = all
        .node_types
        .iter()
        .map(|node_type| node_type.r#type.as_str())
        .collect();
    assert_eq!(names.len(), 15);
    assert!(
        names.windows(2).all(|pair| pair[0] < pair[1]),
        "by type name: {names:?}"
    );
    for expected in [
        "trigger.form",
        "trigger.webhook",
        "trigger.schedule",
        "trigger.manual",
        "action.http",
        "logic.foreach",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    let condition = all
        .node_types
        .iter()
        .find(|node_type| node_type.r#type == "logic.if")
        .unwrap();
    assert_eq!(condition.outputs, ["true", "false"]);
    assert_eq!(condition.category, wire::NodeCategory::Logic as i32);
    let schema = serde_json::to_value(condition.config_schema.as_ref().unwrap()).unwrap();
    assert_eq!(schema["required"], json!(["condition"]));
    assert_eq!(schema["additionalProperties"], json!(false));

    let triggers = client
        .list_node_types(wire::ListNodeTypesRequest {
            category: wire::NodeCategory::Trigger as i32,
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(triggers.node_types.len(), 3);
    let rest = client
        .list_node_types(wire::ListNodeTypesRequest {
            category: wire::NodeCategory::Trigger as i32,
            page_size: 3,
            page_token: triggers.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.node_types.len(), 1);
    assert!(rest.next_page_token.is_empty());
    assert!(
        triggers
            .node_types
            .iter()
            .chain(&rest.node_types)
            .all(|node_type| node_type.category == wire::NodeCategory::Trigger as i32)
    );

    let anonymous = expect_code(
        app.client(None, Some(tenant))
            .list_node_types(wire::ListNodeTypesRequest::default())
            .await,
        Code::Unauthenticated,
    );
    assert!(!anonymous.message().is_empty());
}
