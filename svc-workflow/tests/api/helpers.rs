//! A real svc-workflow on a loopback port, over its own database, with clients for each kind
//! of caller and builders of definitions.

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestInfra, TestKeys, TestServer};
use proto::formflow::workflow::v1 as wire;
use proto::formflow::workflow::v1::workflow_service_client::WorkflowServiceClient;
use secrecy::SecretString;
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) type Client = WorkflowServiceClient<InterceptedService<Channel, CallMetadata>>;

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    /// The WORKFLOW_ENCRYPTION_KEYS the service seals credentials with.
    pub(crate) encryption_keys: String,
    server: TestServer,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        let infra = TestInfra::new().await;
        let keys = TestKeys::new();
        let encryption_keys = platform::crypto::Sealer::generate_key_entry("test");
        let mut config = svc_workflow::Config::try_parse_from(["svc-workflow"]).unwrap();
        config.infra = infra.config();
        config.auth = keys.auth_config();
        config.options.encryption_keys = Some(SecretString::from(encryption_keys.clone()));
        let server = TestServer::start(|listeners| svc_workflow::build(config, listeners)).await;
        TestApp {
            infra,
            keys,
            encryption_keys,
            server,
        }
    }

    /// A client sending `token` (none: anonymous), routed to `tenant` as the gateway would.
    pub(crate) fn client(&self, token: Option<&str>, routed: Option<TenantId>) -> Client {
        WorkflowServiceClient::with_interceptor(
            self.server.channel(),
            CallMetadata::new(token, routed),
        )
    }

    /// A user with `role` in `tenant`, routed there.
    pub(crate) fn user(&self, tenant: TenantId, role: Role) -> Client {
        self.client(Some(&self.keys.user_token(tenant, role)), Some(tenant))
    }

    /// A member of `tenant`.
    pub(crate) fn member(&self, tenant: TenantId) -> Client {
        self.user(tenant, Role::Member)
    }

    /// An admin of `tenant`.
    pub(crate) fn admin(&self, tenant: TenantId) -> Client {
        self.user(tenant, Role::Admin)
    }

    /// Creates `workflow` in `tenant` as a member.
    pub(crate) async fn create(
        &self,
        tenant: TenantId,
        workflow: wire::Workflow,
    ) -> wire::Workflow {
        self.member(tenant)
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow),
            })
            .await
            .expect("creating a workflow")
            .into_inner()
    }

    /// Creates a credential of `kind` named `display_name` with `value` in `tenant` as an admin.
    pub(crate) async fn credential(
        &self,
        tenant: TenantId,
        display_name: &str,
        kind: wire::CredentialType,
        value: Value,
    ) -> wire::Credential {
        self.admin(tenant)
            .create_credential(wire::CreateCredentialRequest {
                credential: Some(credential(display_name, kind, value)),
            })
            .await
            .expect("creating a credential")
            .into_inner()
    }
}

/// A credential to create.
pub(crate) fn credential(
    display_name: &str,
    kind: wire::CredentialType,
    value: Value,
) -> wire::Credential {
    wire::Credential {
        display_name: display_name.into(),
        r#type: kind as i32,
        value: Some(object(value)),
        ..Default::default()
    }
}

/// `value` (a JSON object) as a Struct.
pub(crate) fn object(value: Value) -> pbjson_types::Struct {
    serde_json::from_value(value).expect("a JSON object")
}

/// A node of `node_type` with `config`.
pub(crate) fn node(id: &str, node_type: &str, config: Value) -> wire::Node {
    wire::Node {
        id: id.into(),
        r#type: node_type.into(),
        config: Some(object(config)),
        ..Default::default()
    }
}

/// An edge.
pub(crate) fn edge(from: &str, to: &str, when: &str) -> wire::Edge {
    wire::Edge {
        from: from.into(),
        to: to.into(),
        when: when.into(),
    }
}

/// A definition of `nodes` and `edges`.
pub(crate) fn definition(
    nodes: Vec<wire::Node>,
    edges: Vec<wire::Edge>,
) -> wire::WorkflowDefinition {
    wire::WorkflowDefinition {
        nodes,
        edges,
        settings: None,
    }
}

/// A manual trigger followed by a map building `{"greeting": …}`.
pub(crate) fn manual_flow() -> wire::WorkflowDefinition {
    definition(
        vec![
            node("start", "trigger.manual", serde_json::json!({})),
            node(
                "greet",
                "transform.map",
                serde_json::json!({"output": {"greeting": "Hello {{ name }}"}}),
            ),
        ],
        vec![edge("start", "greet", "")],
    )
}

/// A workflow named `display_name` with `definition`.
pub(crate) fn workflow(display_name: &str, definition: wire::WorkflowDefinition) -> wire::Workflow {
    wire::Workflow {
        display_name: display_name.into(),
        definition: Some(definition),
        ..Default::default()
    }
}

/// A field mask of `paths`.
pub(crate) fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

/// A fresh Standard Webhooks secret.
pub(crate) fn webhook_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
