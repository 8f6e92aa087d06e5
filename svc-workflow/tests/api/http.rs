//! `action.http` against a real local server: templated requests with credentials, retries
//! of 5xx with one idempotency key, final 4xx, SSRF attempts refused before any connection
//! (addresses, names resolving to them, redirects to them), and a worker killed mid-request
//! whose execution another replica completes with one effective call.

use std::time::Duration;

use platform::amqp::{OutgoingMessage, Publisher, Topology};
use platform::context::TenantId;
use platform::testing::{EventObserver, wait_until};
use proto::formflow::workflow::v1 as wire;
use serde_json::{Value, json};
use wire::{ExecutionState, NodeExecutionState};

use crate::helpers::{
    Replica, TestApp, definition, edge, json_of, node, node_runs, run, wait_for, workflow,
};
use crate::target::Target;

/// The address test targets listen on, and the only internal network the service under test
/// may reach: 127.0.0.1 (and `localhost`) stay refused.
const TARGET_IP: &str = "127.0.0.2";

async fn app() -> TestApp {
    TestApp::spawn_with(allow_targets).await
}

fn allow_targets(config: &mut svc_workflow::Config) {
    config.options.http_allowed_networks = vec![format!("{TARGET_IP}/32").parse().unwrap()];
}

/// start → call (`action.http` with `config`, retried by `retry`).
fn calling(config: Value, retry: Option<wire::RetryPolicy>) -> wire::WorkflowDefinition {
    let mut call = node("call", "action.http", config);
    call.retry = retry;
    definition(
        vec![node("start", "trigger.manual", json!({})), call],
        vec![edge("start", "call", "")],
    )
}

fn quick_retries(attempts: i32) -> Option<wire::RetryPolicy> {
    Some(wire::RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Some(pbjson_types::Duration {
            seconds: 0,
            nanos: 200_000_000,
        }),
        max_backoff: Some(pbjson_types::Duration {
            seconds: 1,
            nanos: 0,
        }),
    })
}

/// The attempts of node `node_id` among `runs`, with their states.
fn attempts(runs: &[wire::NodeExecution], node_id: &str) -> Vec<(i32, NodeExecutionState)> {
    runs.iter()
        .filter(|run| run.node_id == node_id)
        .map(|run| (run.attempt, run.state()))
        .collect()
}

#[tokio::test]
async fn requests_are_rendered_from_the_input_and_authenticated_with_a_credential() {
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let token = "s3cret-token-never-shown";
    let credential = app
        .credential(
            tenant,
            "Target API",
            wire::CredentialType::BearerToken,
            json!({"token": token}),
        )
        .await;
    let flow = calling(
        json!({
            "method": "POST",
            "url": format!("{}{}", target.url("/echo/"), "{{ ticket.id }}"),
            "query": {"priority": "{{ ticket.priority }}"},
            "headers": {"X-Customer": "{{ customer }}"},
            "body": {"subject": "{{ ticket.subject }}", "count": "{{ ticket.count }}"},
            "credential": credential.name,
        }),
        None,
    );
    let name = app.create(tenant, workflow("Call out", flow)).await.name;
    let input = json!({"ticket": {"id": "T-1", "priority": "high", "subject": "Printer", "count": 2}, "customer": "acme"});
    let execution = run(&member, &name, input).await;
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;

    let received = target.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/echo/T-1?priority=high");
    assert_eq!(request.headers["authorization"], format!("Bearer {token}"));
    assert_eq!(request.headers["x-customer"], "acme");
    assert_eq!(request.headers["content-type"], "application/json");
    let key = &request.headers["idempotency-key"];
    assert!(
        key.starts_with(&format!("{}.call.-1.", execution.id)),
        "{key}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&request.body).unwrap(),
        json!({"subject": "Printer", "count": 2})
    );

    let output = json_of(done.output.as_ref());
    assert_eq!(output["status"], 200);
    assert_eq!(
        output["body"]["body"],
        json!({"subject": "Printer", "count": 2})
    );
    assert_eq!(output["headers"]["content-type"], "application/json");
    let runs = node_runs(&member, &execution.name).await;
    let recorded = serde_json::to_string(
        &runs
            .iter()
            .map(|run| (json_of(run.input.as_ref()), json_of(run.output.as_ref())))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        !recorded.contains(token),
        "the credential is never recorded"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_one_key_and_client_errors_are_final() {
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flaky = app
        .create(
            tenant,
            workflow(
                "Flaky",
                calling(json!({"url": target.url("/flaky/2")}), quick_retries(3)),
            ),
        )
        .await
        .name;
    let execution = run(&member, &flaky, json!({})).await;
    wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    let runs = node_runs(&member, &execution.name).await;
    let calls = attempts(&runs, "call");
    assert_eq!(
        calls,
        [
            (1, NodeExecutionState::Failed),
            (2, NodeExecutionState::Failed),
            (3, NodeExecutionState::Succeeded)
        ]
    );
    let failed = runs.iter().find(|run| run.node_id == "call").unwrap();
    assert_eq!(failed.error.as_ref().unwrap().code, "HTTP_ERROR");
    let keys: Vec<String> = target
        .received()
        .iter()
        .map(|request| request.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|key| *key == keys[0]), "{keys:?}");

    let missing = app
        .create(
            tenant,
            workflow(
                "Missing",
                calling(json!({"url": target.url("/status/404")}), quick_retries(3)),
            ),
        )
        .await
        .name;
    let execution = run(&member, &missing, json!({})).await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    let error = failed.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.node_id.as_str()),
        ("HTTP_ERROR", "call")
    );
    assert!(error.message.contains("404"), "{}", error.message);
    let attempts = node_runs(&member, &execution.name)
        .await
        .iter()
        .filter(|run| run.node_id == "call")
        .count();
    assert_eq!(attempts, 1, "a 404 is not retried");
}

#[tokio::test]
async fn internal_addresses_are_refused_however_they_are_reached() {
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    // A server on 127.0.0.1 that no request may reach.
    let forbidden = Target::start("127.0.0.1").await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let port = forbidden.addr.port();
    let attempts = [
        format!("http://127.0.0.1:{port}/echo"),
        format!("http://localhost:{port}/echo"),
        format!("http://[::ffff:127.0.0.1]:{port}/echo"),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!(
            "{}?to=http://127.0.0.1:{port}/echo",
            target.url("/redirect")
        ),
        format!(
            "{}?to=http://localhost:{port}/echo",
            target.url("/redirect")
        ),
        format!(
            "{}?to=http://169.254.169.254/latest/meta-data/",
            target.url("/redirect")
        ),
    ];
    for url in attempts {
        let name = app
            .create(
                tenant,
                workflow("Probe", calling(json!({"url": url}), quick_retries(3))),
            )
            .await
            .name;
        let execution = run(&member, &name, json!({})).await;
        let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
        let error = failed.error.unwrap();
        assert_eq!(error.code, "SSRF_BLOCKED", "{url}: {}", error.message);
        let runs = node_runs(&member, &execution.name).await;
        assert_eq!(
            runs.iter().filter(|run| run.node_id == "call").count(),
            1,
            "{url}: not retried"
        );
    }
    assert!(forbidden.received().is_empty(), "nothing reached 127.0.0.1");
    assert_eq!(
        target.received().len(),
        3,
        "only the redirecting requests reached the target"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_request_is_replaced_and_the_target_acts_once() {
    // The service under test runs no worker; a replica in a runtime of its own does, and is
    // killed (its runtime dropped: every task, socket and connection at once) while its
    // request hangs. Another replica takes the execution over once the lease expires.
    let app = TestApp::spawn_with(|config| {
        allow_targets(config);
        config.options.worker_concurrency = 0;
    })
    .await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let name = app
        .create(
            tenant,
            workflow(
                "Hang",
                calling(json!({"url": target.url("/hang-once")}), None),
            ),
        )
        .await
        .name;
    let doomed = Replica::start(app.replica_config(allow_targets)).await;
    let execution = run(&member, &name, json!({"n": 1})).await;
    wait_until(
        Duration::from_secs(10),
        "the doomed replica calls the target",
        || async { !target.received().is_empty() },
    )
    .await;
    doomed.kill();

    let _successor = Replica::start(app.replica_config(allow_targets)).await;
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    assert_eq!(json_of(done.output.as_ref())["status"], 200);
    let received = target.received();
    assert_eq!(received.len(), 2, "the interrupted call was made again");
    assert_eq!(
        received[0].headers["idempotency-key"],
        received[1].headers["idempotency-key"]
    );
    assert_eq!(target.effective_calls().len(), 1, "the target acted once");
    let calls = attempts(&node_runs(&member, &execution.name).await, "call");
    assert_eq!(
        calls,
        [(1, NodeExecutionState::Succeeded)],
        "the same attempt, run again"
    );
}

#[tokio::test]
async fn a_node_out_of_attempts_is_dead_lettered_and_a_replay_resumes_its_execution() {
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    let (tenant, other) = (TenantId::generate(), TenantId::generate());
    let member = app.member(tenant);
    let mut flow = calling(json!({"url": target.url("/flaky/2")}), quick_retries(2));
    flow.nodes.push(node(
        "after",
        "transform.map",
        json!({"output": {"status": "{{ status }}"}}),
    ));
    flow.edges.push(edge("call", "after", ""));
    let name = app.create(tenant, workflow("Flaky twice", flow)).await.name;
    let execution = run(&member, &name, json!({})).await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    assert_eq!(failed.error.unwrap().node_id, "call");

    let pending = member
        .clone()
        .list_dead_letters(wire::ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert_eq!(pending.len(), 1);
    let letter = &pending[0];
    assert_eq!(
        (
            letter.job_type.as_str(),
            letter.node_id.as_str(),
            letter.attempts
        ),
        ("workflow.node", "call", 2)
    );
    assert_eq!(letter.queue, "svc-workflow.executions");
    assert_eq!(letter.execution, execution.name);
    assert_eq!(letter.workflow, name);
    assert_eq!(letter.state(), wire::DeadLetterState::Pending);
    assert_eq!(letter.last_error.as_ref().unwrap().code, "HTTP_ERROR");
    let payload = serde_json::to_value(letter.payload.as_ref().unwrap()).unwrap();
    assert_eq!(payload["node_id"], "call");

    // Another tenant neither sees nor replays it.
    let outsider = app.member(other);
    let theirs = outsider
        .clone()
        .list_dead_letters(wire::ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.dead_letters.is_empty());
    let hidden = platform::testing::expect_code(
        outsider
            .clone()
            .replay_dead_letter(wire::ReplayDeadLetterRequest {
                name: letter.name.clone(),
            })
            .await,
        tonic::Code::NotFound,
    );
    assert_eq!(
        platform::testing::error_reason(&hidden),
        "DEAD_LETTER_NOT_FOUND"
    );

    let replayed = member
        .clone()
        .replay_dead_letter(wire::ReplayDeadLetterRequest {
            name: letter.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.state(), wire::DeadLetterState::Replayed);
    assert!(replayed.replay_time.is_some());
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    assert_eq!(json_of(done.output.as_ref()), json!({"status": 200}));
    let calls = attempts(&node_runs(&member, &execution.name).await, "call");
    assert_eq!(
        calls,
        [
            (1, NodeExecutionState::Failed),
            (2, NodeExecutionState::Failed),
            (3, NodeExecutionState::Succeeded)
        ]
    );
    let keys: Vec<String> = target
        .received()
        .iter()
        .map(|request| request.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys[0], keys[1], "retries share a key");
    assert_ne!(keys[1], keys[2], "a replay is a new attempt group");

    let again = platform::testing::expect_code(
        member
            .clone()
            .replay_dead_letter(wire::ReplayDeadLetterRequest {
                name: letter.name.clone(),
            })
            .await,
        tonic::Code::FailedPrecondition,
    );
    assert_eq!(
        platform::testing::error_reason(&again),
        "DEAD_LETTER_REPLAYED"
    );
    let listed = member
        .clone()
        .list_dead_letters(wire::ListDeadLettersRequest {
            state: wire::DeadLetterState::Replayed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert_eq!(listed.len(), 1);
    let none_pending = member
        .clone()
        .list_dead_letters(wire::ListDeadLettersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert!(none_pending.is_empty());
}

#[tokio::test]
async fn an_action_longer_than_its_timeout_fails_with_timeout() {
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut flow = calling(json!({"url": target.url("/hang-once")}), quick_retries(1));
    flow.nodes[1].timeout = Some(pbjson_types::Duration {
        seconds: 1,
        nanos: 0,
    });
    let name = app.create(tenant, workflow("Slow", flow)).await.name;
    let execution = run(&member, &name, json!({})).await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    let error = failed.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.node_id.as_str()),
        ("TIMEOUT", "call")
    );
    assert_eq!(target.received().len(), 1);
}

#[tokio::test]
async fn metrics_count_retries_dead_letters_and_the_queues_messages() {
    let mut app = app().await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = calling(json!({"url": target.url("/flaky/2")}), quick_retries(2));
    let name = app.create(tenant, workflow("Flaky twice", flow)).await.name;
    let execution = run(&member, &name, json!({})).await;
    wait_for(&member, &execution.name, ExecutionState::Failed).await;
    // A job no worker can read: RabbitMQ sets it aside in the work queue's dead-letter queue.
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let queue = Topology::new(app.infra.amqp.amqp_prefix.clone()).queue("svc-workflow.executions");
    let junk = OutgoingMessage {
        message_id: "junk".into(),
        kind: "workflow.execution".into(),
        body: b"not a job".to_vec(),
        ..OutgoingMessage::default()
    };
    publisher
        .publish_to_queue(&queue.work, &junk)
        .await
        .unwrap();
    let dead_lettered = [queue.dead_letter()];
    wait_until(
        Duration::from_secs(20),
        "the junk job is dead-lettered",
        || async { publisher.message_counts(&dead_lettered).await.unwrap() == [1] },
    )
    .await;

    // A replica measures as it starts.
    app.restart(allow_targets).await;
    let expected = [
        "workflow_node_retries_total{node_type=\"action.http\"} 1".to_owned(),
        "workflow_dead_letters_pending 1".to_owned(),
        format!("workflow_queue_messages{{queue=\"{}\"}} 0", queue.work),
        format!(
            "workflow_queue_messages{{queue=\"{}\"}} 1",
            queue.dead_letter()
        ),
    ];
    wait_until(
        Duration::from_secs(20),
        "the metrics show the failure",
        || async {
            let rendered = platform::metrics::render();
            expected
                .iter()
                .all(|line| rendered.lines().any(|shown| shown == line))
        },
    )
    .await;
}

#[tokio::test]
async fn an_action_longer_than_the_lease_keeps_it_and_acts_once() {
    // The replica's lease is 2 s (renewed every third of it), and the sweeper sends again
    // the jobs of executions whose lease lapsed: without renewal this action would run twice.
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = calling(json!({"url": target.url("/slow/5000")}), None);
    let name = app.create(tenant, workflow("Slow call", flow)).await.name;

    let execution = run(&member, &name, json!({})).await;
    wait_for(&member, &execution.name, ExecutionState::Succeeded).await;

    assert_eq!(target.received().len(), 1, "the target was called once");
    let calls = attempts(&node_runs(&member, &execution.name).await, "call");
    assert_eq!(calls, [(1, NodeExecutionState::Succeeded)]);
}

#[tokio::test]
async fn a_failed_execution_is_announced_with_its_error_and_its_workflow_owner() {
    let app = app().await;
    let target = Target::start(TARGET_IP).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let mut events = EventObserver::start(&app.infra.amqp, &["workflow.execution.failed.#"]).await;
    let flow = calling(json!({"url": target.url("/status/404")}), None);
    let created = app.create(tenant, workflow("Doomed call", flow)).await;

    let execution = run(&member, &created.name, json!({})).await;
    wait_for(&member, &execution.name, ExecutionState::Failed).await;

    let event = &events.receive(1, Duration::from_secs(10)).await[0];
    assert_eq!(event.kind, "workflow.execution.failed");
    let data = &event.body["data"];
    assert_eq!(data["execution"]["name"], execution.name.as_str());
    assert_eq!(data["execution"]["state"], "EXECUTION_STATE_FAILED");
    assert_eq!(data["execution"]["error"]["code"], "HTTP_ERROR");
    assert_eq!(data["execution"]["error"]["node_id"], "call");
    assert_eq!(
        data["workflow"],
        json!({"name": created.name, "display_name": "Doomed call", "owner": created.creator})
    );
    assert!(created.creator.starts_with("users/"), "{}", created.creator);
    assert!(
        events
            .nothing_more_arrives(Duration::from_millis(500))
            .await
    );
}
