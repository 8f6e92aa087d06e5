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
        Self::spawn_with(|_| {}).await
    }

    /// The service with its configuration changed by `configure` first.
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut svc_workflow::Config)) -> TestApp {
        let infra = TestInfra::new().await;
        let keys = TestKeys::new();
        let encryption_keys = platform::crypto::Sealer::generate_key_entry("test");
        let mut config = replica_config(&infra, &keys, &encryption_keys);
        configure(&mut config);
        let server = TestServer::start(|listeners| svc_workflow::build(config, listeners)).await;
        TestApp {
            infra,
            keys,
            encryption_keys,
            server,
        }
    }

    /// The configuration of another replica of this service, changed by `configure`.
    pub(crate) fn replica_config(
        &self,
        configure: impl FnOnce(&mut svc_workflow::Config),
    ) -> svc_workflow::Config {
        let mut config = replica_config(&self.infra, &self.keys, &self.encryption_keys);
        configure(&mut config);
        config
    }

    /// Starts a replica alongside configured by `configure`, then stops the first one (a
    /// rolling restart).
    pub(crate) async fn restart(&mut self, configure: impl FnOnce(&mut svc_workflow::Config)) {
        let mut config = replica_config(&self.infra, &self.keys, &self.encryption_keys);
        configure(&mut config);
        let next = TestServer::start(|listeners| svc_workflow::build(config, listeners)).await;
        std::mem::replace(&mut self.server, next).stop().await;
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

/// A replica of the service in a runtime (and thread) of its own, which a test can kill as a
/// crash would: every task dropped at once, its sockets and connections cut, nothing drained.
pub(crate) struct Replica {
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    /// Starts a replica with `config` and waits until it runs.
    pub(crate) async fn start(config: svc_workflow::Config) -> Replica {
        let (started, running) = tokio::sync::oneshot::channel();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the replica");
            runtime.block_on(async move {
                let listeners = platform::server::Listeners::loopback().await.unwrap();
                let service = svc_workflow::build(config, listeners).await.unwrap();
                let _ = started.send(());
                tokio::select! {
                    _ = service.run_until_stopped(std::future::pending()) => {}
                    _ = killed => {}
                }
            });
            runtime.shutdown_background();
        });
        running.await.expect("the replica starts");
        Replica {
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Kills the replica.
    pub(crate) fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the replica's thread ends");
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The configuration of a replica over `infra`: quick leases and sweeps, so that tests of
/// take-overs end soon.
fn replica_config(
    infra: &TestInfra,
    keys: &TestKeys,
    encryption_keys: &str,
) -> svc_workflow::Config {
    let mut config = svc_workflow::Config::try_parse_from(["svc-workflow"]).unwrap();
    config.infra = infra.config();
    config.auth = keys.auth_config();
    config.options.encryption_keys = Some(SecretString::from(encryption_keys.to_owned()));
    config.options.lease = std::time::Duration::from_secs(2);
    config.options.overdue_after = std::time::Duration::from_secs(2);
    config
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

/// Runs `workflow` by hand with `input` as `client`.
pub(crate) async fn run(client: &Client, workflow: &str, input: Value) -> wire::Execution {
    client
        .clone()
        .run_workflow(wire::RunWorkflowRequest {
            name: workflow.to_owned(),
            input: Some(object(input)),
            ..Default::default()
        })
        .await
        .expect("running a workflow")
        .into_inner()
}

/// Execution `name` once it is in `state`; fails the test after 15 s.
pub(crate) async fn wait_for(
    client: &Client,
    name: &str,
    state: wire::ExecutionState,
) -> wire::Execution {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let execution = client
            .clone()
            .get_execution(wire::GetExecutionRequest {
                name: name.to_owned(),
            })
            .await
            .expect("reading an execution")
            .into_inner();
        if execution.state == state as i32 {
            return execution;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "execution {name} is {:?}, not {state:?}: {execution:?}",
            execution.state()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The node runs of execution `name`, in the order they started.
pub(crate) async fn node_runs(client: &Client, name: &str) -> Vec<wire::NodeExecution> {
    let mut runs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .clone()
            .list_node_executions(wire::ListNodeExecutionsRequest {
                parent: name.to_owned(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("listing node executions")
            .into_inner();
        runs.extend(page.node_executions);
        if page.next_page_token.is_empty() {
            return runs;
        }
        page_token = page.next_page_token;
    }
}

/// `value` (a Value from the wire) as JSON.
pub(crate) fn json_of(value: Option<&pbjson_types::Value>) -> Value {
    value.map_or(Value::Null, platform::wire::value_from_proto)
}
