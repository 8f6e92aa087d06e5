//! StreamExecution: an execution's state and node runs, then each change as the engine commits
//! it (over Redis pub/sub), until the execution ends — also when Redis drops the stream's
//! subscription, and when the execution is cancelled.

use std::collections::HashMap;
use std::time::Duration;

use platform::context::TenantId;
use platform::testing::{error_reason, expect_code};
use proto::formflow::workflow::v1 as wire;
use serde_json::json;
use tonic::Code;
use wire::stream_execution_response::Update;
use wire::{ExecutionState, NodeExecutionState};

use crate::helpers::{
    Client, TestApp, definition, edge, manual_flow, node, node_runs, run, wait_for, workflow,
};

/// start → wait `seconds` → after.
fn waiting(seconds: u64) -> wire::WorkflowDefinition {
    definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("wait", "logic.delay", json!({"seconds": seconds})),
            node("after", "transform.map", json!({"output": {"done": true}})),
        ],
        vec![edge("start", "wait", ""), edge("wait", "after", "")],
    )
}

/// Every message of the stream of execution `name`, until it closes; fails the test when it
/// is still open after 20 s.
async fn follow(client: &Client, name: &str) -> Vec<Update> {
    collect(open(client, name).await, Vec::new()).await
}

/// The stream of execution `name`.
async fn open(client: &Client, name: &str) -> tonic::Streaming<wire::StreamExecutionResponse> {
    client
        .clone()
        .stream_execution(wire::StreamExecutionRequest {
            name: name.to_owned(),
        })
        .await
        .expect("streaming an execution")
        .into_inner()
}

/// `updates` and every further message of `stream`, until it closes; fails the test when it
/// is still open after 20 s.
async fn collect(
    mut stream: tonic::Streaming<wire::StreamExecutionResponse>,
    mut updates: Vec<Update>,
) -> Vec<Update> {
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(message) = stream.message().await.expect("a stream message") {
            updates.push(message.update.expect("every message says what changed"));
        }
    })
    .await;
    assert!(closed.is_ok(), "the stream is still open after {updates:?}");
    updates
}

/// [`follow`] in a task of its own.
fn follow_in_background(client: &Client, name: &str) -> tokio::task::JoinHandle<Vec<Update>> {
    let (client, name) = (client.clone(), name.to_owned());
    tokio::spawn(async move { follow(&client, &name).await })
}

fn execution_states(updates: &[Update]) -> Vec<ExecutionState> {
    updates
        .iter()
        .filter_map(|update| match update {
            Update::Execution(execution) => Some(execution.state()),
            Update::NodeExecution(_) => None,
        })
        .collect()
}

/// The states each node run went through on the stream, by id.
fn node_states(updates: &[Update]) -> HashMap<String, Vec<NodeExecutionState>> {
    let mut states: HashMap<String, Vec<NodeExecutionState>> = HashMap::new();
    for update in updates {
        if let Update::NodeExecution(run) = update {
            states.entry(run.id.clone()).or_default().push(run.state());
        }
    }
    states
}

/// The stream opens on the execution, ends on its end, and showed every recorded node run in
/// its final state, each state once and none going back.
async fn assert_followed_to_the_end(
    client: &Client,
    name: &str,
    updates: &[Update],
    end: ExecutionState,
) {
    assert!(
        matches!(updates.first(), Some(Update::Execution(_))),
        "{updates:?}"
    );
    let Some(Update::Execution(last)) = updates.last() else {
        panic!("the stream did not end on the execution: {updates:?}");
    };
    assert_eq!(last.state(), end, "{last:?}");
    assert_eq!(last.name, name);
    assert!(last.end_time.is_some() && last.input.is_none(), "{last:?}");

    let shown = node_states(updates);
    let recorded = node_runs(client, name).await;
    assert_eq!(shown.len(), recorded.len(), "{shown:?} vs {recorded:?}");
    for run in &recorded {
        let states = &shown[&run.id];
        assert_eq!(
            states.last(),
            Some(&run.state()),
            "{}: {states:?}",
            run.node_id
        );
        let mut deduplicated = states.clone();
        deduplicated.dedup();
        assert_eq!(&deduplicated, states, "{}: shown twice", run.node_id);
    }
}

#[tokio::test]
async fn a_stream_shows_the_execution_then_each_change_until_it_ends() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = app.create(tenant, workflow("Waits", waiting(1))).await;

    let execution = run(&member, &flow.name, json!({})).await;
    let updates = follow(&member, &execution.name).await;

    assert_followed_to_the_end(
        &member,
        &execution.name,
        &updates,
        ExecutionState::Succeeded,
    )
    .await;
    // It saw the execution wait for the delay, then run again.
    let states = execution_states(&updates);
    let waited = states
        .iter()
        .position(|state| *state == ExecutionState::Waiting)
        .unwrap_or_else(|| panic!("never waiting: {states:?}"));
    assert!(
        states[waited..].contains(&ExecutionState::Running),
        "{states:?}"
    );
    // The delay's run was shown waiting, then succeeded.
    let runs = node_runs(&member, &execution.name).await;
    let wait = runs.iter().find(|run| run.node_id == "wait").unwrap();
    assert_eq!(
        node_states(&updates)[&wait.id],
        [NodeExecutionState::Waiting, NodeExecutionState::Succeeded]
    );
}

#[tokio::test]
async fn a_stream_of_an_ended_execution_shows_it_whole_and_closes() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = app.create(tenant, workflow("Greets", manual_flow())).await;
    let execution = run(&member, &flow.name, json!({"name": "Ada"})).await;
    wait_for(&member, &execution.name, ExecutionState::Succeeded).await;

    let updates = follow(&member, &execution.name).await;

    // Its node runs, then its final state, and nothing else.
    assert_eq!(
        execution_states(&updates),
        [ExecutionState::Succeeded],
        "{updates:?}"
    );
    assert!(matches!(updates.last(), Some(Update::Execution(_))));
    let recorded = node_runs(&member, &execution.name).await;
    let shown: Vec<_> = updates[..updates.len() - 1]
        .iter()
        .map(|update| match update {
            Update::NodeExecution(run) => run.clone(),
            Update::Execution(_) => panic!("the execution twice: {updates:?}"),
        })
        .collect();
    assert_eq!(shown, recorded);
}

#[tokio::test]
async fn cancelling_ends_the_stream_with_the_cancelled_execution() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = app
        .create(tenant, workflow("Waits long", waiting(600)))
        .await;
    let execution = run(&member, &flow.name, json!({})).await;
    wait_for(&member, &execution.name, ExecutionState::Waiting).await;

    // Cancel once the stream has read the waiting execution (its first message), not after a
    // guessed delay: on a loaded machine the stream could first read it cancelled already.
    let mut stream = open(&member, &execution.name).await;
    let first = stream
        .message()
        .await
        .expect("a stream message")
        .and_then(|message| message.update)
        .expect("the stream opens on the execution");
    let following = tokio::spawn(collect(stream, vec![first]));
    member
        .clone()
        .cancel_execution(wire::CancelExecutionRequest {
            name: execution.name.clone(),
            reason: "not needed".into(),
        })
        .await
        .unwrap();

    let updates = following.await.unwrap();
    assert_followed_to_the_end(
        &member,
        &execution.name,
        &updates,
        ExecutionState::Cancelled,
    )
    .await;
    assert_eq!(
        execution_states(&updates),
        [ExecutionState::Waiting, ExecutionState::Cancelled]
    );
}

#[tokio::test]
async fn a_stream_catches_up_when_redis_drops_its_subscription() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = app.create(tenant, workflow("Waits", waiting(2))).await;
    let execution = run(&member, &flow.name, json!({})).await;

    let following = follow_in_background(&member, &execution.name);
    wait_for(&member, &execution.name, ExecutionState::Waiting).await;
    // The service's pub/sub connection is cut: whatever is published until it subscribes again
    // is lost to it.
    let killed = app.infra.cut_redis_pubsub_connections().await;
    assert!(killed >= 1, "no pub/sub connection to cut");

    let updates = following.await.unwrap();
    assert_followed_to_the_end(
        &member,
        &execution.name,
        &updates,
        ExecutionState::Succeeded,
    )
    .await;
}

#[tokio::test]
async fn a_stream_of_a_missing_execution_or_a_bad_name_is_refused() {
    let app = TestApp::spawn().await;
    let member = app.member(TenantId::generate());
    let missing = member
        .clone()
        .stream_execution(wire::StreamExecutionRequest {
            name: format!("executions/{}", uuid::Uuid::now_v7()),
        })
        .await;
    let status = expect_code(missing, Code::NotFound);
    assert_eq!(error_reason(&status), "EXECUTION_NOT_FOUND");
    let malformed = member
        .clone()
        .stream_execution(wire::StreamExecutionRequest {
            name: "workflows/nope".into(),
        })
        .await;
    expect_code(malformed, Code::InvalidArgument);
    let anonymous = app
        .client(None, None)
        .stream_execution(wire::StreamExecutionRequest {
            name: format!("executions/{}", uuid::Uuid::now_v7()),
        })
        .await;
    expect_code(anonymous, Code::Unauthenticated);
}
