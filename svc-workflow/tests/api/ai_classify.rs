//! `action.ai_classify` against a real svc-ai (the installed model) with svc-workflow's service
//! token from a real svc-auth: the label and scores as the node's output, the classification
//! stored in the tenant under the attempt's idempotency key with the configured source, another
//! tenant's label set refused for good, and a deployment without svc-ai failing the node with
//! SERVICE_NOT_CONFIGURED.

use std::path::PathBuf;

use clap::Parser;
use platform::config::ServiceClientConfig;
use platform::context::{Role, TenantId};
use platform::testing::{TestInfra, TestKeys, TestServer};
use proto::formflow::ai::v1 as ai;
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::workflow::v1::{ExecutionState, NodeExecutionState};
use serde_json::json;
use testkit::{Options, Services, WORKFLOW_CLIENT};

use crate::helpers::{
    TestApp, definition, edge, json_of, node, node_runs, run, wait_for, workflow,
};

/// svc-auth, and svc-ai trusting it and `keys`, over `infra`.
async fn ai_beside_auth(infra: &TestInfra, keys: &TestKeys) -> (Services, TestServer) {
    let services = Services::start(infra, keys, Options::default()).await;
    let mut config = svc_ai::Config::try_parse_from(["svc-ai"]).expect("svc-ai's defaults parse");
    let path = |name: &str| PathBuf::from(std::env::var(name).expect("the test environment"));
    config.options.models.models_dir = path("AI_MODELS_DIR");
    config.options.models.onnxruntime_library = path("AI_ONNXRUNTIME_LIBRARY");
    config.infra = infra.config();
    config.auth = keys.auth_config();
    config.auth.auth_url = Some(format!("http://{}", services.auth_addr));
    let server = TestServer::start(|listeners| svc_ai::build(config, listeners)).await;
    (services, server)
}

fn classify_flow(label_set: &str) -> proto::formflow::workflow::v1::WorkflowDefinition {
    definition(
        vec![
            node("start", "trigger.manual", json!({})),
            node(
                "classify",
                "action.ai_classify",
                json!({"text": "{{ ticket.body }}", "label_set": label_set, "source": "{{ ticket.name }}"}),
            ),
        ],
        vec![edge("start", "classify", "")],
    )
}

#[tokio::test]
async fn a_node_classifies_with_svc_ai_in_its_tenant_and_refuses_foreign_label_sets() {
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let (services, ai_server) = ai_beside_auth(&infra, &keys).await;
    let auth_url = format!("http://{}", services.auth_addr);
    let ai_url = format!("http://{}", ai_server.addr());
    let app = TestApp::spawn_with(|config| {
        config.auth.auth_url = Some(auth_url);
        config.options.ai_url = Some(ai_url);
        config.options.service_client =
            ServiceClientConfig::of(WORKFLOW_CLIENT.0, WORKFLOW_CLIENT.1);
    })
    .await;
    let (tenant, other) = (TenantId::generate(), TenantId::generate());
    let ai_client = |tenant: TenantId| {
        AiServiceClient::with_interceptor(
            ai_server.channel(),
            platform::testing::CallMetadata::new(
                Some(&keys.user_token(tenant, Role::Member)),
                None,
            ),
        )
    };
    let label_set = |display_name: &str| ai::CreateLabelSetRequest {
        label_set: Some(ai::LabelSet {
            display_name: display_name.to_owned(),
            labels: vec![
                ai::Label {
                    value: "billing".to_owned(),
                    description: "invoices, payments, charges and refunds".to_owned(),
                },
                ai::Label {
                    value: "bug".to_owned(),
                    description: "errors, crashes and pages that do not work".to_owned(),
                },
            ],
            ..ai::LabelSet::default()
        }),
        from_default: 0,
    };
    let set = ai_client(tenant)
        .create_label_set(label_set("Support"))
        .await
        .unwrap()
        .into_inner();
    let foreign = ai_client(other)
        .create_label_set(label_set("Theirs"))
        .await
        .unwrap()
        .into_inner();

    let member = app.member(tenant);
    let name = app
        .create(tenant, workflow("Triage", classify_flow(&set.name)))
        .await
        .name;
    let execution = run(
        &member,
        &name,
        json!({"ticket": {"name": "tickets/42", "body": "I was charged twice this month"}}),
    )
    .await;
    let done = wait_for(&member, &execution.name, ExecutionState::Succeeded).await;
    let output = json_of(done.output.as_ref());
    assert_eq!(output["label"], "billing", "{output}");
    assert_eq!(output["runner_up"]["label"], "bug", "{output}");
    assert_eq!(output["scores"].as_array().map(Vec::len), Some(2));
    let confidence = output["confidence"].as_f64().unwrap();
    assert!(confidence > 0.5 && confidence <= 1.0, "{output}");
    assert_eq!(output["label_set_version"], set.version);

    // Stored once in svc-ai, in the tenant, with the configured source.
    let stored = ai_client(tenant)
        .list_classifications(ai::ListClassificationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .classifications;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, output["classification"]);
    assert_eq!(stored[0].source, "tickets/42");
    assert_eq!(stored[0].text, "I was charged twice this month");
    let elsewhere = ai_client(other)
        .list_classifications(ai::ListClassificationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .classifications;
    assert!(elsewhere.is_empty());
    // Under the attempt's idempotency key: a retried attempt is answered the same, stored once.
    let mut admin = infra.admin_connection().await;
    let keys: Vec<(uuid::Uuid, String, String)> =
        sqlx::query_as("SELECT tenant_id, scope, key FROM ai.idempotency_keys")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    let execution_id = execution.name.rsplit('/').next().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        (keys[0].0, keys[0].1.as_str()),
        (tenant.as_uuid(), "Classify")
    );
    assert!(
        keys[0].2.starts_with(&format!("{execution_id}.classify.")),
        "{keys:?}"
    );

    // Another tenant's label set is not found for this one: failed for good, one attempt.
    let name = app
        .create(tenant, workflow("Foreign", classify_flow(&foreign.name)))
        .await
        .name;
    let execution = run(
        &member,
        &name,
        json!({"ticket": {"name": "tickets/43", "body": "The page crashes"}}),
    )
    .await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    let error = failed.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.node_id.as_str()),
        ("AI_NOT_FOUND", "classify")
    );
    assert!(error.message.contains("not found"), "{}", error.message);
    let runs = node_runs(&member, &execution.name).await;
    let classify = runs.iter().find(|run| run.node_id == "classify").unwrap();
    assert_eq!(classify.state(), NodeExecutionState::Failed);
    assert_eq!(classify.attempt, 1, "not retried");
}

#[tokio::test]
async fn without_svc_ai_the_node_fails_as_not_configured() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let set = format!("labelSets/{}", uuid::Uuid::now_v7());
    let name = app
        .create(tenant, workflow("Triage", classify_flow(&set)))
        .await
        .name;
    let execution = run(
        &member,
        &name,
        json!({"ticket": {"name": "tickets/1", "body": "refund please"}}),
    )
    .await;
    let failed = wait_for(&member, &execution.name, ExecutionState::Failed).await;
    let error = failed.error.unwrap();
    assert_eq!(error.code, "SERVICE_NOT_CONFIGURED");
    assert!(
        error.message.contains("WORKFLOW_AI_URL"),
        "{}",
        error.message
    );
}
