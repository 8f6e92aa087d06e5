//! `trigger.schedule`: two replicas look for due ticks every second; each tick of a schedule
//! starts one execution, never two, with the scheduled time and the node's input.

use std::collections::HashSet;
use std::time::Duration;

use platform::context::TenantId;
use proto::formflow::workflow::v1 as wire;
use serde_json::json;

use crate::helpers::{Replica, TestApp, definition, edge, json_of, node, wait_for, workflow};

#[tokio::test]
async fn each_tick_fires_once_across_two_replicas() {
    let app = TestApp::spawn().await;
    let _second = Replica::start(app.replica_config(|_| {})).await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let every_second = definition(
        vec![
            node(
                "tick",
                "trigger.schedule",
                json!({"cron": "* * * * * *", "time_zone": "Europe/Paris", "input": {"report": "daily"}}),
            ),
            node(
                "note",
                "transform.map",
                json!({"output": {"at": "{{ scheduled_time }}", "report": "{{ report }}"}}),
            ),
        ],
        vec![edge("tick", "note", "")],
    );
    let created = app
        .create(tenant, workflow("Every second", every_second))
        .await;
    member
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    member
        .clone()
        .deactivate_workflow(wire::DeactivateWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    // Whatever was claimed before the deactivation is queued by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let executions = member
        .clone()
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .executions;
    assert!(
        executions.len() >= 2,
        "{} ticks fired in 4 s",
        executions.len()
    );
    let ticks: HashSet<&str> = executions
        .iter()
        .map(|execution| execution.trigger_ref.as_str())
        .collect();
    assert_eq!(
        ticks.len(),
        executions.len(),
        "a tick fired twice: {ticks:?}"
    );
    for execution in &executions {
        assert_eq!(execution.trigger_kind(), wire::TriggerKind::Schedule);
        let done = wait_for(&member, &execution.name, wire::ExecutionState::Succeeded).await;
        let output = json_of(done.output.as_ref());
        assert_eq!(output["report"], "daily");
        let at: chrono::DateTime<chrono::Utc> = output["at"].as_str().unwrap().parse().unwrap();
        assert_eq!(at.to_rfc3339(), execution.trigger_ref);
    }
    // Deactivated: no tick fires any more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = member
        .clone()
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .executions;
    assert_eq!(after.len(), executions.len());
}
