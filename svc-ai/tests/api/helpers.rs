//! A real svc-ai on an ephemeral port, with clients for each kind of caller.

use std::path::PathBuf;
use std::time::Duration;

use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestKeys};
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::ai::v1::{EmbedRequest, Embedding};
use svc_ai::{App, Config, ModelsConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The model `scripts/fetch-ai-assets.sh` installs.
pub(crate) const MODEL: &str = "models/all-minilm-l6-v2";

pub(crate) type Client = AiServiceClient<InterceptedService<Channel, CallMetadata>>;

/// The models the test environment installed.
pub(crate) fn models_config() -> ModelsConfig {
    let path = |name: &str| {
        PathBuf::from(std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with scripts/test.sh, or source .formflow/env")
        }))
    };
    ModelsConfig {
        models_dir: path("AI_MODELS_DIR"),
        onnxruntime_library: path("AI_ONNXRUNTIME_LIBRARY"),
        inference_threads: 2,
        queue_capacity: 64,
        max_batch: 32,
        queue_timeout: Duration::from_secs(30),
    }
}

pub(crate) fn config(keys: &TestKeys) -> Config {
    Config {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        models: models_config(),
        auth: keys.auth_config(),
        telemetry: Default::default(),
    }
}

pub(crate) struct TestApp {
    pub(crate) keys: TestKeys,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service after `configure` adjusted its config.
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        let keys = TestKeys::new();
        let mut config = config(&keys);
        configure(&mut config);
        let app = App::build(config).await.expect("svc-ai starts");
        let addr = app.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connecting to svc-ai");
        TestApp {
            keys,
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A client sending `token` (none: anonymous) and, when given, a routed tenant.
    pub(crate) fn client(&self, token: Option<&str>, routed: Option<TenantId>) -> Client {
        AiServiceClient::with_interceptor(self.channel.clone(), CallMetadata::new(token, routed))
    }

    /// A client of a user with `role` in `tenant`.
    pub(crate) fn user(&self, tenant: TenantId, role: Role) -> Client {
        self.client(Some(&self.keys.user_token(tenant, role)), None)
    }

    /// A member of a fresh tenant.
    pub(crate) fn member(&self) -> Client {
        self.user(TenantId::generate(), Role::Member)
    }

    /// Stops the service and waits until it has drained.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("svc-ai stops cleanly");
    }
}

/// Embeds `texts` with the default model.
pub(crate) async fn embed(client: &mut Client, texts: &[&str]) -> Result<Vec<Embedding>, Status> {
    Ok(client
        .embed(EmbedRequest {
            model: String::new(),
            texts: texts.iter().map(|text| (*text).to_owned()).collect(),
        })
        .await?
        .into_inner()
        .embeddings)
}

pub(crate) fn cosine(a: &Embedding, b: &Embedding) -> f32 {
    a.values.iter().zip(&b.values).map(|(x, y)| x * y).sum()
}

/// Fails unless `result` is an error with `code`; returns its status.
#[track_caller]
pub(crate) fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// The fields an INVALID_ARGUMENT status names.
pub(crate) fn bad_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}
