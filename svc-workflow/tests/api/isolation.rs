//! Tenants: another tenant's workflows, versions and credentials are NOT_FOUND on every RPC,
//! never listed, never usable in a definition; a token of one tenant is refused in another;
//! row-level security agrees.

use platform::context::{Role, TenantId};
use platform::db::Db;
use platform::testing::{error_reason, expect_code};
use proto::formflow::workflow::v1 as wire;
use serde_json::json;
use tonic::{Code, Status};

use crate::helpers::{
    TestApp, definition, edge, manual_flow, mask, node, run, wait_for, webhook_secret, workflow,
};

struct Acme {
    workflow: wire::Workflow,
    credential: wire::Credential,
    execution: wire::Execution,
}

async fn acme(app: &TestApp, tenant: TenantId) -> Acme {
    let credential = app
        .credential(
            tenant,
            "Acme signing",
            wire::CredentialType::WebhookSecret,
            json!({"secret": webhook_secret()}),
        )
        .await;
    let workflow = app
        .create(tenant, workflow("Acme flow", manual_flow()))
        .await;
    app.member(tenant)
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: workflow.name.clone(),
            version: 0,
        })
        .await
        .unwrap();
    let member = app.member(tenant);
    let execution = run(&member, &workflow.name, json!({"name": "Acme"})).await;
    wait_for(&member, &execution.name, wire::ExecutionState::Succeeded).await;
    Acme {
        workflow,
        credential,
        execution,
    }
}

/// Every RPC naming Acme's workflow or credential, made by `client`.
async fn every_rpc(
    client: &crate::helpers::Client,
    acme: &Acme,
) -> Vec<(&'static str, Result<(), Status>)> {
    let name = acme.workflow.name.clone();
    let credential = acme.credential.name.clone();
    let execution = acme.execution.name.clone();
    let mut c = client.clone();
    vec![
        (
            "RunWorkflow",
            c.run_workflow(wire::RunWorkflowRequest {
                name: name.clone(),
                ..Default::default()
            })
            .await
            .map(drop),
        ),
        (
            "ListExecutions",
            c.list_executions(wire::ListExecutionsRequest {
                workflow: name.clone(),
                ..Default::default()
            })
            .await
            .map(drop),
        ),
        (
            "GetExecution",
            c.get_execution(wire::GetExecutionRequest {
                name: execution.clone(),
            })
            .await
            .map(drop),
        ),
        (
            "ListNodeExecutions",
            c.list_node_executions(wire::ListNodeExecutionsRequest {
                parent: execution.clone(),
                ..Default::default()
            })
            .await
            .map(drop),
        ),
        (
            "StreamExecution",
            c.stream_execution(wire::StreamExecutionRequest {
                name: execution.clone(),
            })
            .await
            .map(drop),
        ),
        (
            "RetryExecution",
            c.retry_execution(wire::RetryExecutionRequest {
                name: execution.clone(),
            })
            .await
            .map(drop),
        ),
        (
            "CancelExecution",
            c.cancel_execution(wire::CancelExecutionRequest {
                name: execution.clone(),
                reason: String::new(),
            })
            .await
            .map(drop),
        ),
        (
            "GetWorkflow",
            c.get_workflow(wire::GetWorkflowRequest { name: name.clone() })
                .await
                .map(drop),
        ),
        (
            "UpdateWorkflow",
            c.update_workflow(wire::UpdateWorkflowRequest {
                workflow: Some(wire::Workflow {
                    name: name.clone(),
                    display_name: "Hijacked".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["display_name"]),
            })
            .await
            .map(drop),
        ),
        (
            "DeleteWorkflow",
            c.delete_workflow(wire::DeleteWorkflowRequest {
                name: name.clone(),
                etag: String::new(),
            })
            .await
            .map(drop),
        ),
        (
            "ActivateWorkflow",
            c.activate_workflow(wire::ActivateWorkflowRequest {
                name: name.clone(),
                version: 0,
            })
            .await
            .map(drop),
        ),
        (
            "DeactivateWorkflow",
            c.deactivate_workflow(wire::DeactivateWorkflowRequest { name: name.clone() })
                .await
                .map(drop),
        ),
        (
            "ListWorkflowVersions",
            c.list_workflow_versions(wire::ListWorkflowVersionsRequest {
                parent: name.clone(),
                ..Default::default()
            })
            .await
            .map(drop),
        ),
        (
            "GetWorkflowVersion",
            c.get_workflow_version(wire::GetWorkflowVersionRequest {
                name: format!("{name}/versions/1"),
            })
            .await
            .map(drop),
        ),
        (
            "GetCredential",
            c.get_credential(wire::GetCredentialRequest {
                name: credential.clone(),
            })
            .await
            .map(drop),
        ),
        (
            "UpdateCredential",
            c.update_credential(wire::UpdateCredentialRequest {
                credential: Some(wire::Credential {
                    name: credential.clone(),
                    display_name: "Hijacked".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["display_name"]),
            })
            .await
            .map(drop),
        ),
        (
            "DeleteCredential",
            c.delete_credential(wire::DeleteCredentialRequest {
                name: credential.clone(),
            })
            .await
            .map(drop),
        ),
    ]
}

#[tokio::test]
async fn another_tenants_workflows_and_credentials_are_not_found_on_every_rpc() {
    let app = TestApp::spawn().await;
    let (acme_tenant, globex) = (TenantId::generate(), TenantId::generate());
    let acme = acme(&app, acme_tenant).await;
    let own = app
        .create(globex, workflow("Globex flow", manual_flow()))
        .await;

    let globex_owner = app.user(globex, Role::Owner);
    for (rpc, result) in every_rpc(&globex_owner, &acme).await {
        let status = expect_code(result, Code::NotFound);
        let expected = if rpc.contains("Credential") {
            "CREDENTIAL_NOT_FOUND"
        } else if rpc.contains("Execution") && rpc != "ListExecutions" {
            "EXECUTION_NOT_FOUND"
        } else {
            "WORKFLOW_NOT_FOUND"
        };
        assert_eq!(error_reason(&status), expected, "{rpc}");
    }
    let mut listing = globex_owner.clone();
    let workflows = listing
        .list_workflows(wire::ListWorkflowsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(workflows.workflows, [own]);
    let credentials = listing
        .list_credentials(wire::ListCredentialsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(credentials.credentials.is_empty());
    let executions = listing
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(executions.executions.is_empty());

    // Acme's credential does not exist for Globex's definitions either.
    let borrowed = definition(
        vec![
            node(
                "incoming",
                "trigger.webhook",
                json!({"credential": acme.credential.name}),
            ),
            node("keep", "transform.map", json!({"output": "{{ @ }}"})),
        ],
        vec![edge("incoming", "keep", "")],
    );
    let refused = expect_code(
        listing
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow("Borrowed", borrowed)),
            })
            .await,
        Code::InvalidArgument,
    );
    assert!(
        refused.message().contains("does not exist"),
        "{}",
        refused.message()
    );

    // Acme's workflow and credential are as they were.
    let read = app
        .member(acme_tenant)
        .get_workflow(wire::GetWorkflowRequest {
            name: acme.workflow.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.display_name.as_str(), read.state),
        ("Acme flow", wire::WorkflowState::Active as i32)
    );
    let credential = app
        .member(acme_tenant)
        .get_credential(wire::GetCredentialRequest {
            name: acme.credential.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(credential, acme.credential);
    let executions = app
        .member(acme_tenant)
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .executions;
    assert_eq!(executions.len(), 1, "no retry, no run for Globex");
    assert_eq!(
        executions[0].state(),
        wire::ExecutionState::Succeeded,
        "not cancelled"
    );
}

#[tokio::test]
async fn a_token_of_one_tenant_routed_to_another_is_denied() {
    let app = TestApp::spawn().await;
    let (acme_tenant, globex) = (TenantId::generate(), TenantId::generate());
    let acme = acme(&app, acme_tenant).await;
    let intruder = app.client(
        Some(&app.keys.user_token(globex, Role::Owner)),
        Some(acme_tenant),
    );
    for (_, result) in every_rpc(&intruder, &acme).await {
        expect_code(result, Code::PermissionDenied);
    }
    let mut intruder = intruder;
    expect_code(
        intruder
            .list_workflows(wire::ListWorkflowsRequest::default())
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        intruder
            .list_credentials(wire::ListCredentialsRequest::default())
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        intruder
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow("Planted", manual_flow())),
            })
            .await,
        Code::PermissionDenied,
    );
    let workflows = app
        .member(acme_tenant)
        .list_workflows(wire::ListWorkflowsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(workflows.workflows.len(), 1, "nothing was planted");
    let executions = app
        .member(acme_tenant)
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        executions.executions.len(),
        1,
        "nothing ran for the intruder"
    );
}

#[tokio::test]
async fn row_level_security_hides_every_row_of_another_tenant() {
    let app = TestApp::spawn().await;
    let (acme_tenant, globex) = (TenantId::generate(), TenantId::generate());
    let acme = acme(&app, acme_tenant).await;
    let db = Db::connect(&app.infra.db, &svc_workflow::app::SCHEMA)
        .await
        .unwrap();
    // Acme's rows: a workflow, its version, a credential, the audit rows of the
    // credential's creation, the workflow's creation and its activation, and an execution of
    // its two nodes.
    let tables = [
        ("workflow.workflows", 1),
        ("workflow.workflow_versions", 1),
        ("workflow.credentials", 1),
        ("workflow.audit_log", 3),
        ("workflow.executions", 1),
        ("workflow.node_executions", 2),
    ];
    for (tenant, sees) in [(acme_tenant, true), (globex, false)] {
        let mut transaction = db.tenant_tx(tenant).await.unwrap();
        for (table, rows) in tables {
            let count: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *transaction)
                    .await
                    .unwrap();
            assert_eq!(
                count,
                if sees { rows } else { 0 },
                "{table} seen by {tenant}"
            );
        }
        transaction.rollback().await.unwrap();
    }
    let mut transaction = db.tenant_tx(globex).await.unwrap();
    let workflow_id = uuid::Uuid::parse_str(&acme.workflow.id).unwrap();
    let changed =
        sqlx::query("UPDATE workflow.workflows SET display_name = 'hijacked' WHERE id = $1")
            .bind(workflow_id)
            .execute(&mut *transaction)
            .await
            .unwrap();
    assert_eq!(changed.rows_affected(), 0);
    let deleted = sqlx::query("DELETE FROM workflow.credentials")
        .execute(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    let cancelled = sqlx::query("UPDATE workflow.executions SET state = 'cancelled'")
        .execute(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(cancelled.rows_affected(), 0);
    let planted = sqlx::query(
        "INSERT INTO workflow.credentials (id, tenant_id, display_name, type, sealed_value) \
         VALUES ($1, $2, 'planted', 'generic', '\\x00')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(acme_tenant.as_uuid())
    .execute(&mut *transaction)
    .await;
    assert!(planted.is_err(), "a row for another tenant is refused");
}
