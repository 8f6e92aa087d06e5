//! Workflows: created inactive as version 1, each definition change a new version, activated
//! version by version, deleted only when inactive, listed by state and node type.

use platform::context::TenantId;
use platform::testing::{error_reason, expect_code, violated_fields};
use proto::formflow::workflow::v1 as wire;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, definition, edge, manual_flow, mask, node, workflow};

#[tokio::test]
async fn a_workflow_is_created_inactive_as_version_one_with_default_policies() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let created = app
        .create(tenant, workflow("  Greeter  ", manual_flow()))
        .await;
    assert_eq!(created.name, format!("workflows/{}", created.id));
    assert_eq!(created.display_name, "Greeter");
    assert_eq!(created.version, 1);
    assert_eq!(created.state, wire::WorkflowState::Inactive as i32);
    assert_eq!(created.active_version, 0);
    assert!(created.webhooks.is_empty());
    assert!(created.creator.starts_with("users/"), "{}", created.creator);
    let definition = created.definition.clone().unwrap();
    let greet = &definition.nodes[1];
    let retry = greet.retry.as_ref().unwrap();
    assert_eq!(retry.max_attempts, 3);
    assert_eq!(retry.initial_backoff.as_ref().unwrap().seconds, 1);
    assert_eq!(retry.max_backoff.as_ref().unwrap().seconds, 60);
    assert_eq!(greet.timeout.as_ref().unwrap().seconds, 300);
    assert_eq!(definition.settings.unwrap().timeout.unwrap().seconds, 3600);

    let read = app
        .member(tenant)
        .get_workflow(wire::GetWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);
    let version = app
        .member(tenant)
        .get_workflow_version(wire::GetWorkflowVersionRequest {
            name: format!("{}/versions/1", created.name),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.definition, created.definition);
    assert_eq!(version.creator, created.creator);

    for bad in [
        "workflows/nope",
        "forms/0193a0c8-0000-7000-8000-000000000000",
        "",
    ] {
        let refused = expect_code(
            app.member(tenant)
                .get_workflow(wire::GetWorkflowRequest { name: bad.into() })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&refused), ["name"]);
    }
}

#[tokio::test]
async fn a_new_definition_is_a_new_version_and_the_active_one_stays_until_activated() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let created = app.create(tenant, workflow("Hooks", manual_flow())).await;
    let client = app.member(tenant);
    let activated = client
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(activated.state, wire::WorkflowState::Active as i32);
    assert_eq!(activated.active_version, 1);
    assert_ne!(activated.etag, created.etag);

    // Version 2 adds a step; the workflow stays on version 1 until it is activated.
    let mut second = manual_flow();
    second.nodes.push(node(
        "shout",
        "transform.map",
        json!({"output": "{{ greeting }}!"}),
    ));
    second.edges.push(edge("greet", "shout", ""));
    let updated = client
        .clone()
        .update_workflow(wire::UpdateWorkflowRequest {
            workflow: Some(wire::Workflow {
                name: created.name.clone(),
                definition: Some(second.clone()),
                display_name: "ignored: not in the mask".into(),
                etag: activated.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["definition"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.version, updated.active_version), (2, 1));
    assert_eq!(updated.display_name, "Hooks");
    assert_eq!(updated.definition.as_ref().unwrap().nodes.len(), 3);

    // The same definition again, or a stale etag, makes no version.
    let same = client
        .clone()
        .update_workflow(wire::UpdateWorkflowRequest {
            workflow: Some(wire::Workflow {
                name: created.name.clone(),
                definition: Some(second.clone()),
                ..Default::default()
            }),
            update_mask: mask(&["definition"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (same.version, same.etag.as_str()),
        (2, updated.etag.as_str())
    );
    let stale = expect_code(
        client
            .clone()
            .update_workflow(wire::UpdateWorkflowRequest {
                workflow: Some(wire::Workflow {
                    name: created.name.clone(),
                    description: "stale".into(),
                    etag: activated.etag.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
            })
            .await,
        Code::Aborted,
    );
    assert_eq!(error_reason(&stale), "ETAG_MISMATCH");
    let unmasked = expect_code(
        client
            .clone()
            .update_workflow(wire::UpdateWorkflowRequest {
                workflow: Some(wire::Workflow {
                    name: created.name.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["state", "displayName"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&unmasked),
        ["update_mask", "workflow.display_name"]
    );

    // Versions, newest first, a page at a time.
    let first_page = client
        .clone()
        .list_workflow_versions(wire::ListWorkflowVersionsRequest {
            parent: created.name.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.versions[0].version, 2);
    let second_page = client
        .clone()
        .list_workflow_versions(wire::ListWorkflowVersionsRequest {
            parent: created.name.clone(),
            page_size: 1,
            page_token: first_page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.versions[0].version, 1);
    assert_eq!(second_page.versions[0].definition, created.definition);
    assert!(second_page.next_page_token.is_empty());

    // Activating version 2 switches; a version that does not exist is refused.
    let switched = client
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(switched.active_version, 2);
    let missing = expect_code(
        client
            .clone()
            .activate_workflow(wire::ActivateWorkflowRequest {
                name: created.name.clone(),
                version: 9,
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&missing), "VERSION_NOT_FOUND");
    let back = client
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((back.version, back.active_version), (2, 1));
    let read = client
        .clone()
        .get_workflow(wire::GetWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, back);
}

#[tokio::test]
async fn webhook_urls_are_those_of_the_active_version() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let secret = app
        .credential(
            tenant,
            "Signing",
            wire::CredentialType::WebhookSecret,
            json!({"secret": crate::helpers::webhook_secret()}),
        )
        .await;
    let hooked = definition(
        vec![
            node(
                "incoming",
                "trigger.webhook",
                json!({"credential": secret.name}),
            ),
            node("keep", "transform.map", json!({"output": "{{ @ }}"})),
        ],
        vec![edge("incoming", "keep", "")],
    );
    let created = app.create(tenant, workflow("Inbound", hooked)).await;
    assert!(
        created.webhooks.is_empty(),
        "inactive workflows publish no URL"
    );
    let active = app
        .member(tenant)
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        active.webhooks,
        [wire::WebhookTrigger {
            node_id: "incoming".into(),
            webhook: format!("{}/webhooks/incoming", created.name),
            path: format!(
                "/t/{tenant}/api/v1/{}/webhooks/incoming:trigger",
                created.name
            ),
        }]
    );
    // A new latest version without the webhook does not change the active one's URLs.
    let updated = app
        .member(tenant)
        .update_workflow(wire::UpdateWorkflowRequest {
            workflow: Some(wire::Workflow {
                name: created.name.clone(),
                definition: Some(manual_flow()),
                ..Default::default()
            }),
            update_mask: mask(&["definition"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.webhooks, active.webhooks);
    let deactivated = app
        .member(tenant)
        .deactivate_workflow(wire::DeactivateWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deactivated.webhooks.is_empty());
    assert_eq!(
        (deactivated.state, deactivated.active_version),
        (wire::WorkflowState::Inactive as i32, 0)
    );
}

#[tokio::test]
async fn an_active_workflow_is_deleted_only_once_deactivated() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let created = app
        .create(tenant, workflow("Short-lived", manual_flow()))
        .await;
    let client = app.member(tenant);
    client
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap();
    let refused = expect_code(
        client
            .clone()
            .delete_workflow(wire::DeleteWorkflowRequest {
                name: created.name.clone(),
                etag: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&refused), "WORKFLOW_ACTIVE");
    let inactive = client
        .clone()
        .deactivate_workflow(wire::DeactivateWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let stale = expect_code(
        client
            .clone()
            .delete_workflow(wire::DeleteWorkflowRequest {
                name: created.name.clone(),
                etag: created.etag.clone(),
            })
            .await,
        Code::Aborted,
    );
    assert_eq!(error_reason(&stale), "ETAG_MISMATCH");
    client
        .clone()
        .delete_workflow(wire::DeleteWorkflowRequest {
            name: created.name.clone(),
            etag: inactive.etag,
        })
        .await
        .unwrap();
    let gone = expect_code(
        client
            .clone()
            .get_workflow(wire::GetWorkflowRequest {
                name: created.name.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&gone), "WORKFLOW_NOT_FOUND");
    let versions_gone = expect_code(
        client
            .clone()
            .get_workflow_version(wire::GetWorkflowVersionRequest {
                name: format!("{}/versions/1", created.name),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&versions_gone), "WORKFLOW_NOT_FOUND");
}

#[tokio::test]
async fn workflows_are_listed_newest_first_by_state_and_node_type() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let first = app.create(tenant, workflow("First", manual_flow())).await;
    let scheduled = definition(
        vec![
            node(
                "tick",
                "trigger.schedule",
                json!({"cron": "0 9 * * MON-FRI", "time_zone": "Europe/Paris"}),
            ),
            node(
                "call",
                "action.http",
                json!({"url": "https://example.com/report", "method": "POST"}),
            ),
        ],
        vec![edge("tick", "call", "")],
    );
    let second = app.create(tenant, workflow("Second", scheduled)).await;
    let third = app.create(tenant, workflow("Third", manual_flow())).await;
    let client = app.member(tenant);
    client
        .clone()
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: first.name.clone(),
            version: 0,
        })
        .await
        .unwrap();

    let list = |request: wire::ListWorkflowsRequest| {
        let mut client = client.clone();
        async move {
            client
                .list_workflows(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let names = |response: &wire::ListWorkflowsResponse| -> Vec<String> {
        response
            .workflows
            .iter()
            .map(|workflow| workflow.display_name.clone())
            .collect()
    };
    let all = list(wire::ListWorkflowsRequest::default()).await.unwrap();
    assert_eq!(names(&all), ["First", "Third", "Second"]);
    let active = list(wire::ListWorkflowsRequest {
        state: wire::WorkflowState::Active as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&active), ["First"]);
    let http = list(wire::ListWorkflowsRequest {
        node_type: "action.http".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&http), ["Second"]);
    let page = list(wire::ListWorkflowsRequest {
        page_size: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&page), ["First", "Third"]);
    let rest = list(wire::ListWorkflowsRequest {
        page_size: 2,
        page_token: page.next_page_token.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&rest), ["Second"]);
    assert!(rest.next_page_token.is_empty());
    let _ = (second, third);

    let refused = expect_code(
        list(wire::ListWorkflowsRequest {
            node_type: "action.teleport".into(),
            page_size: 101,
            page_token: page.next_page_token,
            state: 9,
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&refused),
        ["page_size", "state", "node_type", "page_token"]
    );
}
