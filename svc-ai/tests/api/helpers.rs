//! A real svc-ai on an ephemeral port, with clients for each kind of caller.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestKeys, TestServer};
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::ai::v1::{EmbedRequest, Embedding};
use svc_ai::{Config, ModelsConfig};
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) use platform::testing::{expect_code, violated_fields as bad_fields};

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

/// svc-ai's defaults (`svc-ai --help`), with the installed models and `keys` trusted.
pub(crate) fn config(keys: &TestKeys) -> Config {
    let mut config = Config::try_parse_from(["svc-ai"]).expect("the defaults parse");
    config.models = models_config();
    config.auth = keys.auth_config();
    config
}

pub(crate) struct TestApp {
    pub(crate) keys: TestKeys,
    server: TestServer,
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
        let server = TestServer::start(|listeners| svc_ai::build(config, listeners)).await;
        TestApp { keys, server }
    }

    /// A client sending `token` (none: anonymous) and, when given, a routed tenant.
    pub(crate) fn client(&self, token: Option<&str>, routed: Option<TenantId>) -> Client {
        AiServiceClient::with_interceptor(self.server.channel(), CallMetadata::new(token, routed))
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
    pub(crate) async fn stop(self) {
        self.server.stop().await;
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
