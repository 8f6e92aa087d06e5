//! Retention: ended executions older than their tenant's `workflow_execution_retention_days`
//! (from its tenant events), or the service's default, are deleted with their node runs;
//! running ones and younger ones stay.

use std::time::Duration;

use platform::amqp::Publisher;
use platform::context::TenantId;
use platform::db::Db;
use platform::events::Envelope;
use platform::testing::{publish_envelope, wait_until};
use proto::formflow::events::v1 as events;
use proto::formflow::tenant::v1 as tenants;
use proto::formflow::workflow::v1 as wire;
use serde_json::json;

use crate::helpers::{
    Client, TestApp, definition, edge, manual_flow, node, object, run, wait_for, workflow,
};

async fn exists(client: &Client, name: &str) -> bool {
    client
        .clone()
        .get_execution(wire::GetExecutionRequest {
            name: name.to_owned(),
        })
        .await
        .is_ok()
}

#[tokio::test]
async fn ended_executions_past_their_tenants_retention_are_deleted() {
    let app = TestApp::spawn_with(|config| {
        config.options.retention_interval = Duration::from_secs(1);
    })
    .await;
    let (short, default) = (TenantId::generate(), TenantId::generate());
    // `short` keeps executions one day: its tenant event says so.
    let tenant = tenants::Tenant {
        id: short.to_string(),
        settings: Some(object(json!({"workflow_execution_retention_days": 1}))),
        update_time: Some(platform::wire::timestamp(chrono::Utc::now())),
        ..Default::default()
    };
    let envelope = Envelope::new(
        Some(short),
        events::TenantUpdated {
            tenant: Some(tenant),
            changed_fields: vec!["settings".into()],
            previous_domains: Vec::new(),
        },
    );
    // The service's queue is declared when its consumer connects: until the setting is
    // recorded, the event is sent again (a redelivery changes nothing).
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let db = Db::connect(&app.infra.db, &svc_workflow::app::SCHEMA)
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(15),
        "the tenant's retention is recorded",
        || async {
            publish_envelope(&publisher, &envelope).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut transaction = db.platform_tx().await.unwrap();
            let days: Option<i32> = sqlx::query_scalar(
            "SELECT execution_retention_days FROM workflow.tenant_settings WHERE tenant_id = $1",
        )
        .bind(short.as_uuid())
        .fetch_optional(&mut *transaction)
        .await
        .unwrap()
        .flatten();
            days == Some(1)
        },
    )
    .await;

    let mut names = Vec::new();
    for tenant in [short, default] {
        let member = app.member(tenant);
        let flow = app
            .create(tenant, workflow("Kept", manual_flow()))
            .await
            .name;
        let execution = run(&member, &flow, json!({"name": "x"})).await;
        wait_for(&member, &execution.name, wire::ExecutionState::Succeeded).await;
        names.push((member, execution));
    }
    let waiting_flow = definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node("wait", "logic.delay", json!({"seconds": 3600})),
        ],
        vec![edge("start", "wait", "")],
    );
    let short_member = app.member(short);
    let waiting_name = app
        .create(short, workflow("Waits", waiting_flow))
        .await
        .name;
    let waiting = run(&short_member, &waiting_name, json!({})).await;
    wait_for(&short_member, &waiting.name, wire::ExecutionState::Waiting).await;

    // Everything ended two days ago (and the waiting one was queued then).
    let db = Db::connect(&app.infra.db, &svc_workflow::app::SCHEMA)
        .await
        .unwrap();
    let mut transaction = db.platform_tx().await.unwrap();
    sqlx::query(
        "UPDATE workflow.executions SET created_at = created_at - interval '2 days', \
         ended_at = ended_at - interval '2 days'",
    )
    .execute(&mut *transaction)
    .await
    .unwrap();
    transaction.commit().await.unwrap();

    let (short_client, short_execution) = &names[0];
    wait_until(
        Duration::from_secs(15),
        "the short tenant's execution is deleted",
        || async { !exists(short_client, &short_execution.name).await },
    )
    .await;
    let (default_client, default_execution) = &names[1];
    assert!(
        exists(default_client, &default_execution.name).await,
        "30 days by default"
    );
    assert!(
        exists(&short_member, &waiting.name).await,
        "not ended: kept"
    );
    let mut transaction = db.platform_tx().await.unwrap();
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workflow.node_executions WHERE execution_id = $1")
            .bind(uuid::Uuid::parse_str(&short_execution.id).unwrap())
            .fetch_one(&mut *transaction)
            .await
            .unwrap();
    assert_eq!(runs, 0, "its node runs went with it");
}

#[tokio::test]
async fn more_expired_executions_than_a_batch_all_go_and_younger_ones_stay() {
    let app = TestApp::spawn_with(|config| {
        config.options.retention_interval = Duration::from_secs(1);
    })
    .await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let flow = app
        .create(tenant, workflow("Busy", manual_flow()))
        .await
        .name;
    let young = run(&member, &flow, json!({"name": "x"})).await;
    wait_for(&member, &young.name, wire::ExecutionState::Succeeded).await;

    // 2,500 copies of it that ended 40 days ago (the default keeps 30), and it 20 days ago.
    let db = Db::connect(&app.infra.db, &svc_workflow::app::SCHEMA)
        .await
        .unwrap();
    let young_id = uuid::Uuid::parse_str(&young.id).unwrap();
    let mut transaction = db.platform_tx().await.unwrap();
    for statement in [
        "CREATE TEMP TABLE copies ON COMMIT DROP AS \
         SELECT e.* FROM workflow.executions e, generate_series(1, 2500) WHERE e.id = $1",
        "UPDATE copies SET id = gen_random_uuid(), ended_at = now() - interval '40 days'",
        "INSERT INTO workflow.executions SELECT * FROM copies",
        "UPDATE workflow.executions SET ended_at = now() - interval '20 days' WHERE id = $1",
    ] {
        let query = sqlx::query(statement);
        let query = if statement.contains("$1") {
            query.bind(young_id)
        } else {
            query
        };
        query.execute(&mut *transaction).await.unwrap();
    }
    transaction.commit().await.unwrap();

    let count = || async {
        let mut transaction = db.platform_tx().await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM workflow.executions")
            .fetch_one(&mut *transaction)
            .await
            .unwrap();
        count
    };
    wait_until(
        Duration::from_secs(30),
        "the expired executions are deleted",
        || async { count().await == 1 },
    )
    .await;
    assert!(exists(&member, &young.name).await, "20 days: kept");
}
