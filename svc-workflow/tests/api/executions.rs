//! Executions: manual runs through the engine on RabbitMQ, every node run recorded, branches,
//! joins, loops, delays in a delay queue, failures and error edges, retry, cancel, the events,
//! and an execution that outlives a restart of the service or a lost job message.

use std::time::Duration;

use platform::context::TenantId;
use platform::testing::{EventObserver, TcpProxy, error_reason, expect_code, violated_fields};
use proto::formflow::workflow::v1 as wire;
use serde_json::{Value, json};
use tonic::Code;
use wire::{ExecutionState, NodeExecutionState};

use crate::helpers::{
    Client, TestApp, definition, edge, json_of, node, node_runs, object, run, wait_for, workflow,
};

/// `(node_id, iteration, state, port)` of each run, in the order they started.
fn timeline(runs: &[wire::NodeExecution]) -> Vec<(String, i32, NodeExecutionState, String)> {
    runs.iter()
        .map(|run| {
            (
                run.node_id.clone(),
                run.iteration,
                run.state(),
                run.output_port.clone(),
            )
        })
        .collect()
}

fn step(
    node: &str,
    iteration: i32,
    state: NodeExecutionState,
    port: &str,
) -> (String, i32, NodeExecutionState, String) {
    (node.to_owned(), iteration, state, port.to_owned())
}

/// start → check (score > 5) → high | low → done (a join of both branches).
fn branching() -> wire::WorkflowDefinition {
    definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("check", "logic.if", json!({"condition": "score > `5`"})),
            node(
                "high",
                "transform.map",
                json!({"output": {"level": "high", "who": "{{ name }}"}}),
            ),
            node(
                "low",
                "transform.map",
                json!({"output": {"level": "low", "who": "{{ name }}"}}),
            ),
            node(
                "done",
                "transform.map",
                json!({"output": "{{ level }} for {{ who }}"}),
            ),
        ],
        vec![
            edge("start", "check", ""),
            edge("check", "high", "true"),
            edge("check", "low", "false"),
            edge("high", "done", ""),
            edge("low", "done", ""),
        ],
    )
}

async fn create(
    app: &TestApp,
    tenant: TenantId,
    name: &str,
    definition: wire::WorkflowDefinition,
) -> String {
    app.create(tenant, workflow(name, definition)).await.name
}

#[tokio::test]
async fn a_manual_run_follows_the_taken_branch_and_records_every_node() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut events = EventObserver::start(&app.infra.amqp, &["workflow.execution.#"]).await;
    let name = create(&app, tenant, "Triage", branching()).await;

    let queued = run(&member, &name, json!({"score": 7, "name": "Ada"})).await;
    // Every node is pure: the run ended in the call that started it.
    assert_eq!(queued.state(), ExecutionState::Succeeded);
    assert_eq!(json_of(queued.output.as_ref()), json!("high for Ada"));
    assert_eq!(queued.trigger_kind(), wire::TriggerKind::Manual);
    assert_eq!(queued.trigger_node, "start");
    assert_eq!(queued.workflow, name);
    assert_eq!(queued.workflow_version, 1);
    assert!(
        queued.triggered_by.starts_with("users/"),
        "{}",
        queued.triggered_by
    );
    let done = wait_for(&member, &queued.name, ExecutionState::Succeeded).await;
    assert_eq!(json_of(done.output.as_ref()), json!("high for Ada"));
    assert!(done.start_time.is_some() && done.end_time.is_some());
    assert_eq!(
        serde_json::to_value(done.input.as_ref().unwrap()).unwrap(),
        json!({"score": 7.0, "name": "Ada"})
    );

    let runs = node_runs(&member, &queued.name).await;
    let mut steps = timeline(&runs);
    steps.sort();
    assert_eq!(
        steps,
        [
            step("check", -1, NodeExecutionState::Succeeded, "true"),
            step("done", -1, NodeExecutionState::Succeeded, ""),
            step("high", -1, NodeExecutionState::Succeeded, ""),
            step("low", -1, NodeExecutionState::Skipped, ""),
            step("start", -1, NodeExecutionState::Succeeded, ""),
        ]
    );
    let high = runs.iter().find(|run| run.node_id == "high").unwrap();
    assert_eq!(
        json_of(high.input.as_ref()),
        json!({"score": 7, "name": "Ada"})
    );
    assert_eq!(
        json_of(high.output.as_ref()),
        json!({"level": "high", "who": "Ada"})
    );
    assert_eq!(high.attempt, 1);
    assert!(
        high.name
            .starts_with(&format!("{}/nodeExecutions/", queued.name))
    );

    let other = run(&member, &name, json!({"score": 1, "name": "Bob"})).await;
    let done = wait_for(&member, &other.name, ExecutionState::Succeeded).await;
    assert_eq!(json_of(done.output.as_ref()), json!("low for Bob"));

    let received = events.receive(4, Duration::from_secs(10)).await;
    let mut kinds: Vec<&str> = received.iter().map(|event| event.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "workflow.execution.started",
            "workflow.execution.started",
            "workflow.execution.succeeded",
            "workflow.execution.succeeded"
        ]
    );
    let succeeded = received
        .iter()
        .find(|event| {
            event.kind == "workflow.execution.succeeded"
                && event.body["data"]["execution"]["name"] == queued.name.as_str()
        })
        .expect("the first run's success");
    assert_eq!(succeeded.body["tenant_id"], tenant.to_string());
    assert_eq!(succeeded.body["data"]["workflow"]["display_name"], "Triage");
    assert_eq!(succeeded.body["data"]["workflow"]["name"], name.as_str());
    assert!(
        succeeded.body["data"]["workflow"]["owner"]
            .as_str()
            .unwrap()
            .starts_with("users/")
    );
    assert_eq!(
        succeeded.body["data"]["execution"]["output"],
        "high for Ada"
    );
}

#[tokio::test]
async fn loops_filters_aggregates_and_switches_run_over_real_data() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let name = create(
        &app,
        tenant,
        "Orders",
        definition(
            vec![
                node("start", "trigger.manual", json!({})),
                node("big", "transform.filter", json!({"items": "orders", "condition": "total > `10`"})),
                node("sum", "transform.aggregate", json!({"operation": "sum", "value": "total"})),
                node("each", "logic.foreach", json!({"items": "orders"})),
                node(
                    "size",
                    "logic.switch",
                    json!({"value": "size", "cases": [{"name": "large", "equals": "L"}, {"name": "small", "equals": "S"}]}),
                ),
                node("label", "transform.map", json!({"output": "{{ id }} is large"})),
                node("other", "transform.map", json!({"output": "{{ id }} is not"})),
            ],
            vec![
                edge("start", "big", ""),
                edge("big", "sum", ""),
                edge("start", "each", ""),
                edge("each", "size", ""),
                edge("size", "label", "large"),
                edge("size", "other", "default"),
            ],
        ),
    )
    .await;
    let orders = json!({"orders": [
        {"id": "a", "total": 5, "size": "S"},
        {"id": "b", "total": 12.5, "size": "L"},
        {"id": "c", "total": 30, "size": "M"}
    ]});
    let execution = run(&member, &name, orders).await;
    wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    let runs = node_runs(&member, &execution.name).await;
    let output = |node: &str, iteration: i32| {
        let run = runs
            .iter()
            .find(|run| run.node_id == node && run.iteration == iteration)
            .unwrap_or_else(|| panic!("no run of {node}#{iteration}"));
        (
            run.state(),
            json_of(run.output.as_ref()),
            run.output_port.clone(),
        )
    };
    assert_eq!(output("sum", -1).1, json!(42.5));
    assert_eq!(output("big", -1).1.as_array().unwrap().len(), 2);
    assert_eq!(output("size", 0).2, "small");
    assert_eq!(output("size", 1).2, "large");
    assert_eq!(output("size", 2).2, "default");
    assert_eq!(output("label", 1).1, json!("b is large"));
    assert_eq!(output("label", 0).0, NodeExecutionState::Skipped);
    assert_eq!(output("other", 2).1, json!("c is not"));
    assert_eq!(
        output("other", 0).0,
        NodeExecutionState::Skipped,
        "small is a case without edges"
    );
    assert_eq!(
        runs.len(),
        4 + 3 * 3,
        "start, big, sum, each; size, label, other per item"
    );

    // Paging through the node runs sees each once, in the order they started.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = member
            .clone()
            .list_node_executions(wire::ListNodeExecutionsRequest {
                parent: execution.name.clone(),
                page_size: 5,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.node_executions.into_iter().map(|run| run.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        runs.iter().map(|run| run.id.clone()).collect::<Vec<_>>()
    );
    let only_size = member
        .clone()
        .list_node_executions(wire::ListNodeExecutionsRequest {
            parent: execution.name.clone(),
            node_id: "size".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_size.node_executions.len(), 3);
}

/// start → wait (a delay) → after.
fn waiting(seconds: u64) -> wire::WorkflowDefinition {
    definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("wait", "logic.delay", json!({"seconds": seconds})),
            node(
                "after",
                "transform.map",
                json!({"output": {"waited": "{{ n }}"}}),
            ),
        ],
        vec![edge("start", "wait", ""), edge("wait", "after", "")],
    )
}

#[tokio::test]
async fn a_delay_parks_the_execution_without_a_worker_and_survives_a_restart() {
    let mut app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let name = create(&app, tenant, "Later", waiting(2)).await;
    let execution = run(&app.member(tenant), &name, json!({"n": 1})).await;
    wait_for(
        &app.member(tenant),
        &execution.name,
        ExecutionState::Waiting,
    )
    .await;
    let runs = node_runs(&app.member(tenant), &execution.name).await;
    let wait = runs.iter().find(|run| run.node_id == "wait").unwrap();
    assert_eq!(wait.state(), NodeExecutionState::Waiting);

    // The job waits in RabbitMQ's delay queue; a new replica takes it when it is due.
    app.restart(|_| {}).await;
    let member = app.member(tenant);
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    assert_eq!(json_of(done.output.as_ref()), json!({"waited": 1}));
    let runs = node_runs(&member, &execution.name).await;
    let wait = runs.iter().find(|run| run.node_id == "wait").unwrap();
    assert_eq!(wait.state(), NodeExecutionState::Succeeded);
    let waited =
        wait.end_time.as_ref().unwrap().seconds - wait.start_time.as_ref().unwrap().seconds;
    assert!(waited >= 1, "the delay ended after {waited} s");
}

#[tokio::test]
async fn a_run_of_pure_nodes_too_long_to_run_at_once_goes_through_the_queue() {
    // A loop of 520 items through two nodes makes 1,042 node runs, more than an execution may
    // make in the call that starts it: it is queued, and a worker runs it whole, saving its
    // runs once on the way (every 1,000).
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let looping = definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("each", "logic.foreach", json!({"items": "items"})),
            node(
                "double",
                "transform.map",
                json!({"output": {"n": "{{ n }}"}}),
            ),
            node("label", "transform.map", json!({"output": "item {{ n }}"})),
        ],
        vec![
            edge("start", "each", ""),
            edge("each", "double", ""),
            edge("double", "label", ""),
        ],
    );
    let name = create(&app, tenant, "Long loop", looping).await;
    let items: Vec<Value> = (0..520).map(|n| json!({"n": n})).collect();
    let execution = run(&member, &name, json!({"items": items})).await;
    assert_eq!(execution.state(), ExecutionState::Queued);
    wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    let runs = node_runs(&member, &execution.name).await;
    assert_eq!(runs.len(), 1_042, "each node ran once per item");
    assert!(
        runs.iter()
            .all(|run| run.state() == NodeExecutionState::Succeeded)
    );
    let labels: std::collections::BTreeSet<String> = runs
        .iter()
        .filter(|run| run.node_id == "label")
        .map(|run| json_of(run.output.as_ref()).as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels.len(), 520);
    assert!(labels.contains("item 519"), "{labels:?}");
}

/// The service, reaching RabbitMQ through a proxy the test can cut.
async fn behind_a_broker_proxy() -> (TestApp, TcpProxy) {
    let mut app = TestApp::spawn().await;
    let proxy = TcpProxy::start(app.infra.broker_addr().await).await;
    let url = app.infra.amqp_url_through(proxy.addr());
    app.restart(|config| {
        config.infra.amqp.amqp_url = Some(secrecy::SecretString::from(url));
    })
    .await;
    (app, proxy)
}

#[tokio::test]
async fn a_lost_job_message_is_sent_again() {
    // The service reaches RabbitMQ through a proxy that is cut while a run is queued: the
    // execution is committed, its job cannot be sent, and the sweeper sends it once the
    // broker is back.
    let (app, proxy) = behind_a_broker_proxy().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    // A delay makes it go through the queue (pure nodes alone run at once).
    let delayed = definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("pause", "logic.delay", json!({"seconds": 1})),
            node(
                "greet",
                "transform.map",
                json!({"output": {"greeting": "Hello {{ name }}"}}),
            ),
        ],
        vec![edge("start", "pause", ""), edge("pause", "greet", "")],
    );
    let name = create(&app, tenant, "Resilient", delayed).await;
    proxy.cut();
    let execution = run(&member, &name, json!({"name": "Ada"})).await;
    assert_eq!(execution.state(), ExecutionState::Queued);
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    assert_eq!(
        json_of(done.output.as_ref()),
        json!({"greeting": "Hello Ada"})
    );
    let runs = node_runs(&member, &execution.name).await;
    assert_eq!(runs.len(), 3, "each node ran once: {runs:?}");
}

#[tokio::test]
async fn a_run_of_pure_nodes_ends_at_once_with_the_broker_away_and_its_events_follow() {
    let (app, proxy) = behind_a_broker_proxy().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut events = EventObserver::start(&app.infra.amqp, &["workflow.execution.#"]).await;
    let name = create(&app, tenant, "At once", crate::helpers::manual_flow()).await;
    proxy.cut();
    let execution = run(&member, &name, json!({"name": "Ada"})).await;
    assert_eq!(execution.state(), ExecutionState::Succeeded);
    assert_eq!(
        json_of(execution.output.as_ref()),
        json!({"greeting": "Hello Ada"})
    );
    assert!(execution.start_time.is_some() && execution.end_time.is_some());
    let runs = node_runs(&member, &execution.name).await;
    let mut steps = timeline(&runs);
    steps.sort();
    assert_eq!(
        steps,
        [
            step("greet", -1, NodeExecutionState::Succeeded, ""),
            step("start", -1, NodeExecutionState::Succeeded, ""),
        ]
    );
    // The events wait in the outbox for the broker, then arrive once each, in order.
    proxy.restore();
    let received = events.receive(2, Duration::from_secs(20)).await;
    let kinds: Vec<&str> = received.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["workflow.execution.started", "workflow.execution.succeeded"]
    );
    for event in &received {
        assert_eq!(
            event.body["data"]["execution"]["name"],
            execution.name.as_str()
        );
    }
    assert_eq!(
        received[1].body["data"]["execution"]["output"],
        json!({"greeting": "Hello Ada"})
    );
    assert!(
        events
            .nothing_more_arrives(Duration::from_millis(500))
            .await
    );
}

#[tokio::test]
async fn cancelling_stops_an_execution_for_good() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut events =
        EventObserver::start(&app.infra.amqp, &["workflow.execution.cancelled.#"]).await;
    let name = create(&app, tenant, "Long wait", waiting(3_600)).await;
    let execution = run(&member, &name, json!({"n": 1})).await;
    wait_for(&member, &execution.name, ExecutionState::Waiting).await;

    let viewer = app.user(tenant, platform::context::Role::Viewer);
    expect_code(
        viewer
            .clone()
            .cancel_execution(wire::CancelExecutionRequest {
                name: execution.name.clone(),
                reason: String::new(),
            })
            .await,
        Code::PermissionDenied,
    );
    let cancelled = member
        .clone()
        .cancel_execution(wire::CancelExecutionRequest {
            name: execution.name.clone(),
            reason: "not needed".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), ExecutionState::Cancelled);
    let error = cancelled.error.unwrap();
    assert_eq!(error.code, "CANCELLED");
    assert!(error.message.ends_with(": not needed"), "{}", error.message);
    let runs = node_runs(&member, &execution.name).await;
    let wait = runs.iter().find(|run| run.node_id == "wait").unwrap();
    assert_eq!(wait.state(), NodeExecutionState::Cancelled);

    let again = expect_code(
        member
            .clone()
            .cancel_execution(wire::CancelExecutionRequest {
                name: execution.name.clone(),
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&again), "EXECUTION_ENDED");
    let event = events.receive(1, Duration::from_secs(10)).await;
    assert_eq!(
        event[0].body["data"]["execution"]["state"],
        "EXECUTION_STATE_CANCELLED"
    );
    assert_eq!(
        event[0].body["data"]["workflow"]["display_name"],
        "Long wait"
    );

    // Retrying a cancelled execution runs it again, linked to it.
    let retried = member
        .clone()
        .retry_execution(wire::RetryExecutionRequest {
            name: execution.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.retry_of, execution.name);
    assert_eq!(retried.trigger_kind(), wire::TriggerKind::Retry);
    assert_eq!(retried.trigger_ref, execution.name);
    assert_ne!(retried.id, execution.id);
    wait_for(&member, &retried.name, ExecutionState::Waiting).await;
    let still = member
        .clone()
        .get_execution(wire::GetExecutionRequest {
            name: execution.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state(), ExecutionState::Cancelled);
}

#[tokio::test]
async fn a_failing_node_fails_the_execution_unless_an_error_edge_takes_it() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let failing = |with_fallback: bool| {
        let mut nodes = vec![
            node("start", "trigger.manual", json!({})),
            node(
                "broken",
                "transform.map",
                json!({"output": "{{ abs(name) }}"}),
            ),
        ];
        let mut edges = vec![edge("start", "broken", "")];
        if with_fallback {
            nodes.push(node(
                "fallback",
                "transform.map",
                json!({"output": {"failed": "{{ error.code }}", "for": "{{ input.name }}"}}),
            ));
            edges.push(edge("broken", "fallback", "error"));
        }
        definition(nodes, edges)
    };
    let unhandled = create(&app, tenant, "Unhandled", failing(false)).await;
    let execution = run(&member, &unhandled, json!({"name": "Ada"})).await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    let error = failed.error.unwrap();
    assert_eq!(error.code, "EXPRESSION_ERROR");
    assert_eq!(error.node_id, "broken");
    assert!(error.message.contains("abs(name)"), "{}", error.message);
    let runs = node_runs(&member, &execution.name).await;
    let broken = runs.iter().find(|run| run.node_id == "broken").unwrap();
    assert_eq!(broken.state(), NodeExecutionState::Failed);
    assert_eq!(
        broken.attempt, 1,
        "an expression fails the same way every time: no retry"
    );

    let retried = member
        .clone()
        .retry_execution(wire::RetryExecutionRequest {
            name: execution.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    wait_for(&member, &retried.name, ExecutionState::Failed).await;

    let handled = create(&app, tenant, "Handled", failing(true)).await;
    let execution = run(&member, &handled, json!({"name": "Ada"})).await;
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    assert_eq!(
        json_of(done.output.as_ref()),
        json!({"failed": "EXPRESSION_ERROR", "for": "Ada"})
    );
    let refused = expect_code(
        member
            .clone()
            .retry_execution(wire::RetryExecutionRequest {
                name: execution.name.clone(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&refused), "EXECUTION_NOT_RETRYABLE");
}

#[tokio::test]
async fn runs_are_checked_and_replayed_by_idempotency_key() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let name = create(&app, tenant, "Checked", branching()).await;
    let bad = expect_code(
        member
            .clone()
            .run_workflow(wire::RunWorkflowRequest {
                name: "workflows/nope".into(),
                version: -1,
                trigger_node: "Bad Id".into(),
                input: Some(object(json!({"big": "x".repeat(300 * 1024)}))),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&bad),
        ["name", "input", "version", "trigger_node"]
    );
    let not_trigger = expect_code(
        member
            .clone()
            .run_workflow(wire::RunWorkflowRequest {
                name: name.clone(),
                trigger_node: "check".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&not_trigger), ["trigger_node"]);
    let no_version = expect_code(
        member
            .clone()
            .run_workflow(wire::RunWorkflowRequest {
                name: name.clone(),
                version: 9,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&no_version), "VERSION_NOT_FOUND");
    let viewer = app.user(tenant, platform::context::Role::Viewer);
    expect_code(
        viewer
            .clone()
            .run_workflow(wire::RunWorkflowRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );

    let keyed = |input: Value| {
        let mut request = tonic::Request::new(wire::RunWorkflowRequest {
            name: name.clone(),
            input: Some(object(input)),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("idempotency-key", "run-once".parse().unwrap());
        request
    };
    let first = member
        .clone()
        .run_workflow(keyed(json!({"score": 9, "name": "A"})))
        .await
        .unwrap()
        .into_inner();
    let again = member
        .clone()
        .run_workflow(keyed(json!({"score": 9, "name": "A"})))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "the same answer, not a second execution");
    let reused = member
        .clone()
        .run_workflow(keyed(json!({"score": 1, "name": "B"})))
        .await;
    assert_eq!(reused.unwrap_err().code(), Code::InvalidArgument);
    wait_for(&member, &first.name, ExecutionState::Succeeded).await;
    let listed = list(&member, wire::ListExecutionsRequest::default()).await;
    assert_eq!(listed.len(), 1);
}

async fn list(client: &Client, request: wire::ListExecutionsRequest) -> Vec<wire::Execution> {
    client
        .clone()
        .list_executions(request)
        .await
        .expect("listing executions")
        .into_inner()
        .executions
}

#[tokio::test]
async fn executions_are_listed_newest_first_by_workflow_state_and_page() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let first = create(&app, tenant, "First", branching()).await;
    let second = create(&app, tenant, "Second", waiting(3_600)).await;
    let mut names = Vec::new();
    for score in 0..3 {
        let execution = run(&member, &first, json!({"score": score, "name": "x"})).await;
        wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
        names.push(execution.name);
    }
    let waiting_one = run(&member, &second, json!({"n": 1})).await;
    wait_for(&member, &waiting_one.name, ExecutionState::Waiting).await;
    names.push(waiting_one.name.clone());
    names.reverse();

    let all = list(&member, wire::ListExecutionsRequest::default()).await;
    assert_eq!(
        all.iter()
            .map(|execution| execution.name.clone())
            .collect::<Vec<_>>(),
        names
    );
    assert!(
        all.iter()
            .all(|execution| execution.input.is_none() && execution.output.is_none())
    );
    let of_first = list(
        &member,
        wire::ListExecutionsRequest {
            workflow: first.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(of_first.len(), 3);
    let waiting_now = list(
        &member,
        wire::ListExecutionsRequest {
            state: ExecutionState::Waiting as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(waiting_now.len(), 1);
    assert_eq!(waiting_now[0].name, waiting_one.name);

    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = member
            .clone()
            .list_executions(wire::ListExecutionsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        paged.extend(page.executions.into_iter().map(|execution| execution.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, names);
    let refused = expect_code(
        member
            .clone()
            .list_executions(wire::ListExecutionsRequest {
                page_token: token_of_other_filter(&member).await,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&refused), ["page_token"]);
}

async fn token_of_other_filter(client: &Client) -> String {
    client
        .clone()
        .list_executions(wire::ListExecutionsRequest {
            page_size: 1,
            state: ExecutionState::Succeeded as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token
}

#[tokio::test]
async fn a_run_of_pure_nodes_with_a_lock_key_goes_through_the_queue() {
    // Running at once would ignore an earlier execution holding the same key.
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut keyed = crate::helpers::manual_flow();
    keyed.settings = Some(wire::WorkflowSettings {
        lock_key: "{{ name }}".into(),
        ..Default::default()
    });
    let name = create(&app, tenant, "Keyed", keyed).await;
    let execution = run(&member, &name, json!({"name": "Ada"})).await;
    assert_eq!(execution.state(), ExecutionState::Queued);
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    assert_eq!(
        json_of(done.output.as_ref()),
        json!({"greeting": "Hello Ada"})
    );
}

#[tokio::test]
async fn one_execution_runs_at_a_time_per_lock_key() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut serialised = waiting(1);
    serialised.settings = Some(wire::WorkflowSettings {
        lock_key: "{{ customer }}".into(),
        ..Default::default()
    });
    let name = create(&app, tenant, "One at a time", serialised).await;
    let first = run(&member, &name, json!({"n": 1, "customer": "acme"})).await;
    wait_for(&member, &first.name, ExecutionState::Waiting).await;
    let second = run(&member, &name, json!({"n": 2, "customer": "acme"})).await;
    let other = run(&member, &name, json!({"n": 3, "customer": "globex"})).await;
    // Another key runs at once; the same key waits for the first to end.
    wait_for(&member, &other.name, ExecutionState::Waiting).await;
    let read = |name: &str| {
        let request = wire::GetExecutionRequest {
            name: name.to_owned(),
        };
        let mut client = member.clone();
        async move { client.get_execution(request).await.unwrap().into_inner() }
    };
    let queued = read(&second.name).await;
    // Read after it: while the first still waits (a loaded machine may have ended its wait by
    // now), the second has not started.
    if read(&first.name).await.state() == ExecutionState::Waiting {
        assert_eq!(queued.state(), ExecutionState::Queued);
    }
    let first_done = wait_for(&member, &first.name, ExecutionState::Succeeded).await;
    let second_done = wait_for(&member, &second.name, ExecutionState::Succeeded).await;
    let ended = first_done.end_time.unwrap();
    let started = second_done.start_time.unwrap();
    assert!(
        (started.seconds, started.nanos) >= (ended.seconds, ended.nanos),
        "the second started after the first ended"
    );
}

#[tokio::test]
async fn an_execution_longer_than_its_timeout_fails_with_timeout() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut bounded = waiting(60);
    // The timeout runs from the execution's creation: long enough for a loaded machine to
    // start it and reach the wait first.
    bounded.settings = Some(wire::WorkflowSettings {
        timeout: Some(pbjson_types::Duration {
            seconds: 3,
            nanos: 0,
        }),
        ..Default::default()
    });
    let name = create(&app, tenant, "Bounded", bounded).await;
    let execution = run(&member, &name, json!({"n": 1})).await;
    wait_for(&member, &execution.name, ExecutionState::Waiting).await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    let error = failed.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.node_id.as_str()),
        ("TIMEOUT", "")
    );
    let runs = node_runs(&member, &execution.name).await;
    let wait = runs.iter().find(|run| run.node_id == "wait").unwrap();
    assert_eq!(
        wait.state(),
        NodeExecutionState::Cancelled,
        "the wait was abandoned"
    );
}
